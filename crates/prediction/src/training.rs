//! Training and the honest evaluation behind `models/metrics.json`: daily
//! targets from the data (failed attempts and rejected files left out), a
//! forest per target, the seasonal-naive baseline, and the holdout scores.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, Timelike};
use serde::Serialize;

use crate::calendar;
use crate::data::{Dataset, FEEDS, FileStatus, JOBS, RunStatus};
use crate::features::calendar_features;
use crate::model::{FORMAT_VERSION, ModelSet, Scale, TargetModel, quantile};
use crate::raw_forecast;

/// What actually happened on one date; `None` where the data says nothing.
#[derive(Debug, Clone, Default)]
pub struct DailyActuals {
    pub feed_records: [Option<f64>; 4],
    pub feed_arrival_minutes: [Option<f64>; 4],
    pub job_runtime_minutes: [Option<f64>; 5],
    /// Minutes from the last accepted file to the first job's first attempt.
    pub start_gap_minutes: Option<f64>,
}

/// The daily targets, by date.
pub fn daily_actuals(data: &Dataset) -> BTreeMap<NaiveDate, DailyActuals> {
    let mut days: BTreeMap<NaiveDate, DailyActuals> = BTreeMap::new();
    for file in data
        .files
        .iter()
        .filter(|f| f.status != FileStatus::Rejected)
    {
        let day = days.entry(file.business_date).or_default();
        let records = day.feed_records[file.feed].get_or_insert(0.0);
        *records += file.record_count as f64;
        let midnight = file
            .business_date
            .and_time(chrono::NaiveTime::MIN)
            .and_utc();
        let minutes = (file.received_at - midnight).num_seconds() as f64 / 60.0;
        let arrival = day.feed_arrival_minutes[file.feed].get_or_insert(minutes);
        *arrival = arrival.max(minutes);
    }
    let mut first_start: BTreeMap<NaiveDate, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
    for run in &data.runs {
        let day = days.entry(run.run_date).or_default();
        match run.status {
            RunStatus::Success => day.job_runtime_minutes[run.job] = Some(run.runtime_minutes),
            // A skipped job does no work that day: zero minutes, which the
            // models learn from the holiday features.
            RunStatus::Skipped => day.job_runtime_minutes[run.job] = Some(0.0),
            RunStatus::Failed => {}
        }
        if let (0, Some(start)) = (run.job, run.start) {
            let first = first_start.entry(run.run_date).or_insert(start);
            *first = (*first).min(start);
        }
    }
    for (date, day) in days.iter_mut() {
        // A day on which no feed sent a file had zero records from each.
        if day.feed_records.iter().all(Option::is_none) {
            day.feed_records = [Some(0.0); 4];
        }
        let last_arrival = day
            .feed_arrival_minutes
            .iter()
            .flatten()
            .copied()
            .reduce(f64::max);
        if let (Some(start), Some(last)) = (first_start.get(date), last_arrival) {
            let start_minutes = f64::from(start.num_seconds_from_midnight()) / 60.0;
            day.start_gap_minutes = Some(start_minutes - last);
        }
    }
    days
}

/// Fits every target on the dates `from..=to`.
pub fn fit(
    actuals: &BTreeMap<NaiveDate, DailyActuals>,
    from: NaiveDate,
    to: NaiveDate,
    seed: u64,
) -> Result<ModelSet, String> {
    let days: Vec<(&NaiveDate, &DailyActuals)> = actuals.range(from..=to).collect();
    let features: Vec<Vec<f64>> = days
        .iter()
        .map(|(d, _)| calendar_features(&calendar::day_facts(**d)).to_vec())
        .collect();
    let fit_target = |name: String,
                      scale: Scale,
                      rows: &[Vec<f64>],
                      pick: &dyn Fn(&DailyActuals) -> Option<f64>,
                      seed: u64| {
        let (x, y): (Vec<Vec<f64>>, Vec<f64>) = days
            .iter()
            .zip(rows)
            .filter_map(|((_, a), row)| pick(a).map(|y| (row.clone(), y)))
            .unzip();
        TargetModel::fit(&name, scale, &x, &y, seed)
    };

    let mut feed_records = Vec::new();
    let mut feed_arrival = Vec::new();
    for (f, feed) in FEEDS.iter().enumerate() {
        let s = seed + f as u64;
        feed_records.push(fit_target(
            format!("feed:{feed}:records"),
            Scale::Log1p,
            &features,
            &|a| a.feed_records[f],
            s,
        )?);
        feed_arrival.push(fit_target(
            format!("feed:{feed}:arrival_minutes"),
            Scale::Linear,
            &features,
            &|a| a.feed_arrival_minutes[f],
            s + 100,
        )?);
    }

    // Runtimes learn from the volume the feed models predict, not the
    // actual volume: that is what they will be given at prediction time.
    let with_volume: Vec<Vec<f64>> = features
        .iter()
        .map(|row| {
            let total: f64 = feed_records.iter().map(|m| m.predict(row).p50).sum();
            let mut row = row.clone();
            row.push(total / 1e6);
            row
        })
        .collect();
    let mut job_runtime = Vec::new();
    for (j, job) in JOBS.iter().enumerate() {
        job_runtime.push(fit_target(
            format!("job:{job}:runtime_minutes"),
            Scale::Log1p,
            &with_volume,
            &|a| a.job_runtime_minutes[j],
            seed + 200 + j as u64,
        )?);
    }

    let mut gaps: Vec<f64> = days
        .iter()
        .filter_map(|(_, a)| a.start_gap_minutes)
        .collect();
    gaps.sort_by(f64::total_cmp);
    Ok(ModelSet {
        format_version: FORMAT_VERSION,
        feed_records,
        feed_arrival,
        job_runtime,
        start_gap_minutes: quantile(&gaps, 0.5),
    })
}

/// `models/metrics.json`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Metrics {
    pub holdout: HoldoutRange,
    pub targets: Vec<TargetMetrics>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct HoldoutRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// One target's holdout scores.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TargetMetrics {
    pub target: String,
    pub model_mae: f64,
    pub baseline_mae: f64,
    pub n: usize,
    /// Share of holdout actuals inside the predicted p10..p90.
    pub interval_coverage: f64,
}

/// Scores `models` on `from..=to` against the actuals, next to the
/// seasonal-naive baseline (the mean of the same weekday over the previous
/// four weeks).
pub fn evaluate(
    models: &ModelSet,
    actuals: &BTreeMap<NaiveDate, DailyActuals>,
    from: NaiveDate,
    to: NaiveDate,
) -> Metrics {
    type Pick = fn(&DailyActuals, usize) -> Option<f64>;
    let mut targets = Vec::new();
    let kinds: [(&str, &[&str], &str, Pick); 3] = [
        ("job", &JOBS, "runtime_minutes", |a, i| {
            a.job_runtime_minutes[i]
        }),
        ("feed", &FEEDS, "records", |a, i| a.feed_records[i]),
        ("feed", &FEEDS, "arrival_minutes", |a, i| {
            a.feed_arrival_minutes[i]
        }),
    ];
    for (kind, names, what, pick) in kinds {
        for (i, name) in names.iter().enumerate() {
            let mut model_errors = Vec::new();
            let mut baseline_errors = Vec::new();
            let mut covered = 0;
            for (date, day) in actuals.range(from..=to) {
                let Some(actual) = pick(day, i) else { continue };
                let previous: Vec<f64> = (1..=4)
                    .filter_map(|w| {
                        actuals
                            .get(&(*date - Duration::weeks(w)))
                            .and_then(|a| pick(a, i))
                    })
                    .collect();
                if previous.is_empty() {
                    continue;
                }
                let baseline = previous.iter().sum::<f64>() / previous.len() as f64;
                let forecast = raw_forecast(models, *date);
                let q = match (kind, what) {
                    ("job", _) => &forecast.job_runtime[i],
                    (_, "records") => &forecast.feed_records[i],
                    _ => &forecast.feed_arrival[i],
                };
                model_errors.push((q.p50 - actual).abs());
                baseline_errors.push((baseline - actual).abs());
                if q.p10 <= actual && actual <= q.p90 {
                    covered += 1;
                }
            }
            let n = model_errors.len();
            let mean = |v: &[f64]| {
                if v.is_empty() {
                    0.0
                } else {
                    v.iter().sum::<f64>() / v.len() as f64
                }
            };
            targets.push(TargetMetrics {
                target: format!("{kind}:{name}:{what}"),
                model_mae: round(mean(&model_errors), 3),
                baseline_mae: round(mean(&baseline_errors), 3),
                n,
                interval_coverage: round(
                    if n == 0 {
                        0.0
                    } else {
                        covered as f64 / n as f64
                    },
                    3,
                ),
            });
        }
    }
    Metrics {
        holdout: HoldoutRange { from, to },
        targets,
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}
