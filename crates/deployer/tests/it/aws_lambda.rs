//! The function steps against the local AWS (moto): create then leave
//! alone, a memory change updates only the configuration, versions are
//! published only when needed and the alias follows, the permission's
//! source ARN is replaced when it differs, an invoke that Lambda refuses is
//! an AWS error naming the alias, missing things read as `None`, delete is
//! idempotent; tags read with ListTags, only the app's own functions looked
//! at, and every image a version of the app still uses found.
//! Against the strict local AWS: a missing function has no versions (AWS
//! answers 404), a traced function waits for its role's X-Ray permission
//! to propagate, and a new version is invoked only once `Active`.
//!
//! The image URIs here are well-formed digests of images that need not
//! exist (nothing here runs them; real invocations are in tests/it/invoke.rs).

use std::collections::BTreeSet;

use deployer::aws::iam::{self, DesiredRole};
use deployer::aws::lambda::{self, DesiredFunction};
use deployer::aws::{Clients, Outcome};
use deployer::config::Stage;
use deployer::plan::Action;

use crate::util;
use crate::util::up_path;

/// A stage and its role for the function steps, called through the library
/// (not the `deployer` binary, so not `util::fixture::Fixture`).
pub(crate) struct Fixture {
    pub(crate) clients: Clients,
    pub(crate) stage: Stage,
    pub(crate) role_arn: String,
    _dump: util::DumpOnFailure,
}

pub(crate) async fn fixture(prefix: &str) -> Fixture {
    util::require_local_cloud();
    let clients = Clients::new(&util::sdk_config().await);
    let app = util::unique_name(prefix);
    let stage = Stage::defaults(&app, "dev", &util::region());
    let (_, role_arn) = up_path::role(&clients.iam, &DesiredRole::for_stage(&stage))
        .await
        .unwrap();
    Fixture {
        clients,
        role_arn,
        _dump: util::DumpOnFailure::new(&app),
        stage,
    }
}

impl Fixture {
    pub(crate) fn image(&self, content: &str) -> String {
        let digest = format!("sha256:{}", hex_of(content));
        format!("{}/{}@{digest}", util::registry_host(), self.stage.app)
    }

    pub(crate) fn desired(&self, content: &str) -> DesiredFunction {
        DesiredFunction::for_stage(&self.stage, &self.image(content), &self.role_arn)
    }

    /// The function from `content`, a version of it, and the alias on that
    /// version: what the permission and invoke steps need to exist.
    pub(crate) async fn deploy_behind_alias(&self, content: &str) {
        let client = &self.clients.lambda;
        let name = self.stage.function_name();
        up_path::function(client, &self.desired(content))
            .await
            .unwrap();
        let (_, version) = lambda::publish_version(client, &name, true).await.unwrap();
        // As `up` does: a new version is Pending until Lambda has it ready.
        lambda::wait_until_ready(client, &name, Some(&version))
            .await
            .unwrap();
        lambda::ensure_alias(client, &name, &self.stage.alias_name(), &version)
            .await
            .unwrap();
    }

    pub(crate) async fn clean_up(&self) {
        lambda::delete_function(&self.clients.lambda, &self.stage.function_name())
            .await
            .unwrap();
        iam::delete_role(&self.clients.iam, &self.stage.role_name())
            .await
            .unwrap();
    }
}

/// 64 hex digits that depend on `content`, like a real digest.
fn hex_of(content: &str) -> String {
    use std::hash::{Hash, Hasher};
    (0..4u8)
        .map(|i| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (content, i).hash(&mut hasher);
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

#[tokio::test]
async fn function_is_created_then_unchanged_and_a_memory_change_updates_only_configuration() {
    let f = fixture("lambda-fn").await;
    let client = &f.clients.lambda;
    let desired = f.desired("one");
    let name = desired.name.clone();
    assert_eq!(
        lambda::read_function(client, &name, None).await.unwrap(),
        None
    );

    let (first, created) = up_path::function(client, &desired).await.unwrap();
    assert_eq!(first, Outcome::Created);
    assert!(
        created.arn.ends_with(&format!(":function:{name}")),
        "{}",
        created.arn
    );
    let (second, _) = up_path::function(client, &desired).await.unwrap();
    assert_eq!(second, Outcome::Unchanged);

    // What Lambda itself reports.
    let answer = client
        .get_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.code().unwrap().image_uri(),
        Some(desired.image_uri.as_str())
    );
    let config = answer.configuration().unwrap();
    assert_eq!(config.memory_size(), Some(desired.memory_mb));
    assert_eq!(config.timeout(), Some(desired.timeout_s));
    assert_eq!(
        config
            .tracing_config()
            .and_then(|t| t.mode())
            .map(|m| m.as_str()),
        Some("Active")
    );
    assert_eq!(config.package_type().map(|p| p.as_str()), Some("Image"));

    let mut bigger = desired.clone();
    bigger.memory_mb += 512;
    let before = lambda::read_function(client, &name, None).await.unwrap();
    assert_eq!(
        lambda::diff_function(&bigger, before.as_ref()),
        Action::Update(BTreeSet::from([lambda::FunctionField::Memory]))
    );
    let (outcome, after) = up_path::function(client, &bigger).await.unwrap();
    assert_eq!(outcome, Outcome::Updated);
    assert_eq!(after.memory_mb, bigger.memory_mb);
    assert_eq!(after.image_uri, desired.image_uri);
    assert_eq!(
        lambda::diff_function(&bigger, Some(&after)),
        Action::Unchanged
    );

    f.clean_up().await;
    assert!(!lambda::delete_function(client, &name).await.unwrap());
}

#[tokio::test]
async fn versions_are_published_only_when_needed_and_the_alias_follows() {
    let f = fixture("lambda-alias").await;
    let client = &f.clients.lambda;
    let name = f.stage.function_name();
    let alias = f.stage.alias_name();
    assert_eq!(
        lambda::read_alias(client, &name, &alias).await.unwrap(),
        None
    );

    let (created, _) = up_path::function(client, &f.desired("one")).await.unwrap();
    let (published, first) = lambda::publish_version(client, &name, created != Outcome::Unchanged)
        .await
        .unwrap();
    assert_eq!(published, Outcome::Created);
    let (outcome, alias_info) = lambda::ensure_alias(client, &name, &alias, &first)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Created);
    assert_eq!(alias_info.version, first);
    assert!(
        alias_info.arn.ends_with(&format!(":{name}:{alias}")),
        "{}",
        alias_info.arn
    );

    // Nothing changed: no new version, the alias stays.
    let (again, same) = lambda::publish_version(client, &name, false).await.unwrap();
    assert_eq!((again, same.as_str()), (Outcome::Unchanged, first.as_str()));
    let (outcome, _) = lambda::ensure_alias(client, &name, &alias, &first)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Unchanged);

    // A new image: a new version, the alias moves to it.
    let (updated, _) = up_path::function(client, &f.desired("two")).await.unwrap();
    assert_eq!(updated, Outcome::Updated);
    let (published, second) = lambda::publish_version(client, &name, true).await.unwrap();
    assert_eq!(published, Outcome::Created);
    assert_ne!(second, first);
    let (outcome, moved) = lambda::ensure_alias(client, &name, &alias, &second)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Updated);
    assert_eq!(
        lambda::read_alias(client, &name, &alias).await.unwrap(),
        Some(moved)
    );
    let versions: Vec<String> = lambda::list_versions(client, &name)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, vec![first, second]);

    f.clean_up().await;
}

#[tokio::test]
async fn a_missing_function_has_no_versions() {
    util::require_strict_local_aws();
    let clients = Clients::new(&util::sdk_config().await);
    let name = util::unique_name("lambda-none");
    // AWS answers ListVersionsByFunction of a missing function with 404
    // ResourceNotFoundException, which the survey of a new stage meets.
    assert_eq!(
        lambda::list_versions(&clients.lambda, &name).await.unwrap(),
        Vec::new()
    );
    assert_eq!(
        lambda::version_matching_latest(&clients.lambda, &name)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn turning_tracing_on_waits_for_the_xray_permission_to_propagate() {
    util::require_strict_local_aws();
    let clients = Clients::new(&util::sdk_config().await);
    let app = util::unique_name("lambda-xray");
    let mut stage = Stage::defaults(&app, "dev", &util::region());
    let _dump = util::DumpOnFailure::new(&app);
    stage.function.tracing = false;
    let (_, role_arn) = up_path::role(&clients.iam, &DesiredRole::for_stage(&stage))
        .await
        .unwrap();
    let image = format!("{}/{app}@sha256:{}", util::registry_host(), hex_of("xray"));
    let untraced = DesiredFunction::for_stage(&stage, &image, &role_arn);
    // Created once Lambda may assume the new role.
    up_path::function(&clients.lambda, &untraced).await.unwrap();

    // Tracing on: the role, old enough now, gets AWSXRayDaemonWriteAccess
    // just now, and Lambda refuses Active tracing until that has
    // propagated — on the update of the existing function and on the
    // create of another one alike.
    stage.function.tracing = true;
    up_path::role(&clients.iam, &DesiredRole::for_stage(&stage))
        .await
        .unwrap();
    let traced = DesiredFunction::for_stage(&stage, &image, &role_arn);
    let mut other = traced.clone();
    other.name = format!("{}-other", traced.name);
    let (updated, created) = tokio::join!(
        up_path::function(&clients.lambda, &traced),
        up_path::function(&clients.lambda, &other),
    );
    let (updated, after) = updated.unwrap();
    assert_eq!(updated, Outcome::Updated);
    assert!(after.tracing, "tracing is not Active after the update");
    let (created, made) = created.unwrap();
    assert_eq!(created, Outcome::Created);
    assert!(made.tracing, "the new function is not traced");

    for name in [&traced.name, &other.name] {
        lambda::delete_function(&clients.lambda, name)
            .await
            .unwrap();
    }
    iam::delete_role(&clients.iam, &stage.role_name())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_new_version_is_invoked_once_it_is_active() {
    util::require_strict_local_aws();
    let f = fixture("lambda-pending").await;
    let client = &f.clients.lambda;
    let name = f.stage.function_name();
    up_path::function(client, &f.desired("one")).await.unwrap();
    let (_, version) = lambda::publish_version(client, &name, true).await.unwrap();
    // Right after PublishVersion the version is Pending: AWS refuses to
    // invoke it (what `up`'s smoke test met before it waited).
    let refused = client
        .invoke()
        .function_name(&name)
        .qualifier(&version)
        .payload(aws_sdk_lambda::primitives::Blob::new("{}"))
        .send()
        .await
        .expect_err("a Pending version was invoked");
    let refused = format!("{:?}", refused.into_service_error());
    assert!(refused.contains("Pending"), "{refused}");
    // `invoke` waits until it is Active and asks again. The local AWS then
    // tries to run the image, which this test never pushed (a conflict of
    // its own, not the state's).
    let answer = lambda::invoke(client, &name, Some(&version), b"{}").await;
    if let Err(err) = answer {
        assert!(!err.message.contains("Pending"), "{err}");
    }
    lambda::wait_until_ready(client, &name, Some(&version))
        .await
        .unwrap();

    f.clean_up().await;
}

#[tokio::test]
async fn permission_is_added_once_and_replaced_when_the_source_differs() {
    let f = fixture("lambda-perm").await;
    let client = &f.clients.lambda;
    let name = f.stage.function_name();
    let alias = f.stage.alias_name();
    f.deploy_behind_alias("one").await;
    let sid = "apigateway-invoke";
    let api = |id: &str| {
        format!(
            "arn:aws:execute-api:{}:{}:{id}/*/*/predict",
            util::region(),
            util::ACCOUNT
        )
    };
    assert_eq!(
        lambda::read_permission(client, &name, &alias, sid)
            .await
            .unwrap(),
        None
    );

    let outcome = up_path::permission(client, &name, &alias, sid, &api("aaa"))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Created);
    let outcome = up_path::permission(client, &name, &alias, sid, &api("aaa"))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Unchanged);
    let statement = lambda::read_permission(client, &name, &alias, sid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(statement.principal, "apigateway.amazonaws.com");
    assert_eq!(statement.source_arn, Some(api("aaa")));

    let outcome = up_path::permission(client, &name, &alias, sid, &api("bbb"))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Updated);
    let statement = lambda::read_permission(client, &name, &alias, sid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(statement.source_arn, Some(api("bbb")));

    f.clean_up().await;
}

#[tokio::test]
async fn an_invoke_lambda_refuses_is_an_aws_error_naming_the_alias() {
    let f = fixture("lambda-invoke").await;
    let client = &f.clients.lambda;
    let name = f.stage.function_name();
    let alias = f.stage.alias_name();
    f.deploy_behind_alias("one").await;

    // The local AWS cannot run an image the registry does not hold; it
    // answers 409, as Lambda does for a function it could not set up.
    let err = lambda::invoke(client, &name, Some(&alias), br#"{"httpMethod":"GET"}"#)
        .await
        .unwrap_err();
    assert_eq!(err.operation, "Invoke");
    assert_eq!(err.resource, format!("{name}:{alias}"));
    assert_eq!(err.kind, deployer::aws::ErrorKind::Conflict, "{err:?}");

    f.clean_up().await;
    assert_eq!(
        lambda::read_function(client, &name, None).await.unwrap(),
        None
    );
    assert_eq!(
        lambda::read_alias(client, &name, &alias).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn create_waits_for_a_role_that_appears_later() {
    util::require_local_cloud();
    let clients = Clients::new(&util::sdk_config().await);
    let app = util::unique_name("lambda-late-role");
    let stage = Stage::defaults(&app, "dev", &util::region());
    let _dump = util::DumpOnFailure::new(&app);
    let role = DesiredRole::for_stage(&stage);
    // moto refuses a role it does not know with the same error Lambda
    // gives while IAM propagates a new one.
    let role_arn = format!("arn:aws:iam::{}:role/{}", util::ACCOUNT, role.name);
    let image = format!("{}/{app}@sha256:{}", util::registry_host(), hex_of("late"));
    let desired = DesiredFunction::for_stage(&stage, &image, &role_arn);

    let iam_client = clients.iam.clone();
    let late_role = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        up_path::role(&iam_client, &role).await.unwrap()
    });
    let started = std::time::Instant::now();
    let (outcome, function) = up_path::function(&clients.lambda, &desired).await.unwrap();
    assert_eq!(outcome, Outcome::Created);
    assert_eq!(function.role_arn, role_arn);
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    late_role.await.unwrap();

    lambda::delete_function(&clients.lambda, &stage.function_name())
        .await
        .unwrap();
    iam::delete_role(&clients.iam, &stage.role_name())
        .await
        .unwrap();
}
