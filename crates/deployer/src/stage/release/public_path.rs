//! `up`'s public path check: the stage's URL (its `[api] path`) called
//! the way a browser calls it, after the alias moved, with each method the
//! stage serves (`[api] methods`): `GET ?date=` and a JSON `POST
//! {"date": ...}` must answer 200 with a forecast for that date and
//! `Access-Control-Allow-Origin`. A method is preflighted (`OPTIONS` with
//! `Origin`, `Access-Control-Request-Method` and the headers it sends) only
//! when a browser would: a JSON POST, or any request carrying `x-api-key`;
//! a plain GET is a CORS "simple request" and gets none (Fetch standard,
//! "CORS-safelisted method" and "CORS-safelisted request-header"; MDN,
//! "Simple requests"). This is the request path the smoke test (which
//! invokes the version directly) does not cover: the integration URI, the
//! permission's source ARN, the deployment, CORS and the API key.
//!
//! A new deployment and a new Lambda permission take a few seconds to reach
//! every API Gateway node ("Deploy REST APIs in API Gateway"; IAM and
//! resource policies are eventually consistent, "Troubleshooting IAM"), so
//! answers API Gateway makes itself while they propagate — 403 Missing
//! Authentication Token, 403 Forbidden, 404, 500 Internal server error, 429,
//! 503, recognisable by `x-amzn-ErrorType` ("Gateway response types") — and
//! connection failures are retried until the wait is over. Any other answer
//! (the function's own, or 502/504 from a function that fails or is too
//! slow) decides at once.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;

/// API Gateway's longest integration timeout (29 s) and some.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(35);
/// Enough for a forecast; more is cut off.
const MAX_BODY: usize = 1024 * 1024;
/// What a failure report shows of a body.
const SHOWN_BODY: usize = 2000;

/// What to call and what to expect.
#[derive(Debug, Clone)]
pub struct PublicPath {
    /// The stage's URL of the prediction resource.
    pub url: String,
    /// The origin the browser would send (one the API allows).
    pub origin: String,
    /// The date the GET asks a forecast for.
    pub date: String,
    /// The API key, when the methods require one.
    pub api_key: Option<String>,
    /// The methods the stage serves (`GET`, `POST`), each called.
    pub methods: Vec<String>,
    /// The `Host` header to send instead of the URL's: a custom domain
    /// served by an emulator on its own address (`stage::domain::reach`).
    pub host: Option<String>,
}

/// One call a browser would make: its method, the headers it sends, the
/// body (a POST's JSON) and the URL.
struct Call<'a> {
    method: Method,
    url: String,
    headers: Vec<(&'static str, &'a str)>,
    body: Option<String>,
}

impl<'a> Call<'a> {
    /// The call for `method` (`GET` with `?date=`, `POST` with a JSON body),
    /// or `None` for one the check does not know how to make.
    fn new(path: &'a PublicPath, method: &str) -> Option<Call<'a>> {
        let mut headers = vec![
            ("origin", path.origin.as_str()),
            ("accept", "application/json"),
        ];
        if let Some(key) = &path.api_key {
            headers.push(("x-api-key", key.as_str()));
        }
        if let Some(host) = &path.host {
            headers.push(("host", host.as_str()));
        }
        let (method, url, body) = match method.to_ascii_uppercase().as_str() {
            "GET" => (
                Method::GET,
                format!("{}?date={}", path.url, path.date),
                None,
            ),
            "POST" => {
                headers.push(("content-type", "application/json"));
                let body = serde_json::json!({ "date": path.date }).to_string();
                (Method::POST, path.url.clone(), Some(body))
            }
            _ => return None,
        };
        Some(Call {
            method,
            url,
            headers,
            body,
        })
    }

    /// The headers a preflight must allow: those a browser does not send
    /// freely (not CORS-safelisted). `content-type: application/json` is
    /// one; `accept` is safelisted, `origin` is the browser's own.
    fn unsafe_headers(&self) -> Vec<&'static str> {
        self.headers
            .iter()
            .map(|(name, _)| *name)
            // `host` is no header a browser is asked about (a forbidden
            // request-header, Fetch standard).
            .filter(|name| !matches!(*name, "origin" | "accept" | "host"))
            .collect()
    }

    /// Whether a browser preflights this call: a method other than GET
    /// (HEAD and POST are safelisted, but only a POST without JSON is
    /// simple, and ours sends JSON) or a header that is not safelisted.
    fn needs_preflight(&self) -> bool {
        self.method != Method::GET || !self.unsafe_headers().is_empty()
    }
}

/// One HTTP answer, as a failure report shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// Names lower-case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// API Gateway's own answer (a gateway response), not the function's.
    fn is_gateway_answer(&self) -> bool {
        self.header("x-amzn-errortype").is_some()
    }

    /// Status line, headers and (the start of) the body.
    pub fn render(&self) -> String {
        let mut out = format!("HTTP {}\n", self.status);
        for (name, value) in &self.headers {
            out += &format!("{name}: {value}\n");
        }
        let body: String = self.body.chars().take(SHOWN_BODY).collect();
        out += &body;
        if self.body.chars().count() > SHOWN_BODY {
            out += "…";
        }
        out
    }
}

/// Which check failed, what it wanted and what came back.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckFailed {
    /// `OPTIONS <url>` (the preflight) or `GET <url>?date=…`.
    pub check: String,
    pub expected: String,
    /// The problem with the answer, or why there was none.
    pub got: String,
    pub answer: Option<Answer>,
    /// How many times the checks ran.
    pub attempts: u32,
}

/// The checks passed: after how many rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Passed {
    pub attempts: u32,
}

/// Runs the preflight and the GET, again while the answers are the kind
/// propagation explains, for at most `wait`.
pub async fn check(path: &PublicPath, wait: Duration) -> Result<Passed, CheckFailed> {
    let client = HttpClient::new(&path.url).map_err(|why| CheckFailed {
        check: format!("OPTIONS {}", path.url),
        expected: "an HTTP client for the URL".into(),
        got: why,
        answer: None,
        attempts: 0,
    })?;
    let deadline = Instant::now() + wait;
    let mut attempts = 0;
    let mut pause = Duration::from_millis(250);
    loop {
        attempts += 1;
        let Some(Failure { mut failed, retry }) = round(&client, path).await else {
            return Ok(Passed { attempts });
        };
        failed.attempts = attempts;
        if !retry || Instant::now() + pause >= deadline {
            return Err(failed);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(4));
    }
}

/// A round that did not pass, and whether to try again.
struct Failure {
    failed: CheckFailed,
    retry: bool,
}

/// For each method the stage serves: its preflight when a browser would
/// send one, then the call; what failed first, if anything.
async fn round(client: &HttpClient, path: &PublicPath) -> Option<Failure> {
    for method in &path.methods {
        let Some(call) = Call::new(path, method) else {
            // deploy.toml accepts only methods the check can make.
            continue;
        };
        if call.needs_preflight() {
            let requested = call.unsafe_headers().join(", ");
            let mut headers = vec![
                ("origin", path.origin.as_str()),
                ("access-control-request-method", call.method.as_str()),
            ];
            if let Some(host) = &path.host {
                headers.push(("host", host.as_str()));
            }
            if !requested.is_empty() {
                headers.push(("access-control-request-headers", requested.as_str()));
            }
            let answer = client
                .send(Method::OPTIONS, &path.url, &headers, None)
                .await;
            let check = format!("OPTIONS {} (preflight of {})", path.url, call.method);
            let expected = format!(
                "2xx with Access-Control-Allow-Origin for the origin and {} in Access-Control-Allow-Methods",
                call.method
            );
            if let Some(failure) = judge(&check, &expected, answer, |a| {
                preflight_problem(
                    a,
                    &path.origin,
                    call.method.as_str(),
                    &call.unsafe_headers(),
                )
            }) {
                return Some(failure);
            }
        }
        let answer = client
            .send(
                call.method.clone(),
                &call.url,
                &call.headers,
                call.body.clone(),
            )
            .await;
        let check = format!("{} {}", call.method, call.url);
        if let Some(failure) = judge(&check, CALL_EXPECTED, answer, |a| {
            forecast_problem(a, &path.origin, &path.date)
        }) {
            return Some(failure);
        }
    }
    None
}

const CALL_EXPECTED: &str = "200 with a forecast for the date and Access-Control-Allow-Origin";

fn judge(
    check: &str,
    expected: &str,
    answer: Result<Answer, String>,
    problem: impl Fn(&Answer) -> Option<String>,
) -> Option<Failure> {
    let failed = |got: String, answer: Option<Answer>| CheckFailed {
        check: check.to_string(),
        expected: expected.to_string(),
        got,
        answer,
        attempts: 0,
    };
    match answer {
        Err(why) => Some(Failure {
            failed: failed(format!("no answer: {why}"), None),
            retry: true,
        }),
        Ok(answer) => problem(&answer).map(|got| Failure {
            retry: propagating(&answer),
            failed: failed(got, Some(answer)),
        }),
    }
}

/// An answer a deployment or permission still on its way explains.
fn propagating(answer: &Answer) -> bool {
    answer.is_gateway_answer() && matches!(answer.status, 403 | 404 | 429 | 500 | 503)
}

fn allows_origin(answer: &Answer, origin: &str) -> bool {
    matches!(answer.header("access-control-allow-origin"), Some(o) if o == "*" || o == origin)
}

fn listed(value: Option<&str>, item: &str) -> bool {
    value.is_some_and(|v| {
        v.split(',')
            .map(str::trim)
            .any(|x| x == "*" || x.eq_ignore_ascii_case(item))
    })
}

/// What is wrong with a preflight answer for `method` sending `headers`,
/// if anything.
pub fn preflight_problem(
    answer: &Answer,
    origin: &str,
    method: &str,
    headers: &[&str],
) -> Option<String> {
    if !(200..300).contains(&answer.status) {
        return Some(format!("status {}", answer.status));
    }
    if !allows_origin(answer, origin) {
        return Some(format!(
            "Access-Control-Allow-Origin is {:?}, not {origin:?} or \"*\"",
            answer
                .header("access-control-allow-origin")
                .unwrap_or("missing")
        ));
    }
    if !listed(answer.header("access-control-allow-methods"), method) {
        return Some(format!(
            "Access-Control-Allow-Methods {:?} does not allow {method}",
            answer
                .header("access-control-allow-methods")
                .unwrap_or("missing")
        ));
    }
    for header in headers {
        if !listed(answer.header("access-control-allow-headers"), header) {
            return Some(format!(
                "Access-Control-Allow-Headers {:?} does not allow {header} (the {method} sends it)",
                answer
                    .header("access-control-allow-headers")
                    .unwrap_or("missing")
            ));
        }
    }
    None
}

/// What is wrong with a call's answer, if anything.
pub fn forecast_problem(answer: &Answer, origin: &str, date: &str) -> Option<String> {
    if answer.status != 200 {
        return Some(format!("status {}", answer.status));
    }
    let forecast: Option<serde_json::Value> = serde_json::from_str(&answer.body).ok();
    let answered_date = forecast
        .as_ref()
        .and_then(|f| f.get("date"))
        .and_then(serde_json::Value::as_str);
    if answered_date != Some(date) {
        return Some(format!("the body is not a forecast for {date}"));
    }
    if !allows_origin(answer, origin) {
        return Some(format!(
            "Access-Control-Allow-Origin is {:?}, not {origin:?} or \"*\" (a browser would refuse the answer)",
            answer
                .header("access-control-allow-origin")
                .unwrap_or("missing")
        ));
    }
    None
}

/// Plain HTTP for an emulator's URL, HTTPS (the system's roots) for AWS's.
enum HttpClient {
    Plain(Client<HttpConnector, Full<Bytes>>),
    Tls(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
}

impl HttpClient {
    fn new(url: &str) -> Result<HttpClient, String> {
        let builder = Client::builder(TokioExecutor::new());
        if url.starts_with("http://") {
            return Ok(HttpClient::Plain(builder.build(HttpConnector::new())));
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("no trusted root certificates on this machine: {e}"))?
            .https_only()
            .enable_http1()
            .build();
        Ok(HttpClient::Tls(builder.build(connector)))
    }

    fn request(&self, request: Request<Full<Bytes>>) -> ResponseFuture {
        match self {
            HttpClient::Plain(client) => client.request(request),
            HttpClient::Tls(client) => client.request(request),
        }
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<Answer, String> {
        let mut request = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| format!("cannot make the request: {e}"))?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.request(request))
            .await
            .map_err(|_| format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))?
            .map_err(|e| error_chain(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .map_err(|e| format!("the body could not be read: {e}"))?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// An error and its causes on one line (hyper's own message is terse).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text += &format!(": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Answer {
        Answer {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        }
    }

    const ORIGIN: &str = "https://app.example";

    #[test]
    fn a_preflight_must_allow_the_origin_post_and_content_type() {
        let good = answer(
            204,
            &[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", "GET,POST,OPTIONS"),
                ("access-control-allow-headers", "Content-Type,X-Api-Key"),
            ],
            "",
        );
        let json = ["content-type"];
        assert_eq!(preflight_problem(&good, ORIGIN, "POST", &json), None);
        let mut echoed = good.clone();
        echoed.headers[0].1 = ORIGIN.into();
        assert_eq!(preflight_problem(&echoed, ORIGIN, "POST", &json), None);

        // One header wrong at a time: the problem names it.
        for (header, value, named) in [
            (0, "https://other.example", "Allow-Origin"),
            (1, "GET,OPTIONS", "POST"),
            (2, "X-Api-Key", "content-type"),
        ] {
            let mut wrong = good.clone();
            wrong.headers[header].1 = value.into();
            let problem = preflight_problem(&wrong, ORIGIN, "POST", &json).unwrap_or_default();
            assert!(problem.contains(named), "{value}: {problem:?}");
        }
        let missing = answer(
            403,
            &[("x-amzn-errortype", "MissingAuthenticationTokenException")],
            "",
        );
        assert_eq!(
            preflight_problem(&missing, ORIGIN, "POST", &json),
            Some("status 403".into())
        );
        // A GET that sends an API key is preflighted for GET and the key.
        let get_only = answer(
            200,
            &[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", "GET,OPTIONS"),
                ("access-control-allow-headers", "X-Api-Key"),
            ],
            "",
        );
        assert_eq!(
            preflight_problem(&get_only, ORIGIN, "GET", &["x-api-key"]),
            None
        );
        assert!(
            preflight_problem(&get_only, ORIGIN, "POST", &json)
                .unwrap()
                .contains("does not allow POST")
        );
    }

    fn stage_path(methods: &[&str], api_key: Option<&str>) -> PublicPath {
        PublicPath {
            url: "https://a1.execute-api.us-east-1.amazonaws.com/prod/forecast".into(),
            origin: ORIGIN.into(),
            date: "2025-10-20".into(),
            api_key: api_key.map(str::to_string),
            methods: methods.iter().map(|m| m.to_string()).collect(),
            host: None,
        }
    }

    #[test]
    fn only_calls_a_browser_would_preflight_are_preflighted() {
        let open = stage_path(&["GET", "POST"], None);
        let get = Call::new(&open, "GET").unwrap();
        assert!(!get.needs_preflight(), "a plain GET is a simple request");
        assert_eq!(get.url, format!("{}?date=2025-10-20", open.url));
        let post = Call::new(&open, "post").unwrap();
        assert!(post.needs_preflight(), "a JSON POST is not simple");
        assert_eq!(post.unsafe_headers(), ["content-type"]);
        assert_eq!(post.url, open.url);
        assert_eq!(post.body.as_deref(), Some(r#"{"date":"2025-10-20"}"#));

        let keyed = stage_path(&["GET"], Some("k"));
        let get = Call::new(&keyed, "GET").unwrap();
        assert!(get.needs_preflight(), "x-api-key is not safelisted");
        assert_eq!(get.unsafe_headers(), ["x-api-key"]);
        assert!(Call::new(&keyed, "PATCH").is_none());
    }

    #[test]
    fn the_get_must_answer_a_forecast_for_the_date_with_cors() {
        let cors = [("access-control-allow-origin", "*")];
        let good = answer(200, &cors, r#"{"date":"2025-10-20","jobs":[]}"#);
        assert_eq!(forecast_problem(&good, ORIGIN, "2025-10-20"), None);
        let other_day = answer(200, &cors, r#"{"date":"2025-10-21"}"#);
        assert!(
            forecast_problem(&other_day, ORIGIN, "2025-10-20")
                .unwrap()
                .contains("forecast")
        );
        let no_cors = answer(200, &[], r#"{"date":"2025-10-20"}"#);
        assert!(
            forecast_problem(&no_cors, ORIGIN, "2025-10-20")
                .unwrap()
                .contains("Allow-Origin")
        );
        let error = answer(400, &cors, r#"{"error":"bad date"}"#);
        assert_eq!(
            forecast_problem(&error, ORIGIN, "2025-10-20"),
            Some("status 400".into())
        );
    }

    #[test]
    fn only_gateway_answers_that_propagation_explains_are_retried() {
        let gateway = |status| answer(status, &[("x-amzn-errortype", "X")], "");
        for status in [403, 404, 429, 500, 503] {
            assert!(propagating(&gateway(status)), "{status}");
        }
        // A function that fails or is too slow: no waiting makes it pass.
        assert!(!propagating(&gateway(502)));
        assert!(!propagating(&gateway(504)));
        // The function's own 500.
        assert!(!propagating(&answer(500, &[], "{}")));
    }

    #[tokio::test]
    async fn no_server_is_a_failure_after_the_wait_naming_the_check() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let path = PublicPath {
            url: format!("http://127.0.0.1:{port}/restapis/x/local/_user_request_/predict"),
            origin: ORIGIN.into(),
            date: "2025-10-20".into(),
            api_key: None,
            methods: vec!["GET".into(), "POST".into()],
            host: None,
        };
        let started = Instant::now();
        let failed = check(&path, Duration::from_millis(600)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(failed.attempts >= 2, "{failed:?}");
        assert!(
            failed.check.starts_with("GET http://127.0.0.1:"),
            "{failed:?}"
        );
        assert!(failed.got.starts_with("no answer"), "{failed:?}");
    }
}
