//! Trains the models: evaluates on the 2025-11-01..2025-12-31 holdout after
//! training on January to October, writes `models/metrics.json`, then refits
//! on the whole year and writes `models/` (see `models/README.md`).
//!
//! Usage: `train [--data DIR] [--out DIR]` (defaults: `PREDICTION_DATA_DIR`
//! or the workspace's `data/`, and the workspace's `models/`).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use prediction::data::Dataset;
use prediction::features::{CALENDAR_FEATURES, VOLUME_FEATURE};
use prediction::model::{self, DateRange, FORMAT, FORMAT_VERSION, Manifest};
use prediction::training;

/// Every forest's seed derives from this, so training is repeatable.
const SEED: u64 = 7;

fn main() -> ExitCode {
    let mut data_dir = prediction::paths::data_dir();
    let mut out = prediction::paths::workspace_root().join("models");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--data", Some(v)) => data_dir = PathBuf::from(v),
            ("--out", Some(v)) => out = PathBuf::from(v),
            _ => {
                eprintln!(
                    "error: unexpected argument `{arg}`\nusage: train [--data DIR] [--out DIR]"
                );
                return ExitCode::from(2);
            }
        }
    }
    match run(&data_dir, &out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(data_dir: &std::path::Path, out: &std::path::Path) -> Result<(), String> {
    let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| e.to_string());
    let (year_start, train_end, holdout_start, year_end) = (
        date("2025-01-01")?,
        date("2025-10-31")?,
        date("2025-11-01")?,
        date("2025-12-31")?,
    );

    let data = Dataset::load(data_dir).map_err(|e| e.to_string())?;
    eprintln!("loaded {}", data.summary());
    let actuals = training::daily_actuals(&data);

    let evaluated = training::fit(&actuals, year_start, train_end, SEED)?;
    let metrics = training::evaluate(&evaluated, &actuals, holdout_start, year_end);
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let metrics_path = out.join("metrics.json");
    let json = serde_json::to_string_pretty(&metrics).map_err(|e| e.to_string())?;
    std::fs::write(&metrics_path, json + "\n")
        .map_err(|e| format!("{}: {e}", metrics_path.display()))?;
    eprintln!(
        "{:<42} {:>12} {:>12} {:>6} {:>5} {:>8}",
        "target", "model_mae", "baseline_mae", "gain", "n", "p10-p90"
    );
    for t in &metrics.targets {
        let gain = if t.baseline_mae > 0.0 {
            1.0 - t.model_mae / t.baseline_mae
        } else {
            0.0
        };
        eprintln!(
            "{:<42} {:>12.3} {:>12.3} {:>5.0}% {:>5} {:>8.3}",
            t.target,
            t.model_mae,
            t.baseline_mae,
            gain * 100.0,
            t.n,
            t.interval_coverage
        );
    }

    let shipped = training::fit(&actuals, year_start, year_end, SEED)?;
    let targets = shipped
        .feed_records
        .iter()
        .chain(&shipped.feed_arrival)
        .chain(&shipped.job_runtime)
        .map(|m| m.target.clone())
        .collect();
    let manifest = Manifest {
        format: FORMAT.to_string(),
        format_version: FORMAT_VERSION,
        model_version: String::new(),
        models_file: String::new(),
        learner: "smartcore 0.7 RandomForestRegressor, postcard 1".to_string(),
        trained_on: DateRange {
            from: year_start.to_string(),
            to: year_end.to_string(),
        },
        calendar_features: CALENDAR_FEATURES.iter().map(|s| s.to_string()).collect(),
        volume_feature: VOLUME_FEATURE.to_string(),
        targets,
    };
    let manifest = model::save(out, &shipped, manifest)?;
    eprintln!(
        "wrote {} (model version {})",
        out.display(),
        manifest.model_version
    );
    Ok(())
}
