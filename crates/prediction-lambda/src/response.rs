//! The API Gateway proxy response and the contract's error answers. Every
//! answer, errors and preflight included, goes through [`ProxyResponse::new`]
//! so that none leaves without the CORS headers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The methods `/predict` answers, for `Allow` and the CORS preflight.
pub const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";

/// The CORS headers of one answer: the configuration's policy applied to
/// the request's origin ([`crate::FunctionConfig::cors`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    pub allow_origin: String,
    pub allow_headers: String,
    /// The answer depends on the request's `Origin`.
    pub vary: bool,
}

impl Default for Cors {
    /// What the default configuration answers: any origin.
    fn default() -> Self {
        crate::FunctionConfig::default().cors(None)
    }
}

/// What API Gateway's REST proxy integration expects back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyResponse {
    pub status_code: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub is_base64_encoded: bool,
}

impl ProxyResponse {
    /// An answer with the CORS headers, and `Content-Type` when it has a body.
    pub fn new(status_code: u16, body: String, cors: &Cors) -> ProxyResponse {
        let mut headers = BTreeMap::new();
        headers.insert(
            "Access-Control-Allow-Origin".to_string(),
            cors.allow_origin.clone(),
        );
        headers.insert(
            "Access-Control-Allow-Methods".to_string(),
            ALLOWED_METHODS.to_string(),
        );
        headers.insert(
            "Access-Control-Allow-Headers".to_string(),
            cors.allow_headers.clone(),
        );
        if cors.vary {
            // Caches must not serve one origin's answer to another.
            headers.insert("Vary".to_string(), "Origin".to_string());
        }
        if !body.is_empty() {
            headers.insert("Content-Type".to_string(), "application/json".to_string());
        }
        ProxyResponse {
            status_code,
            headers,
            body,
            is_base64_encoded: false,
        }
    }

    /// A 200 answer whose body is `value` as JSON.
    pub fn json<T: Serialize>(value: &T, cors: &Cors) -> ProxyResponse {
        match serde_json::to_string(value) {
            Ok(body) => ProxyResponse::new(200, body, cors),
            // Cannot happen for the forecast types (string keys, no maps of
            // non-strings); answer without leaking serde's words if it ever does.
            Err(_) => ApiError::internal().into_response(cors),
        }
    }

    /// The preflight answer: 204, no body, CORS headers kept for a day.
    pub fn preflight(cors: &Cors) -> ProxyResponse {
        let mut response = ProxyResponse::new(204, String::new(), cors);
        response
            .headers
            .insert("Access-Control-Max-Age".to_string(), "86400".to_string());
        response
    }
}

/// A contract error: a status and `{"error": ..., "field": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    /// What is wrong, in words a caller can act on.
    pub message: String,
    /// The input that is wrong, where one applies.
    pub field: Option<String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field: None,
        }
    }

    /// A 400 about one input.
    pub fn bad(field: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
            field: Some(field.to_string()),
        }
    }

    fn internal() -> ApiError {
        ApiError::new(500, "the prediction could not be written as JSON")
    }

    pub fn into_response(self, cors: &Cors) -> ProxyResponse {
        let body = ErrorBody {
            error: &self.message,
            field: self.field.as_deref(),
        };
        // Serialising two strings cannot fail; the fallback keeps the shape anyway.
        let body = serde_json::to_string(&body)
            .unwrap_or_else(|_| r#"{"error":"invalid request"}"#.to_string());
        let mut response = ProxyResponse::new(self.status, body, cors);
        if self.status == 405 {
            response
                .headers
                .insert("Allow".to_string(), ALLOWED_METHODS.to_string());
        }
        response
    }
}

/// At most `max` characters of caller input, for error messages and logs,
/// so a huge input does not make a huge answer; its control characters
/// (C0, DEL, C1) written as `\u001b`, so that what a caller sends cannot
/// reach the terminal of an operator reading the logs as escape sequences.
pub fn shown(input: &str, max: usize) -> String {
    let mut chars = input.chars();
    let mut out = String::new();
    for c in chars.by_ref().take(max) {
        if c.is_control() {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_error_and_field() {
        let response = ApiError::bad("date", "date is wrong").into_response(&Cors::default());
        let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "date is wrong", "field": "date"})
        );
        assert_eq!(response.status_code, 400);
    }

    #[test]
    fn error_without_field_omits_it() {
        let response = ApiError::new(404, "no such path").into_response(&Cors::default());
        let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
        assert!(body.get("field").is_none(), "{body}");
    }

    #[test]
    fn method_not_allowed_says_which_are() {
        let response = ApiError::new(405, "no").into_response(&Cors::default());
        assert_eq!(response.headers["Allow"], ALLOWED_METHODS);
    }

    #[test]
    fn a_named_origin_varies_by_origin() {
        let config = crate::FunctionConfig::with_origin("https://app.example").unwrap();
        let response = ProxyResponse::new(200, "{}".to_string(), &config.cors(None));
        assert_eq!(
            response.headers["Access-Control-Allow-Origin"],
            "https://app.example"
        );
        assert_eq!(response.headers["Vary"], "Origin");
    }

    #[test]
    fn shown_cuts_long_input_on_a_char_boundary() {
        assert_eq!(shown("ééééé", 3), "ééé…");
        assert_eq!(shown("abc", 3), "abc");
    }

    #[test]
    fn shown_escapes_control_characters() {
        assert_eq!(
            shown("\u{1b}]0;owned\u{7}\u{9b}2J\tok", 40),
            "\\u001b]0;owned\\u0007\\u009b2J\\u0009ok"
        );
        assert!(!shown("\u{1b}[31m", 2).chars().any(char::is_control));
    }
}
