//! The function's headline figures for `bench/run`: started here against
//! the deployer's loopback Lambda Runtime API (`deployer::local`), exactly
//! as `deployer invoke --local` starts it, then asked `--repeat` times.
//!
//! ```text
//! local_invoke [--docker] [--repeat N] [--date YYYY-MM-DD] [--stage S] [--config PATH]
//! ```
//!
//! Prints one JSON object on stdout: `invocations`, `init_ms` (process
//! start to the first poll), `first_answer_ms` (process start to the first
//! answer), `invoke_p50_ms`, `invoke_p99_ms`, `invoke_max_ms`, `peak_rss_kb`
//! (VmHWM of the function's process) and, without `--docker`, `binary` (the
//! compiled `bootstrap`). The function's own output goes to stderr.
//!
//! A bench target with its own `main` (`harness = false`): built by
//! `cargo build -p deployer --bench local_invoke`, run from the workspace
//! root. Nothing here is part of the `deployer` binary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use deployer::config::{Overrides, StageSource};
use deployer::image::Runner;
use deployer::local::{InvocationOutcome, LocalFunction};
use deployer::stage::image::local_runner;
use deployer::stage::release::get_event;
use deployer::ui::Ui;
use figures::{peak_rss_kb, percentile};

mod figures;

/// How long the function may take from process start to its first poll (a
/// container start included): what `deployer invoke --local` allows.
const INIT_TIMEOUT: Duration = Duration::from_secs(60);

/// What to measure, from the command line.
struct Args {
    docker: bool,
    repeat: usize,
    date: String,
    stage: String,
    config: PathBuf,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Args> {
        let mut parsed = Args {
            docker: false,
            repeat: 1,
            date: "2025-10-20".into(),
            stage: "dev".into(),
            config: "deploy.toml".into(),
        };
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| anyhow!("{arg} needs a value"));
            match arg.as_str() {
                "--docker" => parsed.docker = true,
                "--repeat" => {
                    let text = value()?;
                    parsed.repeat =
                        text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                            anyhow!("--repeat wants a number above 0, got {text:?}")
                        })?;
                }
                "--date" => parsed.date = value()?,
                "--stage" => parsed.stage = value()?,
                "--config" => parsed.config = value()?.into(),
                // `cargo bench` passes `--bench` to every bench target.
                "--bench" => {}
                other => bail!("unknown argument {other:?}"),
            }
        }
        Ok(parsed)
    }
}

/// The figures, as `bench/run` reads them.
#[derive(serde::Serialize)]
struct Figures {
    invocations: usize,
    init_ms: f64,
    first_answer_ms: f64,
    invoke_p50_ms: f64,
    invoke_p99_ms: f64,
    invoke_max_ms: f64,
    peak_rss_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    binary: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match measure().await {
        Ok(figures) => match serde_json::to_string(&figures) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("local_invoke: {err}");
                ExitCode::FAILURE
            }
        },
        Err(err) => {
            eprintln!("local_invoke: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn measure() -> Result<Figures> {
    let args = Args::parse(std::env::args().skip(1))?;
    let stage = StageSource {
        config: args.config.clone(),
        stage: args.stage.clone(),
        overrides: Overrides::default(),
    }
    .load()?;
    let ui = Ui::new("bench", false, true, 0);
    let (runner, environment) = local_runner(&stage, &ui, args.docker).await?;
    let started = Instant::now();
    let mut function = LocalFunction::start(
        &runner,
        &environment,
        stage.function.memory_mb,
        INIT_TIMEOUT,
    )
    .await?;
    let timeout = Duration::from_secs(u64::try_from(stage.function.timeout_s).unwrap_or(300));
    let asked = ask(&function, &args, &stage.api.path, timeout, started).await;
    eprintln!("{}", function.output().join("\n"));
    function.stop().await;
    let (mut durations, first_answer, peak_rss_kb) = asked?;
    durations.sort();
    Ok(Figures {
        invocations: durations.len(),
        init_ms: ms(function.init_duration()),
        first_answer_ms: ms(first_answer),
        invoke_p50_ms: ms(percentile(&durations, 0.50)),
        invoke_p99_ms: ms(percentile(&durations, 0.99)),
        invoke_max_ms: ms(durations.last().copied().unwrap_or_default()),
        peak_rss_kb,
        binary: match runner {
            Runner::Binary(path) => Some(path),
            Runner::Image(_) => None,
        },
    })
}

/// Asks the running function `--repeat` times for the date's forecast:
/// every invocation's duration, the first answer's time from `started`,
/// and the process's peak RSS once all are answered.
async fn ask(
    function: &LocalFunction,
    args: &Args,
    resource: &str,
    timeout: Duration,
    started: Instant,
) -> Result<(Vec<Duration>, Duration, Option<u64>)> {
    let event = get_event(resource, &args.date).into_bytes();
    let mut durations = Vec::with_capacity(args.repeat);
    let mut first_answer = None;
    for _ in 0..args.repeat {
        let invocation = function
            .invoke(event.clone(), timeout)
            .await
            .context("the function did not answer")?;
        first_answer.get_or_insert_with(|| started.elapsed());
        match invocation.outcome {
            InvocationOutcome::Response(payload) => {
                let answer: serde_json::Value = serde_json::from_slice(&payload)
                    .context("the function answered something that is not JSON")?;
                if answer["statusCode"] != 200 {
                    bail!("the function answered {answer}");
                }
            }
            InvocationOutcome::Error(error) => {
                bail!("the function failed: {}", String::from_utf8_lossy(&error))
            }
        }
        durations.push(invocation.duration);
    }
    let peak_rss_kb = function.pid().and_then(peak_rss_kb);
    Ok((durations, first_answer.unwrap_or_default(), peak_rss_kb))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
