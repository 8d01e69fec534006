//! Training and the honest evaluation behind `models/metrics.json`: daily
//! targets from the data (failed attempts and rejected files left out), a
//! forest per target, the seasonal-naive baseline, and the holdout scores.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, Timelike};
use serde::Serialize;

use crate::calendar;
use crate::data::{Dataset, FEEDS, FileStatus, JOBS, RunStatus};
use crate::features::{DayKind, calendar_features, day_kind};
use crate::model::{FORMAT_VERSION, ModelSet, ResidualBand, Scale, TargetModel, quantile};
use crate::raw_forecast;

/// Volumes see the whole calendar, trend included.
const ALL_CALENDAR: [usize; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
/// Arrival times have no trend to follow; a trend column would only let the
/// forest pin the future on the last weeks it saw.
const NO_TREND: [usize; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
/// Runtimes: the calendar and the predicted volume (column 12).
const WITH_VOLUME: [usize; 13] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

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

/// Fits every target on the dates `from..=to`. The error bands come from
/// forecasting the range's last months with forests trained on what came
/// before them (split conformal, in time order): the way the models are
/// used, on days they have not seen, after the days they learnt from.
pub fn fit(
    actuals: &BTreeMap<NaiveDate, DailyActuals>,
    from: NaiveDate,
    to: NaiveDate,
    seed: u64,
) -> Result<ModelSet, String> {
    // Out-of-bag residuals see every kind of day the range holds;
    // forecasting its last months adds the drift of a real forecast. The
    // bands pool both.
    let (mut models, mut residuals) = fit_forests(actuals, from, to, seed)?;
    for block in 1..=CALIBRATION_BLOCKS {
        let block_end = to - Duration::days(CALIBRATION_DAYS * (block - 1));
        let block_start = block_end - Duration::days(CALIBRATION_DAYS - 1);
        let (fold, _) = fit_forests(actuals, from, block_start - Duration::days(1), seed)?;
        for (date, day) in actuals.range(block_start..=block_end) {
            calibration_residuals(&fold, *date, day, &mut residuals);
        }
    }
    let targets = models
        .feed_records
        .iter_mut()
        .chain(models.feed_arrival.iter_mut())
        .chain(models.job_runtime.iter_mut());
    for (model, residuals) in targets.zip(&residuals) {
        model.bands = ResidualBand::by_kind(residuals);
    }
    Ok(models)
}

/// How many trailing blocks of the training range calibrate the intervals.
const CALIBRATION_BLOCKS: i64 = 2;
/// Each block's length: about the holdout's.
const CALIBRATION_DAYS: i64 = 61;

/// Adds, per target (feeds' records, feeds' arrivals, jobs' runtimes), the
/// residual of `fold` on `date` in model scale, predicted the way the
/// function predicts (runtimes fed the predicted volume).
fn calibration_residuals(
    fold: &ModelSet,
    date: NaiveDate,
    day: &DailyActuals,
    out: &mut [Vec<(DayKind, f64)>],
) {
    let facts = calendar::day_facts(date);
    let kind = day_kind(&facts);
    let mut row = calendar_features(&facts).to_vec();
    let total: f64 = fold
        .feed_records
        .iter()
        .map(|m| m.predict(&row, kind).p50)
        .sum();
    row.push(total / 1e6);
    let actual = day
        .feed_records
        .iter()
        .chain(&day.feed_arrival_minutes)
        .chain(&day.job_runtime_minutes);
    let models = fold
        .feed_records
        .iter()
        .chain(&fold.feed_arrival)
        .chain(&fold.job_runtime);
    for ((model, actual), out) in models.zip(actual).zip(out) {
        if let Some(y) = actual {
            out.push((
                kind,
                model.scale.to_model(*y) - model.predict_model_scale(&row),
            ));
        }
    }
}

/// Residuals per target, in the order feeds' records, feeds' arrivals, jobs' runtimes.
type TargetResiduals = Vec<Vec<(DayKind, f64)>>;

/// Fits a forest per target on `from..=to`, with out-of-bag error bands;
/// also returns the out-of-bag residuals.
fn fit_forests(
    actuals: &BTreeMap<NaiveDate, DailyActuals>,
    from: NaiveDate,
    to: NaiveDate,
    seed: u64,
) -> Result<(ModelSet, TargetResiduals), String> {
    let days: Vec<(&NaiveDate, &DailyActuals)> = actuals.range(from..=to).collect();
    let features: Vec<Vec<f64>> = days
        .iter()
        .map(|(d, _)| calendar_features(&calendar::day_facts(**d)).to_vec())
        .collect();
    let kinds: Vec<DayKind> = days
        .iter()
        .map(|(d, _)| day_kind(&calendar::day_facts(**d)))
        .collect();
    let fit_target = |name: String,
                      scale: Scale,
                      columns: &[usize],
                      rows: &[Vec<f64>],
                      pick: &dyn Fn(&DailyActuals) -> Option<f64>,
                      seed: u64| {
        let used: Vec<usize> = (0..days.len())
            .filter(|i| pick(days[*i].1).is_some())
            .collect();
        let x: Vec<Vec<f64>> = used.iter().map(|i| rows[*i].clone()).collect();
        let y: Vec<f64> = used.iter().filter_map(|i| pick(days[*i].1)).collect();
        let used_kinds: Vec<DayKind> = used.iter().map(|i| kinds[*i]).collect();
        let fitted = TargetModel::fit(&name, scale, columns, &x, &used_kinds, &y, seed)?;
        let model = fitted.model;
        // Out-of-bag predictions on the rows with a target, the model's own
        // prediction on the others.
        let mut per_day: Vec<f64> = rows
            .iter()
            .zip(&kinds)
            .map(|(r, k)| model.predict(r, *k).p50)
            .collect();
        for (i, p) in used.iter().zip(fitted.oob_p50) {
            per_day[*i] = p;
        }
        Ok::<_, String>((model, per_day, fitted.oob_residuals))
    };

    let mut feed_records = Vec::new();
    let mut oob_records = Vec::new();
    let mut feed_arrival = Vec::new();
    let mut records_residuals = Vec::new();
    let mut arrival_residuals = Vec::new();
    let mut runtime_residuals = Vec::new();
    for (f, feed) in FEEDS.iter().enumerate() {
        let s = seed + f as u64;
        let (records, oob, residuals) = fit_target(
            format!("feed:{feed}:records"),
            Scale::Log1p,
            &ALL_CALENDAR,
            &features,
            &|a| a.feed_records[f],
            s,
        )?;
        feed_records.push(records);
        oob_records.push(oob);
        records_residuals.push(residuals);
        let (arrival, _, residuals) = fit_target(
            format!("feed:{feed}:arrival_minutes"),
            Scale::Log1p,
            &NO_TREND,
            &features,
            &|a| a.feed_arrival_minutes[f],
            s + 100,
        )?;
        feed_arrival.push(arrival);
        arrival_residuals.push(residuals);
    }

    // Runtimes learn from the volume the feed models predict, not the
    // actual volume: that is what they will be given at prediction time.
    let with_volume: Vec<Vec<f64>> = features
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let total: f64 = oob_records.iter().map(|per_day| per_day[i]).sum();
            let mut row = row.clone();
            row.push(total / 1e6);
            row
        })
        .collect();
    let mut job_runtime = Vec::new();
    for (j, job) in JOBS.iter().enumerate() {
        let (runtime, _, residuals) = fit_target(
            format!("job:{job}:runtime_minutes"),
            Scale::Log1p,
            &WITH_VOLUME,
            &with_volume,
            &|a| a.job_runtime_minutes[j],
            seed + 200 + j as u64,
        )?;
        job_runtime.push(runtime);
        runtime_residuals.push(residuals);
    }

    let mut gaps: Vec<f64> = days
        .iter()
        .filter_map(|(_, a)| a.start_gap_minutes)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let models = ModelSet {
        format_version: FORMAT_VERSION,
        feed_records,
        feed_arrival,
        job_runtime,
        start_gap_minutes: quantile(&gaps, 0.5),
    };
    records_residuals.extend(arrival_residuals);
    records_residuals.extend(runtime_residuals);
    Ok((models, records_residuals))
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
