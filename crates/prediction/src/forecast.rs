//! The shape of a prediction, exactly as the API contract spells it
//! (`docs/api.md`): other tools read these answers.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A prediction's spread: 10th, 50th and 90th percentiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantiles<T> {
    pub p10: T,
    pub p50: T,
    pub p90: T,
}

/// Everything predicted for one date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayForecast {
    pub date: NaiveDate,
    /// `Monday` .. `Sunday`.
    pub day_of_week: String,
    pub business_day: bool,
    /// The US federal holiday's name when the date is one (or its observed day).
    pub holiday: Option<String>,
    pub feeds: Vec<FeedForecast>,
    pub jobs: Vec<JobForecast>,
    pub pipeline: PipelineForecast,
    pub model_version: String,
}

/// One incoming feed: how many records, arriving when (`HH:MM` UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedForecast {
    pub feed: String,
    pub expected_records: Quantiles<u64>,
    pub expected_arrival: Quantiles<String>,
}

/// One job of the chain: its runtime and when it starts and ends (`HH:MM` UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobForecast {
    pub job: String,
    pub runtime_minutes: Quantiles<f64>,
    pub predicted_start: String,
    pub predicted_end: String,
}

/// The whole pipeline: first job's start, last job's end, and the risk of
/// ending after the SLA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineForecast {
    pub predicted_start: String,
    pub predicted_end: String,
    pub sla: String,
    pub sla_breach_probability: f64,
}
