//! Routing and validation per the API contract: which path, which method,
//! how big a body, and which date or range is asked for. Nothing here
//! touches the models, so every refusal is decided before any prediction.

use base64::Engine;
use chrono::NaiveDate;
use prediction::MAX_RANGE_DAYS;
use serde_json::Value;

use crate::ApiError;
use crate::event::HttpRequest;
use crate::response::shown;

/// The largest body accepted (64 KiB); anything bigger is a 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Dates the function predicts for. The models extrapolate a trend from one
/// year of data, so centuries away mean nothing, and far-off dates would
/// only exercise calendar arithmetic at chrono's limits.
pub const EARLIEST_DATE: NaiveDate = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
pub const LATEST_DATE: NaiveDate = NaiveDate::from_ymd_opt(2099, 12, 31).unwrap();

/// What a valid request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A CORS preflight: answered with headers only.
    Preflight,
    Predict(Query),
}

/// The date or dates to predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    Day(NaiveDate),
    /// Both ends included, ordered, at most [`MAX_RANGE_DAYS`] days.
    Range {
        from: NaiveDate,
        to: NaiveDate,
    },
}

/// Decides what `request` asks for; `today` (UTC) answers a GET without a
/// date. `resource` is the API's path (`predict`, deploy.toml's `[api]
/// path`, which the deployer passes as `API_PATH`).
pub fn route(
    request: &HttpRequest<'_>,
    today: NaiveDate,
    resource: &str,
) -> Result<Route, ApiError> {
    if !is_resource_path(request.path, resource) {
        return Err(ApiError::new(
            404,
            format!(
                "no such path: {}; this API answers /{}",
                shown(request.path, 100),
                shown(resource, 100)
            ),
        ));
    }
    match request.method.as_str() {
        "GET" | "POST" | "OPTIONS" => {}
        other => {
            return Err(ApiError::new(
                405,
                format!(
                    "method {} is not allowed on /{}; use GET, POST or OPTIONS",
                    shown(other, 20),
                    shown(resource, 100)
                ),
            ));
        }
    }
    check_body_size(request)?;
    match request.method.as_str() {
        "OPTIONS" => Ok(Route::Preflight),
        "GET" => query_route(request, today).map(Route::Predict),
        _ => body_route(body_bytes(request)?.as_deref()).map(Route::Predict),
    }
}

/// `/predict` (the `resource`) as API Gateway sends it (no stage) or with
/// the stage in front (`/prod/predict`, as custom domains and
/// `requestContext.path` show it), with or without a trailing slash.
fn is_resource_path(path: &str, resource: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let segments: Vec<&str> = rest.strip_suffix('/').unwrap_or(rest).split('/').collect();
    match segments.as_slice() {
        [one] => *one == resource,
        [stage, one] => !stage.is_empty() && *one == resource,
        _ => false,
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        413,
        format!("the body is larger than {} KiB", MAX_BODY_BYTES / 1024),
    )
}

/// Refuses a body over [`MAX_BODY_BYTES`] with 413, whatever the method.
fn check_body_size(request: &HttpRequest<'_>) -> Result<(), ApiError> {
    let body = request.body.unwrap_or_default();
    // A base64 body decodes to 3 bytes per 4; refuse before decoding
    // anything that could not fit once decoded.
    let limit = if request.body_is_base64 {
        MAX_BODY_BYTES.div_ceil(3) * 4 + 4
    } else {
        MAX_BODY_BYTES
    };
    if body.len() > limit {
        Err(too_large())
    } else {
        Ok(())
    }
}

/// The body as bytes, decoded when base64; only a POST reads it, so a
/// GET's stray body cannot turn a good request into a 400.
fn body_bytes(request: &HttpRequest<'_>) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(body) = request.body else {
        return Ok(None);
    };
    if !request.body_is_base64 {
        return Ok(Some(body.as_bytes().to_vec()));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|_| {
            ApiError::bad(
                "body",
                "the body is marked isBase64Encoded but is not valid base64",
            )
        })?;
    if decoded.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(Some(decoded))
}

fn query_route(request: &HttpRequest<'_>, today: NaiveDate) -> Result<Query, ApiError> {
    for range_end in ["from", "to"] {
        if request.query.contains_key(range_end) {
            return Err(ApiError::bad(
                range_end,
                "a range is asked with POST and a JSON body {\"from\": ..., \"to\": ...}",
            ));
        }
    }
    match request.query.get("date").map(Vec::as_slice) {
        None | Some([]) => Ok(Query::Day(today)),
        Some([date]) => parse_date(date, "date").map(Query::Day),
        Some(_) => Err(ApiError::bad("date", "date is given more than once")),
    }
}

fn body_route(body: Option<&[u8]>) -> Result<Query, ApiError> {
    const EXPECTED: &str = "a POST needs a JSON body {\"date\": \"YYYY-MM-DD\"} or {\"from\": \"YYYY-MM-DD\", \"to\": \"YYYY-MM-DD\"}";
    let body = body.unwrap_or_default();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad("body", EXPECTED));
    }
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        ApiError::bad(
            "body",
            format!(
                "the body is not valid JSON (line {}, column {})",
                err.line(),
                err.column()
            ),
        )
    })?;
    let Some(fields) = value.as_object() else {
        return Err(ApiError::bad(
            "body",
            format!("the body must be a JSON object: {EXPECTED}"),
        ));
    };
    let given = |name| fields.get(name).filter(|value| !value.is_null());
    match (given("date"), given("from"), given("to")) {
        (Some(date), None, None) => date_field(date, "date").map(Query::Day),
        (Some(_), _, _) => Err(ApiError::bad(
            "date",
            "give either date or from and to, not both",
        )),
        (None, Some(from), Some(to)) => {
            let from = date_field(from, "from")?;
            let to = date_field(to, "to")?;
            checked_range(from, to)
        }
        (None, Some(_), None) => Err(ApiError::bad("to", "a range needs to as well as from")),
        (None, None, Some(_)) => Err(ApiError::bad("from", "a range needs from as well as to")),
        (None, None, None) => Err(ApiError::bad("date", EXPECTED)),
    }
}

fn checked_range(from: NaiveDate, to: NaiveDate) -> Result<Query, ApiError> {
    if to < from {
        return Err(ApiError::bad(
            "to",
            format!("the range is reversed: to ({to}) is before from ({from})"),
        ));
    }
    let days = (to - from).num_days() + 1;
    if days > MAX_RANGE_DAYS {
        return Err(ApiError::bad(
            "to",
            format!("the range covers {days} days; at most {MAX_RANGE_DAYS} are allowed"),
        ));
    }
    Ok(Query::Range { from, to })
}

fn date_field(value: &Value, field: &str) -> Result<NaiveDate, ApiError> {
    match value {
        Value::String(text) => parse_date(text, field),
        _ => Err(ApiError::bad(
            field,
            format!("{field} must be a string YYYY-MM-DD"),
        )),
    }
}

/// Strictly `YYYY-MM-DD`: chrono alone would also take `2025-1-5` or `+2025-01-05`.
fn parse_date(text: &str, field: &str) -> Result<NaiveDate, ApiError> {
    let bytes = text.as_bytes();
    let well_formed = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !well_formed {
        return Err(ApiError::bad(
            field,
            format!(
                "{field} must be a date YYYY-MM-DD, got \"{}\"",
                shown(text, 40)
            ),
        ));
    }
    // Ten ASCII characters checked above, so these slices and parses hold.
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap_or(0);
    let date = i32::try_from(number(0..4))
        .ok()
        .and_then(|year| NaiveDate::from_ymd_opt(year, number(5..7), number(8..10)))
        .ok_or_else(|| ApiError::bad(field, format!("{field} {text} is not a real date")))?;
    if !(EARLIEST_DATE..=LATEST_DATE).contains(&date) {
        return Err(ApiError::bad(
            field,
            format!("{field} must be between {EARLIEST_DATE} and {LATEST_DATE}"),
        ));
    }
    Ok(date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 10, 20).unwrap()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn route_of(event: Value) -> Result<Route, ApiError> {
        route(&parse_event(&event).unwrap(), today(), "predict")
    }

    fn post(body: &str) -> Result<Route, ApiError> {
        route_of(json!({"httpMethod": "POST", "path": "/predict", "body": body}))
    }

    fn get(date: &str) -> Result<Route, ApiError> {
        route_of(json!({"httpMethod": "GET", "queryStringParameters": {"date": date}}))
    }

    #[test]
    fn predict_paths() {
        for path in ["/predict", "/predict/", "/prod/predict", "/dev/predict/"] {
            assert!(is_resource_path(path, "predict"), "{path}");
        }
        for path in [
            "",
            "predict",
            "/",
            "/predictx",
            "//predict",
            "/a/b/predict",
            "/predict/x",
            "/Predict",
        ] {
            assert!(!is_resource_path(path, "predict"), "{path}");
        }
    }

    #[test]
    fn the_resource_is_the_configured_path() {
        assert!(is_resource_path("/forecast", "forecast"));
        assert!(is_resource_path("/prod/forecast/", "forecast"));
        assert!(!is_resource_path("/predict", "forecast"));
        let event = json!({"httpMethod": "GET", "path": "/predict"});
        let err = route(&parse_event(&event).unwrap(), today(), "forecast").unwrap_err();
        assert_eq!(err.status, 404);
        assert!(err.message.contains("answers /forecast"), "{err:?}");
    }

    #[test]
    fn caller_text_in_an_error_has_no_control_characters() {
        // The error goes into the answer and the request's log line, which
        // `deployer logs` shows an operator.
        for err in [
            get("\u{1b}]0;pwned\u{7}").unwrap_err(),
            route_of(json!({"httpMethod": "GET", "path": "/\u{1b}[2J"})).unwrap_err(),
            route_of(json!({"httpMethod": "\u{9b}31m", "path": "/predict"})).unwrap_err(),
        ] {
            assert!(!err.message.chars().any(char::is_control), "{err:?}");
            assert!(err.message.contains("\\u00"), "{err:?}");
        }
    }

    #[test]
    fn get_with_and_without_date() {
        assert_eq!(
            get("2025-12-25").unwrap(),
            Route::Predict(Query::Day(day("2025-12-25")))
        );
        let route = route_of(json!({"httpMethod": "GET", "path": "/predict"})).unwrap();
        assert_eq!(route, Route::Predict(Query::Day(today())));
    }

    #[test]
    fn post_date_and_range() {
        assert_eq!(
            post(r#"{"date":"2025-02-28"}"#).unwrap(),
            Route::Predict(Query::Day(day("2025-02-28")))
        );
        let range = post(r#"{"from":"2025-01-01","to":"2025-01-31"}"#).unwrap();
        let expected = Query::Range {
            from: day("2025-01-01"),
            to: day("2025-01-31"),
        };
        assert_eq!(range, Route::Predict(expected));
    }

    fn refused(result: Result<Route, ApiError>) -> (u16, Option<String>) {
        let err = result.unwrap_err();
        (err.status, err.field)
    }

    #[test]
    fn bad_dates_are_400_naming_the_field() {
        let date = (400, Some("date".to_string()));
        for text in [
            "2025-02-30",
            "2025-13-01",
            "2025-1-5",
            "20251020",
            "+2025-01-05",
            "2025-10-20T00:00",
            "",
            "１２３４-05-06",
        ] {
            assert_eq!(refused(get(text)), date, "{text}");
        }
        assert_eq!(refused(get("1999-12-31")), date);
        assert!(get("2024-02-29").is_ok());
    }

    #[test]
    fn bad_ranges_are_400() {
        let to = (400, Some("to".to_string()));
        assert_eq!(
            refused(post(r#"{"from":"2025-01-01","to":"2025-02-01"}"#)),
            to,
            "32 days"
        );
        assert_eq!(
            refused(post(r#"{"from":"2025-01-02","to":"2025-01-01"}"#)),
            to,
            "reversed"
        );
        assert_eq!(refused(post(r#"{"from":"2025-01-02"}"#)), to);
        assert_eq!(
            refused(post(r#"{"to":"2025-01-02"}"#)),
            (400, Some("from".to_string()))
        );
        assert!(post(r#"{"from":"2025-01-01","to":"2025-01-01"}"#).is_ok());
    }

    #[test]
    fn bad_bodies_are_400() {
        let body = (400, Some("body".to_string()));
        for text in ["{", "[1]", "\"2025-10-20\"", "  ", "nul"] {
            assert_eq!(refused(post(text)), body, "{text}");
        }
        let err = post(r#"{"date": "2025-10-20""#).unwrap_err();
        assert!(err.message.contains("line 1"), "{}", err.message);
        assert_eq!(
            refused(post(r#"{"date": 20251020}"#)),
            (400, Some("date".to_string()))
        );
        assert_eq!(
            refused(post(r#"{"from": 1, "to": "2025-01-01"}"#)),
            (400, Some("from".to_string()))
        );
        assert_eq!(refused(post(r#"{}"#)), (400, Some("date".to_string())));
        assert_eq!(
            refused(post(r#"{"date":"2025-01-01","from":"2025-01-01"}"#)).0,
            400
        );
    }

    #[test]
    fn other_paths_and_methods() {
        assert_eq!(
            refused(route_of(json!({"httpMethod": "GET", "path": "/nope"}))).0,
            404
        );
        assert_eq!(
            refused(route_of(
                json!({"httpMethod": "DELETE", "path": "/predict"})
            ))
            .0,
            405
        );
        assert_eq!(refused(route_of(json!({"httpMethod": "PUT"}))).0, 405);
        let preflight = route_of(json!({"httpMethod": "options", "path": "/predict"})).unwrap();
        assert_eq!(preflight, Route::Preflight);
    }

    #[test]
    fn bodies_over_64_kib_are_413() {
        let padded = format!(
            "{{\"date\":\"2025-10-20\",\"pad\":\"{}\"}}",
            "x".repeat(MAX_BODY_BYTES)
        );
        assert_eq!(refused(post(&padded)).0, 413);
        let encoded = base64::engine::general_purpose::STANDARD.encode(padded.as_bytes());
        let event = json!({"httpMethod": "POST", "body": encoded, "isBase64Encoded": true});
        assert_eq!(refused(route_of(event)).0, 413);
        let just_fits = format!(
            "{{\"date\":\"2025-10-20\",\"p\":\"{}\"}}",
            "x".repeat(MAX_BODY_BYTES - 30)
        );
        assert!(just_fits.len() <= MAX_BODY_BYTES);
        assert!(post(&just_fits).is_ok());
    }

    #[test]
    fn base64_bodies_are_decoded() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(br#"{"date":"2025-07-04"}"#);
        let event = json!({"httpMethod": "POST", "body": encoded, "isBase64Encoded": true});
        assert_eq!(
            route_of(event).unwrap(),
            Route::Predict(Query::Day(day("2025-07-04")))
        );
        let event = json!({"httpMethod": "POST", "body": "!!!", "isBase64Encoded": true});
        assert_eq!(refused(route_of(event)), (400, Some("body".to_string())));
    }

    #[test]
    fn a_get_ignores_its_body_but_not_its_size() {
        let event = json!({"httpMethod": "GET", "body": "!!!", "isBase64Encoded": true});
        assert_eq!(
            route_of(event).unwrap(),
            Route::Predict(Query::Day(today()))
        );
        let event = json!({"httpMethod": "GET", "body": "x".repeat(MAX_BODY_BYTES + 1)});
        assert_eq!(refused(route_of(event)).0, 413);
    }

    #[test]
    fn repeated_date_and_get_ranges_are_refused() {
        let event = json!({"httpMethod": "GET", "multiValueQueryStringParameters": {"date": ["2025-01-01", "2025-01-02"]}});
        assert_eq!(refused(route_of(event)), (400, Some("date".to_string())));
        let event = json!({"httpMethod": "GET", "queryStringParameters": {"from": "2025-01-01"}});
        assert_eq!(refused(route_of(event)), (400, Some("from".to_string())));
    }
}
