//! `[alarms]`: the CloudWatch alarms that page someone when the stage
//! breaks, as written (`RawAlarms`), resolved (`AlarmsSpec`) and checked.
//!
//! On by default for a protected stage (`enabled` defaults to the stage's
//! `protected`), so `dev` and `local` get none unless they ask. One shared
//! set of windows (`period`, `evaluation-periods`, `datapoints-to-alarm`,
//! `treat-missing-data`) with per-alarm overrides in `[alarms.<alarm>]`
//! tables, and one threshold per alarm. Layered like the other tables:
//! the shared `[alarms]` ← `[stages.X.alarms]`, key by key.
//!
//! What AWS allows, checked here so that `up` never fails half-way
//! (PutMetricAlarm API reference): `Period` 10, 20, 30 or a multiple of 60
//! — but only a high-resolution custom metric has data below a minute, and
//! Lambda's and API Gateway's metrics are one-minute ones, so a period is a
//! multiple of 60 here; `Period × EvaluationPeriods` at most a day;
//! `DatapointsToAlarm` between 1 and `EvaluationPeriods`;
//! `TreatMissingData` one of `breaching`, `notBreaching`, `ignore`,
//! `missing`. API Gateway cuts a request at 29 s (its integration timeout):
//! a p99 threshold at or past it would never see the latency it is meant
//! to catch, only the 504s, so it is refused.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::raw::Source;
use super::stage::{API_TIMEOUT_S, SettingAt};

/// One of the stage's alarms; its name is `{app}-{stage}-{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlarmId {
    /// API Gateway `5XXError`, Average (the share of requests answered 5XX).
    ServerErrorRate,
    /// API Gateway `Latency`, p99, in milliseconds.
    LatencyP99,
    /// Lambda `Errors`, Sum, on the stage's alias.
    Errors,
    /// Lambda `Throttles`, Sum, on the stage's alias.
    Throttles,
    /// Lambda `ProvisionedConcurrencySpilloverInvocations`, Sum: only with
    /// provisioned concurrency.
    Spillover,
}

impl AlarmId {
    pub const ALL: [AlarmId; 5] = [
        AlarmId::ServerErrorRate,
        AlarmId::LatencyP99,
        AlarmId::Errors,
        AlarmId::Throttles,
        AlarmId::Spillover,
    ];

    /// The alarm's name after `{app}-{stage}-`, and its override table's.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmId::ServerErrorRate => "5xx-rate",
            AlarmId::LatencyP99 => "latency-p99",
            AlarmId::Errors => "errors",
            AlarmId::Throttles => "throttles",
            AlarmId::Spillover => "spillover",
        }
    }
}

/// How CloudWatch counts a period without data ("Configuring how CloudWatch
/// alarms treat missing data").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TreatMissing {
    #[serde(rename = "breaching")]
    Breaching,
    #[serde(rename = "notBreaching")]
    NotBreaching,
    #[serde(rename = "ignore")]
    Ignore,
    #[serde(rename = "missing")]
    Missing,
}

impl TreatMissing {
    /// As PutMetricAlarm spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TreatMissing::Breaching => "breaching",
            TreatMissing::NotBreaching => "notBreaching",
            TreatMissing::Ignore => "ignore",
            TreatMissing::Missing => "missing",
        }
    }
}

/// How an alarm judges its metric over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmWindow {
    pub period_s: i32,
    pub evaluation_periods: i32,
    pub datapoints_to_alarm: i32,
    pub treat_missing_data: TreatMissing,
}

/// Who is told: a topic used as given, or an endpoint the deployer
/// subscribes to the stage's own topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyTarget {
    /// An SNS topic ARN in the stage's Region (an alarm notifies only its
    /// own Region's topics), never created, changed or deleted.
    Topic(String),
    Email(String),
    /// An `https://` URL, or `http://` on loopback (the local AWS's tests).
    Url(String),
}

impl NotifyTarget {
    /// The SNS protocol and endpoint of a subscription; `None` for a topic.
    pub fn subscription(&self) -> Option<(&'static str, &str)> {
        match self {
            NotifyTarget::Topic(_) => None,
            NotifyTarget::Email(address) => Some(("email", address)),
            NotifyTarget::Url(url) if url.starts_with("https://") => Some(("https", url)),
            NotifyTarget::Url(url) => Some(("http", url)),
        }
    }
}

/// The stage's alarms, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmsSpec {
    pub enabled: bool,
    pub notify: Vec<NotifyTarget>,
    /// Each alarm's window: the shared one with its table's overrides.
    pub windows: BTreeMap<AlarmId, AlarmWindow>,
    /// The share of requests answered 5XX above which the API is broken.
    pub server_error_rate: f64,
    /// Milliseconds, below API Gateway's 29 s cut.
    pub latency_p99_ms: f64,
    /// Alarm when more than this many happen in a period.
    pub error_count: f64,
    pub throttle_count: f64,
    pub spillover_count: f64,
}

/// AWS's recommended alarms for API Gateway and Lambda ("Recommended
/// alarms", CloudWatch User Guide): one-minute periods, three of three
/// periods breaching, and a period without requests counted as fine (an
/// idle API has no errors).
pub const DEFAULT_WINDOW: AlarmWindow = AlarmWindow {
    period_s: 60,
    evaluation_periods: 3,
    datapoints_to_alarm: 3,
    treat_missing_data: TreatMissing::NotBreaching,
};

impl AlarmsSpec {
    /// No alarms (what an unprotected stage gets by default).
    pub fn defaults() -> AlarmsSpec {
        AlarmsSpec {
            enabled: false,
            notify: Vec::new(),
            windows: AlarmId::ALL
                .iter()
                .map(|id| (*id, DEFAULT_WINDOW))
                .collect(),
            server_error_rate: 0.05,
            latency_p99_ms: 5000.0,
            error_count: 0.0,
            throttle_count: 0.0,
            spillover_count: 0.0,
        }
    }

    pub fn window(&self, id: AlarmId) -> AlarmWindow {
        self.windows.get(&id).copied().unwrap_or(DEFAULT_WINDOW)
    }

    /// The alarm's threshold, in its metric's unit.
    pub fn threshold(&self, id: AlarmId) -> f64 {
        match id {
            AlarmId::ServerErrorRate => self.server_error_rate,
            AlarmId::LatencyP99 => self.latency_p99_ms,
            AlarmId::Errors => self.error_count,
            AlarmId::Throttles => self.throttle_count,
            AlarmId::Spillover => self.spillover_count,
        }
    }

    /// The SNS topic ARNs the configuration names.
    pub fn given_topics(&self) -> Vec<&str> {
        self.notify
            .iter()
            .filter_map(|t| match t {
                NotifyTarget::Topic(arn) => Some(arn.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Whether the stage needs a topic of its own (an e-mail or a URL).
    pub fn wants_own_topic(&self) -> bool {
        self.enabled && self.notify.iter().any(|t| t.subscription().is_some())
    }
}

// ---------------------------------------------------------------------------
// As written.

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "an [alarms] table"
)]
pub(super) struct RawAlarms {
    pub(super) enabled: Option<bool>,
    pub(super) notify: Option<Vec<Spanned<String>>>,
    pub(super) period: Option<Spanned<i64>>,
    pub(super) evaluation_periods: Option<Spanned<i64>>,
    pub(super) datapoints_to_alarm: Option<Spanned<i64>>,
    pub(super) treat_missing_data: Option<TreatMissing>,
    pub(super) server_error_rate: Option<Spanned<f64>>,
    pub(super) latency_p99_ms: Option<Spanned<f64>>,
    pub(super) error_count: Option<Spanned<i64>>,
    pub(super) throttle_count: Option<Spanned<i64>>,
    pub(super) spillover_count: Option<Spanned<i64>>,
    #[serde(rename = "5xx-rate")]
    pub(super) server_errors_window: Option<RawAlarmWindow>,
    pub(super) latency_p99: Option<RawAlarmWindow>,
    pub(super) errors: Option<RawAlarmWindow>,
    pub(super) throttles: Option<RawAlarmWindow>,
    pub(super) spillover: Option<RawAlarmWindow>,
}

/// `[alarms.<alarm>]`: one alarm's window, overriding the shared one.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "an alarm's table (period, evaluation-periods, datapoints-to-alarm, treat-missing-data)"
)]
pub(super) struct RawAlarmWindow {
    pub(super) period: Option<Spanned<i64>>,
    pub(super) evaluation_periods: Option<Spanned<i64>>,
    pub(super) datapoints_to_alarm: Option<Spanned<i64>>,
    pub(super) treat_missing_data: Option<TreatMissing>,
}

impl RawAlarms {
    /// The alarm's own table.
    fn window(&self, id: AlarmId) -> Option<&RawAlarmWindow> {
        match id {
            AlarmId::ServerErrorRate => self.server_errors_window.as_ref(),
            AlarmId::LatencyP99 => self.latency_p99.as_ref(),
            AlarmId::Errors => self.errors.as_ref(),
            AlarmId::Throttles => self.throttles.as_ref(),
            AlarmId::Spillover => self.spillover.as_ref(),
        }
    }
}

/// Where each window's values were set, for the checks that need the
/// whole window (datapoints against evaluation periods, a day's reach).
#[derive(Default, Clone)]
struct WindowAt {
    period: Option<SettingAt>,
    evaluation_periods: Option<SettingAt>,
    datapoints: Option<SettingAt>,
}

/// Resolves `[alarms]` for a stage: the shared table (`shared`), then the
/// stage's own (`own`, under `table`, e.g. `stages.prod.alarms`).
/// `protected`: the default of `enabled`. `region`: where a given topic
/// must be.
pub(super) fn resolve(
    src: &Source<'_>,
    shared: Option<&RawAlarms>,
    own: Option<&RawAlarms>,
    stage_name: &str,
    protected: bool,
    region: &str,
) -> Result<AlarmsSpec, ConfigError> {
    let mut spec = AlarmsSpec::defaults();
    spec.enabled = protected;
    let mut at: BTreeMap<AlarmId, WindowAt> = BTreeMap::new();
    let own_table = format!("stages.{stage_name}.alarms");
    for (raw, table) in [(shared, "alarms"), (own, own_table.as_str())] {
        let Some(raw) = raw else { continue };
        let key = |k: &str| format!("[{table}] {k}");
        if let Some(enabled) = raw.enabled {
            spec.enabled = enabled;
        }
        if let Some(notify) = &raw.notify {
            spec.notify = notify
                .iter()
                .map(|item| {
                    notify_target(item.get_ref(), region)
                        .map_err(|m| src.error(item.span(), key("notify"), m))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(rate) = &raw.server_error_rate {
            let r = *rate.get_ref();
            if !(r > 0.0 && r < 1.0) {
                return Err(src.error(
                    rate.span(),
                    key("server-error-rate"),
                    format!(
                        "must be a share of requests between 0 and 1 (0.05: 5 in 100 answered \
                         5XX), got {r}"
                    ),
                ));
            }
            spec.server_error_rate = r;
        }
        if let Some(ms) = &raw.latency_p99_ms {
            let v = *ms.get_ref();
            let cut = f64::from(API_TIMEOUT_S * 1000);
            if !(v > 0.0 && v < cut) {
                return Err(src.error(
                    ms.span(),
                    key("latency-p99-ms"),
                    format!(
                        "must be above 0 and below {cut} ms, got {v}: API Gateway cuts a \
                         request at {API_TIMEOUT_S} s (504), so a p99 at or past it never \
                         shows the slowness the alarm is for"
                    ),
                ));
            }
            spec.latency_p99_ms = v;
        }
        for (count, field, name) in [
            (&raw.error_count, &mut spec.error_count, "error-count"),
            (
                &raw.throttle_count,
                &mut spec.throttle_count,
                "throttle-count",
            ),
            (
                &raw.spillover_count,
                &mut spec.spillover_count,
                "spillover-count",
            ),
        ] {
            if let Some(count) = count {
                let n: i64 = super::check::in_range(
                    src,
                    count,
                    0,
                    i64::from(i32::MAX),
                    "per period (the alarm goes off above it)",
                    key(name),
                )?;
                // Exact: at most i32::MAX.
                *field = n as f64;
            }
        }
        for id in AlarmId::ALL {
            let window = spec.windows.entry(id).or_insert(DEFAULT_WINDOW);
            let where_ = at.entry(id).or_default();
            apply_window(src, window, where_, raw.shared_keys(), &key)?;
            if let Some(own) = raw.window(id) {
                let table_key = |k: &str| format!("[{table}.{}] {k}", id.as_str());
                apply_window(src, window, where_, own.keys(), &table_key)?;
            }
        }
    }
    for id in AlarmId::ALL {
        let window = spec.window(id);
        let where_ = at.remove(&id).unwrap_or_default();
        check_window(id, window, &where_)?;
    }
    Ok(spec)
}

/// The window keys of one table: `[alarms]` itself or an alarm's own.
struct WindowKeys<'a> {
    period: Option<&'a Spanned<i64>>,
    evaluation_periods: Option<&'a Spanned<i64>>,
    datapoints_to_alarm: Option<&'a Spanned<i64>>,
    treat_missing_data: Option<TreatMissing>,
}

impl RawAlarms {
    fn shared_keys(&self) -> WindowKeys<'_> {
        WindowKeys {
            period: self.period.as_ref(),
            evaluation_periods: self.evaluation_periods.as_ref(),
            datapoints_to_alarm: self.datapoints_to_alarm.as_ref(),
            treat_missing_data: self.treat_missing_data,
        }
    }
}

impl RawAlarmWindow {
    fn keys(&self) -> WindowKeys<'_> {
        WindowKeys {
            period: self.period.as_ref(),
            evaluation_periods: self.evaluation_periods.as_ref(),
            datapoints_to_alarm: self.datapoints_to_alarm.as_ref(),
            treat_missing_data: self.treat_missing_data,
        }
    }
}

/// A day: the longest an alarm may look back (`Period × EvaluationPeriods`).
const DAY_S: i64 = 86_400;

fn apply_window(
    src: &Source<'_>,
    window: &mut AlarmWindow,
    at: &mut WindowAt,
    raw: WindowKeys<'_>,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if let Some(period) = raw.period {
        let p = *period.get_ref();
        if !(60..=DAY_S).contains(&p) || p % 60 != 0 {
            return Err(src.error(
                period.span(),
                key("period"),
                format!(
                    "must be a multiple of 60 seconds up to {DAY_S}, got {p}: CloudWatch also \
                     takes 10, 20 and 30, but only for high-resolution metrics, and Lambda's \
                     and API Gateway's are one-minute metrics"
                ),
            ));
        }
        window.period_s = p as i32;
        at.period = Some(src.setting_at(period.span(), key("period")));
    }
    if let Some(count) = raw.evaluation_periods {
        window.evaluation_periods = super::check::in_range(
            src,
            count,
            1,
            DAY_S / 60,
            "periods",
            key("evaluation-periods"),
        )?;
        at.evaluation_periods = Some(src.setting_at(count.span(), key("evaluation-periods")));
        // Unless set too, all of the periods must breach (AWS's default).
        if raw.datapoints_to_alarm.is_none() && at.datapoints.is_none() {
            window.datapoints_to_alarm = window.evaluation_periods;
        }
    }
    if let Some(count) = raw.datapoints_to_alarm {
        window.datapoints_to_alarm = super::check::in_range(
            src,
            count,
            1,
            DAY_S / 60,
            "periods",
            key("datapoints-to-alarm"),
        )?;
        at.datapoints = Some(src.setting_at(count.span(), key("datapoints-to-alarm")));
    }
    if let Some(treat) = raw.treat_missing_data {
        window.treat_missing_data = treat;
    }
    Ok(())
}

/// What PutMetricAlarm refuses of a whole window, blamed on the line that
/// made it so.
fn check_window(id: AlarmId, window: AlarmWindow, at: &WindowAt) -> Result<(), ConfigError> {
    let fallback = || SettingAt {
        file: "deploy.toml".into(),
        line: 0,
        key: format!("[alarms.{}]", id.as_str()),
    };
    if window.datapoints_to_alarm > window.evaluation_periods {
        let blame = at
            .datapoints
            .clone()
            .or_else(|| at.evaluation_periods.clone())
            .unwrap_or_else(fallback);
        return Err(blame.error(format!(
            "the {} alarm would need {} breaching periods out of {}: datapoints-to-alarm must \
             be at most evaluation-periods",
            id.as_str(),
            window.datapoints_to_alarm,
            window.evaluation_periods
        )));
    }
    let reach = i64::from(window.period_s) * i64::from(window.evaluation_periods);
    if reach > DAY_S {
        let blame = at
            .evaluation_periods
            .clone()
            .or_else(|| at.period.clone())
            .unwrap_or_else(fallback);
        return Err(blame.error(format!(
            "the {} alarm would look back {reach} s (period {} × {} periods): CloudWatch allows \
             at most a day ({DAY_S} s)",
            id.as_str(),
            window.period_s,
            window.evaluation_periods
        )));
    }
    Ok(())
}

/// A `notify` entry: a topic ARN in `region`, an e-mail address, an
/// `https://` URL, or an `http://` one on loopback.
fn notify_target(text: &str, region: &str) -> Result<NotifyTarget, String> {
    let text = text.trim();
    if crate::names::is_arn(text) {
        let Some(topic_region) = crate::names::sns_topic_region(text) else {
            return Err(format!(
                "{text:?} is not an SNS topic ARN ({})",
                crate::names::SNS_TOPIC_ARN_FORM
            ));
        };
        if topic_region != region {
            return Err(format!(
                "topic {text:?} is in {topic_region}, the stage in {region}: a CloudWatch alarm \
                 notifies only topics in its own Region"
            ));
        }
        return Ok(NotifyTarget::Topic(text.to_string()));
    }
    if let Some(rest) = text.strip_prefix("https://") {
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("{text:?} has no host"));
        }
        return Ok(NotifyTarget::Url(text.to_string()));
    }
    if let Some(rest) = text.strip_prefix("http://") {
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host.rsplit_once(':').map_or(host, |(h, _)| h),
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(format!(
                "{text:?}: notifications go out over https:// (SNS would send them unencrypted \
                 over http://); http:// is only for a subscriber on this machine (127.0.0.1, \
                 localhost)"
            ));
        }
        return Ok(NotifyTarget::Url(text.to_string()));
    }
    let email = text.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !text.contains(char::is_whitespace)
            && !domain.contains('@')
    });
    if email {
        return Ok(NotifyTarget::Email(text.to_string()));
    }
    Err(format!(
        "{text:?} is none of what `notify` takes: an SNS topic ARN, an e-mail address or an \
         https:// URL"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_takes_topics_addresses_and_urls() {
        let r = "us-east-1";
        assert_eq!(
            notify_target("arn:aws:sns:us-east-1:123456789012:ops", r),
            Ok(NotifyTarget::Topic(
                "arn:aws:sns:us-east-1:123456789012:ops".into()
            ))
        );
        assert!(
            notify_target("arn:aws:sns:eu-west-1:123456789012:ops", r)
                .unwrap_err()
                .contains("own Region")
        );
        assert!(notify_target("arn:aws:sqs:us-east-1:123456789012:q", r).is_err());
        assert_eq!(
            notify_target("ops@example.com", r),
            Ok(NotifyTarget::Email("ops@example.com".into()))
        );
        assert!(notify_target("ops@example", r).is_err());
        assert!(notify_target("https://hooks.example.com/x", r).is_ok());
        assert!(notify_target("http://127.0.0.1:8080/hook", r).is_ok());
        assert!(notify_target("http://localhost/hook", r).is_ok());
        assert!(notify_target("http://[::1]:9/hook", r).is_ok());
        let refused = notify_target("http://hooks.example.com/x", r).unwrap_err();
        assert!(refused.contains("https://"), "{refused}");
        assert!(notify_target("ftp://x", r).is_err());
    }

    #[test]
    fn own_topic_only_for_addresses_and_urls() {
        let mut spec = AlarmsSpec::defaults();
        spec.enabled = true;
        spec.notify = vec![NotifyTarget::Topic("arn:aws:sns:us-east-1:1:t".into())];
        assert!(!spec.wants_own_topic());
        spec.notify.push(NotifyTarget::Email("a@b.co".into()));
        assert!(spec.wants_own_topic());
        assert_eq!(spec.notify[1].subscription(), Some(("email", "a@b.co")));
        assert_eq!(
            NotifyTarget::Url("http://127.0.0.1:1/x".into()).subscription(),
            Some(("http", "http://127.0.0.1:1/x"))
        );
    }
}
