//! Provisioned and reserved concurrency end to end (`[function]
//! provisioned-concurrency`, `reserved-concurrency`): `plan` shows them,
//! `up` sets them and waits until Lambda has allocated the provisioned
//! environments (again after a release moves the alias), `status` shows
//! `READY`, a change of the amount updates it, 0 removes it, and `destroy`
//! removes them, an account whose quota has no room for them is
//! refused before anything is created, and an allocation Lambda cannot
//! make (the function's init fails) is an error that points at the
//! function's log until a release that starts — the real binary against the local
//! AWS, checked with SDK calls. (`concurrency.rs` is about two `up` racing, not these settings.)

use serde_json::Value;

use crate::util::fixture::{Fixture, changes, set_in_table, texts};
use crate::util::own_moto::OwnMoto;
use crate::util::proxy::FaultProxy;
use crate::util::*;

/// The alias's provisioned concurrency as Lambda reports it: (requested,
/// allocated, status); `None` when it has none.
async fn provisioned(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    alias: &str,
) -> Option<(i32, i32, String)> {
    match lambda
        .get_provisioned_concurrency_config()
        .function_name(function)
        .qualifier(alias)
        .send()
        .await
    {
        Ok(config) => Some((
            config
                .requested_provisioned_concurrent_executions()
                .unwrap_or_default(),
            config
                .allocated_provisioned_concurrent_executions()
                .unwrap_or_default(),
            config
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
        )),
        Err(err) => {
            let service = err.into_service_error();
            assert!(
                service.is_provisioned_concurrency_config_not_found_exception()
                    || service.is_resource_not_found_exception(),
                "{service:?}"
            );
            None
        }
    }
}

async fn reserved(lambda: &aws_sdk_lambda::Client, function: &str) -> Option<i32> {
    lambda
        .get_function_concurrency()
        .function_name(function)
        .send()
        .await
        .unwrap()
        .reserved_concurrent_executions()
}

/// The step names of an `up --json` answer.
fn steps(answer: &Value) -> Vec<String> {
    answer["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps in {answer}"))
        .iter()
        .filter_map(|s| s["step"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_up_status_change_and_destroy_of_provisioned_and_reserved_concurrency() {
    require_strict_local_aws();
    let fx = Fixture::new("conc");
    let _dump = DumpOnFailure::new(&fx.app);
    let lambda = aws_sdk_lambda::Client::new(&sdk_config().await);
    let function = fx.function("local");
    let on_alias = format!("{function}:local");
    fx.set_local("function", "provisioned-concurrency", "1");
    fx.set_local("function", "reserved-concurrency", "3");

    // plan: both are to be created, the provisioned one on the alias.
    let planned = changes(&fx.json(&["plan", "--stage", "local", "--json"]));
    assert!(
        planned.contains(&format!("lambda reserved concurrency {function} create"))
            && planned.contains(&format!("lambda provisioned concurrency {on_alias} create")),
        "{planned:#?}"
    );
    let shown = fx.stdout(&["plan", "--stage", "local"]);
    assert!(
        shown.contains("+ lambda provisioned concurrency"),
        "{shown}"
    );

    // up: sets both and returns only once the allocation is READY.
    let up = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let ran = steps(&up);
    assert!(
        ran.iter().any(|s| s == "provisioned concurrency ready"),
        "{ran:?}"
    );
    assert_eq!(
        provisioned(&lambda, &function, "local").await,
        Some((1, 1, "READY".into()))
    );
    assert_eq!(reserved(&lambda, &function).await, Some(3));

    // status: READY with what is allocated, and the reservation.
    let status = fx.json(&["status", "--stage", "local", "--json"]);
    let concurrency = &status["concurrency"];
    assert_eq!(concurrency["reserved"], 3, "{status}");
    assert_eq!(concurrency["provisioned"]["status"], "READY", "{status}");
    assert_eq!(concurrency["provisioned"]["requested"], 1, "{status}");
    assert_eq!(concurrency["provisioned"]["allocated"], 1, "{status}");
    // The account's headroom: the local AWS's default quota, of which this
    // function holds 3 (other tests' functions may hold more).
    assert_eq!(concurrency["account"]["limit"], 1000, "{status}");
    let unreserved = concurrency["account"]["unreserved"].as_i64().unwrap();
    assert!(unreserved <= 997, "{status}");
    let shown = fx.stdout(&["status", "--stage", "local"]);
    assert!(
        shown.contains(
            "provisioned 1 on the alias, READY (1 allocated); reserved 3; account quota 1000, "
        ),
        "{shown}"
    );

    // Nothing changed: nothing to do, and no wait.
    let again = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert!(changes(&again).is_empty(), "{:#?}", changes(&again));
    assert!(
        !steps(&again).iter().any(|s| s.contains("concurrency")),
        "{:?}",
        steps(&again)
    );

    // A change of the amount is an update of it, waited for again.
    fx.set_local("function", "provisioned-concurrency", "2");
    let planned = changes(&fx.json(&["plan", "--stage", "local", "--json"]));
    assert_eq!(
        planned,
        [format!(
            "lambda provisioned concurrency {on_alias} update [\"amount\"]"
        )]
    );
    fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert_eq!(
        provisioned(&lambda, &function, "local").await,
        Some((2, 2, "READY".into()))
    );

    // A release moves the alias, and Lambda allocates again for the new
    // version (IN_PROGRESS meanwhile): up waits for that too.
    fx.set_local("function", "memory", "1024");
    let release = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let ran = steps(&release);
    assert!(
        ran.iter().any(|s| s == "lambda alias")
            && ran.iter().any(|s| s == "provisioned concurrency ready")
            && !ran.iter().any(|s| s == "lambda provisioned concurrency"),
        "{ran:?}"
    );
    assert_eq!(
        provisioned(&lambda, &function, "local").await,
        Some((2, 2, "READY".into()))
    );

    // A reservation below what is provisioned: the provisioned amount is
    // lowered first, and both end as asked.
    fx.set_local("function", "provisioned-concurrency", "1");
    fx.set_local("function", "reserved-concurrency", "1");
    let planned = changes(&fx.json(&["plan", "--stage", "local", "--json"]));
    let at = |kind: &str| {
        planned
            .iter()
            .position(|c| c.starts_with(kind))
            .unwrap_or_else(|| panic!("no {kind} in {planned:#?}"))
    };
    assert!(
        at("lambda provisioned concurrency") < at("lambda reserved concurrency"),
        "{planned:#?}"
    );
    fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert_eq!(
        provisioned(&lambda, &function, "local").await,
        Some((1, 1, "READY".into()))
    );
    assert_eq!(reserved(&lambda, &function).await, Some(1));

    // 0 removes the reservation; the provisioned concurrency stays.
    fx.set_local("function", "reserved-concurrency", "0");
    let planned = changes(&fx.json(&["plan", "--stage", "local", "--json"]));
    assert_eq!(
        planned,
        [format!(
            "lambda reserved concurrency {function} update [\"removed\"]"
        )]
    );
    fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert_eq!(reserved(&lambda, &function).await, None);
    assert_eq!(
        provisioned(&lambda, &function, "local").await,
        Some((1, 1, "READY".into()))
    );

    // destroy names the provisioned concurrency and removes it with the rest,
    // and has no use for the account's quota.
    let proxy = FaultProxy::for_local_stage(&fx, 0.0, 1);
    let destroyed = fx.json(&["destroy", "--stage", "local", "--yes", "--json"]);
    let calls = proxy.counts.take_calls();
    assert!(
        calls
            .iter()
            .any(|c| c.operation.contains("provisioned-concurrency"))
            && !calls
                .iter()
                .any(|c| c.operation.contains("account-settings")),
        "{:#?}",
        calls.iter().map(|c| &c.operation).collect::<Vec<_>>()
    );
    let removed: Vec<&str> = destroyed["removed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert!(
        removed.contains(&"lambda provisioned concurrency")
            && !removed.contains(&"lambda reserved concurrency"),
        "{removed:?}"
    );
    assert_eq!(provisioned(&lambda, &function, "local").await, None);
    let status = fx.json(&["status", "--stage", "local", "--json"]);
    assert_eq!(status["deployed"], false, "{status}");
    assert_eq!(
        status["concurrency"]["provisioned"],
        Value::Null,
        "{status}"
    );
}

/// An allocation Lambda cannot make: with the smoke test off, a version
/// whose init fails gets the alias, and its provisioned environments cannot
/// start. `up` exits 3 with Lambda's `StatusReason`, `status` shows
/// `FAILED`, the same `up` again puts it again and fails the same way, and
/// once the cause is fixed the next `up` ends with it `READY`.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_allocation_is_an_error_until_a_release_that_can_start() {
    require_strict_local_aws();
    let fx = Fixture::new("concfail");
    let _dump = DumpOnFailure::new(&fx.app);
    let lambda = aws_sdk_lambda::Client::new(&sdk_config().await);
    let function = fx.function("local");
    fx.set_local("function", "provisioned-concurrency", "1");
    fx.set_local("smoke-test", "enabled", "false");
    let missing = format!("/nonexistent-{}", fx.app);
    fx.set_local(
        "function.environment",
        "PREDICTION_MODELS_DIR",
        &format!("\"{missing}\""),
    );

    for attempt in ["first", "same again"] {
        let out = fx.deployer(&["up", "--stage", "local", "--json", "--yes"]);
        let (stdout, stderr) = texts(&out);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{attempt}: a failed allocation must exit 3\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(
            stderr.contains("the allocation failed: FUNCTION_ERROR_INIT_FAILURE")
                && stderr.contains("deployer logs --stage"),
            "{attempt}: Lambda's reason is not shown:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        let (requested, _, state) = provisioned(&lambda, &function, "local")
            .await
            .unwrap_or_else(|| panic!("{attempt}: no provisioned concurrency"));
        assert_eq!((requested, state.as_str()), (1, "FAILED"), "{attempt}");
        let status = fx.json(&["status", "--stage", "local", "--json"]);
        assert_eq!(
            status["concurrency"]["provisioned"]["status"], "FAILED",
            "{attempt}: {status}"
        );
    }

    // Where the error says the cause is: the function's init error.
    let logs = fx.stdout(&["logs", "--stage", "local", "--since", "10m"]);
    assert!(logs.contains(&missing), "no init error in the log:\n{logs}");

    // Fixed: a new release, and Lambda allocates for it.
    fx.set_local(
        "function.environment",
        "PREDICTION_MODELS_DIR",
        &format!("\"{}\"", prediction::DEFAULT_MODELS_DIR),
    );
    let up = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert!(
        steps(&up)
            .iter()
            .any(|s| s == "provisioned concurrency ready"),
        "{:?}",
        steps(&up)
    );
    assert_eq!(
        provisioned(&lambda, &function, "local").await,
        Some((1, 1, "READY".into()))
    );
    fx.json(&["destroy", "--stage", "local", "--yes", "--json"]);
}

/// More provisioned than reserved is refused before any AWS call, at the
/// line that set it (Lambda would refuse the put after the alias moved).
#[test]
fn provisioned_beyond_reserved_is_a_configuration_error_at_its_line() {
    let fx = Fixture::new("concbad");
    fx.set_local("function", "reserved-concurrency", "1");
    fx.set_local("function", "provisioned-concurrency", "2");
    let out = fx.deployer(&["plan", "--stage", "local"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let line = std::fs::read_to_string(fx.path("deploy.toml"))
        .unwrap()
        .lines()
        .position(|l| l.starts_with("provisioned-concurrency = 2"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!(
            "deploy.toml:{line}: [stages.local.function] provisioned-concurrency: 2 is more than the stage's reserved-concurrency (1)"
        )),
        "{stderr}"
    );
}

/// A new AWS account's concurrency quota (10, "Lambda quotas"; Lambda keeps
/// all of it unreserved) has no room for provisioned concurrency: `plan`
/// and `up` refuse it after reading the quota, at the line that asks for
/// it, before anything is created (Lambda would refuse the put after the
/// image, the function and the alias were in place).
#[tokio::test(flavor = "multi_thread")]
async fn a_new_accounts_quota_is_refused_at_the_line_before_anything_is_created() {
    let moto = OwnMoto::start("quota", &[("LOCAL_AWS_LAMBDA_CONCURRENCY_LIMIT", "10")]);
    let fx = Fixture::new("concquota");
    let url = format!("\"{}\"", moto.url);
    fx.edit_config(|text| set_in_table(text, "stages.local", "endpoint-url", &url));
    fx.set_local("function", "provisioned-concurrency", "1");
    // The line in [stages.local.function] (prod sets one too).
    let text = std::fs::read_to_string(fx.path("deploy.toml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let table = lines
        .iter()
        .position(|l| l.trim() == "[stages.local.function]")
        .unwrap();
    let line = table
        + lines[table..]
            .iter()
            .position(|l| l.starts_with("provisioned-concurrency = 1"))
            .unwrap()
        + 1;
    let expected = format!(
        "deploy.toml:{line}: [stages.local.function] provisioned-concurrency: the account cannot \
         provision 1 concurrent executions: its quota in this Region is 10"
    );
    for command in ["plan", "up"] {
        let out = fx
            .command(&[command, "--stage", "local", "--yes"])
            .env("AWS_ENDPOINT_URL", &moto.url)
            .output()
            .unwrap();
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(stderr.contains(&expected), "{command}: {stderr}");
    }
    // Nothing of the stage exists on that account.
    let config = moto.sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let functions = lambda.list_functions().send().await.unwrap();
    assert!(functions.functions().is_empty(), "{functions:?}");
    let ecr = aws_sdk_ecr::Client::new(&config);
    let repositories = ecr.describe_repositories().send().await.unwrap();
    assert!(repositories.repositories().is_empty(), "{repositories:?}");
    // Without it, the same stage deploys on that account.
    fx.set_local("function", "provisioned-concurrency", "0");
    let out = fx
        .command(&["plan", "--stage", "local"])
        .env("AWS_ENDPOINT_URL", &moto.url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", texts(&out));
}
