//! The ECR steps against the local AWS (moto): the repository converges
//! and is left alone once right, the lifecycle policy round-trips, images
//! are registered and found by tag under the manifest's digest, the login
//! names the registry, delete is idempotent, and missing credentials are
//! classified as such.

mod util;

use aws_sdk_ecr::types::ImageTagMutability;
use deployer::aws::ecr::{self, DesiredRepository};
use deployer::aws::{ErrorKind, Outcome};
use deployer::config::Stage;

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

    let (first, repository) = ecr::ensure_repository(&client, &desired).await.unwrap();
    assert_eq!(first, Outcome::Created);
    assert!(
        repository.uri.ends_with(&format!("/{app}")),
        "{}",
        repository.uri
    );
    let (second, _) = ecr::ensure_repository(&client, &desired).await.unwrap();
    assert_eq!(second, Outcome::Unchanged);

    // What ECR itself says, not what ensure returned.
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

    // Someone made the tags mutable: the next ensure puts it back.
    client
        .put_image_tag_mutability()
        .repository_name(&app)
        .image_tag_mutability(ImageTagMutability::Mutable)
        .send()
        .await
        .unwrap();
    let (repaired, repository) = ecr::ensure_repository(&client, &desired).await.unwrap();
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
    ecr::ensure_repository(&client, &DesiredRepository::for_stage(&stage))
        .await
        .unwrap();
    assert_eq!(
        ecr::read_lifecycle_policy(&client, &app).await.unwrap(),
        None
    );

    let text = ecr::lifecycle_policy_text(&stage.ecr);
    assert_eq!(
        ecr::ensure_lifecycle_policy(&client, &app, &text)
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
        ecr::ensure_lifecycle_policy(&client, &app, &text)
            .await
            .unwrap(),
        Outcome::Unchanged
    );

    stage.ecr.keep_tagged += 5;
    let changed = ecr::lifecycle_policy_text(&stage.ecr);
    assert_eq!(
        ecr::ensure_lifecycle_policy(&client, &app, &changed)
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
        now["rules"][1]["selection"]["countNumber"],
        u64::from(stage.ecr.keep_tagged)
    );

    ecr::delete_repository(&client, &app).await.unwrap();
}

#[tokio::test]
async fn registered_images_are_found_by_tag_under_the_manifest_digest() {
    let client = client().await;
    let app = util::unique_name("ecr-image");
    let _dump = util::DumpOnFailure::new(&app);
    // Not found, not an error, before the repository exists.
    assert_eq!(ecr::find_image(&client, &app, "abc").await.unwrap(), None);
    ecr::ensure_repository(&client, &DesiredRepository::for_stage(&stage(&app)))
        .await
        .unwrap();
    assert_eq!(ecr::find_image(&client, &app, "abc").await.unwrap(), None);

    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 7,
            "digest": format!("sha256:{}", "1".repeat(64)),
        },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 9,
            "digest": format!("sha256:{}", "2".repeat(64)),
        }],
    })
    .to_string();
    let media_type = "application/vnd.docker.distribution.manifest.v2+json";
    let digest = ecr::register_image(&client, &app, "abc", &manifest, media_type)
        .await
        .unwrap();
    assert_eq!(digest, ecr::manifest_digest(&manifest));
    assert_eq!(
        ecr::find_image(&client, &app, "abc").await.unwrap(),
        Some(digest.clone())
    );
    // A second registration (a re-run after a push) is fine.
    assert_eq!(
        ecr::register_image(&client, &app, "abc", &manifest, media_type)
            .await
            .unwrap(),
        digest
    );
    let uri = ecr::repository_uri(&client, &app).await.unwrap();
    assert_eq!(
        ecr::image_uri_by_digest(&uri, &digest),
        format!("{}/{app}@{digest}", util::registry_host())
    );

    ecr::delete_repository(&client, &app).await.unwrap();
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
