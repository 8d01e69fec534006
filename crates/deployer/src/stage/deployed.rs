//! Every deployed stage of the app, from AWS alone: the stage functions
//! the tags name ([`lambda::app_stage_functions`]), each with its URL (the
//! REST API tagged with its stage), the version its alias serves, when it
//! was last deployed, and when it expires.
//!
//! "Expires" is the last deployment plus the function's `deployer:ttl`
//! tag. The last deployment is when the version behind the alias was
//! published (Lambda's `LastModified` of that version; the function's own
//! when the alias never moved), so a no-op `up` changes nothing and
//! extends nothing, and an `up` that deploys a change (a new commit of the
//! pull request) starts the time to live again. deploy.toml is only asked
//! for each stage's API path, so a stage whose table or pattern is gone is
//! listed too.

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::aws::{Clients, apigw, lambda};
use crate::config::{Config, Overrides, Stage, Ttl};
use crate::names::{Names, TAG_PROTECTED, TAG_TTL};

/// One deployed stage of the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployedStage {
    pub stage: String,
    pub function: String,
    /// The stage's URL, when its REST API exists.
    pub url: Option<String>,
    /// The version the alias serves; `None`: no alias (a first `up` that
    /// failed before it).
    pub version: Option<String>,
    /// When that version was published (RFC 3339, UTC).
    pub last_deployed: Option<String>,
    /// The `deployer:ttl` tag, as written (`7d`).
    pub ttl: Option<String>,
    /// `last_deployed` + `ttl` (RFC 3339, UTC).
    pub expires: Option<String>,
    /// Past `expires` now: what `deployer prune` removes.
    pub expired: bool,
    /// The `deployer:protected` tag: never pruned, and destroyed only with
    /// the stage's name typed or `--force-protected`.
    pub protected: bool,
}

/// The app's deployed stages, by name, and the functions that could not be
/// read (with why), which are not listed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Deployed {
    pub stages: Vec<DeployedStage>,
    pub unreadable: Vec<String>,
}

/// Lambda's `LastModified`: `2025-10-20T08:00:00.000+0000`.
pub fn parse_lambda_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// When a stage deployed at `last_deployed` with the tag `ttl` expires;
/// `None` when either is missing or unreadable (such a stage is never
/// pruned: deletion fails closed).
pub fn expiry(last_deployed: Option<&str>, ttl: Option<&str>) -> Option<DateTime<Utc>> {
    let deployed = parse_lambda_time(last_deployed?)?;
    let ttl = Ttl::parse(ttl?).ok()?;
    let ttl = chrono::Duration::from_std(ttl.duration).ok()?;
    deployed.checked_add_signed(ttl)
}

/// Lists the deployed stages of `names`'s app. `stage_of` gives the stage
/// of a name as deploy.toml would (for its API path and endpoint).
pub async fn list(
    names: &Names,
    clients: &Clients,
    stage_of: &dyn Fn(&str) -> Stage,
    now: DateTime<Utc>,
) -> Result<Deployed> {
    let prefix = names.app_function_prefix();
    let (functions, apis) = tokio::join!(
        lambda::app_stage_functions(&clients.lambda, &prefix, &names.app),
        apigw::app_apis(&clients.apigw, &names.app),
    );
    let ((functions, unreadable), apis) = (functions?, apis?);
    let mut stages: Vec<DeployedStage> = functions
        .into_iter()
        .map(|f| {
            let stage = stage_of(&f.stage);
            let url = apis
                .get(&f.stage)
                .map(|id| Names::new(&stage, &names.account).stage_url(id));
            let (version, last_deployed) = match f.serving {
                Some((version, published)) => (Some(version), published),
                None => (None, f.changed),
            };
            let deployed_at = parse_lambda_time(&last_deployed);
            let ttl = f.tags.get(TAG_TTL).cloned();
            let expires = expiry(Some(&last_deployed), ttl.as_deref());
            DeployedStage {
                stage: f.stage,
                function: f.function,
                url,
                version,
                last_deployed: deployed_at.map(|t| t.to_rfc3339()),
                ttl,
                expires: expires.map(|t| t.to_rfc3339()),
                expired: expires.is_some_and(|t| t <= now),
                protected: f.tags.get(TAG_PROTECTED).is_some_and(|v| v == "true"),
            }
        })
        .collect();
    stages.sort_by(|a, b| a.stage.cmp(&b.stage));
    Ok(Deployed { stages, unreadable })
}

/// The stage `name` as deploy.toml makes it (its table or a pattern), else
/// the app's defaults in `at`'s region: for its API path and lock.
pub fn stage_of(config: &Config, overrides: &Overrides, at: &Stage, name: &str) -> Stage {
    config
        .stage(name, overrides)
        .or_else(|_| config.untracked_stage(name, overrides))
        .unwrap_or_else(|_| Stage::defaults(&at.app, name, &at.region))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_expires_its_ttl_after_its_last_deployment() {
        let expires = expiry(Some("2025-10-20T08:00:00.000+0000"), Some("1d")).unwrap();
        assert_eq!(expires.to_rfc3339(), "2025-10-21T08:00:00+00:00");
        let hours = expiry(Some("2025-10-20T08:00:00.000+0000"), Some("12h")).unwrap();
        assert_eq!(hours.to_rfc3339(), "2025-10-20T20:00:00+00:00");
        // Nothing to go by: never expires.
        assert_eq!(expiry(Some("2025-10-20T08:00:00.000+0000"), None), None);
        assert_eq!(expiry(None, Some("1d")), None);
        assert_eq!(expiry(Some("yesterday"), Some("1d")), None);
        assert_eq!(
            expiry(Some("2025-10-20T08:00:00.000+0000"), Some("1w")),
            None
        );
    }
}
