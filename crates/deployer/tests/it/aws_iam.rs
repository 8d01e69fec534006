//! The execution role against the local AWS (moto): created once with
//! Lambda's trust and exactly the wanted managed policies, then left
//! alone; drift (an extra policy, an inline policy, tracing switched off)
//! is repaired; delete is idempotent.

use std::collections::BTreeSet;

use deployer::aws::Outcome;
use deployer::aws::iam::{self, DesiredRole};
use deployer::config::Stage;
use deployer::plan::Action;

use crate::util;
use crate::util::up_path;

const BASIC: &str = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
const XRAY: &str = "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess";
const EXTRA: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";

async fn client() -> aws_sdk_iam::Client {
    util::require_local_cloud();
    aws_sdk_iam::Client::new(&util::sdk_config().await)
}

fn set(arns: &[&str]) -> BTreeSet<String> {
    arns.iter().map(|a| a.to_string()).collect()
}

#[tokio::test]
async fn role_is_created_with_lambda_trust_and_exact_policies_then_left_alone() {
    let client = client().await;
    let app = util::unique_name("iam-role");
    let stage = Stage::defaults(&app, "dev", &util::region());
    let _dump = util::DumpOnFailure::new(&app);
    let desired = DesiredRole::for_stage(&stage);

    assert_eq!(iam::read_role(&client, &desired.name).await.unwrap(), None);
    let (first, arn) = up_path::role(&client, &desired).await.unwrap();
    assert_eq!(first, Outcome::Created);
    assert!(arn.ends_with(&format!(":role/{app}-dev-exec")), "{arn}");
    let (second, again) = up_path::role(&client, &desired).await.unwrap();
    assert_eq!(second, Outcome::Unchanged);
    assert_eq!(again, arn);

    let actual = iam::read_role(&client, &desired.name)
        .await
        .unwrap()
        .unwrap();
    let trust = &actual.trust_policy["Statement"][0];
    assert_eq!(trust["Principal"]["Service"], "lambda.amazonaws.com");
    assert_eq!(trust["Action"], "sts:AssumeRole");
    assert_eq!(actual.managed_policies, set(&[BASIC, XRAY]));
    assert!(actual.inline_policies.is_empty());
    assert_eq!(
        actual.tags.get("deployer:stage").map(String::as_str),
        Some("dev")
    );
    assert_eq!(actual.tags.get("deployer:app"), Some(&app));

    // Cross-check with IAM directly.
    let attached = client
        .list_attached_role_policies()
        .role_name(&desired.name)
        .send()
        .await
        .unwrap();
    let attached: BTreeSet<String> = attached
        .attached_policies()
        .iter()
        .map(|p| p.policy_arn().unwrap().to_string())
        .collect();
    assert_eq!(attached, set(&[BASIC, XRAY]));

    assert!(iam::delete_role(&client, &desired.name).await.unwrap());
    assert!(!iam::delete_role(&client, &desired.name).await.unwrap());
    assert_eq!(iam::read_role(&client, &desired.name).await.unwrap(), None);
}

#[tokio::test]
async fn extra_and_inline_policies_are_removed_and_tracing_off_detaches_xray() {
    let client = client().await;
    let app = util::unique_name("iam-drift");
    let mut stage = Stage::defaults(&app, "dev", &util::region());
    let _dump = util::DumpOnFailure::new(&app);
    let desired = DesiredRole::for_stage(&stage);
    up_path::role(&client, &desired).await.unwrap();

    client
        .attach_role_policy()
        .role_name(&desired.name)
        .policy_arn(EXTRA)
        .send()
        .await
        .unwrap();
    client
        .put_role_policy()
        .role_name(&desired.name)
        .policy_name("hand-made")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    // IAM may not show a role just created yet: wait as a client would.
    let drifted = util::eventually("the new role", || async {
        iam::read_role(&client, &desired.name).await.unwrap()
    })
    .await;
    assert_eq!(
        iam::diff_role(&desired, Some(&drifted)),
        Action::Update(BTreeSet::from([
            iam::RoleField::ManagedPolicies,
            iam::RoleField::InlinePolicies
        ]))
    );

    let (repaired, _) = up_path::role(&client, &desired).await.unwrap();
    assert_eq!(repaired, Outcome::Updated);
    let actual = iam::read_role(&client, &desired.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(actual.managed_policies, set(&[BASIC, XRAY]));
    assert!(
        actual.inline_policies.is_empty(),
        "{:?}",
        actual.inline_policies
    );

    stage.function.tracing = false;
    let untraced = DesiredRole::for_stage(&stage);
    let (outcome, _) = up_path::role(&client, &untraced).await.unwrap();
    assert_eq!(outcome, Outcome::Updated);
    let actual = iam::read_role(&client, &desired.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(actual.managed_policies, set(&[BASIC]));

    iam::delete_role(&client, &desired.name).await.unwrap();
}
