//! What API Gateway does in front of the function, done here for `deployer
//! dev`: the stage's one resource and its methods, the MOCK preflight, the
//! API key check, the version 1.0 proxy event in and the proxy answer out,
//! and the gateway's own error answers with their CORS headers.
//!
//! Everything is read from the [`apigw::DesiredApi`] that `up` puts into
//! API Gateway (so the preflight's headers, the gateway responses' headers
//! and which methods need a key are the deployed ones, not copies). The
//! answers follow the AWS documentation the local AWS's data plane
//! (`scripts/moto_ext/apigw_dataplane.py`) cites: "Set up Lambda proxy
//! integrations in API Gateway" (the event and the answer; a malformed
//! answer is a 502), "Gateway response types" (403 `Missing Authentication
//! Token` for a path or method with no resource, 403 `Forbidden` for a
//! missing or wrong API key) and "Amazon API Gateway quotas" (the 29 s
//! integration timeout, answered 504).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Value, json};

use crate::aws::apigw::{self, DesiredApi, MethodShape};
use crate::config::{API_TIMEOUT_S, Auth, Stage};
use crate::names::Names;

/// The account the local API's ARNs name: nothing calls AWS with them.
const LOCAL_ACCOUNT: &str = "000000000000";
/// `x-amzn-ErrorType` of the gateway's own answers.
const FORBIDDEN: &str = "ForbiddenException";
const MISSING_TOKEN: &str = "MissingAuthenticationTokenException";
const INTERNAL: &str = "InternalServerErrorException";
/// Keys a proxy answer may have; any other makes it malformed (502).
const PROXY_KEYS: [&str; 5] = [
    "statusCode",
    "headers",
    "multiValueHeaders",
    "body",
    "isBase64Encoded",
];

/// One HTTP request as the gateway sees it.
#[derive(Debug, Clone, Default)]
pub struct GatewayRequest {
    pub method: String,
    /// The path, without the query string (`/predict`).
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// In the order received, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub source_ip: String,
    pub host: String,
}

impl GatewayRequest {
    /// The first value of a header, by name in any case.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What the gateway does with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// Answer it without the function (the preflight, an error).
    Answer(GatewayAnswer),
    /// Send the function this proxy event.
    Proxy(Value),
}

/// The stage's API as `up` deploys it, served locally.
#[derive(Debug, Clone)]
pub struct LocalApi {
    api: DesiredApi,
    /// `auth = "api_key"`: the key callers must send.
    api_key: Option<String>,
    /// Past it the caller gets a 504 (the function's timeout, at most API
    /// Gateway's 29 s).
    pub integration_timeout_s: u64,
}

impl LocalApi {
    /// The API of `stage`; `api_key` is the key a request must carry when
    /// the stage's `auth` is `api_key` (ignored otherwise).
    pub fn new(stage: &Stage, api_key: &str) -> LocalApi {
        let names = Names::new(stage, LOCAL_ACCOUNT);
        let timeout = stage.function.timeout_s.clamp(1, API_TIMEOUT_S);
        LocalApi {
            api: DesiredApi::from_stage(stage, &names),
            api_key: (stage.api.auth == Auth::ApiKey).then(|| api_key.to_string()),
            integration_timeout_s: u64::try_from(timeout).unwrap_or(29),
        }
    }

    /// `/predict`: the one resource.
    pub fn resource_path(&self) -> String {
        format!("/{}", self.api.path)
    }

    /// Routes a request: an answer of the gateway's own, or the event for
    /// the function.
    pub fn route(&self, request: &GatewayRequest, request_id: &str) -> Route {
        let resource = self.resource_path();
        let method = if request.path.trim_end_matches('/') == resource {
            self.api.methods.get(&request.method)
        } else {
            None
        };
        let Some(method) = method else {
            return Route::Answer(self.gateway_error(
                request,
                403,
                MISSING_TOKEN,
                "Missing Authentication Token",
            ));
        };
        if method.api_key_required
            && let Some(key) = &self.api_key
            && request.header("x-api-key") != Some(key.as_str())
        {
            return Route::Answer(self.gateway_error(request, 403, FORBIDDEN, "Forbidden"));
        }
        if method.integration_type == "MOCK" {
            return Route::Answer(mock_answer(method));
        }
        Route::Proxy(self.proxy_event(request, request_id, method.api_key_required))
    }

    /// The version 1.0 proxy event API Gateway sends for `request`.
    fn proxy_event(&self, request: &GatewayRequest, request_id: &str, with_key: bool) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let (headers, multi_headers) = single_and_multi(
            request
                .headers
                .iter()
                .filter(|(k, _)| {
                    !k.eq_ignore_ascii_case("content-length")
                        && !k.eq_ignore_ascii_case("connection")
                })
                .cloned(),
        );
        let (query, multi_query) = single_and_multi(
            form_urlencoded::parse(request.query.as_deref().unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned())),
        );
        let (body, encoded) = match request.body.as_slice() {
            [] => (Value::Null, false),
            bytes => match std::str::from_utf8(bytes) {
                Ok(text) => (Value::from(text), false),
                Err(_) => (
                    Value::from(base64::engine::general_purpose::STANDARD.encode(bytes)),
                    true,
                ),
            },
        };
        let stage = &self.api.stage_name;
        let api_key = with_key.then(|| self.api_key.clone()).flatten();
        json!({
            "resource": self.resource_path(),
            "path": request.path,
            "httpMethod": request.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": null,
            "stageVariables": null,
            "requestContext": {
                "accountId": LOCAL_ACCOUNT,
                "apiId": "local",
                "domainName": request.host,
                "domainPrefix": request.host.split('.').next().unwrap_or_default(),
                "httpMethod": request.method,
                "identity": {
                    "sourceIp": request.source_ip,
                    "userAgent": request.header("user-agent"),
                    "apiKey": api_key,
                },
                "path": format!("/{stage}{}", request.path),
                "protocol": "HTTP/1.1",
                "requestId": request_id,
                "requestTimeEpoch": now.as_millis() as u64,
                "resourcePath": self.resource_path(),
                "stage": stage,
            },
            "body": body,
            "isBase64Encoded": encoded,
        })
    }

    /// The function's proxy answer as the caller gets it; anything that is
    /// not a proxy answer (or a function error) is API Gateway's 502.
    pub fn proxy_answer(&self, request: &GatewayRequest, payload: Option<&[u8]>) -> GatewayAnswer {
        payload
            .and_then(parse_proxy_answer)
            .unwrap_or_else(|| self.gateway_error(request, 502, INTERNAL, "Internal server error"))
    }

    /// The function did not answer within the integration timeout.
    pub fn timed_out(&self, request: &GatewayRequest) -> GatewayAnswer {
        self.gateway_error(request, 504, INTERNAL, "Endpoint request timed out")
    }

    /// No function is running (its build or start failed).
    pub fn unavailable(&self, request: &GatewayRequest) -> GatewayAnswer {
        self.gateway_error(request, 502, INTERNAL, "Internal server error")
    }

    /// An answer of the gateway's own, with the headers of the stage's
    /// `DEFAULT_4XX` or `DEFAULT_5XX` gateway response (its CORS headers).
    fn gateway_error(
        &self,
        request: &GatewayRequest,
        status: u16,
        error_type: &str,
        message: &str,
    ) -> GatewayAnswer {
        let kind = if status >= 500 {
            "DEFAULT_5XX"
        } else {
            "DEFAULT_4XX"
        };
        let mut headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("x-amzn-ErrorType".to_string(), error_type.to_string()),
        ];
        if let Some(configured) = self.api.gateway_responses.get(kind) {
            headers.extend(configured.iter().filter_map(|(name, source)| {
                mapping_value(source, request).map(|value| (name.clone(), value))
            }));
        }
        GatewayAnswer {
            status,
            headers,
            body: json!({ "message": message }).to_string().into_bytes(),
        }
    }
}

/// The MOCK integration's answer: its status and its static headers that
/// the method response declares (the preflight).
fn mock_answer(method: &MethodShape) -> GatewayAnswer {
    let status = method
        .response_status
        .as_deref()
        .unwrap_or(apigw::PREFLIGHT_STATUS)
        .parse()
        .unwrap_or(200);
    GatewayAnswer {
        status,
        headers: method
            .response_headers
            .iter()
            .filter(|(name, _)| method.declared_headers.contains(*name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
        body: Vec::new(),
    }
}

/// A gateway response's mapping expression: `'static'`, or a request
/// header (`method.request.header.Origin`); `None` when the request has
/// no such header (API Gateway then leaves the header out).
fn mapping_value(source: &str, request: &GatewayRequest) -> Option<String> {
    if let Some(value) = source
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
    {
        return Some(value.to_string());
    }
    source
        .strip_prefix("method.request.header.")
        .and_then(|name| request.header(name))
        .map(str::to_string)
}

/// API Gateway's `headers` (the last value of each name) and
/// `multiValueHeaders` (all of them); both `null` when there are none.
fn single_and_multi(items: impl Iterator<Item = (String, String)>) -> (Value, Value) {
    let mut single = serde_json::Map::new();
    let mut multi: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in items {
        single.insert(key.clone(), Value::from(value.clone()));
        multi.entry(key).or_default().push(value);
    }
    if single.is_empty() {
        return (Value::Null, Value::Null);
    }
    (Value::Object(single), json!(multi))
}

/// A proxy answer: `statusCode` (200 if absent), `headers` and
/// `multiValueHeaders`, `body` (base64 when `isBase64Encoded`); `None`
/// when the payload is anything else.
fn parse_proxy_answer(payload: &[u8]) -> Option<GatewayAnswer> {
    let answer: serde_json::Map<String, Value> = serde_json::from_slice(payload).ok()?;
    if answer.keys().any(|k| !PROXY_KEYS.contains(&k.as_str())) {
        return None;
    }
    let status = match answer.get("statusCode") {
        None | Some(Value::Null) => 200,
        Some(Value::Number(n)) => u16::try_from(n.as_u64()?).ok()?,
        Some(Value::String(s)) => s.parse().ok()?,
        Some(_) => return None,
    };
    let text = |value: &Value| match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let mut headers = Vec::new();
    let multi = match answer.get("multiValueHeaders") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return None,
    };
    match answer.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                if !multi.keys().any(|k| k.eq_ignore_ascii_case(name)) {
                    headers.push((name.clone(), text(value)?));
                }
            }
        }
        Some(_) => return None,
    }
    for (name, values) in &multi {
        for value in values.as_array()? {
            headers.push((name.clone(), text(value)?));
        }
    }
    let body = match answer.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return None,
    };
    let body = if answer.get("isBase64Encoded") == Some(&Value::Bool(true)) {
        base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .ok()?
    } else {
        body.into_bytes()
    };
    Some(GatewayAnswer {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, query: Option<&str>) -> GatewayRequest {
        GatewayRequest {
            method: method.into(),
            path: path.into(),
            query: query.map(str::to_string),
            headers: vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
            source_ip: "127.0.0.1".into(),
            host: "127.0.0.1:3000".into(),
        }
    }

    fn header<'a>(answer: &'a GatewayAnswer, name: &str) -> Option<&'a str> {
        answer
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_get_becomes_the_proxy_event_api_gateway_sends() {
        let stage = Stage::defaults("shop", "dev", "us-east-1");
        let api = LocalApi::new(&stage, "");
        let Route::Proxy(event) = api.route(
            &request("GET", "/predict", Some("date=2025-10-20&x=a%20b&x=c")),
            "id-1",
        ) else {
            panic!("not sent to the function")
        };
        assert_eq!(event["resource"], "/predict");
        assert_eq!(event["httpMethod"], "GET");
        assert_eq!(event["queryStringParameters"]["date"], "2025-10-20");
        // The last value in `queryStringParameters`, all of them in the multi form.
        assert_eq!(event["queryStringParameters"]["x"], "c");
        assert_eq!(
            event["multiValueQueryStringParameters"]["x"],
            json!(["a b", "c"])
        );
        assert_eq!(event["headers"]["accept"], "application/json");
        assert_eq!(event["requestContext"]["stage"], "dev");
        assert_eq!(event["requestContext"]["path"], "/dev/predict");
        assert_eq!(event["requestContext"]["requestId"], "id-1");
        assert_eq!(event["body"], Value::Null);
        assert_eq!(event["isBase64Encoded"], false);
    }

    #[test]
    fn the_preflight_is_the_deployed_mock_answer() {
        let mut stage = Stage::defaults("shop", "dev", "us-east-1");
        stage.api.methods = vec!["GET".into()];
        stage.api.cors.allow_origins = vec!["https://app.example".into()];
        let api = LocalApi::new(&stage, "");
        let Route::Answer(answer) = api.route(&request("OPTIONS", "/predict", None), "id") else {
            panic!("the preflight went to the function")
        };
        assert_eq!(answer.status, 204);
        assert_eq!(
            header(&answer, "Access-Control-Allow-Origin"),
            Some("https://app.example")
        );
        assert_eq!(
            header(&answer, "Access-Control-Allow-Methods"),
            Some("GET,OPTIONS")
        );
        // Several origins: the function answers the preflight itself.
        stage
            .api
            .cors
            .allow_origins
            .push("https://b.example".into());
        let api = LocalApi::new(&stage, "");
        assert!(matches!(
            api.route(&request("OPTIONS", "/predict", None), "id"),
            Route::Proxy(_)
        ));
    }

    #[test]
    fn an_unknown_path_or_method_is_missing_authentication_token() {
        let stage = Stage::defaults("shop", "dev", "us-east-1");
        let api = LocalApi::new(&stage, "");
        for (method, path) in [("GET", "/"), ("GET", "/other"), ("DELETE", "/predict")] {
            let Route::Answer(answer) = api.route(&request(method, path, None), "id") else {
                panic!("{method} {path} went to the function")
            };
            assert_eq!(answer.status, 403, "{method} {path}");
            assert_eq!(
                String::from_utf8_lossy(&answer.body),
                r#"{"message":"Missing Authentication Token"}"#
            );
            assert_eq!(header(&answer, "x-amzn-ErrorType"), Some(MISSING_TOKEN));
            // The gateway's answers carry the stage's CORS headers.
            assert_eq!(header(&answer, "Access-Control-Allow-Origin"), Some("*"));
        }
    }

    #[test]
    fn an_api_key_stage_wants_the_key_except_on_the_preflight() {
        let mut stage = Stage::defaults("shop", "dev", "us-east-1");
        stage.api.auth = Auth::ApiKey;
        let api = LocalApi::new(&stage, "k3y");
        let mut get = request("GET", "/predict", Some("date=2025-10-20"));
        let Route::Answer(refused) = api.route(&get, "id") else {
            panic!("no key, yet sent to the function")
        };
        assert_eq!(refused.status, 403);
        assert_eq!(
            String::from_utf8_lossy(&refused.body),
            r#"{"message":"Forbidden"}"#
        );
        get.headers.push(("X-Api-Key".into(), "wrong".into()));
        assert!(matches!(api.route(&get, "id"), Route::Answer(_)));
        get.headers.pop();
        get.headers.push(("X-Api-Key".into(), "k3y".into()));
        let Route::Proxy(event) = api.route(&get, "id") else {
            panic!("the right key was refused")
        };
        assert_eq!(event["requestContext"]["identity"]["apiKey"], "k3y");
        assert!(matches!(
            api.route(&request("OPTIONS", "/predict", None), "id"),
            Route::Answer(GatewayAnswer { status: 204, .. })
        ));
    }

    #[test]
    fn a_malformed_answer_is_a_502_and_a_good_one_passes_through() {
        let stage = Stage::defaults("shop", "dev", "us-east-1");
        let api = LocalApi::new(&stage, "");
        let get = request("GET", "/predict", None);
        let good = json!({
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "multiValueHeaders": {"x-many": ["1", "2"]},
            "body": "{\"ok\":true}",
        });
        let answer = api.proxy_answer(&get, Some(good.to_string().as_bytes()));
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, b"{\"ok\":true}");
        assert_eq!(header(&answer, "content-type"), Some("application/json"));
        let many: Vec<_> = answer
            .headers
            .iter()
            .filter(|(k, _)| k == "x-many")
            .collect();
        assert_eq!(many.len(), 2);
        let encoded = json!({"statusCode": 201, "body": "aGk=", "isBase64Encoded": true});
        let answer = api.proxy_answer(&get, Some(encoded.to_string().as_bytes()));
        assert_eq!((answer.status, answer.body.as_slice()), (201, &b"hi"[..]));
        for bad in [
            &b"not json"[..],
            br#"{"statusCode": 200, "extra": 1}"#,
            br#"{"body": 12}"#,
            br#"[1]"#,
        ] {
            let answer = api.proxy_answer(&get, Some(bad));
            assert_eq!(answer.status, 502, "{}", String::from_utf8_lossy(bad));
            assert_eq!(header(&answer, "x-amzn-ErrorType"), Some(INTERNAL));
        }
        assert_eq!(api.proxy_answer(&get, None).status, 502);
        assert_eq!(api.timed_out(&get).status, 504);
    }

    #[test]
    fn the_integration_timeout_is_at_most_api_gateways() {
        let mut stage = Stage::defaults("shop", "dev", "us-east-1");
        stage.function.timeout_s = 300;
        assert_eq!(LocalApi::new(&stage, "").integration_timeout_s, 29);
        stage.function.timeout_s = 5;
        assert_eq!(LocalApi::new(&stage, "").integration_timeout_s, 5);
    }
}
