//! `deployer metrics`: how the stage's function and API have been doing
//! over `--since` (one hour by default) — the alias's invocations, errors,
//! throttles, duration percentiles, concurrency and cold starts, the API
//! stage's requests, 4xx, 5xx and latencies, and the peak memory against
//! the configured one — as sparklines and figures, or one JSON object.
//! Reads only (`stage::metrics`); the text form is this module's.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow};
use chrono::DateTime;

use crate::aws::alarms::ActualAlarm;
use crate::aws::{self, Clients};
use crate::cli::MetricsArgs;
use crate::config::Stage;
use crate::exit::{ExitStatus, Failure};
use crate::report::sparkline;
use crate::stage::memory::span_text;
use crate::stage::metrics::{self, Counter, Distribution, MAX_SINCE, MetricsReport};
use crate::ui::Ui;

pub async fn run(stage: &Stage, ui: &Ui, args: &MetricsArgs) -> Result<()> {
    check_since(args.since)?;
    let clients = Clients::new(&aws::sdk_config(&stage.connection()).await);
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default();
    let step = ui.step("read metrics");
    let report = metrics::read(stage, &clients, args.since, now_s).await?;
    step.finish(if report.deployed {
        format!("{} periods of {} s", report.periods, report.period_seconds)
    } else {
        "nothing deployed".into()
    });
    // As `status`: the figures Insights could not give are said on stderr.
    let unknown = report
        .lambda
        .as_ref()
        .and_then(|l| l.cold_starts.unknown.as_ref());
    if let Some(why) = unknown {
        ui.warn(format_args!("cold starts unknown: {why}"));
    }
    ui.result(&report)
}

/// A window CloudWatch does not keep is a usage error, before any call.
fn check_since(since: Duration) -> Result<()> {
    if since > MAX_SINCE {
        return Err(Failure::tag(
            ExitStatus::Usage,
            anyhow!(
                "--since: CloudWatch keeps metrics for 455 days (15 months); got {}",
                span_text(since)
            ),
        ));
    }
    Ok(())
}

/// `2025-12-01 11:25 to 11:35`, the date once when both share it.
fn span_of(start_s: i64, end_s: i64) -> String {
    let (Some(start), Some(end)) = (
        DateTime::from_timestamp(start_s, 0),
        DateTime::from_timestamp(end_s, 0),
    ) else {
        return String::new();
    };
    let to = if start.date_naive() == end.date_naive() {
        end.format("%H:%M")
    } else {
        end.format("%Y-%m-%d %H:%M")
    };
    format!("{} to {to}", start.format("%Y-%m-%d %H:%M"))
}

fn ms(value: Option<f64>) -> String {
    match value {
        Some(v) => format!("{v:.1} ms"),
        None => "-".into(),
    }
}

fn counts(series: &[u64]) -> Vec<Option<f64>> {
    series.iter().map(|v| Some(*v as f64)).collect()
}

/// One row: a label, the sparkline, the figure.
fn row(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    bars: &[Option<f64>],
    figure: String,
) -> fmt::Result {
    writeln!(f, "  {label:<18} {}  {figure}", sparkline(bars))
}

fn counter_row(f: &mut fmt::Formatter<'_>, label: &str, c: &Counter) -> fmt::Result {
    row(f, label, &counts(&c.series), c.total.to_string())
}

fn distribution_row(f: &mut fmt::Formatter<'_>, label: &str, d: &Distribution) -> fmt::Result {
    row(
        f,
        label,
        &d.series,
        format!("p50 {}, p90 {}, p99 {}", ms(d.p50), ms(d.p90), ms(d.p99)),
    )
}

impl fmt::Display for MetricsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Some(lambda), Some(api)) = (&self.lambda, &self.api_gateway) else {
            return write!(
                f,
                "Nothing is deployed on stage {} of {} in {}; `deployer up --stage {}` deploys it.",
                self.stage, self.app, self.region, self.stage
            );
        };
        let period = span_text(Duration::from_secs(
            u64::try_from(self.period_seconds).unwrap_or(0),
        ));
        let start = DateTime::parse_from_rfc3339(&self.start).map(|t| t.timestamp());
        let end = DateTime::parse_from_rfc3339(&self.end).map(|t| t.timestamp());
        let span = match (start, end) {
            (Ok(start), Ok(end)) => span_of(start, end),
            _ => format!("{} to {}", self.start, self.end),
        };
        writeln!(
            f,
            "stage     {} of {} in {}: {} bars of {period}, {span} UTC",
            self.stage, self.app, self.region, self.periods,
        )?;
        writeln!(f, "lambda    {}:{}", self.function, self.alias)?;
        counter_row(f, "invocations", &lambda.invocations)?;
        counter_row(f, "errors", &lambda.errors)?;
        counter_row(f, "throttles", &lambda.throttles)?;
        distribution_row(f, "duration p99", &lambda.duration_ms)?;
        let peak = &lambda.concurrent_executions;
        row(
            f,
            "concurrency max",
            &peak.series,
            format!("max {}", peak.max.map_or("-".into(), |m| m.to_string())),
        )?;
        let cold = &lambda.cold_starts;
        match &cold.unknown {
            Some(why) => writeln!(f, "  {:<18} unknown: {why}", "cold starts")?,
            None => row(
                f,
                "cold starts",
                &counts(&cold.series),
                match cold.max_init_ms {
                    Some(_) => format!("{} (init up to {})", cold.total, ms(cold.max_init_ms)),
                    None => cold.total.to_string(),
                },
            )?,
        }
        writeln!(f, "api       {}, stage {}", self.api, self.stage)?;
        counter_row(f, "requests", &api.requests)?;
        counter_row(f, "4xx", &api.errors_4xx)?;
        counter_row(f, "5xx", &api.errors_5xx)?;
        distribution_row(f, "latency p99", &api.latency_ms)?;
        distribution_row(f, "integration p99", &api.integration_latency_ms)?;
        if let Some(memory) = &self.memory {
            writeln!(f, "memory    {}", memory.advice)?;
        }
        write_alarms(f, &self.alarms)?;
        Ok(())
    }
}

/// `alarms` and a line per alarm: its state and since when.
fn write_alarms(f: &mut fmt::Formatter<'_>, alarms: &[ActualAlarm]) -> fmt::Result {
    if alarms.is_empty() {
        return Ok(());
    }
    writeln!(f, "alarms")?;
    for alarm in alarms {
        writeln!(
            f,
            "  {:<40} {:<17} since {}",
            alarm.name,
            alarm.state,
            alarm.since.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::metrics::Window;

    const NOW: i64 = 1_764_590_425; // 2025-12-01 12:00:25 UTC

    #[test]
    fn the_span_names_its_date_once_within_a_day() {
        let window = Window::ending_at(NOW, Duration::from_secs(600));
        assert_eq!(
            span_of(window.start_s, window.end_s),
            "2025-12-01 11:51 to 12:01"
        );
        let days = Window::ending_at(NOW, Duration::from_secs(2 * 86400));
        assert_eq!(
            span_of(days.start_s, days.end_s),
            "2025-11-29 12:48 to 2025-12-01 12:48"
        );
    }

    #[test]
    fn a_window_past_what_cloudwatch_keeps_is_a_usage_error() {
        assert!(check_since(MAX_SINCE).is_ok());
        let err = check_since(MAX_SINCE + Duration::from_secs(86400)).unwrap_err();
        assert!(err.to_string().contains("455 days"), "{err}");
        assert_eq!(crate::exit::classify(&err), ExitStatus::Usage);
    }
}
