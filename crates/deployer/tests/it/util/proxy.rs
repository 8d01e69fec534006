//! A fault-injecting, recording HTTP proxy on loopback: it stands between
//! the deployer and moto, answers a seeded fraction of requests itself with
//! a throttling error (429) or a server error (500, 503) in the protocol the
//! calling service speaks, and forwards every other request to moto
//! unchanged, recording each forwarded one as a [`Call`] (its operation and
//! the request itself), so a test can count what the deployer asked for.
//!
//! An injected error never reaches moto, as with a real throttle: the
//! retried request is the first moto sees, so a retry cannot double a
//! create. The decisions come from a seeded generator in request order, so
//! a run's fraction and mix of faults is reproducible (which request gets
//! which depends on the order the deployer's concurrent steps send them).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::fixture::{Fixture, set_in_table};

/// How many requests the proxy saw, and what it did with them.
#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub forwarded: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    /// Every forwarded request, in the order they arrived.
    pub calls: Mutex<Vec<Call>>,
}

impl Counts {
    pub fn injected(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed) + self.server_errors.load(Ordering::Relaxed)
    }

    /// The calls recorded so far, and forgets them.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

/// One request the proxy forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The operation, for the JSON, query and CBOR protocols (`X-Amz-Target`'s,
    /// `Action`'s or the path's: `DescribeRepositories`, `GetRole`); for the REST
    /// protocols (Lambda, API Gateway) the method and path, e.g.
    /// `PATCH /restapis/abc/stages/local`.
    pub operation: String,
    /// The whole request (method, path and query, body): the same text
    /// twice is the same read twice.
    pub request: String,
    /// When the proxy received it (the stage lock's tests order the
    /// writes of several runs by it).
    pub at: std::time::Instant,
}

impl Call {
    fn of(method: &str, headers: &hyper::HeaderMap, target: &str, body: &[u8]) -> Call {
        let body = String::from_utf8_lossy(body).into_owned();
        let json_target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.rsplit('.').next());
        let query_action = body
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="));
        let path = target.split('?').next().unwrap_or(target);
        // The RPC v2 CBOR protocol's (CloudWatch's, in the Rust SDK):
        // `/service/{service}/operation/{operation}`.
        let cbor_operation = path.rsplit_once("/operation/").map(|(_, op)| op);
        let operation = match json_target.or(query_action).or(cbor_operation) {
            Some(operation) => operation.to_string(),
            None => format!("{method} {path}"),
        };
        // The query protocol's body carries the SDK's version: the same
        // for every request, so it changes no comparison.
        Call {
            request: format!("{operation} {method} {target} {body}"),
            operation,
            at: std::time::Instant::now(),
        }
    }

    /// A read: `Get*`, `List*`, `Describe*`, or a REST `GET`.
    pub fn is_read(&self) -> bool {
        ["Get", "List", "Describe", "GET "]
            .iter()
            .any(|prefix| self.operation.starts_with(prefix))
    }
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    /// Request paths answered AccessDenied (403) instead of forwarded:
    /// what a policy that does not cover them would answer.
    pub denied: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`host:port`, plain HTTP) that fails
    /// `fraction` (0.0..=1.0) of the requests, chosen by `seed`.
    pub fn start(upstream: &str, fraction: f64, seed: u64) -> FaultProxy {
        let upstream = upstream.to_string();
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let dice = Arc::new(Mutex::new(Dice::new(seed)));
        let denied = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (thread_counts, thread_stop) = (counts.clone(), stop.clone());
        let thread_denied = denied.clone();
        // Its own thread and runtime, so that a test blocked on the
        // deployer child process cannot starve the proxy.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                while !thread_stop.load(Ordering::Relaxed) {
                    let accepted =
                        tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
                    let Ok(Ok((stream, _))) = accepted else {
                        continue;
                    };
                    let (upstream, counts, dice, denied) = (
                        upstream.clone(),
                        thread_counts.clone(),
                        dice.clone(),
                        thread_denied.clone(),
                    );
                    tokio::spawn(async move {
                        let service = service_fn(move |request| {
                            handle(
                                request,
                                upstream.clone(),
                                counts.clone(),
                                dice.clone(),
                                fraction,
                                denied.clone(),
                            )
                        });
                        // A client hanging up mid-request is its business.
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        let addr = rx.recv().unwrap();
        FaultProxy {
            addr,
            counts,
            denied,
            stop,
        }
    }

    /// Answers every request whose path starts with `path` AccessDenied
    /// from now on.
    pub fn deny(&self, path: &str) {
        self.denied.lock().unwrap().push(path.to_string());
    }

    /// A proxy in front of this test run's local AWS that the fixture's
    /// `local` stage now calls (its deploy.toml's `endpoint-url`).
    pub fn for_local_stage(fx: &Fixture, fraction: f64, seed: u64) -> FaultProxy {
        let upstream = super::endpoint_url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let proxy = FaultProxy::start(&upstream, fraction, seed);
        fx.edit_config(|text| {
            set_in_table(
                text,
                "stages.local",
                "endpoint-url",
                &format!("{:?}", proxy.url()),
            )
        });
        proxy
    }

    /// The URL to give the deployer as its endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// splitmix64: small, seeded, good enough to pick faults.
struct Dice(u64);

impl Dice {
    fn new(seed: u64) -> Dice {
        Dice(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy)]
enum Fault {
    Throttle,
    Status(u16),
    Denied,
}

async fn handle(
    request: Request<Incoming>,
    upstream: String,
    counts: Arc<Counts>,
    dice: Arc<Mutex<Dice>>,
    fraction: f64,
    denied: Arc<Mutex<Vec<String>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    counts.requests.fetch_add(1, Ordering::Relaxed);
    let path = request.uri().path();
    if denied.lock().unwrap().iter().any(|p| path.starts_with(p)) {
        return Ok(error_answer(&request, Fault::Denied));
    }
    let fault = {
        let mut dice = dice.lock().unwrap();
        if dice.unit() < fraction {
            Some(match dice.next() % 3 {
                0 => Fault::Throttle,
                1 => Fault::Status(500),
                _ => Fault::Status(503),
            })
        } else {
            None
        }
    };
    if let Some(fault) = fault {
        match fault {
            Fault::Throttle => counts.throttled.fetch_add(1, Ordering::Relaxed),
            Fault::Status(_) | Fault::Denied => {
                counts.server_errors.fetch_add(1, Ordering::Relaxed)
            }
        };
        return Ok(error_answer(&request, fault));
    }
    counts.forwarded.fetch_add(1, Ordering::Relaxed);
    Ok(forward(request, &upstream, &counts)
        .await
        .unwrap_or_else(|why| {
            Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Full::new(Bytes::from(format!("proxy: {why}"))))
                .unwrap()
        }))
}

/// An error in the calling service's protocol, so that the SDK reads its
/// code: awsJson (ECR, CloudWatch Logs: `X-Amz-Target`), awsQuery (IAM,
/// STS: a form body), RPC v2 CBOR (CloudWatch: `smithy-protocol`) or
/// restJson (Lambda, API Gateway).
fn error_answer(request: &Request<Incoming>, fault: Fault) -> Response<Full<Bytes>> {
    let headers = request.headers();
    let cbor = headers
        .get("smithy-protocol")
        .is_some_and(|v| v.as_bytes() == b"rpc-v2-cbor");
    let json_rpc = cbor || headers.contains_key("x-amz-target");
    let query = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let (status, code, message) = match fault {
        Fault::Throttle if query => (429, "Throttling", "Rate exceeded"),
        Fault::Throttle if json_rpc => (429, "ThrottlingException", "Rate exceeded"),
        Fault::Throttle => (429, "TooManyRequestsException", "Rate exceeded"),
        Fault::Denied => (403, "AccessDeniedException", "proxy: not authorized"),
        Fault::Status(500) => (500, "InternalFailure", "injected internal error"),
        Fault::Status(status) => (status, "ServiceUnavailable", "injected unavailability"),
    };
    let builder = Response::builder().status(status);
    if cbor {
        // A JSON body here would read as an error without a code, which the
        // SDK does not retry: CloudWatch's answers are CBOR maps.
        let body = cbor_error(code, message);
        return builder
            .header("smithy-protocol", "rpc-v2-cbor")
            .header("content-type", "application/cbor")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
    }
    let (builder, body) = if query {
        let body = format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
             <Message>{message}</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
        );
        (builder.header("content-type", "text/xml"), body)
    } else {
        let body = serde_json::json!({"__type": code, "message": message}).to_string();
        let content_type = if json_rpc {
            "application/x-amz-json-1.1"
        } else {
            "application/json"
        };
        (
            builder
                .header("content-type", content_type)
                .header("x-amzn-errortype", code),
            body,
        )
    };
    builder.body(Full::new(Bytes::from(body))).unwrap()
}

/// `{"__type": code, "message": message}` in CBOR, by the SDK's own encoder.
fn cbor_error(code: &str, message: &str) -> Vec<u8> {
    let mut encoder = aws_smithy_cbor::Encoder::new(Vec::new());
    encoder
        .map(2)
        .str("__type")
        .str(code)
        .str("message")
        .str(message);
    encoder.into_writer()
}

/// Records the request, sends it to moto as HTTP/1.0 on a fresh
/// connection (so moto answers with a plain body and closes) and hands
/// back its answer.
async fn forward(
    request: Request<Incoming>,
    upstream: &str,
    counts: &Counts,
) -> Result<Response<Full<Bytes>>, String> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("reading the request body: {e}"))?
        .to_bytes();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let call = Call::of(parts.method.as_str(), &parts.headers, &target, &body);
    counts.calls.lock().unwrap().push(call);
    let mut head = format!("{} {target} HTTP/1.0\r\n", parts.method);
    for (name, value) in &parts.headers {
        let name = name.as_str();
        if matches!(
            name,
            "connection" | "content-length" | "transfer-encoding" | "keep-alive"
        ) {
            continue;
        }
        let value = value.to_str().map_err(|e| format!("header {name}: {e}"))?;
        head += &format!("{name}: {value}\r\n");
    }
    head += &format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = TcpStream::connect(upstream)
        .await
        .map_err(|e| format!("connecting to {upstream}: {e}"))?;
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.write_all(&body).await.map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("moto's answer has no end of headers")?;
    let head = std::str::from_utf8(&answer[..split]).map_err(|e| e.to_string())?;
    let body = Bytes::copy_from_slice(&answer[split + 4..]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or("moto's answer has no status line")?;
    let mut builder = Response::builder().status(status);
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if matches!(
                name.as_str(),
                "connection" | "content-length" | "transfer-encoding" | "keep-alive"
            ) {
                continue;
            }
            builder = builder.header(name, value.trim());
        }
    }
    builder.body(Full::new(body)).map_err(|e| e.to_string())
}
