//! Renders for people: a prediction (the feeds, a table of jobs with a
//! timeline bar each, and the pipeline's finish against the SLA), and the
//! sparklines of `deployer metrics`. Pure text; the commands decide where
//! it goes.

use std::fmt::Write;

use prediction::DayForecast;

/// Width of the timeline bars, in characters.
const BAR_WIDTH: usize = 36;

/// Minutes since midnight of an `HH:MM` string (hours may pass 24 when a
/// run ends after midnight).
fn minutes(hhmm: &str) -> Option<i64> {
    let (h, m) = hhmm.split_once(':')?;
    Some(h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?)
}

/// One line of `width` characters: `─` outside `[start, end)`, `█` inside,
/// and `|` where the SLA falls.
fn bar(start: i64, end: i64, window: (i64, i64), sla: Option<i64>) -> String {
    let (from, to) = window;
    let span = (to - from).max(1) as f64;
    let col = |t: i64| (((t - from) as f64 / span) * BAR_WIDTH as f64).round() as i64;
    let (s, e) = (col(start), col(end).max(col(start) + 1));
    let sla_col = sla.map(col);
    (0..BAR_WIDTH as i64)
        .map(|i| {
            if Some(i) == sla_col {
                '|'
            } else if i >= s && i < e {
                '█'
            } else {
                '·'
            }
        })
        .collect()
}

/// The whole readable answer for one date.
pub fn render_forecast(f: &DayForecast) -> String {
    let mut out = String::new();
    let holiday = f
        .holiday
        .as_deref()
        .map(|h| format!(", holiday: {h}"))
        .unwrap_or_default();
    let business = if f.business_day {
        "business day"
    } else {
        "not a business day"
    };
    let _ = writeln!(out, "{} ({}, {business}{holiday})", f.date, f.day_of_week);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<12} {:>30}   {:>19}",
        "feed", "records p10 / p50 / p90", "arrival p10-p50-p90"
    );
    for feed in &f.feeds {
        let r = &feed.expected_records;
        let a = &feed.expected_arrival;
        let _ = writeln!(
            out,
            "{:<12} {:>30}   {:>19}",
            feed.feed,
            format!("{} / {} / {}", r.p10, r.p50, r.p90),
            format!("{}-{}-{}", a.p10, a.p50, a.p90),
        );
    }
    let _ = writeln!(out);

    let sla = minutes(&f.pipeline.sla);
    let starts = f.jobs.iter().filter_map(|j| minutes(&j.predicted_start));
    let ends = f.jobs.iter().filter_map(|j| minutes(&j.predicted_end));
    let lo = starts.min().unwrap_or(0);
    let hi = ends.chain(sla).max().unwrap_or(lo + 60);
    // A little air on both sides so the first bar and the SLA mark show.
    let window = (lo - 15, hi + 15);
    let _ = writeln!(
        out,
        "{:<14} {:>5} {:>5} {:>17}  timeline ({}..{}, | = SLA)",
        "job",
        "start",
        "end",
        "minutes p10/50/90",
        hhmm(window.0),
        hhmm(window.1)
    );
    for job in &f.jobs {
        let (Some(s), Some(e)) = (minutes(&job.predicted_start), minutes(&job.predicted_end))
        else {
            continue;
        };
        let rt = &job.runtime_minutes;
        let _ = writeln!(
            out,
            "{:<14} {:>5} {:>5} {:>17}  {}",
            job.job,
            job.predicted_start,
            job.predicted_end,
            format!("{:.0}/{:.0}/{:.0}", rt.p10, rt.p50, rt.p90),
            bar(s, e, window, sla),
        );
    }
    let _ = writeln!(out);
    let p = &f.pipeline;
    let _ = writeln!(
        out,
        "pipeline {} → {}   SLA {}   breach risk {:.0}%",
        p.predicted_start,
        p.predicted_end,
        p.sla,
        p.sla_breach_probability * 100.0
    );
    let _ = writeln!(out, "model {}", f.model_version);
    out
}

/// The eight heights of a sparkline, lowest first.
pub const SPARK_BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// What a sparkline shows for a period with no data.
pub const SPARK_NO_DATA: char = '·';

/// One character per value: its height against the largest value, from
/// zero (so any value above zero rises above the lowest bar, and a series of
/// zeros stays flat); `·` where a period had no data.
pub fn sparkline(values: &[Option<f64>]) -> String {
    let top = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    values
        .iter()
        .map(|value| match value {
            None => SPARK_NO_DATA,
            Some(v) if top <= 0.0 || !v.is_finite() || *v <= 0.0 => SPARK_BARS[0],
            Some(v) => {
                let steps = (SPARK_BARS.len() - 1) as f64;
                let index = (v / top * steps).ceil().clamp(1.0, steps) as usize;
                SPARK_BARS[index]
            }
        })
        .collect()
}

fn hhmm(minutes: i64) -> String {
    let m = minutes.rem_euclid(24 * 60);
    format!("{:02}:{:02}", m / 60, m % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_parses_and_rejects() {
        assert_eq!(minutes("01:20"), Some(80));
        assert_eq!(minutes("25:05"), Some(25 * 60 + 5));
        assert_eq!(minutes("1h"), None);
    }

    #[test]
    fn bar_marks_the_run_and_the_sla() {
        let b = bar(60, 120, (0, 360), Some(300));
        assert_eq!(b.chars().count(), BAR_WIDTH);
        let first = b.find('█').map(|i| b[..i].chars().count());
        assert_eq!(first, Some(6));
        assert_eq!(b.chars().filter(|c| *c == '█').count(), 6);
        assert_eq!(b.chars().position(|c| c == '|'), Some(30));
    }

    #[test]
    fn a_sparkline_has_one_bar_per_value_scaled_from_zero() {
        let line = sparkline(&[Some(0.0), Some(1.0), Some(4.0), None, Some(8.0)]);
        assert_eq!(line, "▁▂▅·█");
        assert_eq!(sparkline(&[Some(0.0); 3]), "▁▁▁");
        assert_eq!(sparkline(&[None, None]), "··");
        assert_eq!(sparkline(&[]), "");
        // A tiny value still shows above the floor.
        assert_eq!(sparkline(&[Some(0.001), Some(1000.0)]), "▂█");
        assert_eq!(sparkline(&vec![Some(1.0); 60]).chars().count(), 60);
    }

    #[test]
    fn a_run_shorter_than_a_column_still_shows() {
        let b = bar(100, 101, (0, 1000), None);
        assert_eq!(b.chars().filter(|c| *c == '█').count(), 1);
    }
}
