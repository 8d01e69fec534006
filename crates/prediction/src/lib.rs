//! Predictions for the PDE batch pipeline: what each feed will deliver and
//! when, how long each job will run, and when the pipeline will finish.
//!
//! No AWS here: the function (`prediction-lambda`), the `predict` binary and
//! the benchmarks all call [`Predictor::load`] once and then
//! [`Predictor::predict_all`] per date.

pub mod forecast;

use std::path::PathBuf;

use chrono::{NaiveDate, NaiveTime};

pub use forecast::{DayForecast, FeedForecast, JobForecast, PipelineForecast, Quantiles};

/// The longest range, in days (inclusive), that one request may ask for.
pub const MAX_RANGE_DAYS: i64 = 31;

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
        todo!("prediction helper")
    }
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
    _private: (),
}

impl Predictor {
    pub fn load(_settings: &Settings) -> Result<Predictor, LoadError> {
        todo!("prediction helper")
    }

    /// Everything predicted for one date.
    pub fn predict_all(&self, _date: NaiveDate) -> DayForecast {
        todo!("prediction helper")
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
        todo!("prediction helper")
    }
}
