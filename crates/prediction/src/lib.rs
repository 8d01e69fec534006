//! Predictions for the PDE batch pipeline: what each feed will deliver and
//! when, how long each job will run, and when the pipeline will finish.
//!
//! No AWS here: the function (`prediction-lambda`), the `predict` binary and
//! the benchmarks all call [`Predictor::load`] once and then
//! [`Predictor::predict_all`] per date.

pub mod calendar;
pub mod data;
pub mod features;
pub mod forecast;
pub mod generate;
pub mod model;
pub mod paths;
pub mod training;

use std::path::PathBuf;

use chrono::{NaiveDate, NaiveTime, Timelike};

pub use forecast::{DayForecast, FeedForecast, JobForecast, PipelineForecast, Quantiles};

use crate::data::{Dataset, FEEDS, JOBS};
use crate::model::ModelSet;

/// The longest range, in days (inclusive), that one request may ask for.
pub const MAX_RANGE_DAYS: i64 = 31;

/// Where the image puts the models.
pub const DEFAULT_MODELS_DIR: &str = "/var/task/models";
/// Where the image puts the data.
pub const DEFAULT_DATA_DIR: &str = "/var/task/data";
/// The pipeline's default deadline, UTC.
pub const DEFAULT_SLA: &str = "06:00";

/// Where the models and data are and which SLA to judge against.
#[derive(Debug, Clone)]
pub struct Settings {
    pub models_dir: PathBuf,
    pub data_dir: PathBuf,
    /// The pipeline's deadline, UTC.
    pub sla: NaiveTime,
}

impl Settings {
    /// Reads `PREDICTION_MODELS_DIR`, `PREDICTION_DATA_DIR` and
    /// `PREDICTION_SLA` (HH:MM), defaulting to where the image puts things.
    pub fn from_env() -> Result<Settings, LoadError> {
        let dir = |variable: &str, default: &str| -> Result<PathBuf, LoadError> {
            match std::env::var(variable) {
                Ok(v) if v.trim().is_empty() => Err(LoadError::Setting {
                    variable: variable.to_string(),
                    message: "is set but empty".to_string(),
                }),
                Ok(v) => Ok(PathBuf::from(v)),
                Err(std::env::VarError::NotPresent) => Ok(PathBuf::from(default)),
                Err(std::env::VarError::NotUnicode(_)) => Err(LoadError::Setting {
                    variable: variable.to_string(),
                    message: "is not valid UTF-8".to_string(),
                }),
            }
        };
        Ok(Settings {
            models_dir: dir("PREDICTION_MODELS_DIR", DEFAULT_MODELS_DIR)?,
            data_dir: dir("PREDICTION_DATA_DIR", DEFAULT_DATA_DIR)?,
            sla: parse_sla(std::env::var("PREDICTION_SLA").ok().as_deref())?,
        })
    }
}

/// Parses `PREDICTION_SLA` (HH:MM, UTC); `None` gives the default 06:00.
pub fn parse_sla(value: Option<&str>) -> Result<NaiveTime, LoadError> {
    let text = value.unwrap_or(DEFAULT_SLA);
    NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| LoadError::Setting {
        variable: "PREDICTION_SLA".to_string(),
        message: format!("`{text}` is not a time of day as HH:MM (e.g. 06:00)"),
    })
}

/// Why the models or data could not be loaded; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{variable}: {message}")]
    Setting { variable: String, message: String },
}

/// Models and data, loaded once (at the function's init) and shared by
/// every request.
pub struct Predictor {
    models: ModelSet,
    model_version: String,
    sla: NaiveTime,
    sla_text: String,
    data: Dataset,
}

impl Predictor {
    pub fn load(settings: &Settings) -> Result<Predictor, LoadError> {
        let (manifest, models) = model::load(&settings.models_dir)?;
        let data = Dataset::load(&settings.data_dir)?;
        Ok(Predictor {
            models,
            model_version: manifest.model_version,
            sla: settings.sla,
            sla_text: settings.sla.format("%H:%M").to_string(),
            data,
        })
    }

    /// Everything predicted for one date.
    pub fn predict_all(&self, date: NaiveDate) -> DayForecast {
        let facts = calendar::day_facts(date);
        let raw = raw_forecast_with(&self.models, &facts);

        let feeds = FEEDS
            .iter()
            .enumerate()
            .map(|(f, feed)| FeedForecast {
                feed: (*feed).to_string(),
                expected_records: quantiles_map(&raw.feed_records[f], |v| v.round() as u64),
                expected_arrival: quantiles_map(&raw.feed_arrival[f], clock),
            })
            .collect();

        // The chain starts after the last feed's expected arrival.
        let latest = (0..FEEDS.len())
            .max_by(|a, b| {
                raw.feed_arrival[*a]
                    .p50
                    .total_cmp(&raw.feed_arrival[*b].p50)
            })
            .unwrap_or(0);
        let start = raw.feed_arrival[latest].p50 + self.models.start_gap_minutes.max(0.0);
        let mut spread = spread_of(&raw.feed_arrival[latest]);
        let mut at = start;
        let jobs = JOBS
            .iter()
            .enumerate()
            .map(|(j, job)| {
                let runtime = &raw.job_runtime[j];
                let job_start = at;
                at += runtime.p50;
                spread += spread_of(runtime);
                JobForecast {
                    job: (*job).to_string(),
                    runtime_minutes: quantiles_map(runtime, |v| (v * 10.0).round() / 10.0),
                    predicted_start: clock(job_start),
                    predicted_end: clock(at),
                }
            })
            .collect();

        let sla_minutes = f64::from(self.sla.num_seconds_from_midnight()) / 60.0;
        DayForecast {
            date,
            day_of_week: calendar::weekday_name(date).to_string(),
            business_day: facts.business_day,
            holiday: calendar::holiday_name(date),
            feeds,
            jobs,
            pipeline: PipelineForecast {
                predicted_start: clock(start),
                predicted_end: clock(at),
                sla: self.sla_text.clone(),
                sla_breach_probability: breach_probability(at, spread, sla_minutes),
            },
            model_version: self.model_version.clone(),
        }
    }

    /// One forecast per date from `from` to `to`, both included. The caller
    /// checks the range (ordered, at most [`MAX_RANGE_DAYS`]).
    pub fn predict_range(&self, from: NaiveDate, to: NaiveDate) -> Vec<DayForecast> {
        from.iter_days()
            .take_while(|d| *d <= to)
            .map(|d| self.predict_all(d))
            .collect()
    }

    /// The models' content hash, `sha256:...`, reported in every answer.
    pub fn model_version(&self) -> &str {
        &self.model_version
    }

    /// What the data files held and what was skipped, in one line (for
    /// the function's init log: report it once).
    pub fn data_summary(&self) -> String {
        self.data.summary()
    }

    /// How many malformed rows and records the loaders skipped.
    pub fn data_skipped(&self) -> usize {
        self.data.skipped_runs + self.data.skipped_files
    }
}

/// The models' numbers for one date, before formatting: feeds in
/// [`FEEDS`] order, jobs in [`JOBS`] order.
#[derive(Debug, Clone)]
pub struct RawForecast {
    pub feed_records: Vec<Quantiles<f64>>,
    pub feed_arrival: Vec<Quantiles<f64>>,
    pub job_runtime: Vec<Quantiles<f64>>,
}

/// The models' numbers for `date` (used by training's evaluation too, so
/// the holdout scores are those of the real prediction path).
pub fn raw_forecast(models: &ModelSet, date: NaiveDate) -> RawForecast {
    raw_forecast_with(models, &calendar::day_facts(date))
}

fn raw_forecast_with(models: &ModelSet, facts: &calendar::DayFacts) -> RawForecast {
    let calendar_row = features::calendar_features(facts);
    let kind = features::day_kind(facts);
    let feed_records = records_on(&models.feed_records, facts);
    let feed_arrival = models
        .feed_arrival
        .iter()
        .zip(&feed_records)
        .map(|(m, records)| {
            let mut row = [0.0; features::ROW_LEN];
            row[..features::N_CALENDAR].copy_from_slice(&calendar_row);
            row[features::FEED_MILLIONS_COLUMN] = records.p50 / 1e6;
            m.predict(&row, kind)
        })
        .collect();
    let job_runtime = if models.skips_holidays && facts.holiday_observed {
        vec![NOTHING; models.job_runtime.len()]
    } else {
        let mut row = [0.0; features::ROW_LEN];
        row[..features::N_CALENDAR].copy_from_slice(&calendar_row);
        let volume = features::processed_volume(facts.date, models.skips_holidays, |d| {
            if d == facts.date {
                feed_records.iter().map(|q| q.p50).sum()
            } else {
                predicted_records(&models.feed_records, d)
                    .iter()
                    .map(|q| q.p50)
                    .sum()
            }
        });
        row[features::VOLUME_COLUMN..=features::MILLIONS_COLUMN].copy_from_slice(&volume);
        models
            .job_runtime
            .iter()
            .map(|m| m.predict(&row, kind))
            .collect()
    };
    RawForecast {
        feed_records,
        feed_arrival,
        job_runtime,
    }
}

/// A forecast of nothing: the records of a closed day, the runtimes of a skipped one.
const NOTHING: Quantiles<f64> = Quantiles {
    p10: 0.0,
    p50: 0.0,
    p90: 0.0,
};

/// Each feed's records on `date` by the record models `records` (in
/// [`FEEDS`] order); none on a day the calendar says the pipeline is closed.
pub fn predicted_records(records: &[model::TargetModel], date: NaiveDate) -> Vec<Quantiles<f64>> {
    records_on(records, &calendar::day_facts(date))
}

fn records_on(records: &[model::TargetModel], facts: &calendar::DayFacts) -> Vec<Quantiles<f64>> {
    if facts.pipeline_closed {
        return vec![NOTHING; records.len()];
    }
    let row = features::calendar_features(facts);
    let kind = features::day_kind(facts);
    records.iter().map(|m| m.predict(&row, kind)).collect()
}

fn quantiles_map<T>(q: &Quantiles<f64>, f: impl Fn(f64) -> T) -> Quantiles<T> {
    Quantiles {
        p10: f(q.p10),
        p50: f(q.p50),
        p90: f(q.p90),
    }
}

/// A normal's standard deviation matching a p10..p90 spread.
fn spread_of(q: &Quantiles<f64>) -> f64 {
    (q.p90 - q.p10).max(0.0) / (2.0 * 1.281_551_6)
}

/// P(end > sla) for an end time with median `end` and spread `sigma`
/// (minutes). The spreads of the arrival and each job are added, not
/// root-summed: they move together with the day's volume.
fn breach_probability(end: f64, sigma: f64, sla: f64) -> f64 {
    let p = if sigma < 1e-9 {
        if end > sla { 1.0 } else { 0.0 }
    } else {
        0.5 * erfc((sla - end) / (sigma * std::f64::consts::SQRT_2))
    };
    (p.clamp(0.0, 1.0) * 1000.0).round() / 1000.0
}

/// The complementary error function (Numerical Recipes' erfcc, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Minutes after midnight as `HH:MM`, rounded to the minute and kept within
/// the day (a run past midnight shows as 23:59; the SLA is hours earlier).
pub fn clock(minutes: f64) -> String {
    let m = if minutes.is_finite() {
        minutes.round().clamp(0.0, 1439.0) as u32
    } else {
        0
    };
    format!("{:02}:{:02}", m / 60, m % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_formats_and_clamps() {
        assert_eq!(clock(0.0), "00:00");
        assert_eq!(clock(80.4), "01:20");
        assert_eq!(clock(341.6), "05:42");
        assert_eq!(clock(5000.0), "23:59");
        assert_eq!(clock(-3.0), "00:00");
        assert_eq!(clock(f64::NAN), "00:00");
    }

    #[test]
    fn breach_probability_is_monotone_and_bounded() {
        let early = breach_probability(240.0, 20.0, 360.0);
        let close = breach_probability(350.0, 20.0, 360.0);
        let late = breach_probability(400.0, 20.0, 360.0);
        assert!(early < close && close < late, "{early} {close} {late}");
        assert!((0.0..=1.0).contains(&early) && (0.0..=1.0).contains(&late));
        assert!((breach_probability(360.0, 20.0, 360.0) - 0.5).abs() < 1e-3);
        assert_eq!(breach_probability(361.0, 0.0, 360.0), 1.0);
    }

    #[test]
    fn sla_parses_hh_mm_only() {
        assert_eq!(
            parse_sla(None).unwrap(),
            NaiveTime::from_hms_opt(6, 0, 0).unwrap()
        );
        assert_eq!(
            parse_sla(Some("07:30")).unwrap(),
            NaiveTime::from_hms_opt(7, 30, 0).unwrap()
        );
        for bad in ["7", "25:00", "06:00:00", "six"] {
            let err = parse_sla(Some(bad)).unwrap_err().to_string();
            assert!(err.contains("PREDICTION_SLA"), "{err}");
        }
    }
}
