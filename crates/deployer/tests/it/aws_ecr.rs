//! The ECR steps against the local AWS (moto): the repository converges
//! and is left alone once right, the lifecycle policy round-trips, the
//! repository policy lets Lambda pull and keeps others' statements, old
//! images go (from the registry too) unless in use, pushed images are found
//! by tag under the registry's digest, the login names the registry, delete is
//! idempotent, and missing credentials are classified as such.

use std::collections::BTreeSet;

use aws_sdk_ecr::types::ImageTagMutability;
use deployer::aws::ecr::{self, DesiredRepository};
use deployer::aws::{ErrorKind, Outcome};
use deployer::config::Stage;

use crate::util;
use crate::util::registry::{push_small_image, registry_holds};
use crate::util::up_path;

async fn client() -> aws_sdk_ecr::Client {
    util::require_local_cloud();
    aws_sdk_ecr::Client::new(&util::sdk_config().await)
}

fn stage(app: &str) -> Stage {
    Stage::defaults(app, "dev", &util::region())
}

#[tokio::test]
async fn repository_is_created_once_then_left_alone_and_repaired() {
    let client = client().await;
    let app = util::unique_name("ecr-repo");
    let _dump = util::DumpOnFailure::new(&app);
    let desired = DesiredRepository::for_stage(&stage(&app));

    let (first, repository) = up_path::repository(&client, &desired).await.unwrap();
    assert_eq!(first, Outcome::Created);
    assert!(
        repository.uri.ends_with(&format!("/{app}")),
        "{}",
        repository.uri
    );
    let (second, _) = up_path::repository(&client, &desired).await.unwrap();
    assert_eq!(second, Outcome::Unchanged);

    // What ECR itself says, not what the apply returned.
    let described = client
        .describe_repositories()
        .repository_names(&app)
        .send()
        .await
        .unwrap();
    let actual = &described.repositories()[0];
    assert_eq!(
        actual.image_tag_mutability(),
        Some(&ImageTagMutability::Immutable)
    );
    assert!(
        actual
            .image_scanning_configuration()
            .unwrap()
            .scan_on_push()
    );
    let tags = client
        .list_tags_for_resource()
        .resource_arn(actual.repository_arn().unwrap())
        .send()
        .await
        .unwrap();
    let tags: Vec<_> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags, vec![("deployer:app", app.as_str())]);

    // Someone made the tags mutable: the next apply puts it back.
    client
        .put_image_tag_mutability()
        .repository_name(&app)
        .image_tag_mutability(ImageTagMutability::Mutable)
        .send()
        .await
        .unwrap();
    let (repaired, repository) = up_path::repository(&client, &desired).await.unwrap();
    assert_eq!(repaired, Outcome::Updated);
    assert!(repository.immutable_tags);
    let reread = ecr::read_repository(&client, &app).await.unwrap().unwrap();
    assert!(reread.immutable_tags);

    assert!(ecr::delete_repository(&client, &app).await.unwrap());
    assert!(!ecr::delete_repository(&client, &app).await.unwrap());
    assert_eq!(ecr::read_repository(&client, &app).await.unwrap(), None);
}

#[tokio::test]
async fn lifecycle_policy_round_trips_and_is_put_only_on_a_difference() {
    let client = client().await;
    let app = util::unique_name("ecr-lifecycle");
    let _dump = util::DumpOnFailure::new(&app);
    let mut stage = stage(&app);
    up_path::repository(&client, &DesiredRepository::for_stage(&stage))
        .await
        .unwrap();
    assert_eq!(
        ecr::read_lifecycle_policy(&client, &app).await.unwrap(),
        None
    );

    let text = ecr::lifecycle_policy_text(stage.ecr.untagged_expire_days);
    assert_eq!(
        up_path::lifecycle_policy(&client, &app, &text)
            .await
            .unwrap(),
        Outcome::Created
    );
    let stored = client
        .get_lifecycle_policy()
        .repository_name(&app)
        .send()
        .await
        .unwrap();
    let stored: serde_json::Value =
        serde_json::from_str(stored.lifecycle_policy_text().unwrap()).unwrap();
    let sent: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stored, sent);
    assert_eq!(
        up_path::lifecycle_policy(&client, &app, &text)
            .await
            .unwrap(),
        Outcome::Unchanged
    );

    stage.ecr.untagged_expire_days += 5;
    let changed = ecr::lifecycle_policy_text(stage.ecr.untagged_expire_days);
    assert_eq!(
        up_path::lifecycle_policy(&client, &app, &changed)
            .await
            .unwrap(),
        Outcome::Updated
    );
    let now = ecr::read_lifecycle_policy(&client, &app)
        .await
        .unwrap()
        .unwrap();
    let now: serde_json::Value = serde_json::from_str(&now).unwrap();
    assert_eq!(
        now["rules"][0]["selection"]["countNumber"],
        u64::from(stage.ecr.untagged_expire_days)
    );
    // No rule may expire a tagged image: a version of some stage may use it.
    for rule in now["rules"].as_array().unwrap() {
        assert_eq!(rule["selection"]["tagStatus"], "untagged", "{now}");
    }

    ecr::delete_repository(&client, &app).await.unwrap();
}

#[tokio::test]
async fn pushed_images_are_found_by_tag_under_the_registrys_digest() {
    let client = client().await;
    let app = util::unique_name("ecr-image");
    let _dump = util::DumpOnFailure::new(&app);
    // Not found, not an error, before the repository exists.
    assert_eq!(ecr::find_image(&client, &app, "abc").await.unwrap(), None);
    up_path::repository(&client, &DesiredRepository::for_stage(&stage(&app)))
        .await
        .unwrap();
    assert_eq!(ecr::find_image(&client, &app, "abc").await.unwrap(), None);

    // A push, and nothing else: ECR lists what its registry holds.
    let digest = push_small_image(&app, "abc", "layer abc");
    assert_eq!(
        ecr::find_image(&client, &app, "abc").await.unwrap(),
        Some(digest.clone())
    );
    let uri = ecr::repository_uri(&client, &app).await.unwrap();
    assert_eq!(
        ecr::image_uri_by_digest(&uri, &digest),
        format!("{}/{app}@{digest}", util::registry_host())
    );

    // Deleting the repository deletes its images from the registry too.
    ecr::delete_repository(&client, &app).await.unwrap();
    assert!(!registry_holds(&app, &digest));
}

#[tokio::test]
async fn registry_login_names_the_registry_host() {
    let client = client().await;
    let auth = ecr::registry_auth(&client).await.unwrap();
    assert_eq!(auth.server, util::registry_host());
    assert_eq!(auth.username, "AWS");
    assert!(!auth.password.is_empty());
    assert!(!format!("{auth:?}").contains(&auth.password));
}

#[tokio::test]
async fn missing_credentials_are_classified_with_a_way_out() {
    util::require_local_cloud();
    // A profile nobody has: the standard provider finds no credentials.
    let provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
        .profile_name("deployer-test-no-such-profile")
        .build();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(util::region()))
        .endpoint_url(util::endpoint_url())
        .credentials_provider(provider)
        .load()
        .await;
    let client = aws_sdk_ecr::Client::new(&config);
    let err = ecr::read_repository(&client, "anything").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Credentials, "{err}");
    assert!(err.to_string().contains("credentials"), "{err}");
}

#[tokio::test]
async fn the_lambda_pull_statement_is_added_beside_others_and_kept() {
    let client = client().await;
    let app = util::unique_name("ecr-policy");
    let _dump = util::DumpOnFailure::new(&app);
    up_path::repository(&client, &DesiredRepository::for_stage(&stage(&app)))
        .await
        .unwrap();
    // Someone else's statement, there first.
    let theirs = serde_json::json!({
        "Sid": "ci-pull",
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:root", util::ACCOUNT)},
        "Action": ["ecr:BatchGetImage"],
    });
    client
        .set_repository_policy()
        .repository_name(&app)
        .policy_text(
            serde_json::json!({"Version": "2012-10-17", "Statement": [theirs]}).to_string(),
        )
        .send()
        .await
        .unwrap();

    let functions = format!(
        "arn:aws:lambda:{}:{}:function:{app}-*",
        util::region(),
        util::ACCOUNT
    );
    let ours = ecr::lambda_pull_statement(&functions);
    assert_eq!(
        up_path::repository_policy(&client, &app, &ours)
            .await
            .unwrap(),
        Outcome::Created
    );
    assert_eq!(
        up_path::repository_policy(&client, &app, &ours)
            .await
            .unwrap(),
        Outcome::Unchanged
    );
    let text = client
        .get_repository_policy()
        .repository_name(&app)
        .send()
        .await
        .unwrap();
    let policy: serde_json::Value = serde_json::from_str(text.policy_text().unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{policy}");
    assert!(statements.contains(&theirs), "{policy}");
    let lambda = statements
        .iter()
        .find(|s| s["Sid"] == ecr::LAMBDA_PULL_SID)
        .unwrap();
    assert_eq!(lambda["Principal"]["Service"], "lambda.amazonaws.com");
    assert_eq!(
        lambda["Condition"]["StringLike"]["aws:sourceArn"],
        functions
    );

    ecr::delete_repository(&client, &app).await.unwrap();
}

#[tokio::test]
async fn old_images_are_deleted_unless_a_function_uses_them() {
    let client = client().await;
    let app = util::unique_name("ecr-prune");
    let _dump = util::DumpOnFailure::new(&app);
    up_path::repository(&client, &DesiredRepository::for_stage(&stage(&app)))
        .await
        .unwrap();
    let mut digests = Vec::new();
    for n in 0..4 {
        digests.push(push_small_image(
            &app,
            &format!("h{n}"),
            &format!("layer {n}"),
        ));
        // ECR dates an image by when it first lists it locally (the
        // registry does not tell push times), in seconds: distinct times.
        ecr::list_images(&client, &app).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let images = ecr::list_images(&client, &app).await.unwrap();
    assert_eq!(images.len(), 4);
    // The oldest is a rollback target of some stage; keep the newest one.
    let in_use = BTreeSet::from([digests[0].clone()]);
    let old = ecr::images_to_delete(&images, 1, &in_use);
    assert_eq!(old, [digests[2].clone(), digests[1].clone()]);
    assert_eq!(ecr::delete_images(&client, &app, &old).await.unwrap(), 2);
    let left: BTreeSet<String> = ecr::list_images(&client, &app)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.digest)
        .collect();
    assert_eq!(
        left,
        BTreeSet::from([digests[0].clone(), digests[3].clone()])
    );
    // Gone from the registry too, the others not.
    let held: Vec<bool> = digests.iter().map(|d| registry_holds(&app, d)).collect();
    assert_eq!(held, [true, false, false, true]);
    // Gone already is fine.
    assert!(ecr::delete_images(&client, &app, &old).await.is_ok());

    ecr::delete_repository(&client, &app).await.unwrap();
}
