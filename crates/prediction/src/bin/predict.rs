//! Predicts from a checkout, with no AWS and no Docker: the README's first
//! command, `cargo run --release -p prediction --bin predict -- --date 2025-10-20`.
//!
//! Usage: `predict --date YYYY-MM-DD | --from YYYY-MM-DD --to YYYY-MM-DD [--json]`.
//! Models and data come from `PREDICTION_MODELS_DIR` / `PREDICTION_DATA_DIR`
//! or the workspace's `models/` and `data/`.

use std::fmt::Write as _;
use std::process::ExitCode;

use chrono::NaiveDate;
use prediction::{DayForecast, MAX_RANGE_DAYS, Predictor};

const USAGE: &str = "usage: predict --date YYYY-MM-DD [--json]\n       predict --from YYYY-MM-DD --to YYYY-MM-DD [--json]";

/// What to predict and how to show it.
struct Request {
    from: NaiveDate,
    to: NaiveDate,
    single: bool,
    json: bool,
}

fn main() -> ExitCode {
    let request = match parse_args(std::env::args().skip(1)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let predictor = match prediction::paths::workspace_settings().and_then(|s| Predictor::load(&s))
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "error: {e}\n(run `cargo run -p prediction --bin train` to build models/, or set PREDICTION_MODELS_DIR / PREDICTION_DATA_DIR)"
            );
            return ExitCode::FAILURE;
        }
    };
    if predictor.data_skipped() > 0 {
        eprintln!("note: data: {}", predictor.data_summary());
    }
    let forecasts = predictor.predict_range(request.from, request.to);
    let out = if request.json {
        let value = if request.single {
            serde_json::to_string_pretty(&forecasts[0])
        } else {
            serde_json::to_string_pretty(&serde_json::json!({ "predictions": forecasts }))
        };
        match value {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: cannot encode the answer: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        forecasts.iter().map(table).collect::<Vec<_>>().join("\n")
    };
    // Not println!: a closed pipe (`predict ... | head`) is no reason to panic.
    use std::io::Write as _;
    match writeln!(std::io::stdout().lock(), "{out}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: cannot write the answer: {e}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Request, String> {
    let (mut date, mut from, mut to, mut json) = (None, None, None, false);
    let mut args = args;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            let v = args
                .next()
                .ok_or_else(|| format!("{name} needs a date (YYYY-MM-DD)"))?;
            NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                .map_err(|_| format!("{name}: `{v}` is not a real date as YYYY-MM-DD"))
        };
        match arg.as_str() {
            "--date" => date = Some(value("--date")?),
            "--from" => from = Some(value("--from")?),
            "--to" => to = Some(value("--to")?),
            "--json" => json = true,
            "-h" | "--help" => return Err("help requested".to_string()),
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    match (date, from, to) {
        (Some(d), None, None) => Ok(Request {
            from: d,
            to: d,
            single: true,
            json,
        }),
        (None, Some(from), Some(to)) => {
            if to < from {
                return Err(format!("--to {to} is before --from {from}"));
            }
            let days = (to - from).num_days() + 1;
            if days > MAX_RANGE_DAYS {
                return Err(format!(
                    "the range has {days} days; at most {MAX_RANGE_DAYS}"
                ));
            }
            Ok(Request {
                from,
                to,
                single: false,
                json,
            })
        }
        (None, None, None) => Err("give --date, or --from and --to".to_string()),
        _ => Err("give either --date, or both --from and --to".to_string()),
    }
}

/// A readable table of one day's forecast.
fn table(f: &DayForecast) -> String {
    let mut s = String::new();
    let holiday = f
        .holiday
        .as_deref()
        .map(|h| format!(", {h}"))
        .unwrap_or_default();
    let business = if f.business_day {
        "business day"
    } else {
        "not a business day"
    };
    let _ = writeln!(
        s,
        "{} ({}, {business}{holiday})   model {}",
        f.date, f.day_of_week, f.model_version
    );
    let _ = writeln!(
        s,
        "\n  {:<12} {:>30}   {:>19}",
        "feed", "records p10 / p50 / p90", "arrival p10/p50/p90"
    );
    for feed in &f.feeds {
        let r = &feed.expected_records;
        let a = &feed.expected_arrival;
        let _ = writeln!(
            s,
            "  {:<12} {:>9} {:>9} {:>10}   {} {} {}",
            feed.feed, r.p10, r.p50, r.p90, a.p10, a.p50, a.p90
        );
    }
    let _ = writeln!(
        s,
        "\n  {:<14} {:>24}   {:>5}  {:>5}",
        "job", "runtime min p10/p50/p90", "start", "end"
    );
    for job in &f.jobs {
        let r = &job.runtime_minutes;
        let _ = writeln!(
            s,
            "  {:<14} {:>7.1} {:>7.1} {:>8.1}   {}  {}",
            job.job, r.p10, r.p50, r.p90, job.predicted_start, job.predicted_end
        );
    }
    let p = &f.pipeline;
    let _ = writeln!(
        s,
        "\n  pipeline       {} -> {}   SLA {}   breach probability {:.1}%",
        p.predicted_start,
        p.predicted_end,
        p.sla,
        p.sla_breach_probability * 100.0
    );
    s
}
