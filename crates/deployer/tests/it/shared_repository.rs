//! The app's one ECR repository, shared by its stages: each stage has its
//! own function, role and API, Lambda may pull every image of the app, and
//! `up` deletes only images that no version of any stage uses.

use serde_json::Value;

use crate::up::rest_api_id;
use crate::util::fixture::{Fixture, changes, set_in_table};
use crate::util::registry::{push_small_image, registry_holds};
use crate::util::*;

#[tokio::test(flavor = "multi_thread")]
async fn two_stages_share_the_repository_and_nothing_else() {
    let fx = Fixture::new("uptwo");
    let _dump = DumpOnFailure::new(&fx.app);
    // A second local stage beside the first.
    fx.add_local_stage("local2");
    let a = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let b = fx.json(&["up", "--stage", "local2", "--json", "--yes"]);
    assert_eq!(a["image"]["digest"], b["image"]["digest"]);
    assert_eq!(
        b["image"]["built"], false,
        "the second stage rebuilt the image"
    );
    for key in ["function_arn", "url", "role_arn"] {
        assert_ne!(a[key], b[key], "{key} shared between stages");
    }
    let config = sdk_config().await;
    let ecr = aws_sdk_ecr::Client::new(&config);
    let repos = ecr.describe_repositories().send().await.unwrap();
    let ours = repos
        .repositories()
        .iter()
        .filter(|r| r.repository_name().is_some_and(|n| n.starts_with(&fx.app)))
        .count();
    assert_eq!(ours, 1);
}

/// Pushes a small image nobody uses, after ECR has dated the ones before
/// (it dates an image by when it first lists it locally, in seconds).
async fn push_unused(ecr: &aws_sdk_ecr::Client, repository: &str, tag: &str) -> String {
    ecr.describe_images()
        .repository_name(repository)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    push_small_image(repository, tag, tag)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shared_repository_lets_lambda_pull_and_keeps_every_image_a_stage_uses() {
    let fx = Fixture::new("upimg");
    let _dump = DumpOnFailure::new(&fx.app);
    fx.add_local_stage("local2");
    fx.edit_config(|text| set_in_table(text, "ecr", "keep-tagged", "2"));
    let config = sdk_config().await;
    let ecr = aws_sdk_ecr::Client::new(&config);

    // Someone's statement in the repository policy before the first up.
    ecr.create_repository()
        .repository_name(&fx.app)
        .send()
        .await
        .unwrap();
    let theirs = serde_json::json!({
        "Sid": "ci-pull", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
        "Action": ["ecr:BatchGetImage"],
    });
    ecr.set_repository_policy()
        .repository_name(&fx.app)
        .policy_text(
            serde_json::json!({"Version": "2012-10-17", "Statement": [theirs]}).to_string(),
        )
        .send()
        .await
        .unwrap();

    let plan = fx.json(&["plan", "--stage", "local", "--json"]);
    assert!(
        changes(&plan).contains(&format!("ecr repository policy {} create", fx.app)),
        "{:?}",
        changes(&plan)
    );
    // The function's 300 s timeout is past API Gateway's 29 s: said, not refused.
    let warnings = plan["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("29 s")),
        "{plan}"
    );

    let first = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert_eq!(first["warnings"], plan["warnings"]);
    let policy = ecr
        .get_repository_policy()
        .repository_name(&fx.app)
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(policy.policy_text().unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert!(
        statements.contains(&theirs),
        "their statement is gone: {policy}"
    );
    let ours = statements
        .iter()
        .find(|s| s["Principal"]["Service"] == "lambda.amazonaws.com")
        .unwrap_or_else(|| panic!("no statement for Lambda: {policy}"));
    assert_eq!(
        ours["Action"],
        serde_json::json!(["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"])
    );
    assert_eq!(
        ours["Condition"]["StringLike"]["aws:sourceArn"],
        format!(
            "arn:aws:lambda:{}:{ACCOUNT}:function:{}-*",
            region(),
            fx.app
        )
    );
    // One lifecycle policy for every stage, and none of its rules selects
    // a tagged image.
    let lifecycle = ecr
        .get_lifecycle_policy()
        .repository_name(&fx.app)
        .send()
        .await
        .unwrap();
    let lifecycle: Value =
        serde_json::from_str(lifecycle.lifecycle_policy_text().unwrap()).unwrap();
    for rule in lifecycle["rules"].as_array().unwrap() {
        assert_eq!(rule["selection"]["tagStatus"], "untagged", "{lifecycle}");
    }
    // The stage traces from the gateway on, as the function does.
    let apigw = aws_sdk_apigateway::Client::new(&config);
    let api_id = rest_api_id(&apigw, &fx.function("local")).await;
    let api_stage = apigw
        .get_stage()
        .rest_api_id(&api_id)
        .stage_name("local")
        .send()
        .await
        .unwrap();
    assert!(api_stage.tracing_enabled());

    // ECR lists local's image, pushed by `up`, under the digest the
    // function runs; then two images nobody uses, pushed after it.
    let used = first["image"]["digest"].as_str().unwrap().to_string();
    let listed = ecr
        .describe_images()
        .repository_name(&fx.app)
        .send()
        .await
        .unwrap();
    let tag = first["image"]["tag"].as_str().unwrap();
    assert!(
        listed
            .image_details()
            .iter()
            .any(|i| i.image_digest() == Some(used.as_str())
                && i.image_tags().iter().any(|t| t == tag)),
        "ECR does not list the pushed image {used}: {listed:?}"
    );
    let unused_old = push_unused(&ecr, &fx.app, "unused-old").await;
    let unused_new = push_unused(&ecr, &fx.app, "unused-new").await;

    // local2 ships another image: past keep-tagged = 2 (its own and
    // unused-new), the unused old one goes; local's live version keeps its
    // image although it is older.
    std::fs::write(fx.path("models/NOTE.txt"), "retrained\n").unwrap();
    let second = fx.json(&["up", "--stage", "local2", "--json", "--yes"]);
    assert_eq!(second["image"]["built"], true);
    assert_eq!(second["images_deleted"], 1, "{second}");
    let left: Vec<String> = ecr
        .describe_images()
        .repository_name(&fx.app)
        .send()
        .await
        .unwrap()
        .image_details()
        .iter()
        .filter_map(|i| i.image_digest().map(str::to_string))
        .collect();
    assert!(
        left.contains(&used),
        "local's live image was deleted: {left:?}"
    );
    assert!(
        left.contains(&unused_new),
        "the newest image was deleted: {left:?}"
    );
    assert!(
        !left.contains(&unused_old),
        "the unused old image is still there: {left:?}"
    );
    assert!(
        !registry_holds(&fx.app, &unused_old),
        "ECR deleted the unused old image, the registry still holds it"
    );
    // One repository, one policy of each kind: local2's up changed none.
    assert!(
        !changes(&second)
            .iter()
            .any(|c| c.starts_with("ecr repository") || c.starts_with("ecr lifecycle")),
        "{:?}",
        changes(&second)
    );
}
