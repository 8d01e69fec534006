//! The handler end to end with the real models: every status and error of
//! the contract, CORS on every answer, the shortest event form, events that
//! are not HTTP, the log record, and the predictions' shape.

mod common;

use chrono::{Datelike, NaiveDate};
use common::*;
use prediction_lambda::{FunctionConfig, handle};
use serde_json::{Value, json};

const GET_DATE: &str = include_str!("data/get-date.json");
const GET_TODAY: &str = include_str!("data/get-today.json");
const POST_DATE: &str = include_str!("data/post-date.json");
const POST_RANGE: &str = include_str!("data/post-range.json");
const POST_BASE64: &str = include_str!("data/post-base64.json");
const SHORTEST: &str = include_str!("data/shortest.json");
const OPTIONS: &str = include_str!("data/options.json");
const WRONG_PATH: &str = include_str!("data/wrong-path.json");
const WRONG_METHOD: &str = include_str!("data/wrong-method.json");
const S3_PUT: &str = include_str!("data/s3-put.json");
const SCHEDULED: &str = include_str!("data/scheduled.json");

const ALL_FIXTURES: [&str; 11] = [
    GET_DATE,
    GET_TODAY,
    POST_DATE,
    POST_RANGE,
    POST_BASE64,
    SHORTEST,
    OPTIONS,
    WRONG_PATH,
    WRONG_METHOD,
    S3_PUT,
    SCHEDULED,
];

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn post(body: &str) -> Value {
    json!({"httpMethod": "POST", "path": "/predict", "body": body})
}

/// `HH:MM` as minutes, unwrapped past midnight relative to `after`.
fn minutes(clock: &Value, after: Option<i64>) -> i64 {
    let text = clock
        .as_str()
        .unwrap_or_else(|| panic!("not a HH:MM string: {clock}"));
    let (hours, mins) = text
        .split_once(':')
        .unwrap_or_else(|| panic!("not HH:MM: {text}"));
    assert_eq!(text.len(), 5, "not HH:MM: {text}");
    let value = hours.parse::<i64>().unwrap() * 60 + mins.parse::<i64>().unwrap();
    assert!(value < 24 * 60, "not a time of day: {text}");
    match after {
        Some(after) if value + 12 * 60 < after => value + 24 * 60,
        _ => value,
    }
}

fn assert_ordered(quantiles: &Value, what: &str) {
    let number = |name: &str| {
        quantiles[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{what}: {quantiles}"))
    };
    assert!(
        number("p10") <= number("p50") && number("p50") <= number("p90"),
        "{what}: {quantiles}"
    );
    assert!(number("p10") >= 0.0, "{what}: {quantiles}");
}

/// One date's forecast, as the contract shapes it.
fn assert_forecast_shape(forecast: &Value, expected_date: NaiveDate) {
    assert_eq!(forecast["date"], json!(expected_date.to_string()));
    let weekday = format!("{:?}", expected_date.weekday());
    let day_of_week = forecast["day_of_week"].as_str().unwrap();
    assert!(
        day_of_week.starts_with(&weekday),
        "{day_of_week} for {expected_date}"
    );
    assert!(forecast["business_day"].is_boolean());
    assert!(forecast["holiday"].is_null() || forecast["holiday"].is_string());
    assert_eq!(forecast["model_version"], json!(PREDICTOR.model_version()));
    assert!(PREDICTOR.model_version().starts_with("sha256:"));

    let feeds: Vec<&str> = forecast["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["feed"].as_str().unwrap())
        .collect();
    let mut sorted = feeds.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["claims", "pharmacy", "plan", "prescriber"]);
    for feed in forecast["feeds"].as_array().unwrap() {
        assert_ordered(&feed["expected_records"], "expected_records");
        let arrival = &feed["expected_arrival"];
        let p10 = minutes(&arrival["p10"], None);
        let p50 = minutes(&arrival["p50"], Some(p10));
        assert!(
            p10 <= p50 && p50 <= minutes(&arrival["p90"], Some(p50)),
            "{arrival}"
        );
    }

    let jobs = forecast["jobs"].as_array().unwrap();
    let names: Vec<&str> = jobs.iter().map(|j| j["job"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "pde_ingest",
            "pde_validate",
            "pde_enrich",
            "pde_aggregate",
            "pde_report"
        ]
    );
    // The chain: each job starts no earlier than the previous one ends.
    let mut clock = None;
    for job in jobs {
        assert_ordered(&job["runtime_minutes"], "runtime_minutes");
        let start = minutes(&job["predicted_start"], clock);
        assert!(
            clock.is_none_or(|previous_end| start >= previous_end),
            "{job} starts too early"
        );
        let end = minutes(&job["predicted_end"], Some(start));
        assert!(end >= start, "{job}");
        clock = Some(end);
    }
    let pipeline = &forecast["pipeline"];
    assert_eq!(pipeline["predicted_start"], jobs[0]["predicted_start"]);
    assert_eq!(pipeline["predicted_end"], jobs[4]["predicted_end"]);
    assert_eq!(pipeline["sla"], json!("06:00"));
    let breach = pipeline["sla_breach_probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&breach), "{breach}");
}

#[test]
fn get_with_a_date_answers_its_forecast() {
    let (response, log) = answer(&fixture(GET_DATE));
    assert_eq!(response.status_code, 200, "{}", response.body);
    assert!(!response.is_base64_encoded);
    assert_eq!(response.headers["Content-Type"], "application/json");
    assert_forecast_shape(&body_json(&response), date("2025-10-20"));
    assert_eq!(log.date, Some(date("2025-10-20")));
    assert_eq!(log.status, 200);
}

#[test]
fn get_and_post_and_the_shortest_form_answer_the_same() {
    let (get, _) = answer(&fixture(GET_DATE));
    for event in [POST_DATE, SHORTEST, POST_BASE64] {
        let (response, _) = answer(&fixture(event));
        assert_eq!(response.status_code, 200, "{event}: {}", response.body);
        assert_eq!(response.body, get.body, "{event}");
    }
}

#[test]
fn get_without_a_date_predicts_for_today() {
    let (response, log) = answer(&fixture(GET_TODAY));
    assert_eq!(response.status_code, 200, "{}", response.body);
    assert_forecast_shape(&body_json(&response), today());
    assert_eq!(log.date, Some(today()));
}

#[test]
fn a_range_answers_one_forecast_per_day() {
    let (response, log) = answer(&fixture(POST_RANGE));
    assert_eq!(response.status_code, 200, "{}", response.body);
    let body = body_json(&response);
    let predictions = body["predictions"].as_array().unwrap();
    let expected: Vec<NaiveDate> = date("2025-12-20").iter_days().take(17).collect();
    assert_eq!(predictions.len(), expected.len());
    for (forecast, day) in predictions.iter().zip(&expected) {
        assert_forecast_shape(forecast, *day);
    }
    // The day in a range is the same as the day asked alone.
    let (single, _) = answer(&post(r#"{"date":"2025-12-25"}"#));
    assert_eq!(predictions[5], body_json(&single));
    assert_eq!(
        (log.from, log.to),
        (Some(date("2025-12-20")), Some(date("2026-01-05")))
    );
}

#[test]
fn a_full_31_day_range_is_allowed_and_32_is_not() {
    let (response, _) = answer(&post(r#"{"from":"2025-01-01","to":"2025-01-31"}"#));
    assert_eq!(
        body_json(&response)["predictions"]
            .as_array()
            .unwrap()
            .len(),
        31
    );
    let (response, _) = answer(&post(r#"{"from":"2025-01-01","to":"2025-02-01"}"#));
    assert_error(&response, 400, Some("to"));
}

#[test]
fn bad_input_is_400_naming_the_field() {
    let cases: [(Value, Option<&str>); 12] = [
        (
            json!({"httpMethod": "GET", "queryStringParameters": {"date": "2025-02-30"}}),
            Some("date"),
        ),
        (
            json!({"httpMethod": "GET", "queryStringParameters": {"date": "20-10-2025"}}),
            Some("date"),
        ),
        (
            json!({"httpMethod": "GET", "queryStringParameters": {"date": ""}}),
            Some("date"),
        ),
        (post(r#"{"date": "2025-02-30"}"#), Some("date")),
        (post(r#"{"date": "tomorrow"}"#), Some("date")),
        (post(r#"{"date": 20251020}"#), Some("date")),
        (post(r#"{"date": ["2025-10-20"]}"#), Some("date")),
        (
            post(r#"{"from": "2025-03-10", "to": "2025-03-01"}"#),
            Some("to"),
        ),
        (post(r#"{"from": "2025-03-10", "to": true}"#), Some("to")),
        (post(r#"{"date": "2025-10-20""#), Some("body")),
        (post("[\"2025-10-20\"]"), Some("body")),
        (json!({"httpMethod": "POST"}), Some("body")),
    ];
    for (event, field) in cases {
        let (response, log) = answer(&event);
        assert_error(&response, 400, field);
        assert_cors(&response, "*");
        assert_eq!(log.status, 400);
        assert!(log.error.is_some(), "{event}");
    }
}

#[test]
fn malformed_json_says_where() {
    let (response, _) = answer(&post("{\"date\": 2025-10-20}"));
    assert_error(&response, 400, Some("body"));
    assert!(
        body_json(&response)["error"]
            .as_str()
            .unwrap()
            .contains("column"),
        "{}",
        response.body
    );
}

#[test]
fn another_path_is_404() {
    let (response, _) = answer(&fixture(WRONG_PATH));
    assert_error(&response, 404, None);
}

#[test]
fn another_method_is_405_with_allow() {
    let (response, _) = answer(&fixture(WRONG_METHOD));
    assert_error(&response, 405, None);
    assert_eq!(response.headers["Allow"], "GET, POST, OPTIONS");
    for method in ["PUT", "PATCH", "HEAD", "delete"] {
        let (response, _) = answer(&json!({"httpMethod": method, "path": "/predict"}));
        assert_eq!(response.status_code, 405, "{method}");
    }
}

#[test]
fn a_body_over_64_kib_is_413() {
    let body = format!(
        "{{\"date\":\"2025-10-20\",\"note\":\"{}\"}}",
        "a".repeat(64 * 1024)
    );
    let (response, _) = answer(&post(&body));
    assert_error(&response, 413, None);
}

#[test]
fn options_is_204_with_cors_and_no_body() {
    let (response, log) = answer(&fixture(OPTIONS));
    assert_eq!(response.status_code, 204);
    assert!(response.body.is_empty());
    assert_cors(&response, "*");
    assert!(response.headers.contains_key("Access-Control-Max-Age"));
    assert_eq!(log.status, 204);
}

#[test]
fn events_that_are_not_http_get_a_400_answer() {
    for event in [
        fixture(S3_PUT),
        fixture(SCHEDULED),
        json!({}),
        json!([]),
        json!(42),
        json!(null),
    ] {
        let (response, log) = answer(&event);
        assert_eq!(response.status_code, 400, "{event}");
        assert!(
            body_json(&response)["error"]
                .as_str()
                .unwrap()
                .contains("not an API Gateway")
        );
        assert_cors(&response, "*");
        assert_eq!(log.method, None);
    }
}

#[test]
fn every_answer_carries_cors_headers_from_configuration() {
    let config = FunctionConfig::with_origin("https://dashboard.example.com").unwrap();
    for event in ALL_FIXTURES {
        let (response, _) = handle(&fixture(event), &PREDICTOR, &config, &invocation(false));
        assert_cors(&response, "https://dashboard.example.com");
        let (response, _) = answer(&fixture(event));
        assert_cors(&response, "*");
    }
}

#[test]
fn with_several_origins_an_allowed_caller_gets_its_own_back() {
    let config = FunctionConfig::with_origin("https://a.example,https://b.example")
        .unwrap()
        .with_headers("Content-Type, Authorization, X-Amz-Date")
        .unwrap();
    let from = |origin: &str, method: &str| {
        let event = json!({
            "httpMethod": method,
            "path": "/predict",
            "headers": {"origin": origin, "Access-Control-Request-Headers": "authorization"},
            "queryStringParameters": {"date": "2025-10-20"},
        });
        handle(&event, &PREDICTOR, &config, &invocation(false)).0
    };
    for method in ["OPTIONS", "GET"] {
        let answer = from("https://b.example", method);
        assert_cors(&answer, "https://b.example");
        assert_eq!(answer.headers["Vary"], "Origin");
        // The preflight allows what the configuration lists, signed
        // requests included.
        assert_eq!(
            answer.headers["Access-Control-Allow-Headers"],
            "Content-Type, Authorization, X-Amz-Date"
        );
        assert_cors(&from("https://evil.example", method), "https://a.example");
    }
    // The multi-value form of the headers, as API Gateway also sends it.
    let event = json!({
        "httpMethod": "GET",
        "path": "/predict",
        "multiValueHeaders": {"Origin": ["https://b.example"]},
        "queryStringParameters": {"date": "2025-10-20"},
    });
    let (answer, _) = handle(&event, &PREDICTOR, &config, &invocation(false));
    assert_cors(&answer, "https://b.example");
}

#[test]
fn by_default_a_browser_may_send_what_cdk_allows() {
    let (answer, _) = answer(&fixture(OPTIONS));
    let allowed = &answer.headers["Access-Control-Allow-Headers"];
    for header in [
        "Content-Type",
        "X-Amz-Date",
        "Authorization",
        "X-Api-Key",
        "X-Amz-Security-Token",
        "X-Amz-User-Agent",
    ] {
        assert!(allowed.contains(header), "{header} not in {allowed}");
    }
}

#[test]
fn stage_prefixed_and_resource_only_paths_reach_predict() {
    let (response, _) = answer(&json!({"httpMethod": "GET", "path": "/prod/predict/"}));
    assert_eq!(response.status_code, 200);
    let (response, _) = answer(&json!({"httpMethod": "GET", "resource": "/predict"}));
    assert_eq!(response.status_code, 200);
}

#[test]
fn the_log_record_says_who_what_and_how_it_went() {
    let (_, cold) = handle(
        &fixture(SHORTEST),
        &PREDICTOR,
        &FunctionConfig::default(),
        &invocation(true),
    );
    assert!(cold.cold_start);
    let (_, warm) = answer(&fixture(SHORTEST));
    assert!(!warm.cold_start);
    let line: Value = serde_json::to_value(&cold).unwrap();
    assert_eq!(line["request_id"], json!("test-request-1"));
    assert_eq!(line["date"], json!("2025-10-20"));
    assert_eq!(line["status"], json!(200));
    assert_eq!(line["method"], json!("POST"));
    assert_eq!(line["path"], json!("/predict"));
    assert!(line["duration_us"].is_u64());
    assert!(line.get("error").is_none(), "{line}");
}

#[test]
fn the_edges_of_the_date_window_are_answered() {
    let (response, _) = answer(&post(r#"{"from":"2000-01-01","to":"2000-01-31"}"#));
    assert_eq!(response.status_code, 200, "{}", response.body);
    let (response, _) = answer(&post(r#"{"from":"2099-12-01","to":"2099-12-31"}"#));
    assert_eq!(response.status_code, 200, "{}", response.body);
    let (response, _) = answer(&post(r#"{"from":"2099-12-31","to":"2100-01-01"}"#));
    assert_error(&response, 400, Some("to"));
}
