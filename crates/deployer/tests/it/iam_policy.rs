//! `deployer policy` proven sufficient, and every action and resource in
//! it needed by some command: the real binary runs a stage's whole life
//! (`plan`, `up` from nothing after a run died holding the stage lock, a
//! no-op `up`, a model change, a memory change, reserved and provisioned
//! concurrency added and removed, drift repaired, `status`, `invoke`,
//! `logs`, `metrics`, `rollback`, `destroy` while another stage still uses
//! the repository) against a second moto that enforces IAM, signed as an
//! IAM user of that moto whose only policy is the printed one, byte for
//! byte (the stale lock, the drift, the other stage and another team's API
//! are made by a second user, an administrator, and its calls are not
//! counted as the deployer's); then again with one action removed, or one
//! resource, which must make a command fail with exit 3 and an error naming
//! what is missing. Another team's REST API, API key and usage plan survive
//! the life, and every call that would read, change or delete them signed
//! with the printed policy is denied. And `parliament` finds nothing above
//! LOW in the printed policy.
//!
//! What moto checks (moto 5.1.22, `moto/iam/access_control.py`, with
//! `scripts/moto_ext/iam_auth.py`, `iam_targets.py`, `iam_policy.py`): the
//! action of every request, named as AWS names it, on the resource ARN AWS
//! authorizes it on (log groups in their `:*` form, functions with their
//! qualifier, repositories, roles, API Gateway paths), with the condition
//! keys the policy uses (`iam:PassedToService`, `iam:PolicyARN`, API
//! Gateway's resource and request tags). The push to the registry is
//! Docker's, not IAM-checked locally; GetAuthorizationToken is. The calls
//! the extension serves itself (provisioned concurrency) or hands to moto
//! translated (CloudWatch's CBOR) are checked as moto checks the others.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use deployer::config::Stage;
use deployer::names::Names;
use serde_json::{Value, json};

use crate::util::fixture::{Fixture, changes, json_of, set_in_table, texts};
use crate::util::iam_moto::IamMoto;
use crate::util::*;

/// The stage the test deploys: a copy of `local` aimed at the IAM moto,
/// with credentials from the environment.
const STAGE: &str = "iam";
/// What `up` calls to repair [`drift`], all of them in the printed policy
/// (a repair fails without it, and the full life must use it).
const REPAIRS: [&str; 8] = [
    "iam:UpdateAssumeRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:TagRole",
    "ecr:PutImageScanningConfiguration",
    "ecr:PutImageTagMutability",
    "ecr:TagResource",
    "lambda:TagResource",
    "logs:TagResource",
];
/// How many actions are removed, one per run, chosen at random
/// (`IAM_POLICY_TEST_REMOVALS` overrides it).
const REMOVALS: usize = 1;
/// How many resources are removed, one per run, chosen at random
/// (`IAM_POLICY_TEST_NARROWINGS` overrides it).
const NARROWINGS: usize = 2;

/// A fixture with the stage [`STAGE`]: `local`'s settings, credentials
/// from the environment, and `api_key` auth so the API key and usage plan
/// calls run too; [`aim`] points it at an IAM moto.
fn fixture() -> Fixture {
    let fx = Fixture::new("iampol");
    fx.add_local_stage(STAGE);
    let table = format!("stages.{STAGE}");
    fx.edit_config(|text| {
        let text = set_in_table(text, &table, "dummy-credentials", "false");
        set_in_table(&text, &format!("{table}.api"), "auth", "\"api_key\"")
    });
    fx
}

/// Sets keys of the stage's `[function]` table.
fn set_function(fx: &Fixture, settings: &[(&str, &str)]) {
    let table = format!("stages.{STAGE}.function");
    fx.edit_config(|text| {
        settings
            .iter()
            .fold(text.to_string(), |text, (key, value)| {
                set_in_table(&text, &table, key, value)
            })
    });
}

/// Points the stage at `url`.
fn aim(fx: &Fixture, url: &str) {
    let table = format!("stages.{STAGE}");
    fx.edit_config(|text| set_in_table(text, &table, "endpoint-url", &format!("\"{url}\"")));
}

/// What someone with more rights changes behind the deployer's back, all
/// of which `up` repairs: the execution role's trust policy (EC2's
/// instead of Lambda's), an inline policy on it, and a tag of the role,
/// the repository, the function, its log group and the API's stage; the
/// repository's scan on push and tag mutability.
async fn drift(admin: SdkConfig, fx: &Fixture) {
    let admin = &admin;
    // The stage's names as the deployer makes them.
    let stage = Stage::defaults(&fx.app, STAGE, &region());
    let names = Names::new(&stage, ACCOUNT);
    let (function, role, repository_name) = (
        stage.function_name(),
        stage.role_name(),
        stage.repository_name(),
    );
    let ec2_trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole"
    }]});
    let inline = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
    ]});
    let iam = aws_sdk_iam::Client::new(admin);
    iam.update_assume_role_policy()
        .role_name(&role)
        .policy_document(ec2_trust.to_string())
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name(&role)
        .policy_name("drift")
        .policy_document(inline.to_string())
        .send()
        .await
        .unwrap();
    iam.untag_role()
        .role_name(&role)
        .tag_keys("deployer:stage")
        .send()
        .await
        .unwrap();

    let ecr = aws_sdk_ecr::Client::new(admin);
    let found = ecr
        .describe_repositories()
        .repository_names(&repository_name)
        .send()
        .await
        .unwrap();
    let repository = &found.repositories()[0];
    let scanning = repository
        .image_scanning_configuration()
        .is_some_and(|c| c.scan_on_push());
    ecr.put_image_scanning_configuration()
        .repository_name(&repository_name)
        .image_scanning_configuration(
            aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                .scan_on_push(!scanning)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let flipped = match repository.image_tag_mutability() {
        Some(aws_sdk_ecr::types::ImageTagMutability::Immutable) => {
            aws_sdk_ecr::types::ImageTagMutability::Mutable
        }
        _ => aws_sdk_ecr::types::ImageTagMutability::Immutable,
    };
    ecr.put_image_tag_mutability()
        .repository_name(&repository_name)
        .image_tag_mutability(flipped)
        .send()
        .await
        .unwrap();
    ecr.untag_resource()
        .resource_arn(repository.repository_arn().unwrap())
        .tag_keys("deployer:app")
        .send()
        .await
        .unwrap();

    let lambda = aws_sdk_lambda::Client::new(admin);
    let found = lambda
        .get_function()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    let arn = found.configuration().unwrap().function_arn().unwrap();
    lambda
        .untag_resource()
        .resource(arn)
        .tag_keys("deployer:stage")
        .send()
        .await
        .unwrap();

    let logs = aws_sdk_cloudwatchlogs::Client::new(admin);
    let group_arn = names.log_group_arn(&stage.log_group_name());
    logs.untag_resource()
        .resource_arn(group_arn)
        .tag_keys("deployer:stage")
        .send()
        .await
        .unwrap();

    // The stage's own tag: it still inherits the API's, so the policy's tag
    // condition lets the deployer put it back.
    let apigw = aws_sdk_apigateway::Client::new(admin);
    let api = rest_api_id(&apigw, &stage.api_name()).await;
    apigw
        .untag_resource()
        .resource_arn(names.api_stage_arn(&api))
        .tag_keys("deployer:stage")
        .send()
        .await
        .unwrap();
}

/// The id of the REST API named `name`.
async fn rest_api_id(apigw: &aws_sdk_apigateway::Client, name: &str) -> String {
    let apis = apigw.get_rest_apis().limit(500).send().await.unwrap();
    apis.items()
        .iter()
        .find(|a| a.name() == Some(name))
        .and_then(|a| a.id())
        .unwrap_or_else(|| panic!("no REST API {name}"))
        .to_string()
}

/// What a run that died holding the stage lock leaves: the lock, its
/// holder on another machine, silent by CloudWatch's clock since it was
/// taken and keeping to a 4 s bound, so the next run breaks it (through a
/// marker below the lock's name) once that bound has passed.
async fn stale_lock(admin: SdkConfig, fx: &Fixture) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&admin);
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    logs.create_log_group()
        .log_group_name(fx.lock_group(STAGE))
        .tags("deployer:host", "ci-elsewhere")
        .tags("deployer:pid", "4242")
        .tags("deployer:machine", "")
        .tags("deployer:command", "deployer up")
        .tags("deployer:since", &since)
        .tags("deployer:stale-after-seconds", "4")
        .send()
        .await
        .unwrap();
}

/// Waits until DescribeLogGroups lists `group` (at most 30 s).
async fn listed(admin: SdkConfig, group: &str) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&admin);
    for _ in 0..300 {
        let answer = logs
            .describe_log_groups()
            .log_group_name_prefix(group)
            .send()
            .await
            .unwrap();
        if answer
            .log_groups()
            .iter()
            .any(|g| g.log_group_name() == Some(group))
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{group} is not listed after 30 s");
}

/// The name of the other stage that uses the repository.
fn other_stage(fx: &Fixture) -> String {
    format!("{}-other", fx.app)
}

/// Another stage of the app whose function runs the image the stage's
/// alias runs, from the shared repository: `destroy` must keep it.
async fn other_stage_uses_the_repository(admin: SdkConfig, fx: &Fixture) {
    let lambda = aws_sdk_lambda::Client::new(&admin);
    let ours = lambda
        .get_function()
        .function_name(fx.function(STAGE))
        .send()
        .await
        .unwrap();
    let image = ours.code().and_then(|c| c.image_uri()).unwrap().to_string();
    let role = ours
        .configuration()
        .and_then(|c| c.role())
        .unwrap()
        .to_string();
    let create = lambda
        .create_function()
        .function_name(other_stage(fx))
        .package_type(aws_sdk_lambda::types::PackageType::Image)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .image_uri(image)
                .build(),
        )
        .role(role);
    once_ready("CreateFunction", || create.clone().send()).await;
}

/// Another team's REST API, API key and usage plan, made by the
/// administrator and tagged as theirs.
struct OtherTeam {
    api: String,
    key: String,
    plan: String,
}

impl OtherTeam {
    async fn create(admin: &SdkConfig) -> OtherTeam {
        let apigw = aws_sdk_apigateway::Client::new(admin);
        let api = apigw
            .create_rest_api()
            .name("other-team-api")
            .tags("deployer:app", "other-team")
            .send()
            .await
            .unwrap();
        let key = apigw
            .create_api_key()
            .name("other-team-key")
            .enabled(true)
            .tags("deployer:app", "other-team")
            .send()
            .await
            .unwrap();
        let plan = apigw
            .create_usage_plan()
            .name("other-team-plan")
            .tags("deployer:app", "other-team")
            .send()
            .await
            .unwrap();
        OtherTeam {
            api: api.id().unwrap().to_string(),
            key: key.id().unwrap().to_string(),
            plan: plan.id().unwrap().to_string(),
        }
    }

    /// Every call that would read, change or delete them, signed with the
    /// printed policy, is denied; then the administrator finds them as
    /// they were. (TagResource on them is not tried: moto routes `/tags/`
    /// for stages only; moto_ext's own tests show its tag condition.)
    async fn assert_untouched(&self, ci: &SdkConfig, admin: &SdkConfig) {
        let apigw = aws_sdk_apigateway::Client::new(ci);
        let rename = aws_sdk_apigateway::types::PatchOperation::builder()
            .op(aws_sdk_apigateway::types::Op::Replace)
            .path("/name")
            .value("taken")
            .build();
        // Each call and the error it met, if any.
        let denied: Vec<(&str, Option<String>)> = vec![
            (
                "GetRestApi",
                apigw
                    .get_rest_api()
                    .rest_api_id(&self.api)
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))
                    .err(),
            ),
            (
                "UpdateRestApi",
                apigw
                    .update_rest_api()
                    .rest_api_id(&self.api)
                    .patch_operations(rename.clone())
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))
                    .err(),
            ),
            (
                "GetResources",
                apigw
                    .get_resources()
                    .rest_api_id(&self.api)
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))
                    .err(),
            ),
            (
                "DeleteRestApi",
                apigw
                    .delete_rest_api()
                    .rest_api_id(&self.api)
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))
                    .err(),
            ),
            (
                "GetApiKey",
                apigw
                    .get_api_key()
                    .api_key(&self.key)
                    .include_value(true)
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))
                    .err(),
            ),
            (
                "DeleteApiKey",
                apigw
                    .delete_api_key()
                    .api_key(&self.key)
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))
                    .err(),
            ),
            (
                "GetUsagePlan",
                apigw
                    .get_usage_plan()
                    .usage_plan_id(&self.plan)
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))
                    .err(),
            ),
            (
                "UpdateUsagePlan",
                apigw
                    .update_usage_plan()
                    .usage_plan_id(&self.plan)
                    .patch_operations(rename)
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))
                    .err(),
            ),
            (
                "DeleteUsagePlan",
                apigw
                    .delete_usage_plan()
                    .usage_plan_id(&self.plan)
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))
                    .err(),
            ),
        ];
        for (call, err) in denied {
            let err =
                err.unwrap_or_else(|| panic!("{call} on another team's resource was allowed"));
            assert!(
                err.contains("AccessDenied"),
                "{call} failed other than AccessDenied: {err}"
            );
        }
        let apigw = aws_sdk_apigateway::Client::new(admin);
        let api = apigw
            .get_rest_api()
            .rest_api_id(&self.api)
            .send()
            .await
            .unwrap();
        assert_eq!(api.name(), Some("other-team-api"));
        assert_eq!(
            api.tags()
                .and_then(|t| t.get("deployer:app"))
                .map(String::as_str),
            Some("other-team")
        );
        apigw.get_api_key().api_key(&self.key).send().await.unwrap();
        let plan = apigw
            .get_usage_plan()
            .usage_plan_id(&self.plan)
            .send()
            .await
            .unwrap();
        assert_eq!(plan.name(), Some("other-team-plan"));
    }
}

/// The policy `deployer policy` prints for the stage, with no AWS call: its
/// text, as a user of the IAM moto is given it.
fn printed_policy(fx: &Fixture) -> String {
    fx.stdout(&["policy", "--stage", STAGE, "--account", ACCOUNT])
}

/// `policy` without `action` in any statement (a statement left with no
/// action goes).
fn without(policy: &Value, action: &str) -> Value {
    let mut policy = policy.clone();
    let statements = policy["Statement"].as_array_mut().unwrap();
    for s in statements.iter_mut() {
        s["Action"]
            .as_array_mut()
            .unwrap()
            .retain(|a| a.as_str() != Some(action));
    }
    statements.retain(|s| !s["Action"].as_array().unwrap().is_empty());
    policy
}

/// A resource of one statement: (Sid, resource).
type Narrowing = (String, String);

/// Every resource of every statement.
fn resources_of(policy: &Value) -> Vec<Narrowing> {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            let sid = s["Sid"].as_str().unwrap().to_string();
            s["Resource"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |r| (sid.clone(), r.as_str().unwrap().to_string()))
        })
        .collect()
}

/// `policy` with the resource `narrowing` taken out of its statement (a
/// statement left with no resource goes).
fn narrowed(policy: &Value, (sid, resource): &Narrowing) -> Value {
    let mut policy = policy.clone();
    let statements = policy["Statement"].as_array_mut().unwrap();
    for s in statements.iter_mut().filter(|s| s["Sid"] == sid.as_str()) {
        s["Resource"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r.as_str() != Some(resource));
    }
    statements.retain(|s| !s["Resource"].as_array().unwrap().is_empty());
    policy
}

/// IAM's wildcard match: `*` any run of characters, `?` one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether some statement of `policy` names `action` on `resource`
/// (conditions aside: the life met them all).
fn covers(policy: &Value, action: &str, resource: &str) -> bool {
    policy["Statement"].as_array().unwrap().iter().any(|s| {
        let listed = |key: &str, text: &str| {
            s[key]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .any(|p| glob(p, text))
        };
        listed("Action", action) && listed("Resource", resource)
    })
}

/// The stage's life, command by command; stops at the first failure and
/// returns it (the step, its output), or `None` when all succeeded.
fn life(moto: &IamMoto, fx: &Fixture, run: &str) -> Option<(String, Output)> {
    let model_change = format!("retrained for run {run}\n");
    let up = || vec!["up", "--stage", STAGE, "--json", "--yes"];
    // Each life starts from the same settings (an earlier one changed them).
    set_function(
        fx,
        &[
            ("memory", "512"),
            ("reserved-concurrency", "0"),
            ("provisioned-concurrency", "0"),
        ],
    );
    let steps: Vec<(&str, Vec<&str>)> = vec![
        ("plan", vec!["plan", "--stage", STAGE, "--json"]),
        ("up from nothing, breaking a stale lock", up()),
        ("up with nothing changed", up()),
        ("up after a model change", up()),
        ("up after a memory change", up()),
        ("up adding concurrency", up()),
        ("up removing concurrency", up()),
        ("up repairing drift", up()),
        ("status", vec!["status", "--stage", STAGE, "--json"]),
        ("invoke", vec!["invoke", "--stage", STAGE, "--json"]),
        ("logs", vec!["logs", "--stage", STAGE, "--since", "1h"]),
        (
            "metrics",
            vec!["metrics", "--stage", STAGE, "--since", "10m", "--json"],
        ),
        ("rollback", vec!["rollback", "--stage", STAGE, "--json"]),
        (
            "unlock a dead run's lock",
            vec!["unlock", "--stage", STAGE, "--yes", "--json"],
        ),
        (
            "destroy, another stage using the repository",
            vec!["destroy", "--stage", STAGE, "--yes", "--json"],
        ),
    ];
    for (step, args) in steps {
        match step {
            "up from nothing, breaking a stale lock" => moto.as_admin(|a| stale_lock(a, fx)),
            "up after a model change" => {
                std::fs::write(fx.path("models/NOTE.txt"), &model_change).unwrap();
            }
            "up after a memory change" => set_function(fx, &[("memory", "640")]),
            "up adding concurrency" => set_function(
                fx,
                &[
                    ("reserved-concurrency", "2"),
                    ("provisioned-concurrency", "1"),
                ],
            ),
            "up repairing drift" => moto.as_admin(|a| drift(a, fx)),
            "unlock a dead run's lock" => moto.as_admin(|a| async move {
                stale_lock(a.clone(), fx).await;
                // Someone who unlocks has seen the lock: wait until
                // DescribeLogGroups lists it (it may not at once).
                listed(a, &fx.lock_group(STAGE)).await;
            }),
            "up removing concurrency" => set_function(
                fx,
                &[
                    ("reserved-concurrency", "0"),
                    ("provisioned-concurrency", "0"),
                ],
            ),
            "destroy, another stage using the repository" => {
                moto.as_admin(|a| other_stage_uses_the_repository(a, fx))
            }
            _ => {}
        }
        let denied_before = moto.decisions().1.len();
        let out = moto.deployer(fx, &args);
        // A clean-up that cannot tell what is in use keeps everything and
        // warns (it fails closed) while the command succeeds: a denial is
        // the end of the life all the same.
        if !out.status.success() || moto.decisions().1.len() > denied_before {
            return Some((step.to_string(), out));
        }
        match step {
            "up from nothing, breaking a stale lock" => {
                let (_, stderr) = texts(&out);
                assert!(
                    stderr.contains("breaking the stale stage lock held by ci-elsewhere/4242"),
                    "the stale lock was not broken:\n{stderr}"
                );
            }
            "unlock a dead run's lock" => {
                let report = json_of(&out, &args);
                assert_eq!(report["removed"], true, "{report}");
            }
            "up repairing drift" => {
                let args = ["plan", "--stage", STAGE, "--json"];
                let plan = moto.deployer(fx, &args);
                if !plan.status.success() {
                    return Some(("plan after the repair".to_string(), plan));
                }
                let left = changes(&json_of(&plan, &args));
                assert!(left.is_empty(), "`up` left drift behind: {left:?}");
            }
            "destroy, another stage using the repository" => {
                let repository = Stage::defaults(&fx.app, STAGE, &region()).repository_name();
                let kept = moto.as_admin(|a| async move {
                    aws_sdk_ecr::Client::new(&a)
                        .describe_repositories()
                        .repository_names(repository)
                        .send()
                        .await
                        .is_ok()
                });
                assert!(kept, "destroy deleted the repository another stage uses");
            }
            _ => {}
        }
    }
    None
}

/// A seed that differs per run (printed, and taken from
/// `IAM_POLICY_TEST_SEED` to repeat a run).
fn seed() -> u64 {
    std::env::var("IAM_POLICY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// `count` distinct items of `items`, picked with `seed` (xorshift).
fn pick<T: Clone>(items: &[T], count: usize, mut seed: u64) -> Vec<T> {
    let mut pool = items.to_vec();
    let mut picked = Vec::new();
    seed |= 1;
    while picked.len() < count && !pool.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        picked.push(pool.remove((seed % pool.len() as u64) as usize));
    }
    picked
}

/// A count from the environment variable `name`, else `default`.
fn count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// A life on a fresh moto (nothing of the earlier runs exists there) with
/// `policy`, which lacks `missing`: some command must fail with exit 3, and
/// the one denial moto made must be what `denied_ok` accepts and be named
/// in the error.
async fn fails_without(
    fx: &Fixture,
    policy: &Value,
    missing: &str,
    denied_ok: impl Fn(&str, &str) -> bool,
) {
    let moto = IamMoto::start(&policy.to_string()).await;
    aim(fx, &moto.moto.url);
    let Some((step, out)) = life(&moto, fx, missing) else {
        panic!("every command succeeded without {missing}");
    };
    let (stdout, stderr) = texts(&out);
    // Exit 3, or a success whose fail-closed clean-up kept what it could
    // not judge and said why (the denial is named below either way).
    let warned = out.status.success();
    assert!(
        out.status.code() == Some(3) || warned,
        "without {missing}, `{step}` failed other than with exit 3\n\
         stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let (_, denied) = moto.decisions();
    let named = denied.iter().any(|d| {
        let (action, resource) = (
            d["action"].as_str().unwrap(),
            d["resource"].as_str().unwrap(),
        );
        denied_ok(action, resource) && stderr.contains(action)
    });
    assert!(
        named,
        "without {missing}, `{step}` failed without naming it:\n{stderr}\ndenied: {denied:#?}"
    );
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("");
    let error = if warned {
        stderr
            .lines()
            .find(|l| l.contains("AccessDenied"))
            .unwrap_or("")
    } else {
        error
    };
    eprintln!(
        "without {missing}: `{step}` exits {:?}: {error}",
        out.status.code()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_printed_policy_is_enough_and_every_action_and_resource_in_it_is_needed() {
    // The printed policy needs no AWS (--account) and no moto yet.
    let fx = fixture();
    let printed = printed_policy(&fx);
    let policy: Value = serde_json::from_str(&printed).unwrap();

    // Every command succeeds with exactly the policy, and moto denied nothing
    // (a denial some command tolerates would still be a missing action).
    let moto = IamMoto::start(&printed).await;
    aim(&fx, &moto.moto.url);
    assert_eq!(
        printed_policy(&fx),
        printed,
        "the policy depends on the endpoint"
    );
    let other_team = moto.as_admin(|a| async move { OtherTeam::create(&a).await });
    if let Some((step, out)) = life(&moto, &fx, "full") {
        let (stdout, stderr) = texts(&out);
        panic!(
            "`{step}` failed with only the printed policy ({:?})\npolicy: {printed}\n\
             stdout:\n{stdout}\nstderr:\n{stderr}\nmoto's log: {}",
            out.status,
            moto.log()
        );
    }
    let (mut used, denied) = moto.decisions();
    assert!(denied.is_empty(), "moto denied: {denied:#?}");
    let decisions = moto.allowed_decisions();
    // Another team's API, key and usage plan: untouched, and out of reach.
    let ci = moto.user_config().await;
    other_team.assert_untouched(&ci, &moto.admin).await;
    // Allowed whatever the policy says, by AWS as by moto.
    used.remove("sts:GetCallerIdentity");
    let printed_actions: BTreeSet<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().iter())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let unprinted: Vec<&String> = used.difference(&printed_actions).collect();
    assert!(
        unprinted.is_empty(),
        "allowed but not printed: {unprinted:?}"
    );
    let unrepaired: Vec<&str> = REPAIRS.into_iter().filter(|a| !used.contains(*a)).collect();
    assert!(
        unrepaired.is_empty(),
        "the drift was repaired without {unrepaired:?}"
    );
    let unused: Vec<&String> = printed_actions.difference(&used).collect();
    // Declared for paths this life does not take (image deletion beyond
    // keep-tagged, the registry push Docker does): shown, not failed.
    eprintln!("actions the life did not use: {unused:?}");
    // Every resource is needed: without it, some request of the life is
    // named by no statement.
    let resources = resources_of(&policy);
    let needless: Vec<&Narrowing> = resources
        .iter()
        .filter(|n| {
            let narrower = narrowed(&policy, n);
            decisions.iter().all(|(a, r)| covers(&narrower, a, r))
        })
        .collect();
    assert!(
        needless.is_empty(),
        "resources the life did not need: {needless:?}"
    );
    drop(moto);

    // One action fewer, or one resource, chosen at random among those the
    // life used: some command fails with exit 3 and names it.
    let used: Vec<String> = used.into_iter().collect();
    let seed = seed();
    let mut removed = pick(&used, count("IAM_POLICY_TEST_REMOVALS", REMOVALS), seed);
    // Served by the extension's own routes, not moto's dispatcher (or only
    // translated), or checked by the extension alone (iam:PassRole):
    // checked all the same (iam_auth), so they are removed every time.
    for own_route in [
        "lambda:GetProvisionedConcurrencyConfig",
        "cloudwatch:GetMetricData",
        "iam:PassRole",
    ] {
        let own_route = own_route.to_string();
        assert!(used.contains(&own_route), "{own_route} was not checked");
        if !removed.contains(&own_route) {
            removed.push(own_route);
        }
    }
    let narrowings = pick(
        &resources,
        count("IAM_POLICY_TEST_NARROWINGS", NARROWINGS),
        seed,
    );
    eprintln!(
        "removing, one per run: {removed:?} and the resources {narrowings:?} \
         (IAM_POLICY_TEST_SEED={seed})"
    );
    for action in removed {
        fails_without(&fx, &without(&policy, &action), &action, |a, _| a == action).await;
    }
    for narrowing in narrowings {
        let (sid, resource) = &narrowing;
        let narrower = narrowed(&policy, &narrowing);
        let missing = format!("{resource} in {sid}");
        fails_without(&fx, &narrower, &missing, |a, r| {
            glob(resource, r) && !covers(&narrower, a, r)
        })
        .await;
    }
}

/// What parliament finds above LOW in `policy` (its JSON lines), or
/// nothing.
fn parliament_findings(policy: &str) -> String {
    let parliament = workspace_root().join(".venv/bin/parliament");
    assert!(
        parliament.exists(),
        "{} is missing: run scripts/local-cloud up (it installs parliament)",
        parliament.display()
    );
    // On stdin: parliament refuses --file when stdin is not a terminal.
    let mut child = Command::new(&parliament)
        .args(["--json", "--minimum_severity", "MEDIUM"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(policy.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = texts(&out);
    // It exits 1 when it found something, and says so on stdout.
    assert!(
        out.status.success() || !stdout.trim().is_empty(),
        "parliament failed ({:?}): {stderr}",
        out.status
    );
    stdout.trim().to_string()
}

#[test]
fn parliament_finds_nothing_above_low_in_the_printed_policy() {
    let fx = fixture();
    for stage in ["prod", STAGE] {
        let policy = fx.stdout(&["policy", "--stage", stage, "--account", ACCOUNT]);
        let findings = parliament_findings(&policy);
        assert!(
            findings.is_empty(),
            "parliament found something above LOW in the {stage} policy:\n{findings}\n\
             policy:\n{policy}"
        );
    }
    // It does find what the old hand-written policy got wrong: an action
    // AWS authorizes only on `*`, scoped to the app's functions.
    let mut scoped: Value =
        serde_json::from_str(&fx.stdout(&["policy", "--stage", "prod", "--account", ACCOUNT]))
            .unwrap();
    for s in scoped["Statement"].as_array_mut().unwrap() {
        if s["Resource"] == json!(["*"]) {
            s["Resource"] = json!(["arn:aws:lambda:us-east-1:123456789012:function:pde-predict-*"]);
        }
    }
    let findings = parliament_findings(&scoped.to_string());
    assert!(findings.contains("lambda:ListFunctions"), "{findings}");
}

#[test]
fn the_account_comes_from_the_credentials_and_all_stages_leave_emulators_out() {
    let fx = fixture();
    // The local stage's moto answers GetCallerIdentity with its account.
    let local = fx.json(&["policy", "--stage", "local", "--json"]);
    let role = format!("arn:aws:iam::{ACCOUNT}:role/{}-local-exec", fx.app);
    assert!(local.to_string().contains(&role), "{local:#}");

    // Every stage without an endpoint-url: dev and prod, and the previews'
    // pattern (its stages' names), not local or iam.
    let all = fx.json(&["policy", "--all-stages", "--account", ACCOUNT, "--json"]);
    let roles: Vec<&str> = all["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "IamExecutionRole")
        .and_then(|s| s["Resource"].as_array())
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let expected: Vec<String> = ["dev", "pr-*", "prod"]
        .iter()
        .map(|stage| format!("arn:aws:iam::{ACCOUNT}:role/{}-{stage}-exec", fx.app))
        .collect();
    assert_eq!(roles, expected, "{all:#}");

    // A bad account is a usage error.
    let out = fx.deployer(&["policy", "--account", "12345"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", texts(&out));
    // So is naming one stage and all of them.
    let out = fx.deployer(&["policy", "--all-stages", "--stage", "prod"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", texts(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--all-stages and --stage"),
        "{:?}",
        texts(&out)
    );
}
