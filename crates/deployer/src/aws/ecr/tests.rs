//! The repository's diffs, policies and image choices, without AWS.

use super::*;
use crate::config::Stage;

fn actual(desired: &DesiredRepository) -> ActualRepository {
    ActualRepository {
        name: desired.name.clone(),
        arn: "arn:aws:ecr:us-east-1:123456789012:repository/app".into(),
        uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/app".into(),
        scan_on_push: desired.scan_on_push,
        immutable_tags: desired.immutable_tags,
        tags: desired.tags.clone(),
    }
}

#[test]
fn repository_carries_only_the_app_tag() {
    let desired = DesiredRepository::for_stage(&Stage::defaults("app", "dev", "us-east-1"));
    assert_eq!(desired.name, "app");
    assert_eq!(
        desired.tags,
        BTreeMap::from([("deployer:app".to_string(), "app".to_string())])
    );
}

#[test]
fn repository_diff_names_what_differs() {
    let desired = DesiredRepository::for_stage(&Stage::defaults("app", "dev", "us-east-1"));
    assert_eq!(diff_repository(&desired, None), Action::Create);
    let mut same = actual(&desired);
    same.tags.insert("owner".into(), "someone".into());
    assert_eq!(diff_repository(&desired, Some(&same)), Action::Unchanged);
    let mut other = actual(&desired);
    other.immutable_tags = !desired.immutable_tags;
    other.tags.clear();
    assert_eq!(
        diff_repository(&desired, Some(&other)),
        Action::Update(BTreeSet::from([
            RepositoryField::ImmutableTags,
            RepositoryField::Tags
        ]))
    );
}

#[test]
fn the_lifecycle_policy_never_selects_a_tagged_image() {
    let mut spec = Stage::defaults("app", "dev", "us-east-1").ecr;
    spec.untagged_expire_days = 3;
    spec.keep_tagged = 7;
    let text = lifecycle_policy_text(spec.untagged_expire_days);
    assert_eq!(text, lifecycle_policy_text(spec.untagged_expire_days));
    // keep-tagged is not in it: the policy is the same for every stage.
    spec.keep_tagged = 30;
    assert_eq!(text, lifecycle_policy_text(spec.untagged_expire_days));
    let policy: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rules = policy["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["selection"]["tagStatus"], "untagged");
    assert_eq!(rules[0]["selection"]["countType"], "sinceImagePushed");
    assert_eq!(rules[0]["selection"]["countNumber"], 3);
}

fn image(digest: &str, tag: Option<&str>, pushed_at: i64) -> RepositoryImage {
    RepositoryImage {
        digest: digest.into(),
        tags: tag.map(String::from).into_iter().collect(),
        pushed_at,
    }
}

#[test]
fn old_images_go_unless_a_version_uses_them() {
    let images = [
        image("sha256:old-used", Some("h1"), 100),
        image("sha256:old", Some("h2"), 200),
        image("sha256:untagged", None, 250),
        image("sha256:recent", Some("h3"), 300),
        image("sha256:newest", Some("h4"), 400),
    ];
    let in_use = BTreeSet::from(["sha256:old-used".to_string()]);
    // The two newest stay whatever uses them; of the older ones, the one
    // a version uses stays; untagged ones are the lifecycle policy's.
    assert_eq!(images_to_delete(&images, 2, &in_use), ["sha256:old"]);
    assert_eq!(
        images_to_delete(&images, 1, &in_use),
        ["sha256:recent", "sha256:old"]
    );
    assert!(images_to_delete(&images, 10, &BTreeSet::new()).is_empty());
    let everything_used: BTreeSet<String> = images.iter().map(|i| i.digest.clone()).collect();
    assert!(images_to_delete(&images, 1, &everything_used).is_empty());
}

const FUNCTIONS: &str = "arn:aws:lambda:us-east-1:123456789012:function:app-*";

#[test]
fn the_lambda_statement_is_scoped_to_the_app_functions() {
    let statement = lambda_pull_statement(FUNCTIONS);
    assert_eq!(statement["Principal"]["Service"], "lambda.amazonaws.com");
    assert_eq!(
        statement["Action"],
        serde_json::json!(["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"])
    );
    assert_eq!(
        statement["Condition"]["StringLike"]["aws:sourceArn"],
        FUNCTIONS
    );
}

#[test]
fn the_repository_policy_diff_looks_at_our_statement_only() {
    let ours = lambda_pull_statement(FUNCTIONS);
    let theirs = serde_json::json!({
        "Sid": "ci-push", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:role/ci"},
        "Action": "ecr:*",
    });
    assert_eq!(diff_repository_policy(&ours, None), Action::Create);
    let only_theirs =
        serde_json::json!({"Version": "2012-10-17", "Statement": [theirs.clone()]}).to_string();
    assert_eq!(
        diff_repository_policy(&ours, Some(&only_theirs)),
        Action::Create
    );
    let both = merge_repository_policy(&ours, Some(&only_theirs)).unwrap();
    assert_eq!(
        diff_repository_policy(&ours, Some(&both)),
        Action::Unchanged
    );
    let merged: serde_json::Value = serde_json::from_str(&both).unwrap();
    assert_eq!(merged["Statement"], serde_json::json!([theirs, ours]));
    // Pretty-printed, or its lists reordered: still the same.
    let pretty = serde_json::to_string_pretty(&merged).unwrap();
    assert_eq!(
        diff_repository_policy(&ours, Some(&pretty)),
        Action::Unchanged
    );
    let mut reordered = ours.clone();
    reordered["Action"] = serde_json::json!(["ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]);
    reordered["Principal"]["Service"] = serde_json::json!(["lambda.amazonaws.com"]);
    let text = serde_json::json!({"Statement": [reordered]}).to_string();
    assert_eq!(
        diff_repository_policy(&ours, Some(&text)),
        Action::Unchanged
    );
    // Another app's scope under our Sid: replaced, not added twice.
    let other = lambda_pull_statement("arn:aws:lambda:us-east-1:123456789012:function:*");
    let widened = merge_repository_policy(&other, Some(&both)).unwrap();
    assert_eq!(
        diff_repository_policy(&ours, Some(&widened)),
        Action::Update(BTreeSet::from([RepositoryPolicyField::LambdaPull]))
    );
    let fixed: serde_json::Value =
        serde_json::from_str(&merge_repository_policy(&ours, Some(&widened)).unwrap()).unwrap();
    assert_eq!(fixed["Statement"].as_array().unwrap().len(), 2);
    // A policy of one statement as an object, and one that is not JSON.
    let single = serde_json::json!({"Version": "2008-10-17", "Statement": theirs}).to_string();
    let merged: serde_json::Value =
        serde_json::from_str(&merge_repository_policy(&ours, Some(&single)).unwrap()).unwrap();
    assert_eq!(merged["Version"], "2008-10-17");
    assert_eq!(merged["Statement"].as_array().unwrap().len(), 2);
    assert!(merge_repository_policy(&ours, Some("{nope")).is_err());
}

#[test]
fn lifecycle_diff_ignores_formatting() {
    let text = lifecycle_policy_text(
        Stage::defaults("app", "dev", "us-east-1")
            .ecr
            .untagged_expire_days,
    );
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&text).unwrap())
            .unwrap();
    assert_eq!(diff_lifecycle_policy(&text, None), Action::Create);
    assert_eq!(
        diff_lifecycle_policy(&text, Some(&pretty)),
        Action::Unchanged
    );
    assert!(diff_lifecycle_policy(&text, Some(r#"{"rules":[]}"#)).is_change());
}

#[test]
fn registry_auth_debug_hides_the_password() {
    let auth = RegistryAuth {
        username: "AWS".into(),
        password: "s3cr3t-token".into(),
        server: "registry.example".into(),
    };
    let shown = format!("{auth:?}");
    assert!(!shown.contains("s3cr3t-token"), "{shown}");
    assert!(shown.contains("registry.example"), "{shown}");
}
