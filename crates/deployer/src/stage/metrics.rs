//! What `deployer metrics` shows of a stage over a window: the alias's
//! Lambda metrics (Invocations, Errors, Throttles, Duration percentiles,
//! ConcurrentExecutions), the API stage's (Count, 4XXError, 5XXError,
//! Latency and IntegrationLatency percentiles), cold starts and the peak
//! memory from the function's `REPORT` lines (aggregated per period by
//! Logs Insights, so the cost does not grow with traffic), each as one
//! value per period (a sparkline's bars) and a figure for the whole
//! window. Its text form is `commands::metrics`'s.
//!
//! Dimensions are the ones the services publish for exactly what the stage
//! serves: Lambda's `FunctionName,Resource` with `Resource` =
//! `function:alias` ("Types of metrics for Lambda functions", Lambda
//! Developer Guide), API Gateway's `ApiName,Stage` ("Amazon API Gateway
//! dimensions and metrics"). Invocations of a version by number (the smoke
//! test of `up`) are the function's, not the alias's, and do not count.
//! Cold starts and memory come from the log streams of the alias's version.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime};
use serde::Serialize;

use crate::aws::logs::{Insights, InsightsQuery, QueryRow};
use crate::aws::metrics::{MetricQuery, Points, metric_data};
use crate::aws::{AwsError, Clients, lambda, logs};
use crate::config::Stage;
use crate::stage::memory::{MemoryReport, memory_report};

/// At most this many periods (bars) in a window.
pub const MAX_BARS: u64 = 60;

/// CloudWatch keeps the services' hourly data points for 455 days (15
/// months, GetMetricStatistics API reference); older windows are empty.
pub const MAX_SINCE: Duration = Duration::from_secs(455 * 86400);

const LAMBDA: &str = "AWS/Lambda";
const API_GATEWAY: &str = "AWS/ApiGateway";

/// The periods a window is cut into: `[start_s, end_s)` in epoch seconds,
/// `end_s - start_s` a whole number of periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub start_s: i64,
    pub end_s: i64,
    pub period_s: i64,
}

impl Window {
    /// The window of `since` up to `now_s`, cut into at most [`MAX_BARS`]
    /// periods that start on a multiple of the period (so on a whole
    /// minute, where CloudWatch starts them), the last one holding `now_s`.
    /// The period is a multiple of 60 s, of 300 s past 15 days and of
    /// 3600 s past 63 days (`MetricStat`'s Period: coarser data is all
    /// CloudWatch keeps that far back).
    pub fn ending_at(now_s: i64, since: Duration) -> Window {
        let since_s = since.as_secs().clamp(60, MAX_SINCE.as_secs());
        let granule = match since_s {
            s if s > 63 * 86400 => 3600,
            s if s > 15 * 86400 => 300,
            _ => 60,
        };
        let period = since_s.div_ceil(MAX_BARS).div_ceil(granule) * granule;
        let bars = since_s.div_ceil(period);
        // Both fit an i64 by far: MAX_SINCE bounds them.
        let (period, bars) = (period as i64, bars as i64);
        let end_s = (now_s.div_euclid(period) + 1) * period;
        Window {
            start_s: end_s - bars * period,
            end_s,
            period_s: period,
        }
    }

    pub fn periods(&self) -> usize {
        usize::try_from((self.end_s - self.start_s) / self.period_s).unwrap_or(0)
    }

    /// The period `at_s` falls in, if it falls in the window.
    pub fn index(&self, at_s: i64) -> Option<usize> {
        if at_s < self.start_s || at_s >= self.end_s {
            return None;
        }
        usize::try_from((at_s - self.start_s) / self.period_s).ok()
    }

    fn length_s(&self) -> i64 {
        self.end_s - self.start_s
    }
}

/// A count per period and over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counter {
    pub total: u64,
    pub series: Vec<u64>,
}

/// Percentiles over the window, and the p99 of each period (`null` where
/// nothing was measured).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Distribution {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub series: Vec<Option<f64>>,
}

/// The highest value over the window and in each period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Peak {
    pub max: Option<f64>,
    pub series: Vec<Option<f64>>,
}

/// Invocations that started a new execution environment: their `REPORT`
/// line has an `Init Duration`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColdStarts {
    pub total: u64,
    pub max_init_ms: Option<f64>,
    pub series: Vec<u64>,
    /// Why they could not be counted (Logs Insights unavailable); the
    /// figures are then zero.
    pub unknown: Option<String>,
}

/// The alias's metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LambdaMetrics {
    pub invocations: Counter,
    pub errors: Counter,
    pub throttles: Counter,
    pub duration_ms: Distribution,
    pub concurrent_executions: Peak,
    pub cold_starts: ColdStarts,
}

/// The API stage's metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiMetrics {
    pub requests: Counter,
    pub errors_4xx: Counter,
    pub errors_5xx: Counter,
    pub latency_ms: Distribution,
    pub integration_latency_ms: Distribution,
}

/// Everything `deployer metrics` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsReport {
    pub stage: String,
    pub app: String,
    pub region: String,
    /// Whether the stage's alias exists; without it there is nothing to
    /// measure and the rest is empty.
    pub deployed: bool,
    pub function: String,
    pub alias: String,
    pub api: String,
    pub since_seconds: u64,
    /// RFC 3339, UTC: the window, whole periods.
    pub start: String,
    pub end: String,
    pub period_seconds: i64,
    pub periods: usize,
    pub lambda: Option<LambdaMetrics>,
    pub api_gateway: Option<ApiMetrics>,
    pub memory: Option<MemoryReport>,
    /// The stage's alarms and their states (`[alarms]`).
    pub alarms: Vec<crate::aws::alarms::ActualAlarm>,
}

/// What one series reads: a metric, its statistic per period, and over the
/// whole window the same statistic (a count, a peak) or the percentiles.
struct Series {
    key: &'static str,
    namespace: &'static str,
    metric: &'static str,
    per_period: &'static str,
    percentiles: bool,
}

const PERCENTILES: [&str; 3] = ["p50", "p90", "p99"];

/// The id of the whole window's statistic when it is the per-period one.
const TOTAL: &str = "total";

const LAMBDA_SERIES: [Series; 5] = [
    series("invocations", LAMBDA, "Invocations", "Sum"),
    series("errors", LAMBDA, "Errors", "Sum"),
    series("throttles", LAMBDA, "Throttles", "Sum"),
    distribution("duration", LAMBDA, "Duration"),
    series("concurrency", LAMBDA, "ConcurrentExecutions", "Maximum"),
];

/// `Count`'s SampleCount is the number of requests, the 4XX/5XX metrics'
/// Sum the number of such answers (API Gateway's metrics page).
const API_SERIES: [Series; 5] = [
    series("requests", API_GATEWAY, "Count", "SampleCount"),
    series("4xx", API_GATEWAY, "4XXError", "Sum"),
    series("5xx", API_GATEWAY, "5XXError", "Sum"),
    distribution("latency", API_GATEWAY, "Latency"),
    distribution("integration", API_GATEWAY, "IntegrationLatency"),
];

const fn series(
    key: &'static str,
    namespace: &'static str,
    metric: &'static str,
    stat: &'static str,
) -> Series {
    Series {
        key,
        namespace,
        metric,
        per_period: stat,
        percentiles: false,
    }
}

/// Percentiles over the window; the p99 of each period.
const fn distribution(key: &'static str, namespace: &'static str, metric: &'static str) -> Series {
    Series {
        key,
        namespace,
        metric,
        per_period: "p99",
        percentiles: true,
    }
}

fn series_id(key: &str) -> String {
    format!("s_{key}")
}

fn whole_id(key: &str, stat: &str) -> String {
    format!("w_{key}_{stat}")
}

/// Every query for the stage's window: one per series per period, and one
/// per statistic over the whole window (percentiles do not add up).
pub fn queries(stage: &Stage, window: &Window) -> Vec<MetricQuery> {
    let function = stage.function_name();
    let lambda_dimensions = vec![
        ("FunctionName", function.clone()),
        ("Resource", format!("{function}:{}", stage.alias_name())),
    ];
    let api_dimensions = vec![("ApiName", stage.api_name()), ("Stage", stage.name.clone())];
    let whole_s = i32::try_from(window.length_s()).unwrap_or(i32::MAX);
    let period_s = i32::try_from(window.period_s).unwrap_or(i32::MAX);
    let mut queries = Vec::new();
    for (all, dimensions) in [
        (&LAMBDA_SERIES, &lambda_dimensions),
        (&API_SERIES, &api_dimensions),
    ] {
        for series in all {
            let query = |id: String, stat: &str, period_s: i32| MetricQuery {
                id,
                namespace: series.namespace,
                metric: series.metric,
                dimensions: dimensions.clone(),
                stat: stat.to_string(),
                period_s,
            };
            queries.push(query(series_id(series.key), series.per_period, period_s));
            if series.percentiles {
                for stat in PERCENTILES {
                    queries.push(query(whole_id(series.key, stat), stat, whole_s));
                }
            } else {
                let id = whole_id(series.key, TOTAL);
                queries.push(query(id, series.per_period, whole_s));
            }
        }
    }
    queries
}

/// Reads the stage's metrics over `since` up to `now_s` (epoch seconds).
pub async fn read(
    stage: &Stage,
    clients: &Clients,
    since: Duration,
    now_s: i64,
) -> Result<MetricsReport, AwsError> {
    let window = Window::ending_at(now_s, since);
    let function_name = stage.function_name();
    let alias = stage.alias_name();
    let mut report = MetricsReport {
        stage: stage.name.clone(),
        app: stage.app.clone(),
        region: stage.region.clone(),
        deployed: false,
        function: function_name.clone(),
        alias: alias.clone(),
        api: stage.api_name(),
        since_seconds: since.as_secs(),
        start: rfc3339(window.start_s),
        end: rfc3339(window.end_s),
        period_seconds: window.period_s,
        periods: window.periods(),
        lambda: None,
        api_gateway: None,
        memory: None,
        alarms: super::alarms::states(stage, clients).await?,
    };
    // The alias's version: its memory is what the served invocations had.
    let Some(served) = lambda::read_function(&clients.lambda, &function_name, Some(&alias)).await?
    else {
        return Ok(report);
    };
    let queries = queries(stage, &window);
    let log_group = stage.log_group_name();
    let reports_query = reports_query(&served.version, &window);
    let (points, reports) = tokio::try_join!(
        metric_data(&clients.cloudwatch, &queries, window.start_s, window.end_s),
        logs::insights_query(&clients.logs, &log_group, &reports_query),
    )?;
    let read = Read {
        points: &points,
        window: &window,
    };
    let reports = match reports {
        Insights::Answered(rows) => Insights::Answered(PeriodReports::of(&rows, &window)),
        Insights::Unavailable(why) => Insights::Unavailable(why),
    };
    let (cold_starts, max_used) = match reports {
        Insights::Answered(reports) => (
            reports.cold_starts(),
            Insights::Answered(reports.max_memory_mb()),
        ),
        Insights::Unavailable(why) => (
            ColdStarts {
                total: 0,
                max_init_ms: None,
                series: vec![0; window.periods()],
                unknown: Some(why.clone()),
            },
            Insights::Unavailable(why),
        ),
    };
    report.deployed = true;
    report.lambda = Some(LambdaMetrics {
        invocations: read.counter("invocations"),
        errors: read.counter("errors"),
        throttles: read.counter("throttles"),
        duration_ms: read.distribution("duration"),
        concurrent_executions: read.peak("concurrency"),
        cold_starts,
    });
    report.api_gateway = Some(ApiMetrics {
        requests: read.counter("requests"),
        errors_4xx: read.counter("4xx"),
        errors_5xx: read.counter("5xx"),
        latency_ms: read.distribution("latency"),
        integration_latency_ms: read.distribution("integration"),
    });
    report.memory = Some(memory_report(
        served.memory_mb,
        max_used,
        Duration::from_secs(u64::try_from(window.length_s()).unwrap_or(0)),
    ));
    Ok(report)
}

/// The Logs Insights query of the `REPORT` lines the alias's version wrote
/// in the window, per period: how many, how many started an environment
/// (only those have `@initDuration`), the longest init and the peak
/// memory ("Supported logs and discovered fields", CloudWatch Logs User
/// Guide; `stats ... by bin()`, "CloudWatch Logs Insights query syntax").
/// Each execution environment writes its own stream, named
/// `YYYY/MM/DD/[Function version]Execution environment GUID` ("How
/// CloudWatch structures logs", Lambda Operator Guide): the served
/// version's environments are the alias's.
pub fn reports_query(version: &str, window: &Window) -> InsightsQuery {
    InsightsQuery {
        query: format!(
            "filter @type = \"REPORT\" and @logStream like \"[{version}]\" \
             | stats count(*) as reports, count(@initDuration) as coldStarts, \
             max(@initDuration) as maxInitDuration, max(@maxMemoryUsed) as maxMemoryUsed \
             by {}",
            bin_field(window)
        ),
        start_s: window.start_s,
        // Both ends are included: an event at `end_s` lands in a bin past
        // the window, which is left out.
        end_s: window.end_s,
        // A bin per period at most, and only those with lines.
        limit: i32::try_from(MAX_BARS * 2).unwrap_or(i32::MAX),
    }
}

/// The field of a row that names its period (Insights names it as the
/// query writes it).
fn bin_field(window: &Window) -> String {
    format!("bin({}s)", window.period_s)
}

/// The `REPORT` lines' figures of one period.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct PeriodReport {
    cold_starts: u64,
    max_init_ms: Option<f64>,
    max_memory_mb: Option<u32>,
}

/// [`reports_query`]'s answer, by period of the window.
#[derive(Debug, Clone, PartialEq)]
struct PeriodReports(Vec<PeriodReport>);

impl PeriodReports {
    /// Places each row in its period by the time Insights gives its bin
    /// (`2025-12-01 11:36:00.000`, UTC); rows outside the window, or
    /// without a readable bin, are left out.
    fn of(rows: &[QueryRow], window: &Window) -> PeriodReports {
        let mut periods = vec![PeriodReport::default(); window.periods()];
        let bin = bin_field(window);
        for row in rows {
            let at = row
                .get(&bin)
                .and_then(|t| NaiveDateTime::parse_from_str(t.trim(), "%Y-%m-%d %H:%M:%S%.f").ok())
                .map(|t| t.and_utc().timestamp());
            let Some(slot) = at
                .and_then(|at| window.index(at))
                .and_then(|i| periods.get_mut(i))
            else {
                continue;
            };
            slot.cold_starts = count(logs::query_number(row, "coldStarts").unwrap_or(0.0));
            slot.max_init_ms = logs::query_number(row, "maxInitDuration")
                .filter(|ms| *ms >= 0.0 && slot.cold_starts > 0);
            slot.max_memory_mb = logs::query_number(row, "maxMemoryUsed").and_then(logs::megabytes);
        }
        PeriodReports(periods)
    }

    fn cold_starts(&self) -> ColdStarts {
        let series: Vec<u64> = self.0.iter().map(|p| p.cold_starts).collect();
        ColdStarts {
            total: series.iter().sum(),
            max_init_ms: self.0.iter().filter_map(|p| p.max_init_ms).reduce(f64::max),
            series,
            unknown: None,
        }
    }

    fn max_memory_mb(&self) -> Option<u32> {
        self.0.iter().filter_map(|p| p.max_memory_mb).max()
    }
}

/// The answers of one read, by series.
struct Read<'a> {
    points: &'a HashMap<String, Points>,
    window: &'a Window,
}

impl Read<'_> {
    fn points(&self, id: &str) -> &[(i64, f64)] {
        self.points.get(id).map(Vec::as_slice).unwrap_or_default()
    }

    fn per_period(&self, key: &str) -> Vec<Option<f64>> {
        let mut series = vec![None; self.window.periods()];
        for (at, value) in self.points(&series_id(key)) {
            if let Some(slot) = self.window.index(*at).and_then(|i| series.get_mut(i)) {
                *slot = Some(*value);
            }
        }
        series
    }

    fn whole(&self, key: &str, stat: &str) -> Option<f64> {
        self.points(&whole_id(key, stat)).first().map(|(_, v)| *v)
    }

    fn counter(&self, key: &str) -> Counter {
        let series: Vec<u64> = self
            .per_period(key)
            .into_iter()
            .map(|v| count(v.unwrap_or(0.0)))
            .collect();
        Counter {
            total: count(self.whole(key, TOTAL).unwrap_or(0.0)),
            series,
        }
    }

    fn distribution(&self, key: &str) -> Distribution {
        Distribution {
            p50: self.whole(key, "p50"),
            p90: self.whole(key, "p90"),
            p99: self.whole(key, "p99"),
            series: self.per_period(key),
        }
    }

    fn peak(&self, key: &str) -> Peak {
        Peak {
            max: self.whole(key, TOTAL),
            series: self.per_period(key),
        }
    }
}

/// A count CloudWatch hands back as a float.
fn count(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        value.round() as u64
    } else {
        0
    }
}

fn rfc3339(epoch_s: i64) -> String {
    DateTime::from_timestamp(epoch_s, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_590_425; // 2025-12-01 12:00:25 UTC

    #[test]
    fn a_window_is_at_most_sixty_bars_of_whole_minutes_ending_after_now() {
        let hour = Window::ending_at(NOW, Duration::from_secs(3600));
        assert_eq!((hour.period_s, hour.periods()), (60, 60));
        assert_eq!(hour.end_s, NOW - 25 + 60);
        assert_eq!(hour.start_s % 60, 0);
        assert!(hour.index(NOW).is_some_and(|i| i == 59));

        let ten = Window::ending_at(NOW, Duration::from_secs(600));
        assert_eq!((ten.period_s, ten.periods()), (60, 10));
        let two_hours = Window::ending_at(NOW, Duration::from_secs(7200));
        assert_eq!((two_hours.period_s, two_hours.periods()), (120, 60));
        let day = Window::ending_at(NOW, Duration::from_secs(86400));
        assert_eq!((day.period_s, day.periods()), (1440, 60));
        // Under a minute is a minute; an odd length rounds up to whole periods.
        let short = Window::ending_at(NOW, Duration::from_secs(5));
        assert_eq!((short.period_s, short.periods()), (60, 1));
        let odd = Window::ending_at(NOW, Duration::from_secs(90));
        assert_eq!((odd.period_s, odd.periods()), (60, 2));
    }

    #[test]
    fn far_back_windows_take_the_coarser_periods_cloudwatch_keeps() {
        let month = Window::ending_at(NOW, Duration::from_secs(30 * 86400));
        assert_eq!(month.period_s % 300, 0);
        assert!(month.periods() <= 60);
        let quarter = Window::ending_at(NOW, Duration::from_secs(90 * 86400));
        assert_eq!(quarter.period_s % 3600, 0);
        assert!(quarter.periods() <= 60);
        let beyond = Window::ending_at(NOW, Duration::from_secs(9999 * 86400));
        assert!(beyond.length_s() <= MAX_SINCE.as_secs() as i64 + beyond.period_s);
        for w in [month, quarter, beyond] {
            assert_eq!(w.start_s % w.period_s, 0, "{w:?}");
            assert!(i32::try_from(w.length_s()).is_ok(), "{w:?}");
        }
    }

    #[test]
    fn queries_fit_one_call_with_unique_ids_and_exact_dimensions() {
        let stage = Stage::defaults("app", "dev", "us-east-1");
        let window = Window::ending_at(NOW, Duration::from_secs(3600));
        let queries = queries(&stage, &window);
        assert!(queries.len() <= crate::aws::metrics::MAX_QUERIES_PER_CALL);
        let mut ids: Vec<&str> = queries.iter().map(|q| q.id.as_str()).collect();
        assert!(
            ids.iter()
                .all(|id| id.starts_with(|c: char| c.is_ascii_lowercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')),
            "{ids:?}"
        );
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), queries.len());
        let invocations = queries.iter().find(|q| q.id == "s_invocations").unwrap();
        assert_eq!(
            invocations.dimensions,
            [
                ("FunctionName", "app-dev".to_string()),
                ("Resource", "app-dev:dev".to_string())
            ]
        );
        assert_eq!(
            (invocations.stat.as_str(), invocations.period_s),
            ("Sum", 60)
        );
        let p99 = queries.iter().find(|q| q.id == "w_latency_p99").unwrap();
        assert_eq!(
            p99.dimensions,
            [
                ("ApiName", "app-dev".to_string()),
                ("Stage", "dev".to_string())
            ]
        );
        assert_eq!(p99.period_s, 3600);
        assert!(queries.iter().all(|q| q.period_s % 60 == 0));
    }

    #[test]
    fn answers_land_in_their_periods() {
        let window = Window::ending_at(NOW, Duration::from_secs(600));
        let points = HashMap::from([
            (
                "s_invocations".to_string(),
                vec![(window.start_s, 2.0), (window.start_s + 540, 3.0)],
            ),
            (
                "w_invocations_total".to_string(),
                vec![(window.start_s, 5.0)],
            ),
            ("s_duration".to_string(), vec![(window.start_s + 60, 12.5)]),
            ("w_duration_p50".to_string(), vec![(window.start_s, 1.5)]),
        ]);
        let read = Read {
            points: &points,
            window: &window,
        };
        let invocations = read.counter("invocations");
        assert_eq!(invocations.total, 5);
        assert_eq!(invocations.series, [2, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
        let duration = read.distribution("duration");
        assert_eq!((duration.p50, duration.p99), (Some(1.5), None));
        assert_eq!(duration.series[1], Some(12.5));
        assert_eq!(duration.series.iter().flatten().count(), 1);
    }

    fn bin_row(window: &Window, at_s: i64, fields: &[(&str, &str)]) -> QueryRow {
        let bin = DateTime::from_timestamp(at_s, 0)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S%.3f")
            .to_string();
        let mut row = QueryRow::from([(bin_field(window), bin)]);
        for (field, value) in fields {
            row.insert(field.to_string(), value.to_string());
        }
        row
    }

    #[test]
    fn the_query_reads_the_versions_streams_by_period() {
        let window = Window::ending_at(NOW, Duration::from_secs(86400));
        let query = reports_query("3", &window);
        assert_eq!(
            query.query,
            "filter @type = \"REPORT\" and @logStream like \"[3]\" \
             | stats count(*) as reports, count(@initDuration) as coldStarts, \
             max(@initDuration) as maxInitDuration, max(@maxMemoryUsed) as maxMemoryUsed \
             by bin(1440s)"
        );
        assert_eq!((query.start_s, query.end_s), (window.start_s, window.end_s));
        assert!(query.limit >= window.periods() as i32);
    }

    #[test]
    fn cold_starts_and_memory_land_in_their_periods() {
        let window = Window::ending_at(NOW, Duration::from_secs(600));
        let rows = [
            bin_row(
                &window,
                window.start_s,
                &[
                    ("reports", "4"),
                    ("coldStarts", "1"),
                    ("maxInitDuration", "40.0"),
                    ("maxMemoryUsed", "2.3E7"),
                ],
            ),
            // Warm only: Insights leaves the init out.
            bin_row(
                &window,
                window.start_s + 120,
                &[
                    ("reports", "2"),
                    ("coldStarts", "0"),
                    ("maxMemoryUsed", "57000000"),
                ],
            ),
            bin_row(
                &window,
                window.start_s + 300,
                &[
                    ("reports", "1"),
                    ("coldStarts", "1"),
                    ("maxInitDuration", "55.5"),
                    ("maxMemoryUsed", "41000000"),
                ],
            ),
            // A bin past the window (the query's end is inclusive).
            bin_row(
                &window,
                window.end_s,
                &[
                    ("reports", "1"),
                    ("coldStarts", "1"),
                    ("maxInitDuration", "99"),
                    ("maxMemoryUsed", "99000000"),
                ],
            ),
        ];
        let reports = PeriodReports::of(&rows, &window);
        let cold = reports.cold_starts();
        assert_eq!(cold.total, 2);
        assert_eq!(cold.max_init_ms, Some(55.5));
        assert_eq!(cold.series, [1, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(cold.unknown, None);
        assert_eq!(reports.max_memory_mb(), Some(57));
    }

    #[test]
    fn no_rows_are_no_cold_starts_and_no_peak() {
        let window = Window::ending_at(NOW, Duration::from_secs(600));
        let reports = PeriodReports::of(&[], &window);
        assert_eq!(reports.cold_starts().total, 0);
        assert_eq!(reports.cold_starts().series.len(), 10);
        assert_eq!(reports.max_memory_mb(), None);
    }
}
