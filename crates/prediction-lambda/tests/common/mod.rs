//! What the integration tests share: the real Predictor, loaded once from
//! the workspace's `models/` and `data/`, and a way to call the handler.

#![allow(dead_code)] // each test file uses its own part of this

use std::path::PathBuf;
use std::sync::LazyLock;

use chrono::{NaiveDate, NaiveTime};
use prediction::{Predictor, Settings};
use prediction_lambda::{FunctionConfig, Invocation, ProxyResponse, RequestLog, handle};
use serde_json::Value;

/// The workspace's root, where `models/` and `data/` live.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub static PREDICTOR: LazyLock<Predictor> = LazyLock::new(|| {
    let settings = Settings {
        models_dir: workspace().join("models"),
        data_dir: workspace().join("data"),
        sla: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
    };
    Predictor::load(&settings).unwrap_or_else(|err| {
        panic!("the tests need the trained models and data (cargo run -p prediction --bin train): {err}")
    })
});

/// A fixed "today", so a GET without a date is checked against a known date.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 11, 3).unwrap()
}

pub fn invocation(cold_start: bool) -> Invocation {
    Invocation {
        request_id: "test-request-1".to_string(),
        cold_start,
        today: today(),
    }
}

/// Answers `event` with the default configuration (any origin).
pub fn answer(event: &Value) -> (ProxyResponse, RequestLog) {
    handle(
        event,
        &PREDICTOR,
        &FunctionConfig::default(),
        &invocation(false),
    )
}

pub fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

pub fn body_json(response: &ProxyResponse) -> Value {
    serde_json::from_str(&response.body)
        .unwrap_or_else(|err| panic!("body is not JSON ({err}): {}", response.body))
}

/// Every answer, whatever its status, must carry these.
pub fn assert_cors(response: &ProxyResponse, origin: &str) {
    let header = |name: &str| response.headers.get(name).map(String::as_str);
    assert_eq!(
        header("Access-Control-Allow-Origin"),
        Some(origin),
        "{response:?}"
    );
    let methods = header("Access-Control-Allow-Methods").unwrap_or_default();
    for method in ["GET", "POST", "OPTIONS"] {
        assert!(methods.contains(method), "{response:?}");
    }
    assert!(
        header("Access-Control-Allow-Headers")
            .unwrap_or_default()
            .contains("Content-Type")
    );
}

/// An error answer: `{"error": "...", "field": "..."}` and nothing else.
pub fn assert_error(response: &ProxyResponse, status: u16, field: Option<&str>) {
    assert_eq!(response.status_code, status, "{response:?}");
    let body = body_json(response);
    let object = body.as_object().unwrap();
    assert!(
        object.keys().all(|key| key == "error" || key == "field"),
        "{body}"
    );
    let message = body["error"].as_str().unwrap();
    assert!(!message.is_empty());
    assert_eq!(body.get("field").and_then(Value::as_str), field, "{body}");
    assert_eq!(
        response.headers.get("Content-Type").map(String::as_str),
        Some("application/json")
    );
}
