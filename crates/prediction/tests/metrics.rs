//! The done-when targets, read from the shipped `models/metrics.json`: on
//! the Nov-Dec 2025 holdout every job's runtime MAE is at least 25% below
//! the seasonal-naive baseline's, every feed's volume MAE is below it, and
//! every target's p10..p90 covers 70% to 90% of the actuals.

use prediction::data::{FEEDS, JOBS};
use prediction::training::Metrics;

fn metrics() -> Metrics {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/metrics.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn metrics_cover_every_target_on_the_holdout() {
    let m = metrics();
    assert_eq!(m.holdout.from.to_string(), "2025-11-01");
    assert_eq!(m.holdout.to.to_string(), "2025-12-31");
    let mut expected: Vec<String> = JOBS
        .iter()
        .map(|j| format!("job:{j}:runtime_minutes"))
        .collect();
    expected.extend(FEEDS.iter().map(|f| format!("feed:{f}:records")));
    expected.extend(FEEDS.iter().map(|f| format!("feed:{f}:arrival_minutes")));
    let names: Vec<&str> = m.targets.iter().map(|t| t.target.as_str()).collect();
    assert_eq!(names, expected);
    for t in &m.targets {
        assert!(t.n >= 50, "{}: only {} holdout days", t.target, t.n);
    }
}

#[test]
fn runtime_models_beat_the_baseline_by_a_quarter() {
    for t in metrics()
        .targets
        .iter()
        .filter(|t| t.target.starts_with("job:"))
    {
        assert!(
            t.model_mae <= 0.75 * t.baseline_mae,
            "{}: model MAE {} is not 25% below the baseline's {}",
            t.target,
            t.model_mae,
            t.baseline_mae
        );
    }
}

#[test]
fn volume_models_beat_the_baseline() {
    for t in metrics()
        .targets
        .iter()
        .filter(|t| t.target.ends_with(":records"))
    {
        assert!(
            t.model_mae < t.baseline_mae,
            "{}: {} vs baseline {}",
            t.target,
            t.model_mae,
            t.baseline_mae
        );
    }
}

#[test]
fn intervals_cover_between_70_and_90_percent() {
    for t in &metrics().targets {
        assert!(
            (0.70..=0.90).contains(&t.interval_coverage),
            "{}: p10..p90 covered {} of the holdout",
            t.target,
            t.interval_coverage
        );
    }
}
