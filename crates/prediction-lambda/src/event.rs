//! Reading an API Gateway REST proxy event, taken as plain JSON rather than
//! a typed struct: the contract asks us to answer hand-written events down
//! to `{"httpMethod": "POST", "body": "..."}` and to answer, not crash on,
//! events that are not HTTP at all, which a strict deserialiser would refuse
//! before our code ran.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::ApiError;
use crate::response::shown;

/// The path an event without `path` or `resource` is taken to ask for.
pub const DEFAULT_PATH: &str = "/predict";

/// The parts of a proxy event that routing needs, borrowed from the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest<'a> {
    /// Upper-cased, so `get` and `GET` are one method.
    pub method: String,
    pub path: &'a str,
    /// Every value of every query parameter, in the order given.
    pub query: BTreeMap<&'a str, Vec<&'a str>>,
    /// The body as sent; decoding waits until routing knows it is wanted.
    pub body: Option<&'a str>,
    pub body_is_base64: bool,
}

/// Reads the HTTP parts of `event`, or says why it is not a proxy event.
pub fn parse_event(event: &Value) -> Result<HttpRequest<'_>, ApiError> {
    let Some(fields) = event.as_object() else {
        return Err(ApiError::new(
            400,
            "the event is not an API Gateway proxy event: expected a JSON object with httpMethod",
        ));
    };
    let method = match fields.get("httpMethod") {
        None | Some(Value::Null) => {
            return Err(ApiError::bad(
                "httpMethod",
                "the event is not an API Gateway proxy event: it has no httpMethod",
            ));
        }
        Some(Value::String(method)) if !method.trim().is_empty() => {
            method.trim().to_ascii_uppercase()
        }
        Some(_) => {
            return Err(ApiError::bad(
                "httpMethod",
                "httpMethod must be a non-empty string",
            ));
        }
    };
    let path = optional_str(fields.get("path"), "path")?
        .or(optional_str(fields.get("resource"), "resource")?)
        .unwrap_or(DEFAULT_PATH);
    let body = optional_str(fields.get("body"), "body")?;
    let body_is_base64 = matches!(fields.get("isBase64Encoded"), Some(Value::Bool(true)));
    Ok(HttpRequest {
        method,
        path,
        query: query_parameters(fields)?,
        body,
        body_is_base64,
    })
}

/// The request's `Origin` header, whatever the case of its name, from
/// `headers` or else `multiValueHeaders` (API Gateway sends both); `None`
/// when there is none or the event is not shaped like a proxy event (this
/// never fails: it only chooses the CORS headers of the answer).
pub fn request_origin(event: &Value) -> Option<&str> {
    header_value(event.get("headers"), "origin")
        .or_else(|| header_value(event.get("multiValueHeaders"), "origin"))
}

/// The (first) value of header `name` in a headers object.
fn header_value<'a>(headers: Option<&'a Value>, name: &str) -> Option<&'a str> {
    let (_, value) = headers?
        .as_object()?
        .iter()
        .find(|(header, _)| header.eq_ignore_ascii_case(name))?;
    match value {
        Value::String(text) => Some(text.as_str()),
        Value::Array(values) => values.first()?.as_str(),
        _ => None,
    }
}

fn optional_str<'a>(value: Option<&'a Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(ApiError::bad(field, format!("{field} must be a string"))),
    }
}

/// API Gateway sends both forms; the multi-value one keeps repeated
/// parameters, which we need in order to refuse `?date=a&date=b`.
fn query_parameters(
    fields: &serde_json::Map<String, Value>,
) -> Result<BTreeMap<&str, Vec<&str>>, ApiError> {
    let mut query: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    const MULTI: &str = "multiValueQueryStringParameters";
    const SINGLE: &str = "queryStringParameters";
    if let Some(multi) = object_or_null(fields.get(MULTI), MULTI)? {
        for (name, values) in multi {
            let values = match values {
                Value::Array(values) => values.iter().collect(),
                single => vec![single],
            };
            for value in values {
                query
                    .entry(name)
                    .or_default()
                    .push(parameter_value(name, value)?);
            }
        }
    }
    if let Some(single) = object_or_null(fields.get(SINGLE), SINGLE)? {
        for (name, value) in single {
            // Already there from the multi-value form, which is the fuller one.
            if !query.contains_key(name.as_str()) {
                query.insert(name, vec![parameter_value(name, value)?]);
            }
        }
    }
    Ok(query)
}

fn object_or_null<'a>(
    value: Option<&'a Value>,
    field: &str,
) -> Result<Option<&'a serde_json::Map<String, Value>>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(ApiError::bad(
            field,
            format!("{field} must be an object of strings"),
        )),
    }
}

fn parameter_value<'a>(name: &str, value: &'a Value) -> Result<&'a str, ApiError> {
    match value {
        Value::String(text) => Ok(text),
        _ => Err(ApiError::bad(
            &shown(name, 40),
            format!("query parameter {} must be a string", shown(name, 40)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shortest_form_asks_for_predict() {
        let event = json!({"httpMethod": "POST", "body": "{\"date\":\"2025-10-20\"}"});
        let request = parse_event(&event).unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/predict");
        assert_eq!(request.body, Some("{\"date\":\"2025-10-20\"}"));
        assert!(request.query.is_empty());
    }

    #[test]
    fn method_is_case_insensitive() {
        let event = json!({"httpMethod": "get"});
        let request = parse_event(&event).unwrap();
        assert_eq!(request.method, "GET");
    }

    #[test]
    fn resource_stands_in_for_a_missing_path() {
        let event = json!({"httpMethod": "GET", "resource": "/other"});
        assert_eq!(parse_event(&event).unwrap().path, "/other");
        let event = json!({"httpMethod": "GET", "resource": "/{proxy+}", "path": "/x"});
        let request = parse_event(&event).unwrap();
        assert_eq!(request.path, "/x");
    }

    #[test]
    fn repeated_parameters_are_kept_from_the_multi_value_form() {
        let event = json!({
            "httpMethod": "GET",
            "queryStringParameters": {"date": "2025-01-02", "x": "1"},
            "multiValueQueryStringParameters": {"date": ["2025-01-01", "2025-01-02"]}
        });
        let request = parse_event(&event).unwrap();
        assert_eq!(request.query["date"], vec!["2025-01-01", "2025-01-02"]);
        assert_eq!(request.query["x"], vec!["1"]);
    }

    #[test]
    fn not_an_http_event_is_a_400_naming_http_method() {
        for event in [
            json!([1, 2]),
            json!("hi"),
            json!({"Records": []}),
            json!(null),
        ] {
            let err = parse_event(&event).unwrap_err();
            assert_eq!(err.status, 400, "{event}");
        }
        let err = parse_event(&json!({"source": "aws.events"})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("httpMethod"));
    }

    #[test]
    fn wrong_types_name_their_field() {
        let err = parse_event(&json!({"httpMethod": "POST", "body": {"date": "x"}})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("body"));
        let err = parse_event(&json!({"httpMethod": "GET", "queryStringParameters": {"date": 5}}))
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("date"));
        let err = parse_event(&json!({"httpMethod": 7})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("httpMethod"));
    }
}
