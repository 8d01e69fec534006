//! The stage's alias: read, diff over [`AliasField`], created or moved,
//! deleted.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("GetAlias", "lambda:GetAlias", Scope::Function),
        call("CreateAlias", "lambda:CreateAlias", Scope::Function),
        call("UpdateAlias", "lambda:UpdateAlias", Scope::Function),
        call("DeleteAlias", "lambda:DeleteAlias", Scope::Function),
    ],
};

/// The stage's alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasInfo {
    pub name: String,
    pub arn: String,
    pub version: String,
}

/// The alias; `None` when it (or the function) does not exist.
pub async fn read_alias(
    client: &Client,
    function: &str,
    alias: &str,
) -> Result<Option<AliasInfo>, AwsError> {
    let answer = client
        .get_alias()
        .function_name(function)
        .name(alias)
        .send()
        .await;
    let resource = format!("{function}:{alias}");
    Ok(
        none_if(ErrorKind::NotFound, "GetAlias", resource, answer)?.map(|answer| AliasInfo {
            name: alias.to_string(),
            arn: answer.alias_arn().unwrap_or_default().to_string(),
            version: answer.function_version().unwrap_or_default().to_string(),
        }),
    )
}

/// What of the alias can differ: the version it points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AliasField {
    Version,
}

impl Field for AliasField {}

/// Whether the alias must be created or moved to `version`.
pub fn diff_alias(version: &str, actual: Option<&AliasInfo>) -> Action<AliasField> {
    match actual {
        None => Action::Create,
        Some(alias) if alias.version == version => Action::Unchanged,
        Some(_) => Action::Update(BTreeSet::from([AliasField::Version])),
    }
}

/// Points the alias at `version`, creating it if needed (read, diff, apply).
pub async fn ensure_alias(
    client: &Client,
    function: &str,
    alias: &str,
    version: &str,
) -> Result<(Outcome, AliasInfo), AwsError> {
    let actual = read_alias(client, function, alias).await?;
    if let Some(actual) = actual.as_ref().filter(|a| a.version == version) {
        return Ok((Outcome::Unchanged, actual.clone()));
    }
    let action = diff_alias(version, actual.as_ref());
    apply_alias(client, function, alias, version, &action).await
}

/// Carries out `action` on the alias: creates it at `version` (moving it
/// if another run created it meanwhile), moves it, or deletes it.
pub async fn apply_alias(
    client: &Client,
    function: &str,
    alias: &str,
    version: &str,
    action: &Action<AliasField>,
) -> Result<(Outcome, AliasInfo), AwsError> {
    let resource = format!("{function}:{alias}");
    let info = |arn: Option<&str>| AliasInfo {
        name: alias.to_string(),
        arn: arn.unwrap_or_default().to_string(),
        version: version.to_string(),
    };
    let outcome = match action {
        Action::Unchanged => return Ok((Outcome::Unchanged, info(None))),
        Action::Delete => {
            delete_alias(client, function, alias).await?;
            return Ok((Outcome::Deleted, info(None)));
        }
        Action::Create => {
            let created = client
                .create_alias()
                .function_name(function)
                .name(alias)
                .function_version(version)
                .send()
                .await;
            if let Some(answer) =
                none_if(ErrorKind::AlreadyExists, "CreateAlias", &resource, created)?
            {
                return Ok((Outcome::Created, info(answer.alias_arn())));
            }
            // Made meanwhile by another run: move it below.
            Outcome::Updated
        }
        Action::Update(fields) => {
            for field in fields {
                match field {
                    AliasField::Version => {}
                }
            }
            Outcome::Updated
        }
    };
    let answer = retry_while(&[ErrorKind::Conflict], CONFLICT_RETRY, || async {
        client
            .update_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .send()
            .await
            .map_err(|err| aws_error("UpdateAlias", resource.clone(), err))
    })
    .await?;
    Ok((outcome, info(answer.alias_arn())))
}

/// Removes the alias (and with it its permissions); gone already is fine.
pub async fn delete_alias(client: &Client, function: &str, alias: &str) -> Result<(), AwsError> {
    let deleted = client
        .delete_alias()
        .function_name(function)
        .name(alias)
        .send()
        .await;
    none_if(
        ErrorKind::NotFound,
        "DeleteAlias",
        format!("{function}:{alias}"),
        deleted,
    )?;
    Ok(())
}
