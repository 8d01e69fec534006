//! The app's deployed stages as their functions tell them: every
//! container-image function named `{app}-...` whose tags say it is the
//! app's (`deployer:app`) and name its stage (`deployer:stage`), with the
//! version its stage's alias serves and when that version was published.
//! What `deployer stages`, `prune` and a `destroy` from the tags alone
//! start from; deploy.toml is not consulted.

use super::*;
use crate::aws::permissions::{Scope, call};
use crate::names::{TAG_APP, TAG_STAGE};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`):
/// reads of any function of the app, since a stage's name is known only
/// once its function's tags are read.
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("ListFunctions", "lambda:ListFunctions", Scope::Any),
        call("GetFunction", "lambda:GetFunction", Scope::AppFunctions),
        call("ListTags", "lambda:ListTags", Scope::AppFunctions),
    ],
};

/// One stage's function, as its tags and its alias tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageFunction {
    pub function: String,
    /// `deployer:stage`.
    pub stage: String,
    /// When the function's code or configuration last changed (its
    /// `LastModified`): when a stage whose alias never moved was deployed.
    pub changed: String,
    pub tags: BTreeMap<String, String>,
    /// The version the stage's alias serves, and when it was published
    /// (Lambda's `LastModified` of that version); `None`: no alias.
    pub serving: Option<(String, String)>,
}

/// Every stage function of `app` (functions named `prefix`...), and the
/// functions that could not be read (access denied: a role scoped to some
/// stages reads only theirs), each with why.
pub async fn app_stage_functions(
    client: &Client,
    prefix: &str,
    app: &str,
) -> Result<(Vec<StageFunction>, Vec<String>), AwsError> {
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for name in images::app_functions(client, prefix).await? {
        let answer = match get_function(client, &name, None).await {
            Ok(answer) => answer,
            Err(err) => match aws_error("GetFunction", &name, err) {
                // Deleted since the listing.
                err if err.kind == ErrorKind::NotFound => continue,
                err if err.kind == ErrorKind::AccessDenied => {
                    unreadable.push(format!("{name}: {err}"));
                    continue;
                }
                err => return Err(err),
            },
        };
        let config = answer.configuration();
        let arn = config.and_then(|c| c.function_arn());
        let tags = match list_tags(client, &name, arn).await {
            Ok(tags) => tags,
            Err(err) if err.kind == ErrorKind::AccessDenied => {
                unreadable.push(format!("{name}: {err}"));
                continue;
            }
            Err(err) => return Err(err),
        };
        let changed = config
            .and_then(|c| c.last_modified())
            .unwrap_or_default()
            .to_string();
        let (Some(tag_app), Some(stage)) = (tags.get(TAG_APP), tags.get(TAG_STAGE).cloned()) else {
            continue;
        };
        if tag_app != app {
            continue;
        }
        // The alias is named after the stage (`Stage::alias_name`).
        let serving = none_if(
            ErrorKind::NotFound,
            "GetFunction",
            &name,
            get_function(client, &name, Some(&stage)).await,
        )?
        .and_then(|answer| answer.configuration().cloned())
        .map(|config| {
            (
                config.version().unwrap_or_default().to_string(),
                config.last_modified().unwrap_or_default().to_string(),
            )
        });
        found.push(StageFunction {
            function: name,
            stage,
            changed,
            tags,
            serving,
        });
    }
    Ok((found, unreadable))
}
