//! The function's execution role `{app}-{stage}-exec`: trusted by Lambda,
//! with exactly the managed policies the function needs and nothing else.
//!
//! A new role takes a few seconds before Lambda may assume it; that wait
//! lives in [`super::lambda`], which retries its create while the role is
//! not yet assumable. IAM is eventually consistent ("Troubleshoot IAM:
//! Changes that I make are not always immediately visible",
//! https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency):
//! GetRole right after CreateRole may answer NoSuchEntity, and DeleteRole
//! right after detaching the last policy may answer DeleteConflict; both
//! are retried here for a bounded time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use serde::Serialize;
use serde_json::Value;

use super::errors::{AwsError, ErrorKind, aws_error, none_if};
use super::permissions::{Declared, Scope, call};
use super::retry::retry_while;
use super::{Outcome, missing_tags};
use crate::names::LAMBDA_PRINCIPAL;
use crate::plan::{Action, Field};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("GetRole", "iam:GetRole", Scope::ExecutionRole),
        call(
            "ListAttachedRolePolicies",
            "iam:ListAttachedRolePolicies",
            Scope::ExecutionRole,
        ),
        call(
            "ListRolePolicies",
            "iam:ListRolePolicies",
            Scope::ExecutionRole,
        ),
        call("ListRoleTags", "iam:ListRoleTags", Scope::ExecutionRole),
        call("CreateRole", "iam:CreateRole", Scope::ExecutionRole),
        call(
            "UpdateAssumeRolePolicy",
            "iam:UpdateAssumeRolePolicy",
            Scope::ExecutionRole,
        ),
        call("TagRole", "iam:TagRole", Scope::ExecutionRole),
        call(
            "AttachRolePolicy",
            "iam:AttachRolePolicy",
            Scope::AttachToExecutionRole,
        ),
        call(
            "DetachRolePolicy",
            "iam:DetachRolePolicy",
            Scope::ExecutionRole,
        ),
        call(
            "DeleteRolePolicy",
            "iam:DeleteRolePolicy",
            Scope::ExecutionRole,
        ),
        call("DeleteRole", "iam:DeleteRole", Scope::ExecutionRole),
    ],
};

/// How long IAM may take to show a change everywhere (a role just created,
/// a policy just detached).
const PROPAGATION: Duration = Duration::from_secs(60);

/// The role as the stage wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRole {
    pub name: String,
    pub trust_policy: Value,
    /// ARNs of the managed policies attached, and only these.
    pub managed_policies: BTreeSet<String>,
    pub tags: BTreeMap<String, String>,
}

/// What of a role can differ from the desired one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleField {
    TrustPolicy,
    ManagedPolicies,
    /// Any inline policy at all: the deployer never wants one.
    InlinePolicies,
    /// Missing or different tags (tags someone else added never count).
    Tags,
}

impl Field for RoleField {}

/// The role as IAM has it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActualRole {
    pub name: String,
    pub arn: String,
    pub trust_policy: Value,
    pub managed_policies: BTreeSet<String>,
    /// Names of inline policies (the deployer never wants any).
    pub inline_policies: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// The trust policy that lets Lambda assume the role.
pub fn lambda_trust_policy() -> Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": LAMBDA_PRINCIPAL },
            "Action": "sts:AssumeRole",
        }]
    })
}

/// The role by name, with what is attached to it; `None` when it does not
/// exist.
pub async fn read_role(client: &Client, name: &str) -> Result<Option<ActualRole>, AwsError> {
    let answer = client.get_role().role_name(name).send().await;
    let Some(answer) = none_if(ErrorKind::NotFound, "GetRole", name, answer)? else {
        return Ok(None);
    };
    let Some(role) = answer.role() else {
        return Err(AwsError::invalid_answer(
            "GetRole",
            name,
            "the answer has no role",
        ));
    };
    let trust_policy = match role.assume_role_policy_document() {
        Some(document) => parse_policy_document(document).ok_or_else(|| {
            AwsError::invalid_answer("GetRole", name, "the trust policy is not JSON")
        })?,
        None => Value::Null,
    };

    let managed_policies: BTreeSet<String> = client
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|err| aws_error("ListAttachedRolePolicies", name, err))?
        .into_iter()
        .filter_map(|p| p.policy_arn)
        .collect();

    let inline_policies = client
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|err| aws_error("ListRolePolicies", name, err))?
        .policy_names()
        .to_vec();

    let tags = client
        .list_role_tags()
        .role_name(name)
        .send()
        .await
        .map_err(|err| aws_error("ListRoleTags", name, err))?
        .tags()
        .iter()
        .map(|tag| (tag.key().to_string(), tag.value().to_string()))
        .collect();

    Ok(Some(ActualRole {
        name: name.to_string(),
        arn: role.arn().to_string(),
        trust_policy,
        managed_policies,
        inline_policies,
        tags,
    }))
}

/// What [`apply_role`] has to do to make `actual` the desired role.
pub fn diff_role(desired: &DesiredRole, actual: Option<&ActualRole>) -> Action<RoleField> {
    let Some(actual) = actual else {
        return Action::Create;
    };
    let mut fields = BTreeSet::new();
    if desired.trust_policy != actual.trust_policy {
        fields.insert(RoleField::TrustPolicy);
    }
    if desired.managed_policies != actual.managed_policies {
        fields.insert(RoleField::ManagedPolicies);
    }
    if !actual.inline_policies.is_empty() {
        fields.insert(RoleField::InlinePolicies);
    }
    if missing_tags(&desired.tags, &actual.tags).next().is_some() {
        fields.insert(RoleField::Tags);
    }
    Action::update_if(fields)
}

/// Carries out `action` on the role `actual` was read as: creates it, or
/// makes exactly the updates named (trust policy, exactly the desired
/// managed policies, no inline policies, tags), or deletes it. Reads again
/// only when a concurrent run created it first. Returns the outcome and
/// the role's ARN (none after a delete).
pub async fn apply_role(
    client: &Client,
    desired: &DesiredRole,
    actual: Option<&ActualRole>,
    action: &Action<RoleField>,
) -> Result<(Outcome, Option<String>), AwsError> {
    let name = desired.name.as_str();
    let actual = match (action, actual) {
        (Action::Unchanged, Some(actual)) => {
            return Ok((Outcome::Unchanged, Some(actual.arn.clone())));
        }
        (Action::Delete, _) => {
            delete_role(client, name).await?;
            return Ok((Outcome::Deleted, None));
        }
        (Action::Update(fields), Some(actual)) => {
            update_role(client, desired, actual, fields).await?;
            return Ok((Outcome::Updated, Some(actual.arn.clone())));
        }
        (Action::Create | Action::Unchanged | Action::Update(_), _) => {
            let created = client
                .create_role()
                .role_name(name)
                .assume_role_policy_document(desired.trust_policy.to_string())
                .description("Execution role of a function deployed by deployer")
                .set_tags(Some(iam_tags(&desired.tags, name)?))
                .send()
                .await;
            match none_if(ErrorKind::AlreadyExists, "CreateRole", name, created)? {
                // The role as created (IAM may not show it to GetRole yet):
                // its managed policies are attached below.
                Some(answer) => {
                    let arn = answer.role().map(|r| r.arn().to_string()).ok_or_else(|| {
                        AwsError::invalid_answer("CreateRole", name, "the answer has no role")
                    })?;
                    let created = ActualRole {
                        name: name.to_string(),
                        arn,
                        trust_policy: desired.trust_policy.clone(),
                        managed_policies: BTreeSet::new(),
                        inline_policies: Vec::new(),
                        tags: desired.tags.clone(),
                    };
                    (Outcome::Created, created)
                }
                // A concurrent or interrupted run made it, maybe just now:
                // converge on it once IAM shows it.
                None => (
                    Outcome::Unchanged,
                    read_role_once_visible(client, name).await?,
                ),
            }
        }
    };
    let (mut outcome, actual) = actual;
    if let Action::Update(fields) = diff_role(desired, Some(&actual)) {
        update_role(client, desired, &actual, &fields).await?;
        if outcome == Outcome::Unchanged {
            outcome = Outcome::Updated;
        }
    }
    Ok((outcome, Some(actual.arn)))
}

/// Makes the updates named by `fields` to the role `actual`.
async fn update_role(
    client: &Client,
    desired: &DesiredRole,
    actual: &ActualRole,
    fields: &BTreeSet<RoleField>,
) -> Result<(), AwsError> {
    let name = desired.name.as_str();
    for field in fields {
        match field {
            RoleField::TrustPolicy => {
                client
                    .update_assume_role_policy()
                    .role_name(name)
                    .policy_document(desired.trust_policy.to_string())
                    .send()
                    .await
                    .map_err(|err| aws_error("UpdateAssumeRolePolicy", name, err))?;
            }
            RoleField::ManagedPolicies => {
                for arn in desired
                    .managed_policies
                    .difference(&actual.managed_policies)
                {
                    client
                        .attach_role_policy()
                        .role_name(name)
                        .policy_arn(arn)
                        .send()
                        .await
                        .map_err(|err| aws_error("AttachRolePolicy", name, err))?;
                }
                for arn in actual
                    .managed_policies
                    .difference(&desired.managed_policies)
                {
                    detach_policy(client, name, arn).await?;
                }
            }
            RoleField::InlinePolicies => {
                for policy in &actual.inline_policies {
                    delete_inline_policy(client, name, policy).await?;
                }
            }
            RoleField::Tags => {
                client
                    .tag_role()
                    .role_name(name)
                    .set_tags(Some(iam_tags(&desired.tags, name)?))
                    .send()
                    .await
                    .map_err(|err| aws_error("TagRole", name, err))?;
            }
        }
    }
    Ok(())
}

/// The role `name`, which exists, once GetRole shows it (bounded).
async fn read_role_once_visible(client: &Client, name: &str) -> Result<ActualRole, AwsError> {
    retry_while(&[ErrorKind::NotFound], PROPAGATION, || async {
        read_role(client, name).await?.ok_or_else(|| AwsError {
            operation: "GetRole",
            resource: name.to_string(),
            message: format!(
                "the role exists (CreateRole said so) but IAM does not show it after {} s",
                PROPAGATION.as_secs()
            ),
            kind: ErrorKind::NotFound,
        })
    })
    .await
}

/// Detaches every policy, deletes inline ones, then the role. Returns
/// whether there was a role; gone already is fine.
pub async fn delete_role(client: &Client, name: &str) -> Result<bool, AwsError> {
    let Some(actual) = read_role(client, name).await? else {
        return Ok(false);
    };
    for arn in &actual.managed_policies {
        detach_policy(client, name, arn).await?;
    }
    for policy in &actual.inline_policies {
        delete_inline_policy(client, name, policy).await?;
    }
    // Until IAM has propagated the detaches, DeleteRole answers
    // DeleteConflict ("must detach all policies first").
    retry_while(&[ErrorKind::Conflict], PROPAGATION, || async {
        let deleted = client.delete_role().role_name(name).send().await;
        Ok(none_if(ErrorKind::NotFound, "DeleteRole", name, deleted)?.is_some())
    })
    .await
}

async fn detach_policy(client: &Client, role: &str, arn: &str) -> Result<(), AwsError> {
    let detached = client
        .detach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await;
    none_if(
        ErrorKind::NotFound,
        "DetachRolePolicy",
        format!("{role} {arn}"),
        detached,
    )?;
    Ok(())
}

async fn delete_inline_policy(client: &Client, role: &str, policy: &str) -> Result<(), AwsError> {
    let deleted = client
        .delete_role_policy()
        .role_name(role)
        .policy_name(policy)
        .send()
        .await;
    none_if(
        ErrorKind::NotFound,
        "DeleteRolePolicy",
        format!("{role} {policy}"),
        deleted,
    )?;
    Ok(())
}

/// IAM returns policy documents URL-encoded (RFC 3986).
fn parse_policy_document(document: &str) -> Option<Value> {
    serde_json::from_str(document)
        .ok()
        .or_else(|| serde_json::from_str(&percent_decode(document)?).ok())
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn iam_tags(tags: &BTreeMap<String, String>, role: &str) -> Result<Vec<Tag>, AwsError> {
    tags.iter()
        .map(|(key, value)| {
            Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|err| AwsError::invalid_answer("TagRole", role, err.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Stage;

    fn actual_of(desired: &DesiredRole) -> ActualRole {
        ActualRole {
            name: desired.name.clone(),
            arn: format!("arn:aws:iam::123456789012:role/{}", desired.name),
            trust_policy: desired.trust_policy.clone(),
            managed_policies: desired.managed_policies.clone(),
            inline_policies: vec![],
            tags: desired.tags.clone(),
        }
    }

    #[test]
    fn tracing_adds_the_xray_policy() {
        let mut stage = Stage::defaults("app", "dev", "us-east-1");
        stage.function.tracing = false;
        let plain = DesiredRole::for_stage(&stage);
        assert_eq!(plain.name, "app-dev-exec");
        assert_eq!(plain.managed_policies.len(), 1);
        stage.function.tracing = true;
        let traced = DesiredRole::for_stage(&stage);
        assert!(
            traced
                .managed_policies
                .contains("arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess")
        );
        let china = DesiredRole::for_stage(&Stage::defaults("app", "dev", "cn-north-1"));
        assert!(
            china
                .managed_policies
                .iter()
                .all(|a| a.starts_with("arn:aws-cn:"))
        );
    }

    #[test]
    fn role_diff_names_each_difference() {
        let desired = DesiredRole::for_stage(&Stage::defaults("app", "dev", "us-east-1"));
        assert_eq!(diff_role(&desired, None), Action::Create);
        assert_eq!(
            diff_role(&desired, Some(&actual_of(&desired))),
            Action::Unchanged
        );
        let mut drifted = actual_of(&desired);
        drifted
            .managed_policies
            .insert("arn:aws:iam::aws:policy/AdministratorAccess".into());
        drifted.inline_policies.push("extra".into());
        drifted.trust_policy = serde_json::json!({});
        assert_eq!(
            diff_role(&desired, Some(&drifted)),
            Action::Update(BTreeSet::from([
                RoleField::TrustPolicy,
                RoleField::ManagedPolicies,
                RoleField::InlinePolicies
            ]))
        );
    }

    #[test]
    fn url_encoded_documents_are_read() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%7D";
        assert_eq!(
            parse_policy_document(encoded),
            Some(serde_json::json!({"Version": "2012-10-17"}))
        );
        assert_eq!(parse_policy_document("%7"), None);
    }
}
