//! Releasing a version: the smoke test before the alias moves, and the
//! public path check through the stage's URL after it, which puts the
//! alias back when the URL does not answer as a browser needs. The check
//! itself, an HTTP client that calls as a browser does and the judgement
//! of its answers, is `public_path`; it makes no AWS call.

mod public_path;

use anyhow::Result;
use serde::Serialize;

use public_path::PublicPath;

use crate::aws::{Clients, apigw, lambda};
use crate::config::{Auth, Stage};
use crate::exit::{ExitStatus, Failure};
use crate::ui::Ui;

/// The smoke test's answer was not a 200: the alias stays where it was.
#[derive(Debug, thiserror::Error)]
#[error(
    "the smoke test of version {version} failed: it answered {status} for {date}; the alias still points at {previous}\n--- answer ---\n{answer}{log}"
)]
pub struct SmokeTestFailed {
    pub version: String,
    pub date: String,
    pub status: String,
    pub previous: String,
    pub answer: String,
    pub log: String,
}

/// The stage's URL did not answer as a browser needs: the alias went back
/// to where it was (see [`public_path_check`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "the public path check failed: {check} answered {got} (expected {expected}); {alias}\n--- answer ---\n{answer}\n(the function's log: deployer logs --stage {stage} --since 10m)"
)]
pub struct PublicPathFailed {
    pub stage: String,
    pub check: String,
    pub expected: String,
    pub got: String,
    /// What happened to the alias.
    pub alias: String,
    pub answer: String,
}

/// How long the public path check retries answers that a new deployment
/// or permission still propagating explains.
const PUBLIC_PATH_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The stage's API key, by id, and how to read its value: the deployer
/// never reads or prints the value itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyReport {
    pub id: String,
    /// The AWS CLI command that prints the key's value.
    pub value_command: String,
}

impl ApiKeyReport {
    pub fn new(stage: &Stage, id: &str) -> ApiKeyReport {
        let mut command = format!(
            "aws apigateway get-api-key --api-key {id} --include-value --query value --output text --region {}",
            stage.region
        );
        if let Some(profile) = &stage.profile {
            command += &format!(" --profile {profile}");
        }
        ApiKeyReport {
            id: id.to_string(),
            value_command: command,
        }
    }
}

impl std::fmt::Display for ApiKeyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (its value: {})", self.id, self.value_command)
    }
}

/// The proxy event of a GET for one date on the stage's resource (`[api]
/// path`, the one the function answers), as API Gateway would send it.
pub fn get_event(resource: &str, date: &str) -> String {
    let path = format!("/{}", resource.trim_matches('/'));
    serde_json::json!({
        "resource": path,
        "path": path,
        "httpMethod": "GET",
        "headers": {"accept": "application/json"},
        "queryStringParameters": {"date": date},
        "body": null,
        "isBase64Encoded": false,
    })
    .to_string()
}

/// Calls the new version with a real request; anything but a 200 stops
/// the release before the alias moves.
pub async fn smoke_test(
    stage: &Stage,
    ui: &Ui,
    clients: &Clients,
    version: &str,
    previous: Option<&str>,
) -> Result<()> {
    if !stage.smoke_test.enabled {
        return Ok(());
    }
    let step = ui.step("smoke test");
    let date = &stage.smoke_test.date;
    let answer = lambda::invoke(
        &clients.lambda,
        &stage.function_name(),
        Some(version),
        get_event(&stage.api.path, date).as_bytes(),
    )
    .await?;
    let status = serde_json::from_str::<serde_json::Value>(&answer.payload)
        .ok()
        .and_then(|v| v.get("statusCode").and_then(serde_json::Value::as_i64));
    if answer.function_error.is_none() && status == Some(200) {
        step.finish(format!("version {version} answered 200 for {date}"));
        return Ok(());
    }
    step.finish("failed");
    let failed = SmokeTestFailed {
        version: version.to_string(),
        date: date.clone(),
        status: match (&answer.function_error, status) {
            (Some(error), _) => format!("a function error ({error})"),
            (None, Some(code)) => format!("status {code}"),
            (None, None) => "no status code".into(),
        },
        previous: previous.unwrap_or("nothing (no alias yet)").to_string(),
        answer: answer.payload,
        log: answer
            .log_tail
            .map(|log| format!("\n--- log ---\n{log}"))
            .unwrap_or_default(),
    };
    Err(Failure::tag(ExitStatus::SmokeTestFailed, failed))
}

/// Calls the stage's URL as a browser would, once something on the way to
/// the function changed (the alias, the API, the permission). On failure
/// the alias goes back to the version it had (`alias_moved_from`), or is
/// removed if the stage had none — API Gateway calls the alias, so callers
/// then get what they got before, and the next `up` tests the version
/// again instead of finding nothing to do.
pub async fn public_path_check(
    stage: &Stage,
    ui: &Ui,
    clients: &Clients,
    url: &str,
    alias_moved_from: Option<Option<String>>,
) -> Result<()> {
    if !stage.smoke_test.public_path {
        return Ok(());
    }
    let step = ui.step("public path");
    let api_key = match stage.api.auth {
        Auth::ApiKey => apigw::api_key_value(&clients.apigw, &stage.api_name()).await?,
        Auth::None => None,
    };
    // On the local AWS a custom domain is reached by its Host header.
    let (url, host) = super::domain::reach(stage, url);
    let path = PublicPath {
        url,
        host,
        origin: check_origin(&stage.api.cors.allow_origins),
        date: stage.smoke_test.date.clone(),
        api_key,
        methods: stage.api.methods.clone(),
    };
    let failed = match public_path::check(&path, PUBLIC_PATH_WAIT).await {
        Ok(passed) => {
            step.finish(format!(
                "preflight and GET ?date={} answered as a browser needs{}",
                path.date,
                if passed.attempts > 1 {
                    format!(" (after {} tries)", passed.attempts)
                } else {
                    String::new()
                }
            ));
            return Ok(());
        }
        Err(failed) => failed,
    };
    step.finish("failed");
    let function = stage.function_name();
    let alias = stage.alias_name();
    // The alias is ours to move back only while the stage lock is.
    super::lock::still_held().await?;
    // A failure to put the alias back is reported with the check's, which
    // stays the reason `up` failed.
    let restored = match alias_moved_from {
        Some(Some(previous)) => {
            match lambda::ensure_alias(&clients.lambda, &function, &alias, &previous).await {
                Ok(_) => format!("the alias {alias} is back at version {previous}"),
                Err(err) => format!(
                    "moving the alias {alias} back to version {previous} failed too ({err}); run `deployer rollback --to {previous}`"
                ),
            }
        }
        Some(None) => match lambda::delete_alias(&clients.lambda, &function, &alias).await {
            Ok(()) => format!("the alias {alias} was removed (the stage had none before)"),
            Err(err) => format!("removing the alias {alias} failed too ({err})"),
        },
        None => format!("the alias {alias} did not move in this run"),
    };
    let failed = PublicPathFailed {
        stage: stage.name.clone(),
        check: failed.check,
        expected: failed.expected,
        got: failed.got,
        alias: restored,
        answer: failed
            .answer
            .map(|a| a.render())
            .unwrap_or_else(|| "(none)".into()),
    };
    Err(Failure::tag(ExitStatus::SmokeTestFailed, failed))
}

/// Waits (bounded) until Lambda has allocated the alias's provisioned
/// concurrency for the version it points at; a failed allocation is an
/// error with Lambda's reason.
pub async fn wait_provisioned(
    ui: &Ui,
    clients: &Clients,
    function: &str,
    alias: &str,
) -> Result<()> {
    let step = ui.step("provisioned concurrency ready");
    let progress = |now: &lambda::ProvisionedConcurrency| {
        step.message(format!(
            "{}: {} of {} allocated",
            now.status, now.allocated, now.requested
        ));
    };
    let ready = lambda::wait_provisioned_ready(
        &clients.lambda,
        function,
        alias,
        lambda::PROVISIONED_TIMEOUT,
        &progress,
    )
    .await?;
    step.finish(format!(
        "{} of {} allocated, {}",
        ready.allocated, ready.requested, ready.status
    ));
    Ok(())
}

/// Records that `version` passed the smoke test and the public path check
/// (on the function's tag, [`lambda::PASSED_TAG`]), where `rollback` looks
/// for its target. The stage serves it by now, so a failure is a warning.
pub async fn record_passed(ui: &Ui, clients: &Clients, function: &str, version: &str) {
    if let Err(err) = lambda::record_passed(&clients.lambda, function, version).await {
        ui.warn(format!(
            "version {version} passed its checks, but recording it failed ({err}); \
             `deployer rollback` will not choose it by default"
        ));
    }
}

/// The origin the check's requests carry: the first allowed one, or any
/// when every origin is.
fn check_origin(allowed: &[String]) -> String {
    allowed
        .iter()
        .find(|o| o.as_str() != "*")
        .cloned()
        .unwrap_or_else(|| "https://example.com".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_key_report_says_how_to_read_the_value_never_the_value() {
        let mut stage = Stage::defaults("shop", "prod", "eu-west-1");
        stage.profile = Some("prod-admin".into());
        let report = ApiKeyReport::new(&stage, "k3y1d");
        assert_eq!(
            report.value_command,
            "aws apigateway get-api-key --api-key k3y1d --include-value --query value --output text --region eu-west-1 --profile prod-admin"
        );
        assert!(report.to_string().starts_with("k3y1d "), "{report}");
    }
}
