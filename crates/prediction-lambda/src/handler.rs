//! One request, start to end: event in, proxy response and log record out.
//! A pure function of its inputs (plus the clock for the duration), so tests
//! call it without the Lambda runtime.

use std::time::Instant;

use chrono::NaiveDate;
use prediction::{DayForecast, Predictor};
use serde::Serialize;
use serde_json::Value;

use crate::event::{parse_event, request_origin};
use crate::request::{Query, Route, route};
use crate::response::shown;
use crate::{ApiError, FunctionConfig, ProxyResponse};

/// What the runtime knows about this invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Lambda's request id, to find this request's log line.
    pub request_id: String,
    /// True only for the first request a process serves.
    pub cold_start: bool,
    /// Today in UTC: what a GET without a date predicts for.
    pub today: NaiveDate,
}

/// The one structured log line written per request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestLog {
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
    pub status: u16,
    pub duration_us: u64,
    pub cold_start: bool,
    /// The error answered, for 4xx; none of it is internal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize)]
struct RangeAnswer<'a> {
    predictions: &'a [DayForecast],
}

/// Answers one proxy event.
pub fn handle(
    event: &Value,
    predictor: &Predictor,
    config: &FunctionConfig,
    invocation: &Invocation,
) -> (ProxyResponse, RequestLog) {
    let started = Instant::now();
    let mut log = RequestLog {
        request_id: invocation.request_id.clone(),
        method: None,
        path: None,
        date: None,
        from: None,
        to: None,
        status: 0,
        duration_us: 0,
        cold_start: invocation.cold_start,
        error: None,
    };
    // Read apart from the rest, so that even the answer to an event that
    // is not a proxy event carries the CORS headers for its caller.
    let cors = config.cors(request_origin(event));
    let outcome = parse_event(event).and_then(|request| {
        // Logged shortened and with control characters escaped (`shown`):
        // both come from the caller, and `deployer logs` shows them.
        log.method = Some(shown(&request.method, 20));
        log.path = Some(shown(request.path, 200));
        route(&request, invocation.today, &config.api_path)
    });
    let response = match outcome {
        Ok(Route::Preflight) => ProxyResponse::preflight(&cors),
        Ok(Route::Predict(Query::Day(date))) => {
            log.date = Some(date);
            ProxyResponse::json(&predictor.predict_all(date), &cors)
        }
        Ok(Route::Predict(Query::Range { from, to })) => {
            log.from = Some(from);
            log.to = Some(to);
            let predictions = predictor.predict_range(from, to);
            ProxyResponse::json(
                &RangeAnswer {
                    predictions: &predictions,
                },
                &cors,
            )
        }
        Err(err) => {
            log.error = Some(err.message.clone());
            ApiError::into_response(err, &cors)
        }
    };
    log.status = response.status_code;
    log.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    (response, log)
}
