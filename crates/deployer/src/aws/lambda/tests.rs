//! The function's diffs, states and image checks, without AWS.

use super::*;
use crate::config::Stage;

#[test]
fn an_image_is_in_its_repository_only() {
    let repo = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop";
    assert!(image_in_repository(&format!("{repo}@sha256:ab"), repo));
    assert!(image_in_repository(&format!("{repo}:v1"), repo));
    assert!(!image_in_repository(
        &format!("{repo}-other@sha256:ab"),
        repo
    ));
    assert!(!image_in_repository(&format!("{repo}/sub:v1"), repo));
    assert!(!image_in_repository("", repo));
}

fn desired() -> DesiredFunction {
    DesiredFunction::for_stage(
        &Stage::defaults("app", "dev", "us-east-1"),
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:aa",
        "arn:aws:iam::123456789012:role/app-dev-exec",
    )
}

fn actual_of(desired: &DesiredFunction) -> ActualFunction {
    ActualFunction {
        name: desired.name.clone(),
        arn: "arn:aws:lambda:us-east-1:123456789012:function:app-dev".into(),
        version: "$LATEST".into(),
        image_uri: desired.image_uri.clone(),
        role_arn: desired.role_arn.clone(),
        memory_mb: desired.memory_mb,
        timeout_s: desired.timeout_s,
        architecture: Some(desired.architecture),
        environment: desired.environment.clone(),
        tracing: desired.tracing,
        state: "Active".into(),
        last_update_status: "Successful".into(),
        tags: desired.tags.clone(),
    }
}

#[test]
fn function_diff_lists_each_changed_field() {
    let desired = desired();
    assert_eq!(diff_function(&desired, None), Action::Create);
    assert_eq!(
        diff_function(&desired, Some(&actual_of(&desired))),
        Action::Unchanged
    );
    let mut other = actual_of(&desired);
    other.memory_mb += 1;
    other.image_uri.push('b');
    other.architecture = Some(Architecture::Arm64);
    other.tracing = !desired.tracing;
    other.environment.insert("X".into(), "1".into());
    assert_eq!(
        diff_function(&desired, Some(&other)),
        Action::Update(BTreeSet::from([
            FunctionField::Image,
            FunctionField::Architecture,
            FunctionField::Memory,
            FunctionField::Environment,
            FunctionField::Tracing
        ]))
    );
}

#[test]
fn alias_and_permission_diffs() {
    let alias = AliasInfo {
        name: "dev".into(),
        arn: "arn".into(),
        version: "3".into(),
    };
    assert_eq!(diff_alias("3", None), Action::Create);
    assert_eq!(diff_alias("3", Some(&alias)), Action::Unchanged);
    assert!(diff_alias("4", Some(&alias)).is_change());

    let policy = serde_json::json!({"Statement": [{
        "Sid": "apigw",
        "Principal": {"Service": "apigateway.amazonaws.com"},
        "Condition": {"ArnLike": {"AWS:SourceArn": "arn:a"}}
    }]});
    let statement = statement_in_policy(&policy, "apigw").unwrap();
    assert_eq!(statement.source_arn.as_deref(), Some("arn:a"));
    assert_eq!(statement_in_policy(&policy, "other"), None);
    assert_eq!(
        diff_permission("arn:a", Some(&statement)),
        Action::Unchanged
    );
    assert_eq!(
        diff_permission("arn:b", Some(&statement)),
        Action::Update(BTreeSet::from([PermissionField::SourceArn]))
    );
    assert_eq!(diff_permission("arn:a", None), Action::Create);
}

fn state(state: State, last_update: LastUpdateStatus) -> FunctionState {
    FunctionState {
        state,
        last_update,
        state_reason: Some("image not found".into()),
        last_update_reason: Some("out of memory".into()),
    }
}

#[test]
fn an_update_may_follow_a_failed_one_and_reactivates_an_inactive_function() {
    use LastUpdateStatus as U;
    assert_eq!(
        state(State::Active, U::Failed).before_update(),
        Readiness::Ready
    );
    assert_eq!(
        state(State::Inactive, U::Successful).before_update(),
        Readiness::Ready
    );
    assert_eq!(
        state(State::Active, U::Successful).before_update(),
        Readiness::Ready
    );
    assert_eq!(
        state(State::Active, U::InProgress).before_update(),
        Readiness::Wait
    );
    assert_eq!(
        state(State::Pending, U::Successful).before_update(),
        Readiness::Wait
    );
    let Readiness::Broken(why) = state(State::Failed, U::Successful).before_update() else {
        panic!("a function whose creation failed can be updated");
    };
    assert!(
        why.contains("image not found") && why.contains("delete"),
        "{why}"
    );
}

#[test]
fn a_change_has_taken_when_active_and_successful() {
    use LastUpdateStatus as U;
    assert_eq!(
        state(State::Active, U::Successful).after_change(),
        Readiness::Ready
    );
    assert_eq!(
        state(State::Pending, U::Successful).after_change(),
        Readiness::Wait
    );
    assert_eq!(
        state(State::Active, U::InProgress).after_change(),
        Readiness::Wait
    );
    let Readiness::Broken(why) = state(State::Active, U::Failed).after_change() else {
        panic!("a failed update was taken for a success");
    };
    assert!(why.contains("out of memory"), "{why}");
    assert!(matches!(
        state(State::Failed, U::Successful).after_change(),
        Readiness::Broken(_)
    ));
    // Idle: not ready to invoke until an invoke has started its restore.
    assert_eq!(
        state(State::Inactive, U::Successful).after_change(),
        Readiness::Inactive
    );
}

#[test]
fn the_passed_versions_tag_keeps_the_newest_in_order() {
    assert_eq!(parse_passed(""), Vec::<u64>::new());
    assert_eq!(parse_passed("3 1 x 2 2"), vec![1, 2, 3]);
    assert_eq!(with_passed("", 4), "4");
    assert_eq!(with_passed("1 2", 2), "1 2");
    assert_eq!(with_passed("1 5", 3), "1 3 5");
    let many: String = (1..=40).map(|v| format!("{v} ")).collect();
    let kept = with_passed(&many, 41);
    assert_eq!(parse_passed(&kept), (22..=41).collect::<Vec<u64>>());
    // Within a tag value's 256 characters even for large numbers.
    let large: String = (1_000_000..1_000_040).map(|v| format!("{v} ")).collect();
    assert!(with_passed(&large, 2_000_000).len() <= 256);
}

#[test]
fn a_function_that_cannot_be_read_keeps_the_repository_in_use() {
    let repo = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop";
    let denied = AwsError {
        operation: "GetFunction",
        resource: "shop-prod".into(),
        message: "not authorized".into(),
        kind: ErrorKind::AccessDenied,
    };
    let user = repository_user("shop-prod", Err(denied), repo).unwrap();
    assert!(user.starts_with("shop-prod"), "{user}");
    assert!(user.contains("counted as a user"), "{user}");
    assert!(user.contains("not authorized"), "{user}");
    let using = Ok(Some(format!("{repo}@sha256:ab")));
    assert_eq!(
        repository_user("shop-dev", using, repo).as_deref(),
        Some("shop-dev")
    );
    let elsewhere = Ok(Some(format!("{repo}-other@sha256:ab")));
    assert_eq!(repository_user("shop-dev", elsewhere, repo), None);
    assert_eq!(repository_user("shop-gone", Ok(None), repo), None);
}

#[test]
fn versions_beyond_keep_are_pruned_except_those_never_to_prune() {
    let versions: Vec<String> = ["1", "2", "3", "4", "5", "10"].map(String::from).to_vec();
    // Newest by number, not by text: 10 is newer than 5.
    assert_eq!(
        versions_to_prune(&versions, 3, &BTreeSet::new()),
        ["3", "2", "1"]
    );
    let never = BTreeSet::from(["2".to_string(), "10".to_string()]);
    assert_eq!(versions_to_prune(&versions, 3, &never), ["3", "1"]);
    assert!(versions_to_prune(&versions, 6, &BTreeSet::new()).is_empty());
    assert!(versions_to_prune(&versions, 100, &BTreeSet::new()).is_empty());
    // What cannot be ordered is kept.
    let odd = ["1".to_string(), "$LATEST".to_string(), "x".to_string()];
    assert_eq!(versions_to_prune(&odd, 0, &BTreeSet::new()), ["1"]);
}
