//! `deployer destroy`: removes every resource of one stage — the API's
//! permission on the alias, the REST API with its key and usage plan, the
//! alias's provisioned concurrency and the function's reservation, the
//! function with its alias and versions, the role and the log group — and
//! the app's ECR repository once no function uses an image of it any more
//! (stages share it). It reads first, asks (a terminal) or needs `--yes`
//! (anything else), then deletes in that order, so an interrupted run
//! leaves nothing that points at what is gone; a second run finds nothing
//! and says so.
//!
//! A stage with `protected = true` (production: its URL would change for
//! good) is destroyed only when the operator types its name at the prompt
//! or passes `--force-protected`; `--yes` alone does not do it, so a
//! script written for `dev` cannot remove `prod`.
//!
//! The survey, the question and the deletions run under the stage lock
//! that `up` takes ([`lock`](crate::aws::lock)), so an `up` and a `destroy` of one stage
//! never interleave (an `up` half-way through would otherwise recreate
//! what was just deleted, or plan from resources that are gone). The lock
//! is its own log group, never one of the stage's resources: the survey
//! does not see it, and releasing it at the end leaves nothing behind. A
//! killed `destroy` leaves its lock; the next run breaks it (its pid is
//! dead on this host) and finishes the work.

use std::fmt;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use crate::aws::{self, Clients, apigw, ecr, iam, lambda, logs};
use crate::cli::DestroyArgs;
use crate::config::Stage;
use crate::exit::{ExitStatus, Failure};
use crate::names::Names;
use crate::stage::desired::{DesiredStage, PERMISSION_ID};
use crate::stage::plan::kind;
use crate::stage::{actual, desired, lock};
use crate::ui::Ui;

/// One resource of the stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    pub kind: String,
    pub name: String,
}

impl Resource {
    fn new(kind: &str, name: impl Into<String>) -> Resource {
        Resource {
            kind: kind.to_string(),
            name: name.into(),
        }
    }
}

/// A resource left in place, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kept {
    pub kind: String,
    pub name: String,
    pub reason: String,
}

/// What `destroy` removed and what it left.
#[derive(Debug, Serialize)]
pub struct DestroyReport {
    pub stage: String,
    pub removed: Vec<Resource>,
    pub kept: Vec<Kept>,
    pub seconds: f64,
}

impl fmt::Display for DestroyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.removed.is_empty() {
            writeln!(
                f,
                "Nothing to remove: stage {} has no resources.",
                self.stage
            )?;
        } else {
            writeln!(f, "Removed from stage {}:", self.stage)?;
            writeln!(f, "{}", render(&self.removed))?;
        }
        for k in &self.kept {
            writeln!(f, "Kept {} {}: {}", k.kind, k.name, k.reason)?;
        }
        write!(f, "done in {:.1} s", self.seconds)
    }
}

/// One aligned `kind  name` line per resource.
fn render(resources: &[Resource]) -> String {
    let width = resources.iter().map(|r| r.kind.len()).max().unwrap_or(0);
    resources
        .iter()
        .map(|r| format!("  {:<width$}  {}", r.kind, r.name))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the stage has in AWS.
#[derive(Debug, Default)]
struct Found {
    permission: bool,
    api: Option<apigw::ActualApi>,
    alias: Option<lambda::AliasInfo>,
    /// The alias has provisioned concurrency.
    provisioned: bool,
    /// The function has reserved concurrency.
    reserved: bool,
    versions: Vec<lambda::VersionInfo>,
    function: bool,
    role: bool,
    log_group: bool,
    repository: bool,
    /// Other functions whose image is in the repository.
    repository_users: Vec<String>,
}

impl Found {
    /// Everything that will go, in the order it goes.
    fn to_remove(&self, stage: &Stage) -> Vec<Resource> {
        let function = stage.function_name();
        let mut list = Vec::new();
        if self.permission {
            list.push(Resource::new(
                kind::LAMBDA_PERMISSION,
                format!("{function}:{}/{PERMISSION_ID}", stage.alias_name()),
            ));
        }
        if let Some(api) = &self.api {
            list.push(Resource::new(
                kind::API_REST_API,
                format!("{} ({})", stage.api_name(), api.id),
            ));
            for duplicate in &api.duplicates {
                list.push(Resource::new(
                    kind::API_REST_API,
                    format!("{} ({duplicate})", stage.api_name()),
                ));
            }
            if let Some(key) = &api.api_key {
                list.push(Resource::new(kind::API_KEY, key.id.clone()));
            }
            if let Some(plan) = &api.usage_plan {
                list.push(Resource::new(kind::API_USAGE_PLAN, plan.id.clone()));
            }
        }
        if self.provisioned {
            list.push(Resource::new(
                kind::LAMBDA_PROVISIONED_CONCURRENCY,
                format!("{function}:{}", stage.alias_name()),
            ));
        }
        if self.reserved {
            list.push(Resource::new(kind::LAMBDA_RESERVED_CONCURRENCY, &function));
        }
        if let Some(alias) = &self.alias {
            list.push(Resource::new(
                kind::LAMBDA_ALIAS,
                format!("{function}:{} (version {})", alias.name, alias.version),
            ));
        }
        for version in &self.versions {
            list.push(Resource::new(
                kind::LAMBDA_VERSION,
                format!("{function}:{}", version.version),
            ));
        }
        if self.function {
            list.push(Resource::new(kind::LAMBDA_FUNCTION, function));
        }
        if self.role {
            list.push(Resource::new(kind::IAM_ROLE, stage.role_name()));
        }
        if self.log_group {
            list.push(Resource::new(kind::LOG_GROUP, stage.log_group_name()));
        }
        if self.repository && self.repository_users.is_empty() {
            list.push(Resource::new(kind::ECR_REPOSITORY, stage.repository_name()));
        }
        list
    }

    fn kept(&self, stage: &Stage) -> Vec<Kept> {
        if !self.repository || self.repository_users.is_empty() {
            return Vec::new();
        }
        vec![Kept {
            kind: kind::ECR_REPOSITORY.into(),
            name: stage.repository_name(),
            reason: format!("still used by {}", self.repository_users.join(", ")),
        }]
    }
}

pub async fn run(stage: &Stage, ui: &Ui, args: &DestroyArgs) -> Result<()> {
    let started = Instant::now();
    // A protected stage with nobody to type its name: refused before any
    // AWS call, so nothing is read, locked or deleted.
    let typed = stage.protected && !args.force_protected;
    if typed && !ui.can_ask() {
        return Err(refused_protected(stage));
    }
    let clients = Clients::new(&aws::sdk_config(&stage.connection()).await);
    let names = desired::names(stage, &clients).await?;
    // Taken before the survey: one taken before an `up`'s apply would ask
    // about, and delete from, a state that is gone. At a terminal the lock
    // is held while the question waits for its answer; another run waits
    // (up to a minute) and then says who holds it.
    let work = survey_and_remove(stage, &names, ui, &clients, started, typed);
    let report = lock::locked(stage, &names, ui, &clients, "destroyed", work).await?;
    ui.result(&report)
}

/// The refusal to destroy a protected stage: exit 2, naming the setting
/// and the two ways past it.
fn refused_protected(stage: &Stage) -> anyhow::Error {
    Failure::tag(
        ExitStatus::Usage,
        anyhow::anyhow!(
            "stage `{}` is protected by {}: not destroyed, nothing was deleted; \
             type the stage's name at the prompt on a terminal, or pass --force-protected \
             (and --yes without a terminal)",
            stage.name,
            stage.protected_setting()
        ),
    )
}

/// Surveys the stage, asks (on a protected stage, for its name typed), and
/// deletes what it found.
async fn survey_and_remove(
    stage: &Stage,
    names: &Names,
    ui: &Ui,
    clients: &Clients,
    started: Instant,
    typed: bool,
) -> Result<DestroyReport> {
    let step = ui.step("survey");
    let found = survey(stage, names, clients).await?;
    let removed = found.to_remove(stage);
    step.finish(format!("{} to remove", removed.len()));

    if !removed.is_empty() {
        if !ui.json() {
            ui.info(format!("will remove:\n{}", render(&removed)));
        }
        let question = format!(
            "destroy stage {} of {} in {} ({} resources)?",
            stage.name,
            stage.app,
            stage.region,
            removed.len()
        );
        if typed {
            let question = format!("stage {} is protected: {question}", stage.name);
            if !ui.confirm_typed(&question, &stage.name, "--force-protected")? {
                return Err(refused_protected(stage));
            }
        } else if !ui.confirm(&question)? {
            anyhow::bail!("not destroyed: the answer was not yes");
        }
        // Ctrl-C is caught only from here on: once caught it no longer
        // ends the process, and the question above is a blocking read it
        // must still end. Before, it ends the process, the lock stays, and
        // the next run on this host breaks it. From here the deletions
        // stop where they are (the next `destroy` finishes them) and the
        // lock is released.
        tokio::select! {
            result = remove(stage, ui, clients, &found) => result?,
            _ = tokio::signal::ctrl_c() => anyhow::bail!(
                "interrupted; the stage lock is released and the next `destroy` finishes the work"
            ),
        }
    }

    Ok(DestroyReport {
        stage: stage.name.clone(),
        removed,
        kept: found.kept(stage),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Reads what the stage has through the same reader as `plan` and `up`
/// (concurrently, no image hash), then its versions and the other
/// functions that use the repository. Changes nothing.
async fn survey(stage: &Stage, names: &Names, clients: &Clients) -> Result<Found> {
    let mut desired = DesiredStage::new(stage, names.clone());
    // destroy removes whatever concurrency exists; what the stage asks for,
    // and so the account's quota (GetAccountSettings), is no concern of it.
    desired.concurrency = lambda::DesiredConcurrency::default();
    let function_name = desired.function_name.as_str();
    // Never an error: a function that cannot be read counts as a user, so
    // the repository is kept (deletion fails closed).
    let prefix = names.app_function_prefix();
    let (actual, users) = tokio::join!(
        actual::read(&desired, None, clients),
        lambda::functions_using_repository(
            &clients.lambda,
            &prefix,
            &names.repository_uri,
            function_name,
        ),
    );
    let actual = actual?;
    let versions = match &actual.function {
        Some(_) => lambda::list_versions(&clients.lambda, function_name).await?,
        None => Vec::new(),
    };
    Ok(Found {
        permission: actual.alias.is_some() && actual.permission.is_some(),
        function: actual.function.is_some(),
        role: actual.role.is_some(),
        log_group: actual.log_group.is_some(),
        repository: actual.repository.is_some(),
        provisioned: actual.provisioned.is_some(),
        reserved: actual.reserved.is_some(),
        // A REST API with the stage's name but not its tags is not the
        // stage's: `delete_api` would skip it, so it is not listed either.
        api: actual.api.filter(|api| api.is_ours(&desired.api.tags)),
        alias: actual.alias,
        versions,
        repository_users: users,
    })
}

/// Deletes what the survey found, callers before what they call.
async fn remove(stage: &Stage, ui: &Ui, clients: &Clients, found: &Found) -> Result<()> {
    let function_name = stage.function_name();
    if found.permission {
        let step = ui.step(kind::LAMBDA_PERMISSION);
        lambda::remove_permission(
            &clients.lambda,
            &function_name,
            &stage.alias_name(),
            PERMISSION_ID,
        )
        .await?;
        step.finish("removed");
    }
    if let Some(api) = &found.api {
        let step = ui.step(kind::API_REST_API);
        apigw::delete_api(&clients.apigw, &stage.api_name(), &stage.tags()).await?;
        step.finish(match (&api.api_key, &api.usage_plan) {
            (None, None) => "removed",
            _ => "removed with its key and usage plan",
        });
    }
    // Deleting the function would take both with it; removed on their
    // own first, so the output names them and the allocation (which is
    // billed) ends before the slower deletions.
    if found.provisioned {
        let step = ui.step(kind::LAMBDA_PROVISIONED_CONCURRENCY);
        lambda::delete_provisioned(&clients.lambda, &function_name, &stage.alias_name()).await?;
        step.finish("removed");
    }
    if found.reserved {
        let step = ui.step(kind::LAMBDA_RESERVED_CONCURRENCY);
        lambda::delete_reserved(&clients.lambda, &function_name).await?;
        step.finish("removed");
    }
    if found.function {
        let step = ui.step(kind::LAMBDA_FUNCTION);
        lambda::delete_function(&clients.lambda, &function_name).await?;
        let versions = match found.versions.len() {
            1 => "1 version".to_string(),
            n => format!("{n} versions"),
        };
        let alias = if found.alias.is_some() {
            "its alias and "
        } else {
            ""
        };
        step.finish(format!("removed with {alias}{versions}"));
    }
    if found.role {
        let step = ui.step(kind::IAM_ROLE);
        iam::delete_role(&clients.iam, &stage.role_name()).await?;
        step.finish("removed");
    }
    if found.log_group {
        let step = ui.step(kind::LOG_GROUP);
        logs::delete_log_group(&clients.logs, &stage.log_group_name()).await?;
        step.finish("removed");
    }
    if found.repository {
        let step = ui.step(kind::ECR_REPOSITORY);
        if found.repository_users.is_empty() {
            ecr::delete_repository(&clients.ecr, &stage.repository_name()).await?;
            step.finish("removed with its images");
        } else {
            step.finish(format!(
                "kept: still used by {}",
                found.repository_users.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage() -> Stage {
        Stage::defaults("shop", "dev", "us-east-1")
    }

    #[test]
    fn nothing_found_is_nothing_to_remove() {
        let found = Found::default();
        assert!(found.to_remove(&stage()).is_empty());
        let report = DestroyReport {
            stage: "dev".into(),
            removed: Vec::new(),
            kept: Vec::new(),
            seconds: 0.1,
        };
        assert!(
            report.to_string().starts_with("Nothing to remove"),
            "{report}"
        );
    }

    #[test]
    fn callers_go_before_what_they_call_and_a_used_repository_stays() {
        let found = Found {
            permission: true,
            provisioned: true,
            reserved: true,
            function: true,
            role: true,
            log_group: true,
            repository: true,
            versions: vec![lambda::VersionInfo {
                version: "1".into(),
                arn: "arn".into(),
                description: String::new(),
                last_modified: String::new(),
            }],
            repository_users: vec!["shop-prod".into()],
            ..Found::default()
        };
        let kinds: Vec<String> = found
            .to_remove(&stage())
            .into_iter()
            .map(|r| r.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                kind::LAMBDA_PERMISSION,
                kind::LAMBDA_PROVISIONED_CONCURRENCY,
                kind::LAMBDA_RESERVED_CONCURRENCY,
                kind::LAMBDA_VERSION,
                "lambda function",
                "iam role",
                "log group"
            ]
        );
        let kept = found.kept(&stage());
        assert_eq!(kept.len(), 1);
        assert!(kept[0].reason.contains("shop-prod"), "{kept:?}");

        let unused = Found {
            repository: true,
            ..Found::default()
        };
        assert_eq!(
            unused.to_remove(&stage()),
            [Resource::new(kind::ECR_REPOSITORY, "shop")]
        );
        assert!(unused.kept(&stage()).is_empty());
    }
}
