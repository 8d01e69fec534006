//! The repository's two policies: the lifecycle policy (untagged images
//! expire) and the statement that lets Lambda pull the app's images.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};
use crate::names::LAMBDA_PRINCIPAL;

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call(
            "GetLifecyclePolicy",
            "ecr:GetLifecyclePolicy",
            Scope::Repository,
        ),
        call(
            "PutLifecyclePolicy",
            "ecr:PutLifecyclePolicy",
            Scope::Repository,
        ),
        call(
            "DeleteLifecyclePolicy",
            "ecr:DeleteLifecyclePolicy",
            Scope::Repository,
        ),
        call(
            "GetRepositoryPolicy",
            "ecr:GetRepositoryPolicy",
            Scope::Repository,
        ),
        call(
            "SetRepositoryPolicy",
            "ecr:SetRepositoryPolicy",
            Scope::Repository,
        ),
    ],
};

/// What of the lifecycle policy can differ: its rules, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleField {
    Rules,
}

impl Field for LifecycleField {}

/// What of the repository policy can differ: the deployer's own statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepositoryPolicyField {
    LambdaPull,
}

impl Field for RepositoryPolicyField {}

/// The lifecycle policy for the repository, as deterministic JSON: one rule
/// that expires untagged images (layers of interrupted pushes) after N
/// days. No rule selects tagged images: those may be in use by a function
/// version of some stage, which a lifecycle rule cannot see (see the module
/// doc); `up` deletes unused ones itself.
pub fn lifecycle_policy_text(untagged_expire_days: u32) -> String {
    let policy = serde_json::json!({
        "rules": [
            {
                "rulePriority": 1,
                "description": format!("Expire untagged images after {} days", untagged_expire_days),
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": untagged_expire_days,
                },
                "action": { "type": "expire" },
            },
        ]
    });
    // serde_json's map is ordered by key, so the text is the same every time.
    policy.to_string()
}

/// The repository's lifecycle policy text; `None` when it has none.
pub async fn read_lifecycle_policy(
    client: &Client,
    repository: &str,
) -> Result<Option<String>, AwsError> {
    // No policy and no repository are both "not found".
    let answer = client
        .get_lifecycle_policy()
        .repository_name(repository)
        .send()
        .await;
    Ok(none_if(
        ErrorKind::NotFound,
        "GetLifecyclePolicy",
        repository,
        answer,
    )?
    .and_then(|answer| answer.lifecycle_policy_text().map(str::to_string)))
}

/// Compares the policies as JSON, since ECR may reformat the text.
pub fn diff_lifecycle_policy(desired: &str, actual: Option<&str>) -> Action<LifecycleField> {
    let Some(actual) = actual else {
        return Action::Create;
    };
    let same = match (
        serde_json::from_str::<serde_json::Value>(desired),
        serde_json::from_str::<serde_json::Value>(actual),
    ) {
        (Ok(desired), Ok(actual)) => desired == actual,
        _ => desired == actual,
    };
    Action::update_if(if same {
        BTreeSet::new()
    } else {
        BTreeSet::from([LifecycleField::Rules])
    })
}

/// Carries out `action` on the repository's lifecycle policy: a put is
/// the whole policy, whatever the field.
pub async fn apply_lifecycle_policy(
    client: &Client,
    repository: &str,
    policy_text: &str,
    action: &Action<LifecycleField>,
) -> Result<Outcome, AwsError> {
    let outcome = match action {
        Action::Unchanged => return Ok(Outcome::Unchanged),
        Action::Create => Outcome::Created,
        Action::Update(fields) => {
            for field in fields {
                match field {
                    LifecycleField::Rules => {}
                }
            }
            Outcome::Updated
        }
        Action::Delete => {
            let deleted = client
                .delete_lifecycle_policy()
                .repository_name(repository)
                .send()
                .await;
            none_if(
                ErrorKind::NotFound,
                "DeleteLifecyclePolicy",
                repository,
                deleted,
            )?;
            return Ok(Outcome::Deleted);
        }
    };
    client
        .put_lifecycle_policy()
        .repository_name(repository)
        .lifecycle_policy_text(policy_text)
        .send()
        .await
        .map_err(|err| aws_error("PutLifecyclePolicy", repository, err))?;
    Ok(outcome)
}

/// The Sid of the deployer's statement in the repository policy; the
/// statements with other Sids are someone else's and are kept.
pub const LAMBDA_PULL_SID: &str = "deployer-lambda-pull";

/// The repository policy statement that lets Lambda pull the app's images,
/// for the app's functions only (`functions_arn`, e.g.
/// `arn:aws:lambda:eu-west-1:123456789012:function:shop-*`).
///
/// Lambda reads a container image with the repository's permissions, not
/// the caller's: the repository must allow `lambda.amazonaws.com`
/// `ecr:BatchGetImage` and `ecr:GetDownloadUrlForLayer` ("Create a Lambda
/// function using a container image", section "Amazon ECR permissions", AWS
/// Lambda Developer Guide; re:Post "lambda-ecr-image"). Lambda adds such a
/// statement itself only when the identity creating the function may set
/// repository policies; the deployer sets it, scoped by `aws:sourceArn`.
pub fn lambda_pull_statement(functions_arn: &str) -> serde_json::Value {
    serde_json::json!({
        "Sid": LAMBDA_PULL_SID,
        "Effect": "Allow",
        "Principal": { "Service": LAMBDA_PRINCIPAL },
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        "Condition": { "StringLike": { "aws:sourceArn": functions_arn } },
    })
}

/// The repository's policy text; `None` when it has none (or there is no
/// repository).
pub async fn read_repository_policy(
    client: &Client,
    repository: &str,
) -> Result<Option<String>, AwsError> {
    // No policy and no repository are both "not found".
    let answer = client
        .get_repository_policy()
        .repository_name(repository)
        .send()
        .await;
    Ok(none_if(
        ErrorKind::NotFound,
        "GetRepositoryPolicy",
        repository,
        answer,
    )?
    .and_then(|answer| answer.policy_text().map(str::to_string)))
}

/// The statements of a policy text, or why it cannot be read. A policy
/// may hold one statement as an object instead of a list.
pub(super) fn policy_statements(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let policy: serde_json::Value =
        serde_json::from_str(text).map_err(|err| format!("the policy is not JSON: {err}"))?;
    match policy.get("Statement") {
        None => Ok(Vec::new()),
        Some(serde_json::Value::Array(list)) => Ok(list.clone()),
        Some(one @ serde_json::Value::Object(_)) => Ok(vec![one.clone()]),
        Some(_) => Err("its Statement is neither a list nor an object".to_string()),
    }
}

/// A statement as IAM reads it: a list of one string is that string, and
/// lists of strings are sets. So the policy ECR hands back compares equal
/// however it was written down.
pub(super) fn normalized(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let mut items = items.clone();
            items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            items.dedup();
            match items.as_slice() {
                [one] => one.clone(),
                _ => Value::Array(items),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

pub(super) fn has_sid(statement: &serde_json::Value, sid: &str) -> bool {
    statement.get("Sid").and_then(|s| s.as_str()) == Some(sid)
}

/// Whether the repository policy holds `statement` (by its Sid, compared
/// as JSON): `Create` when the policy or the statement is missing, an update
/// of `lambda_pull` when ours says something else. Other statements do
/// not count.
pub fn diff_repository_policy(
    statement: &serde_json::Value,
    actual: Option<&str>,
) -> Action<RepositoryPolicyField> {
    let sid = statement
        .get("Sid")
        .and_then(|s| s.as_str())
        .unwrap_or_default();
    let Some(text) = actual else {
        return Action::Create;
    };
    let statements = policy_statements(text).unwrap_or_default();
    match statements.iter().find(|s| has_sid(s, sid)) {
        None => Action::Create,
        Some(current) if normalized(current) == normalized(statement) => Action::Unchanged,
        Some(_) => Action::Update(BTreeSet::from([RepositoryPolicyField::LambdaPull])),
    }
}

/// `actual` with `statement` in place of any statement of the same Sid,
/// every other statement kept as it is.
pub fn merge_repository_policy(
    statement: &serde_json::Value,
    actual: Option<&str>,
) -> Result<String, String> {
    let sid = statement
        .get("Sid")
        .and_then(|s| s.as_str())
        .unwrap_or_default();
    let mut policy = match actual {
        Some(text) => serde_json::from_str::<serde_json::Value>(text)
            .map_err(|err| format!("the policy is not JSON: {err}"))?,
        None => serde_json::json!({ "Version": "2012-10-17" }),
    };
    let mut statements = match actual {
        Some(text) => policy_statements(text)?,
        None => Vec::new(),
    };
    statements.retain(|s| !has_sid(s, sid));
    statements.push(statement.clone());
    let object = policy
        .as_object_mut()
        .ok_or("the policy is not a JSON object")?;
    object
        .entry("Version")
        .or_insert_with(|| serde_json::json!("2012-10-17"));
    object.insert("Statement".into(), serde_json::Value::Array(statements));
    Ok(policy.to_string())
}

/// Carries out `action` on the repository policy read as `actual`: puts
/// `statement` into it (every other statement kept), or takes it out.
///
/// SetRepositoryPolicy replaces the whole policy, so this merges into what
/// was read and writes: a statement someone adds between the read and the
/// write is lost (the next `up` does not notice). Two stages write the
/// same statement.
pub async fn apply_repository_policy(
    client: &Client,
    repository: &str,
    statement: &serde_json::Value,
    actual: Option<&str>,
    action: &Action<RepositoryPolicyField>,
) -> Result<Outcome, AwsError> {
    let outcome = match action {
        Action::Unchanged => return Ok(Outcome::Unchanged),
        Action::Create => Outcome::Created,
        Action::Update(fields) => {
            for field in fields {
                match field {
                    // The statement is put whole, by its Sid, below.
                    RepositoryPolicyField::LambdaPull => {}
                }
            }
            Outcome::Updated
        }
        // The repository goes with its policy; nothing deletes the
        // statement alone.
        Action::Delete => return Ok(Outcome::Unchanged),
    };
    let text = merge_repository_policy(statement, actual).map_err(|message| {
        AwsError::invalid_answer(
            "GetRepositoryPolicy",
            repository,
            format!("{message}; fix or delete the repository policy, then run again"),
        )
    })?;
    client
        .set_repository_policy()
        .repository_name(repository)
        .policy_text(text)
        .send()
        .await
        .map_err(|err| aws_error("SetRepositoryPolicy", repository, err))?;
    Ok(outcome)
}
