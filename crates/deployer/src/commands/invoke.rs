//! `deployer invoke`: ask for a prediction with the API Gateway proxy
//! event the real API would send — from the stage's alias in AWS, or with
//! `--local` from the function run here against our own Runtime API (the
//! image in Docker, or the static binary with `--no-docker`), with no AWS.
//!
//! A 200 is shown readably ([`report::render_forecast`]) or, with `--json`,
//! as the answer's body. Anything else is an [`InvokeFailed`] (exit 1)
//! that carries the function's error body.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use prediction::DayForecast;
use serde::Serialize;
use serde_json::Value;

use crate::aws::{self, lambda};
use crate::cli::InvokeArgs;
use crate::config::Stage;
use crate::local::{InvocationOutcome, LocalFunction};
use crate::report;
use crate::stage::image as stage_image;
use crate::stage::release;
use crate::ui::Ui;

/// How long a local function may take from process start to its first
/// poll (a container start included).
const LOCAL_INIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The function answered, but not with a 200 (or it failed outright).
#[derive(Debug, thiserror::Error)]
#[error("the function answered {status}\n--- answer ---\n{answer}")]
pub struct InvokeFailed {
    /// `status 400`, `a function error (Unhandled)`, ...
    pub status: String,
    /// The error body (or the whole answer when it has no body).
    pub answer: String,
}

/// What is asked: one date (a GET) or a range (a POST).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    Day(NaiveDate),
    Range { from: NaiveDate, to: NaiveDate },
}

impl Query {
    /// From the flags; with neither `--date` nor a range, the stage's
    /// smoke-test date.
    pub fn from_args(stage: &Stage, args: &InvokeArgs) -> Result<Query> {
        if let (Some(from), Some(to)) = (args.from, args.to) {
            return Ok(Query::Range { from, to });
        }
        match args.date {
            Some(date) => Ok(Query::Day(date)),
            None => NaiveDate::parse_from_str(&stage.smoke_test.date, "%Y-%m-%d")
                .map(Query::Day)
                .with_context(|| {
                    format!(
                        "the stage's smoke-test date {:?} is not YYYY-MM-DD; pass --date",
                        stage.smoke_test.date
                    )
                }),
        }
    }

    /// The proxy event API Gateway would send for this query to the
    /// stage's resource (`[api] path`, the one the function answers).
    pub fn event(&self, resource: &str) -> String {
        let path = format!("/{}", resource.trim_matches('/'));
        match self {
            Query::Day(date) => release::get_event(resource, &date.to_string()),
            Query::Range { from, to } => serde_json::json!({
                "resource": path,
                "path": path,
                "httpMethod": "POST",
                "headers": {"accept": "application/json", "content-type": "application/json"},
                "queryStringParameters": null,
                "body": serde_json::json!({"from": from.to_string(), "to": to.to_string()}).to_string(),
                "isBase64Encoded": false,
            })
            .to_string(),
        }
    }
}

/// A successful answer: with `--json` its body, as text the forecasts.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Answer {
    pub body: Value,
    #[serde(skip)]
    pub forecasts: Vec<DayForecast>,
    /// Shown after the forecasts (the local durations).
    #[serde(skip)]
    pub footer: Option<String>,
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, forecast) in self.forecasts.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", report::render_forecast(forecast))?;
        }
        if let Some(footer) = &self.footer {
            write!(f, "\n{footer}")?;
        }
        Ok(())
    }
}

/// Reads an API Gateway proxy response: a 200's forecasts, or the error.
pub fn parse_answer(query: &Query, payload: &[u8]) -> Result<Answer> {
    let text = String::from_utf8_lossy(payload);
    let response: Value = serde_json::from_slice(payload).map_err(|err| InvokeFailed {
        status: format!("something that is not JSON ({err})"),
        answer: text.to_string(),
    })?;
    let status = response.get("statusCode").and_then(Value::as_i64);
    let body = response.get("body").and_then(Value::as_str);
    let (Some(200), Some(body)) = (status, body) else {
        return Err(InvokeFailed {
            status: match status {
                Some(code) => format!("status {code}"),
                None => "no status code".into(),
            },
            answer: body.map(str::to_string).unwrap_or_else(|| text.to_string()),
        }
        .into());
    };
    let body: Value = serde_json::from_str(body).with_context(|| {
        format!("the function answered 200 with a body that is not JSON: {body}")
    })?;
    let forecasts = match query {
        Query::Day(_) => serde_json::from_value::<DayForecast>(body.clone()).map(|f| vec![f]),
        Query::Range { .. } => serde_json::from_value::<Vec<DayForecast>>(
            body.get("predictions").cloned().unwrap_or(Value::Null),
        ),
    }
    .with_context(|| format!("the function answered 200, but not with a forecast: {body}"))?;
    Ok(Answer {
        body,
        forecasts,
        footer: None,
    })
}

pub async fn run(stage: &Stage, ui: &Ui, args: &InvokeArgs) -> Result<()> {
    let query = Query::from_args(stage, args)?;
    if args.local {
        return local(stage, ui, args, &query).await;
    }
    let clients = aws::Clients::new(&aws::sdk_config(&stage.connection()).await);
    let function = stage.function_name();
    let alias = stage.alias_name();
    let step = ui.step(format!("invoke {function}:{alias}"));
    let answer = lambda::invoke(
        &clients.lambda,
        &function,
        Some(&alias),
        query.event(&stage.api.path).as_bytes(),
    )
    .await?;
    step.finish(match &answer.executed_version {
        Some(version) => format!("version {version} answered"),
        None => "answered".into(),
    });
    if let Some(log) = &answer.log_tail {
        ui.detail(format!("--- log tail ---\n{}", log.trim_end()));
    }
    if let Some(error) = &answer.function_error {
        return Err(InvokeFailed {
            status: format!("a function error ({error})"),
            answer: answer.payload,
        }
        .into());
    }
    ui.result(&parse_answer(&query, answer.payload.as_bytes())?)
}

/// Runs the function here and asks it once (`bench/run` measures it over
/// many requests with the `local_invoke` bench target).
async fn local(stage: &Stage, ui: &Ui, args: &InvokeArgs, query: &Query) -> Result<()> {
    let (runner, environment) = stage_image::local_runner(stage, ui, !args.no_docker).await?;

    let step = ui.step("start function");
    let mut function = LocalFunction::start(
        &runner,
        &environment,
        stage.function.memory_mb,
        LOCAL_INIT_TIMEOUT,
    )
    .await?;
    let init = function.init_duration();
    step.finish(format!("ready in {:.1} ms", ms(init)));

    // Ctrl-C must not leave a container running: stop it on the way out.
    let result = tokio::select! {
        result = ask(stage, ui, query, &function) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    ui.detail(format!(
        "--- function output ---\n{}",
        function.output().join("\n")
    ));
    function.stop().await;
    result
}

/// The invocation of [`local`], while the function runs.
async fn ask(stage: &Stage, ui: &Ui, query: &Query, function: &LocalFunction) -> Result<()> {
    let timeout = Duration::from_secs(u64::try_from(stage.function.timeout_s).unwrap_or(300));
    let event = query.event(&stage.api.path).into_bytes();
    let invocation = function.invoke(event, timeout).await?;
    let payload = match invocation.outcome {
        InvocationOutcome::Response(payload) => payload,
        InvocationOutcome::Error(error) => {
            return Err(InvokeFailed {
                status: "a function error".into(),
                answer: String::from_utf8_lossy(&error).into_owned(),
            }
            .into());
        }
    };
    let mut answer = parse_answer(query, &payload)?;
    answer.footer = Some(format!(
        "local: init {:.2} ms, invoke {:.3} ms",
        ms(function.init_duration()),
        ms(invocation.duration)
    ));
    ui.result(&answer)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_range_is_a_post_with_from_and_to_in_the_body() {
        let query = Query::Range {
            from: day("2025-10-20"),
            to: day("2025-10-22"),
        };
        let event: Value = serde_json::from_str(&query.event("forecast")).unwrap();
        assert_eq!(event["path"], "/forecast");
        assert_eq!(event["httpMethod"], "POST");
        let body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"from": "2025-10-20", "to": "2025-10-22"})
        );
        let get: Value =
            serde_json::from_str(&Query::Day(day("2025-10-21")).event("predict")).unwrap();
        assert_eq!(get["path"], "/predict");
        assert_eq!(get["queryStringParameters"]["date"], "2025-10-21");
    }

    #[test]
    fn a_non_200_answer_is_an_error_carrying_its_body() {
        let payload = serde_json::json!({
            "statusCode": 400,
            "body": "{\"error\":\"date is wrong\",\"field\":\"date\"}",
        })
        .to_string();
        let err = parse_answer(&Query::Day(day("2025-10-20")), payload.as_bytes()).unwrap_err();
        let failed = err.downcast_ref::<InvokeFailed>().unwrap();
        assert_eq!(failed.status, "status 400");
        assert!(failed.answer.contains("date is wrong"), "{}", failed.answer);
        assert!(parse_answer(&Query::Day(day("2025-10-20")), b"not json").is_err());
    }
}
