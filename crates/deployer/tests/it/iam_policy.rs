//! `deployer policy` proven sufficient, and every action in it needed by
//! some command: the real binary runs a stage's whole life (`plan`, `up`
//! from nothing, a no-op `up`, a model change, a memory change, reserved
//! and provisioned concurrency added and removed, drift repaired, `status`,
//! `invoke`, `logs`, `metrics`, `rollback`, `destroy`) against a second
//! moto that enforces IAM, signed as an IAM user of that moto whose only
//! policy is the printed one (the drift is made by a second user, an
//! administrator, and its calls are not counted as the deployer's); then
//! again with one action removed, which must make a command fail with exit
//! 3 and an error naming that action. And `parliament` finds nothing above
//! LOW in the printed policy.
//!
//! What moto checks (moto 5.1.22, `moto/iam/access_control.py`, with
//! `scripts/moto_ext/iam_auth.py`): the action of every request, named as
//! AWS names it; for API Gateway also the resource (the request's path, as
//! AWS authorizes API Gateway's control plane), and for iam:PassRole, which
//! CreateFunction and UpdateFunctionConfiguration need, the role passed;
//! for the other services moto matches the policy's resources against `*`
//! only, so the test gives moto their statements with the same actions on
//! `*`. moto evaluates no conditions for these calls, so the conditions are
//! left out of what moto gets; they are checked by the unit tests of
//! `aws::permissions` and by parliament. The push to the registry
//! is Docker's, not IAM-checked locally; GetAuthorizationToken is. The
//! calls the extension serves itself (provisioned concurrency) or hands
//! to moto translated (CloudWatch's CBOR) are checked as moto checks the
//! others.

use std::collections::BTreeSet;
use std::io::Write;
use std::ops::Range;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use deployer::config::Stage;
use deployer::names::Names;
use serde_json::{Value, json};

use crate::util::fixture::{Fixture, changes, json_of, set_in_table, texts};
use crate::util::own_moto::OwnMoto;
use crate::util::*;

/// The stage the test deploys: a copy of `local` aimed at the IAM moto,
/// with credentials from the environment.
const STAGE: &str = "iam";
/// moto serves this many requests unauthenticated: for the deployer's user
/// and for the administrator who makes the drift, the user, its access key
/// and its policy; every later request is checked.
const BOOTSTRAP_CALLS: u32 = 6;
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
const REMOVALS: usize = 3;

/// A moto of its own that enforces IAM after [`BOOTSTRAP_CALLS`], with the
/// user the test signs as.
struct IamMoto {
    moto: OwnMoto,
    key_id: String,
    secret: String,
    /// Signed as the administrator, who may do anything.
    admin: SdkConfig,
    /// The administrator's decisions: ranges of the allowed list that are
    /// not the deployer's.
    not_ours: Mutex<Vec<Range<usize>>>,
}

impl IamMoto {
    /// Starts it and creates the user with `policy` as its only policy.
    async fn start(policy: &Value) -> IamMoto {
        let calls = BOOTSTRAP_CALLS.to_string();
        let moto = OwnMoto::start("iam", &[("INITIAL_NO_AUTH_ACTION_COUNT", &calls)]);
        let config = moto.sdk_config_as("bootstrap", "bootstrap").await;
        let iam = aws_sdk_iam::Client::new(&config);
        // The only unauthenticated calls: exactly BOOTSTRAP_CALLS of them.
        let everything = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"}
        ]});
        let mut keys = Vec::new();
        for (user, policy) in [("ci", policy), ("admin", &everything)] {
            iam.create_user().user_name(user).send().await.unwrap();
            let key = iam
                .create_access_key()
                .user_name(user)
                .send()
                .await
                .unwrap();
            let key = key.access_key().unwrap();
            iam.put_user_policy()
                .user_name(user)
                .policy_name("deployer")
                .policy_document(policy.to_string())
                .send()
                .await
                .unwrap();
            keys.push((
                key.access_key_id().to_string(),
                key.secret_access_key().to_string(),
            ));
        }
        let (admin_id, admin_secret) = keys.pop().unwrap();
        let (key_id, secret) = keys.pop().unwrap();
        let admin = moto.sdk_config_as(&admin_id, &admin_secret).await;
        IamMoto {
            moto,
            key_id,
            secret,
            admin,
            not_ours: Mutex::new(Vec::new()),
        }
    }

    fn log(&self) -> String {
        self.moto.log()
    }

    /// `deployer ARGS` in `fx`, signed as the user.
    fn deployer(&self, fx: &Fixture, args: &[&str]) -> Output {
        fx.command(args)
            .env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_ENDPOINT_URL", &self.moto.url)
            .output()
            .unwrap()
    }

    /// moto's record of its IAM decisions: `{"allowed": [...], "denied": [...]}`.
    fn recorded(&self) -> Value {
        call_url("GET", &format!("{}/_local-aws/iam", self.moto.url), &[]).json()
    }

    /// The actions moto allowed the deployer and denied so far.
    fn decisions(&self) -> (BTreeSet<String>, Vec<Value>) {
        let answer = self.recorded();
        let not_ours = self.not_ours.lock().unwrap();
        let allowed = answer["allowed"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(i, _)| !not_ours.iter().any(|r| r.contains(i)))
            .filter_map(|(_, d)| d["action"].as_str().map(str::to_string))
            .collect();
        (allowed, answer["denied"].as_array().unwrap().clone())
    }

    /// How many decisions moto allowed so far.
    fn allowed_count(&self) -> usize {
        self.recorded()["allowed"].as_array().map_or(0, Vec::len)
    }

    /// Makes [`drift`] as the administrator, its decisions set apart.
    fn drift(&self, fx: &Fixture) {
        let start = self.allowed_count();
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(drift(&self.admin, fx))
        });
        let end = self.allowed_count();
        self.not_ours.lock().unwrap().push(start..end);
    }
}

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
/// the repository, the function and its log group; the repository's scan
/// on push and tag mutability.
async fn drift(admin: &SdkConfig, fx: &Fixture) {
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
}

/// The policy `deployer policy` prints for the stage, with no AWS call.
fn printed_policy(fx: &Fixture) -> Value {
    fx.json(&["policy", "--stage", STAGE, "--account", ACCOUNT, "--json"])
}

/// The printed policy as moto can check it (see the module's doc):
/// API Gateway's and iam:PassRole's statements as printed, the others on
/// `*`, no conditions.
fn as_moto_checks(policy: &Value) -> Value {
    let statements: Vec<Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let resource_checked = s["Action"].as_array().unwrap().iter().all(|a| {
                a.as_str()
                    .is_some_and(|a| a.starts_with("apigateway:") || a == "iam:PassRole")
            });
            json!({
                "Sid": s["Sid"],
                "Effect": s["Effect"],
                "Action": s["Action"],
                "Resource": if resource_checked { s["Resource"].clone() } else { json!("*") },
            })
        })
        .collect();
    json!({"Version": policy["Version"], "Statement": statements})
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
        ("up from nothing", up()),
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
            "destroy",
            vec!["destroy", "--stage", STAGE, "--yes", "--json"],
        ),
    ];
    for (step, args) in steps {
        match step {
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
            "up repairing drift" => moto.drift(fx),
            "up removing concurrency" => set_function(
                fx,
                &[
                    ("reserved-concurrency", "0"),
                    ("provisioned-concurrency", "0"),
                ],
            ),
            _ => {}
        }
        let out = moto.deployer(fx, &args);
        if !out.status.success() {
            return Some((step.to_string(), out));
        }
        if step == "up repairing drift" {
            let args = ["plan", "--stage", STAGE, "--json"];
            let plan = moto.deployer(fx, &args);
            if !plan.status.success() {
                return Some(("plan after the repair".to_string(), plan));
            }
            let left = changes(&json_of(&plan, &args));
            assert!(left.is_empty(), "`up` left drift behind: {left:?}");
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
fn pick(items: &[String], count: usize, mut seed: u64) -> Vec<String> {
    let mut pool = items.to_vec();
    let mut picked = Vec::new();
    while picked.len() < count && !pool.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        picked.push(pool.remove((seed % pool.len() as u64) as usize));
    }
    picked
}

#[tokio::test(flavor = "multi_thread")]
async fn the_printed_policy_is_enough_and_every_action_in_it_is_needed() {
    // The printed policy needs no AWS (--account) and no moto yet.
    let fx = fixture();
    let printed = printed_policy(&fx);
    let policy = as_moto_checks(&printed);

    // Every command succeeds with exactly the policy, and moto denied nothing
    // (a denial some command tolerates would still be a missing action).
    let moto = IamMoto::start(&policy).await;
    aim(&fx, &moto.moto.url);
    assert_eq!(
        printed_policy(&fx),
        printed,
        "the policy depends on the endpoint"
    );
    if let Some((step, out)) = life(&moto, &fx, "full") {
        let (stdout, stderr) = texts(&out);
        panic!(
            "`{step}` failed with only the printed policy ({:?})\npolicy: {policy:#}\n\
             stdout:\n{stdout}\nstderr:\n{stderr}\nmoto's log: {}",
            out.status,
            moto.log()
        );
    }
    let (mut used, denied) = moto.decisions();
    assert!(denied.is_empty(), "moto denied: {denied:#?}");
    // Allowed whatever the policy says, by AWS as by moto.
    used.remove("sts:GetCallerIdentity");
    let printed_actions: BTreeSet<String> = printed["Statement"]
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
    drop(moto);

    // One action fewer, chosen at random among those the life used: some
    // command fails with exit 3 and names it.
    let used: Vec<String> = used.into_iter().collect();
    let seed = seed();
    let removals = std::env::var("IAM_POLICY_TEST_REMOVALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(REMOVALS);
    let mut removed = pick(&used, removals, seed);
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
    eprintln!("removing, one per run: {removed:?} (IAM_POLICY_TEST_SEED={seed})");
    for action in removed {
        // A fresh moto: nothing of the earlier runs exists there.
        let moto = IamMoto::start(&without(&policy, &action)).await;
        aim(&fx, &moto.moto.url);
        let Some((step, out)) = life(&moto, &fx, &action) else {
            panic!("every command succeeded without {action}");
        };
        let (stdout, stderr) = texts(&out);
        assert_eq!(
            out.status.code(),
            Some(3),
            "without {action}, `{step}` failed other than with exit 3\n\
             stdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(
            stderr.contains(&action),
            "without {action}, `{step}` failed without naming it:\n{stderr}"
        );
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or("");
        eprintln!("without {action}: `{step}` exits 3: {error}");
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

    // Every stage without an endpoint-url: dev and prod, not local or iam.
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
    let expected: Vec<String> = ["dev", "prod"]
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
