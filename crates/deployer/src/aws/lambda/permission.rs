//! The statement that lets the stage's API invoke the alias: read from
//! the function's policy, diff over [`PermissionField`], added or replaced.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};
use crate::names::APIGATEWAY_PRINCIPAL;

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("GetPolicy", "lambda:GetPolicy", Scope::Function),
        call("AddPermission", "lambda:AddPermission", Scope::Function),
        call(
            "RemovePermission",
            "lambda:RemovePermission",
            Scope::Function,
        ),
    ],
};

/// One statement of the function's resource policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionStatement {
    pub statement_id: String,
    pub principal: String,
    pub source_arn: Option<String>,
}

/// The statement `statement_id` of the policy on `function:qualifier`;
/// `None` when there is no policy or no such statement.
pub async fn read_permission(
    client: &Client,
    function: &str,
    qualifier: &str,
    statement_id: &str,
) -> Result<Option<PermissionStatement>, AwsError> {
    let resource = format!("{function}:{qualifier}");
    let answer = client
        .get_policy()
        .function_name(function)
        .qualifier(qualifier)
        .send()
        .await;
    let Some(answer) = none_if(ErrorKind::NotFound, "GetPolicy", &resource, answer)? else {
        return Ok(None);
    };
    let Some(text) = answer.policy() else {
        return Ok(None);
    };
    let policy: serde_json::Value = serde_json::from_str(text).map_err(|err| {
        AwsError::invalid_answer(
            "GetPolicy",
            resource.clone(),
            format!("the policy is not JSON: {err}"),
        )
    })?;
    Ok(statement_in_policy(&policy, statement_id))
}

pub(super) fn statement_in_policy(
    policy: &serde_json::Value,
    statement_id: &str,
) -> Option<PermissionStatement> {
    let statements = policy.get("Statement")?.as_array()?;
    let statement = statements
        .iter()
        .find(|s| s.get("Sid").and_then(|v| v.as_str()) == Some(statement_id))?;
    let principal = match statement.get("Principal") {
        Some(serde_json::Value::String(p)) => p.clone(),
        Some(p) => p
            .get("Service")
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_string(),
        None => String::new(),
    };
    let source_arn = statement
        .get("Condition")
        .and_then(|c| c.get("ArnLike"))
        .and_then(|c| c.get("AWS:SourceArn"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    Some(PermissionStatement {
        statement_id: statement_id.to_string(),
        principal,
        source_arn,
    })
}

/// What of the permission can differ from the desired one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionField {
    Principal,
    SourceArn,
}

impl Field for PermissionField {}

/// Whether the permission must be added or replaced (another source ARN
/// or principal).
pub fn diff_permission(
    source_arn: &str,
    actual: Option<&PermissionStatement>,
) -> Action<PermissionField> {
    let Some(actual) = actual else {
        return Action::Create;
    };
    let mut fields = BTreeSet::new();
    if actual.principal != APIGATEWAY_PRINCIPAL {
        fields.insert(PermissionField::Principal);
    }
    if actual.source_arn.as_deref() != Some(source_arn) {
        fields.insert(PermissionField::SourceArn);
    }
    Action::update_if(fields)
}

/// Carries out `action` on the permission statement `statement_id` of
/// `function:alias`.
pub async fn apply_permission(
    client: &Client,
    function: &str,
    alias: &str,
    statement_id: &str,
    source_arn: &str,
    action: &Action<PermissionField>,
) -> Result<Outcome, AwsError> {
    let resource = format!("{function}:{alias}");
    let outcome = match action {
        Action::Unchanged => return Ok(Outcome::Unchanged),
        Action::Create => Outcome::Created,
        Action::Delete => {
            remove_permission(client, function, alias, statement_id).await?;
            return Ok(Outcome::Deleted);
        }
        Action::Update(fields) => {
            for field in fields {
                match field {
                    // A statement cannot be edited: it is removed and added
                    // anew, whatever differs.
                    PermissionField::Principal | PermissionField::SourceArn => {}
                }
            }
            remove_permission(client, function, alias, statement_id).await?;
            Outcome::Updated
        }
    };
    let added = client
        .add_permission()
        .function_name(function)
        .qualifier(alias)
        .statement_id(statement_id)
        .action("lambda:InvokeFunction")
        .principal(APIGATEWAY_PRINCIPAL)
        .source_arn(source_arn)
        .send()
        .await;
    match added {
        Ok(_) => Ok(outcome),
        // Added meanwhile by another run; it is right if its source is.
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_conflict_exception()) =>
        {
            let now = read_permission(client, function, alias, statement_id).await?;
            if diff_permission(source_arn, now.as_ref()).is_change() {
                Err(aws_error("AddPermission", resource, err))
            } else {
                Ok(outcome)
            }
        }
        Err(err) => Err(aws_error("AddPermission", resource, err)),
    }
}

/// Removes one statement; gone already is fine.
pub async fn remove_permission(
    client: &Client,
    function: &str,
    qualifier: &str,
    statement_id: &str,
) -> Result<(), AwsError> {
    let removed = client
        .remove_permission()
        .function_name(function)
        .qualifier(qualifier)
        .statement_id(statement_id)
        .send()
        .await;
    let resource = format!("{function}:{qualifier} {statement_id}");
    none_if(ErrorKind::NotFound, "RemovePermission", resource, removed)?;
    Ok(())
}
