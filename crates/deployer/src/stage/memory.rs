//! The function's configured memory against the most its invocations used
//! (Lambda's `REPORT` lines, aggregated by Logs Insights), with advice:
//! `status` gives it over the last day, `metrics` over its `--since`
//! window. When Insights cannot answer, the use is unknown and the advice
//! says why; the command still succeeds.

use std::time::Duration;

use serde::Serialize;

use crate::aws::logs::Insights;

/// Lambda's smallest memory size, and the step advice rounds up to.
const MIN_MEMORY_MB: u32 = 128;
const MEMORY_STEP_MB: u32 = 64;

/// The function's configured memory against the most its invocations used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryReport {
    pub configured_mb: i32,
    /// The highest `Max Memory Used` over the window; `None` when the log
    /// holds no `REPORT` line in it, or when it could not be read.
    pub max_used_mb: Option<u32>,
    /// Why the use could not be read (Logs Insights unavailable).
    pub unknown: Option<String>,
    /// The window in whole hours (0 for a window under an hour).
    pub window_hours: u64,
    pub window_seconds: u64,
    /// A smaller size that still leaves headroom, when the function uses
    /// far less than it has.
    pub suggested_mb: Option<u32>,
    pub advice: String,
}

/// The configured memory against the peak measured over `window`, with
/// advice.
pub fn memory_report(
    configured_mb: i32,
    max_used_mb: Insights<Option<u32>>,
    window: Duration,
) -> MemoryReport {
    let window_seconds = window.as_secs();
    let window_hours = window_seconds / 3600;
    let span = span_text(window);
    let max_used_mb = match max_used_mb {
        Insights::Answered(used) => used,
        Insights::Unavailable(why) => {
            return MemoryReport {
                configured_mb,
                max_used_mb: None,
                unknown: Some(why.clone()),
                window_hours,
                window_seconds,
                suggested_mb: None,
                advice: format!(
                    "{configured_mb} MB configured; its use in the last {span} is unknown: {why}"
                ),
            };
        }
    };
    let Some(used) = max_used_mb else {
        return MemoryReport {
            configured_mb,
            max_used_mb,
            unknown: None,
            window_hours,
            window_seconds,
            suggested_mb: None,
            advice: format!(
                "{configured_mb} MB configured; no REPORT lines in the last {span} \
                 to measure its use (invoke it first)"
            ),
        };
    };
    let suggested_mb = suggested_memory_mb(configured_mb, used);
    let measured = format!("max {used} MB of {configured_mb} MB in the last {span}");
    let advice = match suggested_mb {
        Some(suggested) => format!(
            "{measured}: {suggested} MB would do (memory also sets the CPU share: \
             check the latency after lowering it)"
        ),
        None if i64::from(used) * 10 >= i64::from(configured_mb) * 9 => {
            format!("{measured}: close to the limit, consider more")
        }
        None => measured,
    };
    MemoryReport {
        configured_mb,
        max_used_mb,
        unknown: None,
        window_hours,
        window_seconds,
        suggested_mb,
        advice,
    }
}

/// `24 h`, `90 min`, `45 s`: the largest unit the window is a whole number of.
pub fn span_text(window: Duration) -> String {
    let seconds = window.as_secs();
    match seconds {
        s if s >= 86400 && s % 86400 == 0 && s / 86400 > 1 => format!("{} d", s / 86400),
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// A size with half as much again as the peak, rounded up to a 64 MB step
/// and at least Lambda's 128 MB — offered only when it is at most half of
/// what is configured (smaller savings are not worth the CPU it costs).
pub fn suggested_memory_mb(configured_mb: i32, max_used_mb: u32) -> Option<u32> {
    let headroom = max_used_mb.saturating_add(max_used_mb.div_ceil(2));
    let suggested = headroom
        .div_ceil(MEMORY_STEP_MB)
        .saturating_mul(MEMORY_STEP_MB)
        .max(MIN_MEMORY_MB);
    let configured = u32::try_from(configured_mb).ok()?;
    (suggested.saturating_mul(2) <= configured).then_some(suggested)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[test]
    fn a_small_peak_suggests_the_smallest_size() {
        assert_eq!(suggested_memory_mb(2048, 23), Some(128));
        assert_eq!(suggested_memory_mb(2048, 100), Some(192));
        assert_eq!(suggested_memory_mb(1024, 300), Some(512));
    }

    #[test]
    fn no_advice_when_the_saving_is_small_or_the_size_is_already_small() {
        assert_eq!(suggested_memory_mb(1024, 400), None);
        assert_eq!(suggested_memory_mb(128, 23), None);
        assert_eq!(suggested_memory_mb(200, 23), None);
        assert_eq!(suggested_memory_mb(-1, 23), None);
    }

    #[test]
    fn the_advice_names_the_peak_the_size_and_the_suggestion() {
        let report = memory_report(2048, Insights::Answered(Some(23)), DAY);
        assert_eq!(report.suggested_mb, Some(128));
        assert_eq!(report.window_hours, 24);
        assert!(
            report
                .advice
                .starts_with("max 23 MB of 2048 MB in the last 24 h")
                && report.advice.contains("128 MB"),
            "{}",
            report.advice
        );
        let full = memory_report(128, Insights::Answered(Some(120)), DAY);
        assert_eq!(full.suggested_mb, None);
        assert!(
            full.advice.contains("close to the limit"),
            "{}",
            full.advice
        );
        let unmeasured = memory_report(512, Insights::Answered(None), DAY);
        assert!(unmeasured.advice.contains("no REPORT lines"));
        assert_eq!(unmeasured.unknown, None);
    }

    #[test]
    fn an_unavailable_insights_leaves_the_use_unknown_with_the_reason() {
        let why = "CloudWatch Logs Insights is unavailable (StartQuery: denied)";
        let report = memory_report(2048, Insights::Unavailable(why.into()), DAY);
        assert_eq!((report.max_used_mb, report.suggested_mb), (None, None));
        assert_eq!(report.unknown.as_deref(), Some(why));
        assert_eq!(
            report.advice,
            format!("2048 MB configured; its use in the last 24 h is unknown: {why}")
        );
    }

    #[test]
    fn the_window_is_named_in_its_largest_whole_unit() {
        assert_eq!(span_text(DAY), "24 h");
        assert_eq!(span_text(Duration::from_secs(7 * 86400)), "7 d");
        assert_eq!(span_text(Duration::from_secs(600)), "10 min");
        assert_eq!(span_text(Duration::from_secs(90)), "90 s");
        let short = memory_report(1024, Insights::Answered(Some(40)), Duration::from_secs(600));
        assert_eq!((short.window_hours, short.window_seconds), (0, 600));
        assert!(
            short.advice.contains("in the last 10 min"),
            "{}",
            short.advice
        );
    }
}
