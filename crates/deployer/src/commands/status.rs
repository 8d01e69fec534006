//! `deployer status`: what of the stage exists in AWS, where it answers,
//! which version the alias serves (its image digest and when it was
//! published), how much of its memory the function really uses, from
//! Lambda's `REPORT` log lines, and its concurrency (the function's
//! reservation, the alias's provisioned concurrency and whether Lambda has
//! allocated it). Reads only.
//!
//! It starts from the same survey as `plan`, `up` and `destroy`
//! (`stage::survey`), but without hashing the workspace's sources: status
//! answers about what is deployed, from anywhere deploy.toml is. Its rows
//! are the plan's resources that `status` lists ([`Kind::in_status`]),
//! each marked by whether the survey found it.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde::Serialize;

use crate::aws::{self, AwsError, Clients, lambda, logs};
use crate::cli::StatusArgs;
use crate::config::{Auth, Stage};
use crate::plan::Kind;
use crate::stage::domain::{self, DomainReport};
use crate::stage::memory::{MemoryReport, memory_report};
use crate::stage::release::ApiKeyReport;
use crate::stage::{Purpose, desired, parts, survey};
use crate::ui::Ui;

/// How far back the `REPORT` lines are read for the memory advice.
const MEMORY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// What is deployed on a stage.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub stage: String,
    pub app: String,
    pub region: String,
    /// Whether any resource of the stage itself exists (the repository is
    /// shared by all stages, so it alone does not count).
    pub deployed: bool,
    pub resources: Vec<Resource>,
    pub url: Option<String>,
    pub function: String,
    pub alias: String,
    /// The version behind the alias.
    pub version: Option<String>,
    /// Every published version, oldest first.
    pub versions: Vec<String>,
    /// The image of the alias's version, by digest.
    pub image: Option<String>,
    pub digest: Option<String>,
    /// When the alias's version was published (Lambda's LastModified).
    pub deployed_at: Option<String>,
    pub memory: Option<MemoryReport>,
    pub concurrency: ConcurrencyReport,
    /// With `auth = "api_key"`: the key by id and how to read its value.
    pub api_key: Option<ApiKeyReport>,
    /// With `[api.domain]`: the custom domain, its target and its
    /// certificate's state.
    pub domain: Option<DomainReport>,
    /// `[alarms]`: each alarm's state (`OK`, `ALARM`,
    /// `INSUFFICIENT_DATA`) with CloudWatch's reason.
    pub alarms: Vec<aws::alarms::ActualAlarm>,
}

/// One resource of the stage and whether it exists; `kind` as the plan
/// spells it.
#[derive(Debug, Serialize)]
pub struct Resource {
    pub kind: Kind,
    pub name: String,
    pub exists: bool,
}

/// The function's concurrency settings as Lambda has them.
#[derive(Debug, Serialize)]
pub struct ConcurrencyReport {
    /// The function's reserved concurrency; `None`: it shares the
    /// account's unreserved pool.
    pub reserved: Option<i32>,
    /// The alias's provisioned concurrency, with Lambda's allocation status.
    pub provisioned: Option<lambda::ProvisionedConcurrency>,
    /// The account's quota and what is left unreserved in the Region: the
    /// headroom a larger setting would take from (read only on a stage
    /// that sets reserved or provisioned concurrency).
    pub account: Option<lambda::AccountConcurrency>,
}

impl fmt::Display for ConcurrencyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.provisioned {
            Some(p) => {
                write!(
                    f,
                    "provisioned {} on the alias, {} ({} allocated)",
                    p.requested, p.status, p.allocated
                )?;
                if let Some(reason) = &p.reason {
                    write!(f, ": {reason}")?;
                }
            }
            None => write!(f, "no provisioned concurrency")?,
        }
        match self.reserved {
            Some(reserved) => write!(f, "; reserved {reserved}")?,
            None => write!(f, "; no reserved concurrency")?,
        }
        if let Some(account) = &self.account {
            write!(
                f,
                "; account quota {}, {} unreserved",
                account.limit, account.unreserved
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.deployed {
            return write!(
                f,
                "Nothing is deployed on stage {} of {} in {}; `deployer up --stage {}` deploys it.",
                self.stage, self.app, self.region, self.stage
            );
        }
        writeln!(
            f,
            "stage     {} of {} in {}",
            self.stage, self.app, self.region
        )?;
        writeln!(f, "url       {}", or_none(&self.url))?;
        if let Some(key) = &self.api_key {
            writeln!(f, "api key   {key}")?;
        }
        if let Some(domain) = &self.domain {
            writeln!(f, "domain    {domain}")?;
        }
        let version = match &self.version {
            Some(version) => format!("version {version}"),
            None => "no alias".into(),
        };
        writeln!(
            f,
            "alias     {} → {version} (published: {})",
            self.alias,
            if self.versions.is_empty() {
                "none".into()
            } else {
                self.versions.join(", ")
            }
        )?;
        writeln!(f, "image     {}", or_none(&self.image))?;
        writeln!(f, "deployed  {}", or_none(&self.deployed_at))?;
        if let Some(memory) = &self.memory {
            writeln!(f, "memory    {}", memory.advice)?;
        }
        writeln!(f, "concurrency  {}", self.concurrency)?;
        if !self.alarms.is_empty() {
            writeln!(f, "alarms")?;
            for alarm in &self.alarms {
                writeln!(f, "  {:<40} {}", alarm.name, alarm.state)?;
            }
        }
        writeln!(f, "resources")?;
        for resource in &self.resources {
            let mark = if resource.exists { "+" } else { "-" };
            let state = if resource.exists { "exists" } else { "missing" };
            writeln!(
                f,
                "  {mark} {:<20} {:<48} {state}",
                resource.kind, resource.name
            )?;
        }
        Ok(())
    }
}

fn or_none(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("-")
}

pub async fn run(stage: &Stage, ui: &Ui, _args: &StatusArgs) -> Result<()> {
    let clients = Clients::new(&aws::sdk_config(&stage.connection()).await);
    let step = ui.step("read");
    let report = read_status(stage, &clients).await?;
    step.finish(if report.deployed {
        "deployed"
    } else {
        "nothing deployed"
    });
    // The command still answers; the reason (a denied logs:StartQuery, a
    // quota) is said where a pipeline's log shows it, not only in the report.
    if let Some(why) = report.memory.as_ref().and_then(|m| m.unknown.as_ref()) {
        ui.warn(format_args!("memory use unknown: {why}"));
    }
    ui.result(&report)
}

/// Surveys the stage as `plan`, `up` and `destroy` do (every resource
/// once, concurrently; no image hash), then reads what depends on it: the
/// alias's version and the function's log.
pub async fn read_status(stage: &Stage, clients: &Clients) -> Result<StatusReport> {
    let names = desired::names(stage, clients).await?;
    let survey = survey(stage, &names, clients, Purpose::Inspect).await?;
    let desired = &survey.desired;
    let actual = &survey.actual;
    let function_name = desired.function_name.clone();
    let alias_name = desired.alias_name.clone();
    let alias_version = actual.alias.as_ref().map(|a| a.version.clone());
    let function_exists = actual.function.is_some();
    let versions = &actual.versions;

    let (served, max_used) = tokio::try_join!(
        async {
            match &alias_version {
                Some(version) => {
                    lambda::read_function(&clients.lambda, &function_name, Some(version)).await
                }
                None => Ok(None),
            }
        },
        async {
            if !function_exists {
                return Ok::<_, AwsError>(logs::Insights::Answered(None));
            }
            logs::max_memory_used(
                &clients.logs,
                &desired.log_group.name,
                millis_ago(MEMORY_WINDOW),
            )
            .await
        },
    )?;
    let api = &actual.api;
    let function = &actual.function;
    let api_stage = api.as_ref().and_then(|a| a.stage.as_ref());
    let found = survey.found();
    let resources = survey
        .plan
        .changes(desired)
        .changes
        .into_iter()
        .filter(|change| change.kind.in_status())
        .map(|change| {
            // Where the survey knows more than the name: retention, count, id.
            let name = match (change.kind, &actual.log_group, api) {
                (Kind::LogGroup, Some(group), _) => match group.retention_days {
                    Some(days) => format!("{} (events kept {days} days)", group.name),
                    None => format!("{} (events never expire)", group.name),
                },
                (Kind::LambdaVersion, _, _) => {
                    format!("{function_name} ({} published)", versions.len())
                }
                (Kind::ApiRestApi, _, Some(api)) => desired.rest_api_label(&api.id),
                _ => change.name,
            };
            // Kinds with several resources each: by name.
            let by_name = parts::by_name(change.kind);
            Resource {
                kind: change.kind,
                exists: found
                    .iter()
                    .any(|f| f.kind == change.kind && (!by_name || f.name == name)),
                name,
            }
        })
        .collect();
    let deployed = survey.deployed();
    let names = &desired.names;

    let domain = domain::report(
        desired.parts.domain.as_ref(),
        &actual.parts.domain,
        &names.path,
    );
    // Through the custom domain once it serves the stage.
    let url = match (&api, api_stage, &domain) {
        (Some(_), Some(_), Some(domain)) if domain.mapped => Some(domain.url.clone()),
        (Some(api), Some(_), _) => Some(names.stage_url(&api.id)),
        _ => None,
    };
    let api_key = match (
        stage.api.auth,
        api.as_ref().and_then(|a| a.api_key.as_ref()),
    ) {
        (Auth::ApiKey, Some(key)) => Some(ApiKeyReport::new(stage, &key.id)),
        _ => None,
    };
    let deployed_at = alias_version.as_ref().and_then(|version| {
        versions
            .iter()
            .find(|v| &v.version == version)
            .map(|v| v.last_modified.clone())
    });
    let image = served.as_ref().map(|f| f.image_uri.clone());
    let digest = image
        .as_deref()
        .and_then(|uri| uri.split_once('@'))
        .map(|(_, digest)| digest.to_string());
    // The memory the serving version runs with, else `$LATEST`'s.
    let configured = served.as_ref().or(function.as_ref()).map(|f| f.memory_mb);
    let memory =
        configured.map(|configured_mb| memory_report(configured_mb, max_used, MEMORY_WINDOW));

    Ok(StatusReport {
        stage: stage.name.clone(),
        app: stage.app.clone(),
        region: stage.region.clone(),
        deployed,
        resources,
        url,
        function: function_name,
        alias: alias_name,
        version: alias_version,
        versions: versions.iter().map(|v| v.version.clone()).collect(),
        image,
        digest,
        deployed_at,
        memory,
        concurrency: ConcurrencyReport {
            reserved: actual.reserved,
            provisioned: actual.provisioned.clone(),
            account: actual.account,
        },
        api_key,
        domain,
        alarms: actual.parts.alarms.alarms.clone(),
    })
}

/// Milliseconds since the epoch, `ago` before now.
fn millis_ago(ago: Duration) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.saturating_sub(ago).as_millis()).unwrap_or(i64::MAX)
}
