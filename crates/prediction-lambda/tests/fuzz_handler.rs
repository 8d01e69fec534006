//! Property test: arbitrary events, bodies and query strings thrown at the
//! handler with the real models. Whatever comes in, the handler answers
//! (no panic), with a 2xx or 4xx, CORS headers and a JSON body.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
        date_like().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Keys the handler looks at, mixed with any other.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "httpMethod",
            "path",
            "resource",
            "body",
            "isBase64Encoded",
            "queryStringParameters",
            "multiValueQueryStringParameters",
            "date",
            "from",
            "to",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z]{0,8}",
    ]
}

/// Strings shaped like dates, valid or not, across and beyond the window.
fn date_like() -> impl Strategy<Value = String> {
    prop_oneof![
        (1990u32..2110, 0u32..14, 0u32..33).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        (2024u32..2027, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        "[0-9-]{0,12}",
    ]
}

/// Bodies: JSON objects with date/from/to of any type, or any text.
fn body() -> impl Strategy<Value = String> {
    let field = prop_oneof![date_like().prop_map(Value::String), any_json()];
    prop_oneof![
        (
            prop::option::of(field.clone()),
            prop::option::of(field.clone()),
            prop::option::of(field)
        )
            .prop_map(|(date, from, to)| {
                let mut object = Map::new();
                for (name, value) in [("date", date), ("from", from), ("to", to)] {
                    if let Some(value) = value {
                        object.insert(name.to_string(), value);
                    }
                }
                Value::Object(object).to_string()
            }),
        any_json().prop_map(|value| value.to_string()),
        ".{0,200}",
        any::<Vec<u8>>().prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ]
}

/// Proxy events with plausible and implausible parts.
fn http_event() -> impl Strategy<Value = Value> {
    let method = prop_oneof![
        prop::sample::select(vec![
            "GET", "POST", "OPTIONS", "get", "Post", "DELETE", "HEAD", ""
        ])
        .prop_map(Value::from),
        any_json(),
    ];
    let path = prop_oneof![
        prop::sample::select(vec![
            "/predict",
            "/prod/predict",
            "/predict/",
            "/",
            "/x/y/predict"
        ])
        .prop_map(Value::from),
        ".{0,30}".prop_map(Value::String),
        any_json(),
    ];
    let query = prop::collection::vec(
        (prop_oneof![Just("date".to_string()), key()], date_like()),
        0..3,
    )
    .prop_map(|pairs| {
        Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    });
    let multi = prop::collection::vec(date_like(), 0..3).prop_map(|dates| json!({"date": dates}));
    (
        method,
        prop::option::of(path),
        prop::option::of(query),
        prop::option::of(multi),
        prop::option::of(body()),
        any::<bool>(),
    )
        .prop_map(|(method, path, query, multi, body, base64)| {
            let mut event = Map::new();
            event.insert("httpMethod".to_string(), method);
            let optional = [
                ("path", path),
                ("queryStringParameters", query),
                ("multiValueQueryStringParameters", multi),
                ("body", body.map(Value::String)),
            ];
            for (name, value) in optional {
                if let Some(value) = value {
                    event.insert(name.to_string(), value);
                }
            }
            event.insert("isBase64Encoded".to_string(), Value::Bool(base64));
            Value::Object(event)
        })
}

fn assert_answered(event: &Value) -> Result<(), TestCaseError> {
    let (response, log) = answer(event);
    let status = response.status_code;
    prop_assert!(
        (200..300).contains(&status) || (400..500).contains(&status),
        "{status} for {event}"
    );
    prop_assert_eq!(log.status, status);
    assert_cors(&response, "*");
    if status != 204 {
        let body: Value = serde_json::from_str(&response.body)
            .map_err(|err| TestCaseError::fail(format!("body not JSON ({err}) for {event}")))?;
        if status >= 400 {
            prop_assert!(body["error"].is_string(), "{body}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_json_event_is_answered(event in any_json()) {
        assert_answered(&event)?;
    }

    #[test]
    fn any_proxy_event_is_answered(event in http_event()) {
        assert_answered(&event)?;
    }

    #[test]
    fn any_post_body_is_answered(body in body(), base64 in any::<bool>()) {
        assert_answered(&json!({"httpMethod": "POST", "body": body, "isBase64Encoded": base64}))?;
    }

    #[test]
    fn any_query_date_is_answered(date in prop_oneof![date_like(), ".{0,40}"]) {
        assert_answered(&json!({"httpMethod": "GET", "queryStringParameters": {"date": date}}))?;
    }
}
