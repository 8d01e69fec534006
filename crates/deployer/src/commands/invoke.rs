//! `deployer invoke`: ask for a prediction with the API Gateway proxy
//! event the real API would send — from the stage's alias in AWS, or with
//! `--local` from the function run here against our own Runtime API (the
//! image in Docker, or the static binary with `--no-docker`), with no AWS.
//!
//! A 200 is shown readably ([`report::render_forecast`]) or, with `--json`,
//! as the answer's body. Anything else is an [`InvokeFailed`] (exit 1)
//! that carries the function's error body.

use std::fmt;
use std::time::{Duration, Instant};

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

/// The figures of `invoke --local --repeat N`.
#[derive(Debug, Serialize)]
pub struct LocalTimings {
    pub invocations: usize,
    /// From starting the process to its first poll for an event.
    pub init_ms: f64,
    /// From starting the process to the first answer: the cold start.
    pub first_answer_ms: f64,
    pub invoke_p50_ms: f64,
    pub invoke_p99_ms: f64,
    pub invoke_max_ms: f64,
    /// The process's peak resident memory (VmHWM), when it can be read.
    pub peak_rss_kb: Option<u64>,
    /// The last answer's body.
    pub answer: Value,
    #[serde(skip)]
    pub forecasts: Answer,
}

impl fmt::Display for LocalTimings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.forecasts)?;
        writeln!(f, "invocations    {}", self.invocations)?;
        writeln!(f, "init           {:.2} ms", self.init_ms)?;
        writeln!(
            f,
            "first answer   {:.2} ms after start",
            self.first_answer_ms
        )?;
        writeln!(
            f,
            "invoke         p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            self.invoke_p50_ms, self.invoke_p99_ms, self.invoke_max_ms
        )?;
        match self.peak_rss_kb {
            Some(kb) => write!(f, "peak RSS       {:.1} MB", kb as f64 / 1024.0),
            None => write!(f, "peak RSS       unknown"),
        }
    }
}

/// Runs the function here and asks it `--repeat` times (default once).
async fn local(stage: &Stage, ui: &Ui, args: &InvokeArgs, query: &Query) -> Result<()> {
    let (runner, environment) = stage_image::local_runner(stage, ui, !args.no_docker).await?;

    let step = ui.step("start function");
    let started = Instant::now();
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
        result = ask(stage, ui, args, query, &function, started) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    ui.detail(format!(
        "--- function output ---\n{}",
        function.output().join("\n")
    ));
    function.stop().await;
    result
}

/// The invocations of [`local`], while the function runs.
async fn ask(
    stage: &Stage,
    ui: &Ui,
    args: &InvokeArgs,
    query: &Query,
    function: &LocalFunction,
    started: Instant,
) -> Result<()> {
    let timeout = Duration::from_secs(u64::try_from(stage.function.timeout_s).unwrap_or(300));
    let repeat = args.repeat.unwrap_or(1).max(1) as usize;
    let event = query.event(&stage.api.path).into_bytes();
    let mut durations = Vec::with_capacity(repeat);
    let mut first_answer = None;
    let mut last = None;
    for _ in 0..repeat {
        let invocation = function.invoke(event.clone(), timeout).await?;
        first_answer.get_or_insert_with(|| started.elapsed());
        durations.push(invocation.duration);
        last = Some(invocation.outcome);
    }
    let peak_rss_kb = function.pid().and_then(peak_rss_kb);
    let payload = match last {
        Some(InvocationOutcome::Response(payload)) => payload,
        Some(InvocationOutcome::Error(error)) => {
            return Err(InvokeFailed {
                status: "a function error".into(),
                answer: String::from_utf8_lossy(&error).into_owned(),
            }
            .into());
        }
        None => anyhow::bail!("no invocation was made"),
    };
    let mut answer = parse_answer(query, &payload)?;
    let init = function.init_duration();
    durations.sort();
    if args.repeat.is_none() {
        answer.footer = Some(format!(
            "local: init {:.2} ms, invoke {:.3} ms",
            ms(init),
            ms(durations[0])
        ));
        return ui.result(&answer);
    }
    ui.result(&LocalTimings {
        invocations: durations.len(),
        init_ms: ms(init),
        first_answer_ms: ms(first_answer.unwrap_or_default()),
        invoke_p50_ms: ms(percentile(&durations, 0.50)),
        invoke_p99_ms: ms(percentile(&durations, 0.99)),
        invoke_max_ms: ms(durations.last().copied().unwrap_or_default()),
        peak_rss_kb,
        answer: answer.body.clone(),
        forecasts: answer,
    })
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The nearest-rank percentile of sorted durations (`p` in 0..=1).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `VmHWM` of `/proc/<pid>/status`, in kB: the process's peak RSS.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
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

    #[test]
    fn repeat_needs_local_and_at_least_one() {
        use clap::Parser;
        let parse = |args: &[&str]| crate::cli::Cli::try_parse_from(args);
        let cli = parse(&["deployer", "invoke", "--local", "--repeat", "5"]).unwrap();
        let crate::cli::Command::Invoke(args) = cli.command else {
            panic!("not invoke")
        };
        assert_eq!(args.repeat, Some(5));
        assert!(parse(&["deployer", "invoke", "--repeat", "5"]).is_err());
        assert!(parse(&["deployer", "invoke", "--local", "--repeat", "0"]).is_err());
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&sorted[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn vm_hwm_is_read_in_kb() {
        let status =
            "Name:\tbootstrap\nVmPeak:\t  9000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(5120));
        assert_eq!(parse_vm_hwm("Name:\tx\n"), None);
        assert!(peak_rss_kb(std::process::id()).is_some_and(|kb| kb > 0));
    }
}
