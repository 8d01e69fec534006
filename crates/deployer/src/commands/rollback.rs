//! `deployer rollback [--to VERSION]`: under the stage lock, points the
//! stage's alias at an earlier published version — by default the newest
//! one below the version it serves now that passed its checks (recorded on
//! the function's tag, [`lambda::PASSED_TAG`], by `up` and by `rollback`),
//! never one that failed them. The target is checked before callers meet
//! it, as `up` checks a new version: woken and waited for until `Active`
//! (an idle version is `Inactive`, and an invoke of it fails until Lambda
//! has restored it), smoke-tested, and only then is the alias moved; then
//! provisioned concurrency, if the stage has it, is waited for, and the
//! public path check runs through the stage's URL, which moves the alias
//! back if it fails. Versions are immutable, so no build is needed; the API
//! and its permission name the alias, not a version, so they follow it
//! untouched. The next `up` points the alias at what deploy.toml and the
//! workspace describe again.

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use crate::aws::{self, Clients, apigw, lambda};
use crate::cli::RollbackArgs;
use crate::config::Stage;
use crate::exit::{ExitStatus, Failure};
use crate::names::Names;
use crate::plan::Kind;
use crate::stage::desired::{self, DesiredStage};
use crate::stage::{lock, release};
use crate::ui::Ui;

/// A rollback that cannot be done as asked (exit code 2).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RollbackError {
    #[error(
        "nothing is deployed on stage {stage}: the function {function} has no alias {alias}; \
         `deployer up --stage {stage}` deploys it"
    )]
    NotDeployed {
        stage: String,
        function: String,
        alias: String,
    },
    #[error(
        "nothing to roll back to: the alias {alias} serves version {current}, and {function} \
         has no published version below it that passed its checks (published: {published}; \
         passed: {passed}); `--to VERSION` rolls back to another one, which is checked first"
    )]
    NoEarlierVersion {
        function: String,
        alias: String,
        current: String,
        published: String,
        passed: String,
    },
    #[error(
        "version {requested} of {function} does not exist (published: {published}); \
         pass one of those to --to"
    )]
    NoSuchVersion {
        function: String,
        requested: u32,
        published: String,
    },
}

/// Where the alias was and where it is now.
#[derive(Debug, Serialize)]
pub struct RollbackReport {
    pub stage: String,
    pub function: String,
    pub alias: String,
    pub from: String,
    pub to: String,
    /// False when the alias already served the version asked for.
    pub moved: bool,
}

impl fmt::Display for RollbackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.moved {
            write!(
                f,
                "{}:{} moved from version {} to version {}",
                self.function, self.alias, self.from, self.to
            )
        } else {
            write!(
                f,
                "{}:{} already serves version {}; nothing moved",
                self.function, self.alias, self.to
            )
        }
    }
}

pub async fn run(stage: &Stage, ui: &Ui, args: &RollbackArgs) -> Result<()> {
    let clients = Clients::new(&aws::sdk_config(&stage.connection()).await);
    let names = desired::names(stage, &clients).await?;
    // Under the lock, as `up` and `destroy`: a rollback interleaved with
    // an `up` would move the alias under it.
    let work = roll_back(stage, &names, ui, &clients, args);
    let report = lock::locked(stage, &names, ui, &clients, "rolled back", work).await?;
    ui.result(&report)
}

async fn roll_back(
    stage: &Stage,
    names: &Names,
    ui: &Ui,
    clients: &Clients,
    args: &RollbackArgs,
) -> Result<RollbackReport> {
    let function = stage.function_name();
    let alias_name = stage.alias_name();

    let step = ui.step("read");
    let (alias, versions, passed) = tokio::try_join!(
        lambda::read_alias(&clients.lambda, &function, &alias_name),
        // No function, no versions: the missing alias says it better.
        lambda::list_versions(&clients.lambda, &function),
        lambda::passed_versions(&clients.lambda, &function),
    )?;
    let Some(alias) = alias else {
        step.finish("nothing deployed");
        let not_deployed = RollbackError::NotDeployed {
            stage: stage.name.clone(),
            function,
            alias: alias_name,
        };
        return Err(Failure::tag(ExitStatus::Usage, not_deployed));
    };
    let published: Vec<u64> = versions
        .iter()
        .filter_map(|v| v.version.parse().ok())
        .collect();
    step.finish(format!(
        "{alias_name} → {} of {} published, {} passed their checks",
        alias.version,
        published.len(),
        passed.len()
    ));
    let target = target_version(
        &function,
        &alias_name,
        &alias.version,
        &published,
        &passed,
        args.to,
    )?;
    let to = target.to_string();
    let from = alias.version.clone();
    let report = RollbackReport {
        stage: stage.name.clone(),
        function: function.clone(),
        alias: alias_name.clone(),
        from: from.clone(),
        to: to.clone(),
        moved: to != from,
    };
    if !report.moved {
        return Ok(report);
    }
    if stage.protected {
        let question = format!(
            "stage `{}` is protected by {}: move {function}:{alias_name} from version {from} \
             to version {to}?",
            stage.name,
            stage.protected_setting()
        );
        if !ui.confirm(&question)? {
            anyhow::bail!("not rolled back: the answer was not yes; nothing was changed");
        }
    }

    // Checked before callers meet it, as `up` checks a new version.
    let step = ui.step(format!("{} ready", Kind::LambdaVersion));
    lambda::wait_until_ready(&clients.lambda, &function, Some(&to)).await?;
    step.finish(format!("{to} active"));
    release::smoke_test(stage, ui, clients, &to, Some(&from)).await?;
    let step = ui.step(Kind::LambdaAlias);
    lambda::ensure_alias(&clients.lambda, &function, &alias_name, &to).await?;
    step.finish(format!("{alias_name}: {from} → {to}"));
    if stage.function.provisioned_concurrency > 0 {
        // Lambda allocates the alias's provisioned concurrency again for
        // the version it now points at.
        release::wait_provisioned(ui, clients, &function, &alias_name).await?;
    }
    let desired = DesiredStage::new(stage, names.clone());
    match apigw::read_api(&clients.apigw, &desired.api).await? {
        Some(api) => {
            // The API's own URL, not a custom domain's: a rollback moves
            // only the alias, and a domain or mapping fault (not the
            // version's) must not move it back. `up`, which changes the
            // domain, checks through it.
            let url = names.stage_url(&api.id);
            release::public_path_check(stage, ui, clients, &url, Some(Some(from))).await?;
        }
        None => ui.warn(format!(
            "the stage has no API {}: the public path check was skipped; \
             `deployer up --stage {}` makes it",
            desired.api.name, stage.name
        )),
    }
    release::record_passed(ui, clients, &function, &to).await;
    Ok(report)
}

/// The version to move to: `requested` if it is published, else the
/// newest version below `current` that passed its checks (`passed`) and
/// is still published. A rollback that cannot be done is a usage error.
pub fn target_version(
    function: &str,
    alias: &str,
    current: &str,
    published: &[u64],
    passed: &[u64],
    requested: Option<u32>,
) -> Result<u64> {
    version_to(function, alias, current, published, passed, requested)
        .map_err(|err| Failure::tag(ExitStatus::Usage, err))
}

fn list(versions: &[u64]) -> String {
    if versions.is_empty() {
        "none".to_string()
    } else {
        versions
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn version_to(
    function: &str,
    alias: &str,
    current: &str,
    published: &[u64],
    passed: &[u64],
    requested: Option<u32>,
) -> Result<u64, RollbackError> {
    if let Some(requested) = requested {
        return if published.contains(&u64::from(requested)) {
            Ok(u64::from(requested))
        } else {
            Err(RollbackError::NoSuchVersion {
                function: function.to_string(),
                requested,
                published: list(published),
            })
        };
    }
    // An alias on `$LATEST` (not set by the deployer) is above every version.
    let below = current.parse::<u64>().unwrap_or(u64::MAX);
    published
        .iter()
        .copied()
        .filter(|v| *v < below && passed.contains(v))
        .max()
        .ok_or_else(|| RollbackError::NoEarlierVersion {
            function: function.to_string(),
            alias: alias.to_string(),
            current: current.to_string(),
            published: list(published),
            passed: list(passed),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(
        current: &str,
        published: &[u64],
        passed: &[u64],
        requested: Option<u32>,
    ) -> Result<u64, String> {
        target_version("f", "dev", current, published, passed, requested).map_err(|e| e.to_string())
    }

    #[test]
    fn by_default_the_newest_passed_version_below_the_current_one() {
        assert_eq!(target("3", &[1, 2, 3], &[1, 2, 3], None), Ok(2));
        // A version that failed its checks (never recorded) is skipped.
        assert_eq!(target("3", &[1, 2, 3], &[1, 3], None), Ok(1));
        // After a rollback to 1 from 3, another goes nowhere.
        assert!(target("1", &[1, 2, 3], &[1, 2, 3], None).is_err());
        // Versions deleted in between are skipped, even if they passed.
        assert_eq!(target("7", &[2, 5, 7], &[2, 4, 5, 6, 7], None), Ok(5));
        // Rolled back to 2, the default keeps going down, not up to 3.
        assert_eq!(target("2", &[1, 2, 3], &[1, 2, 3], None), Ok(1));
    }

    #[test]
    fn nothing_below_says_what_is_published_and_what_passed() {
        let err = target("2", &[1, 2], &[2], None).unwrap_err();
        assert!(err.contains("nothing to roll back to"), "{err}");
        assert!(err.contains("published: 1, 2"), "{err}");
        assert!(err.contains("passed: 2") && err.contains("--to"), "{err}");
    }

    #[test]
    fn a_requested_version_must_be_published() {
        assert_eq!(target("1", &[1, 2], &[], Some(2)), Ok(2));
        assert_eq!(target("2", &[1, 2], &[], Some(2)), Ok(2));
        let err = target("2", &[1, 2], &[], Some(99)).unwrap_err();
        assert!(
            err.contains("version 99 of f does not exist") && err.contains("published: 1, 2"),
            "{err}"
        );
    }

    #[test]
    fn a_rollback_that_cannot_be_done_is_a_usage_error() {
        let err = target_version("f", "dev", "1", &[1], &[1], None)
            .unwrap_err()
            .context("rolling back");
        assert_eq!(crate::exit::classify(&err), crate::exit::ExitStatus::Usage);
    }
}
