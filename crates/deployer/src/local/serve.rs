//! The HTTP server of `deployer dev`: each request goes through the
//! [`LocalApi`] (routing, preflight, API key) and, when it is the
//! function's, to the running [`LocalFunction`] as a proxy event.
//!
//! The API and the function sit together behind one lock: a request holds
//! it for reading while it is served, a rebuild holds it for writing while
//! it swaps them. Tokio's lock is fair, so a request that arrives during a
//! rebuild waits for the rebuilt function instead of failing, and a
//! rebuild waits for the requests already in flight.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::RwLock;

use super::function::LocalFunction;
use super::gateway::{GatewayAnswer, GatewayRequest, LocalApi, Route};
use super::runtime_api::InvocationOutcome;

/// API Gateway's payload limit ("Amazon API Gateway quotas": 10 MB).
const MAX_REQUEST: usize = 10 * 1024 * 1024;

/// What serves requests now.
pub struct Current {
    pub api: LocalApi,
    /// `None` until the first build works (requests then get a 502).
    pub function: Option<LocalFunction>,
    /// How many of the function's output lines were shown already.
    shown: AtomicUsize,
}

impl Current {
    pub fn new(api: LocalApi) -> Current {
        Current {
            api,
            function: None,
            shown: AtomicUsize::new(0),
        }
    }

    /// Puts `function` in place and returns the one it replaces (to stop).
    pub fn replace_function(&mut self, function: LocalFunction) -> Option<LocalFunction> {
        self.shown.store(0, Ordering::Relaxed);
        self.function.replace(function)
    }

    /// The function's output lines not shown yet.
    fn new_output(&self) -> Vec<String> {
        let Some(function) = &self.function else {
            return Vec::new();
        };
        let output = function.output();
        let from = self.shown.swap(output.len(), Ordering::Relaxed);
        output
            .get(from..)
            .map(<[String]>::to_vec)
            .unwrap_or_default()
    }
}

/// The API and function behind the server, swapped by a rebuild.
pub type Shared = Arc<RwLock<Current>>;

/// One request served, for the request log.
#[derive(Debug, Clone, Serialize)]
pub struct Served {
    pub method: String,
    /// The path and query as requested.
    pub target: String,
    pub status: u16,
    /// From the request's arrival to its answer, a rebuild's wait included.
    pub ms: f64,
    /// What the function printed while serving it (its log lines).
    #[serde(skip)]
    pub output: Vec<String>,
}

impl std::fmt::Display for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {:.1} ms",
            self.method, self.target, self.status, self.ms
        )
    }
}

/// Told about every request served.
pub type OnServed = Arc<dyn Fn(Served) + Send + Sync>;

/// Binds `127.0.0.1:port` (0: any free port).
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port)).await
}

/// Serves requests from `listener` until the task is aborted.
pub fn serve(
    listener: TcpListener,
    shared: Shared,
    on_served: OnServed,
) -> tokio::task::JoinHandle<()> {
    let next_id = Arc::new(AtomicU64::new(1));
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let shared = shared.clone();
            let on_served = on_served.clone();
            let next_id = next_id.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    handle(shared.clone(), req, peer, id, on_served.clone())
                });
                // A caller that hangs up mid-request is its own business.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn handle(
    shared: Shared,
    req: Request<Incoming>,
    peer: SocketAddr,
    number: u64,
    on_served: OnServed,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived = Instant::now();
    let request_id = format!("{:08x}-0000-4000-8000-{number:012x}", std::process::id());
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let (request, too_large) = read_request(req, peer).await;
    let (answer, output) = if too_large {
        (
            GatewayAnswer {
                status: 413,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: br#"{"message":"Request Too Long"}"#.to_vec(),
            },
            Vec::new(),
        )
    } else {
        let current = shared.read().await;
        let answer = answer(&current, &request, &request_id).await;
        (answer, current.new_output())
    };
    let status = answer.status;
    let response = to_response(answer, &request_id);
    on_served(Served {
        method: request.method,
        target,
        status,
        ms: arrived.elapsed().as_secs_f64() * 1000.0,
        output,
    });
    Ok(response)
}

/// The gateway's answer, or the function's through it.
async fn answer(current: &Current, request: &GatewayRequest, request_id: &str) -> GatewayAnswer {
    let event = match current.api.route(request, request_id) {
        Route::Answer(answer) => return answer,
        Route::Proxy(event) => event,
    };
    let Some(function) = &current.function else {
        return current.api.unavailable(request);
    };
    let timeout = Duration::from_secs(current.api.integration_timeout_s);
    match function
        .invoke(event.to_string().into_bytes(), timeout)
        .await
    {
        Ok(invocation) => match invocation.outcome {
            InvocationOutcome::Response(payload) => {
                current.api.proxy_answer(request, Some(&payload))
            }
            InvocationOutcome::Error(_) => current.api.proxy_answer(request, None),
        },
        // The Runtime API gave up waiting: the function hangs or died.
        Err(_) => current.api.timed_out(request),
    }
}

/// The request as the gateway sees it; `true` when its body is over the
/// limit.
async fn read_request(req: Request<Incoming>, peer: SocketAddr) -> (GatewayRequest, bool) {
    let (parts, body) = req.into_parts();
    let headers = parts
        .headers
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let (body, too_large) = match Limited::new(body, MAX_REQUEST).collect().await {
        Ok(collected) => (collected.to_bytes().to_vec(), false),
        Err(_) => (Vec::new(), true),
    };
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let request = GatewayRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers,
        body,
        source_ip: peer.ip().to_string(),
        host,
    };
    (request, too_large)
}

fn to_response(answer: GatewayAnswer, request_id: &str) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    let has_type = answer
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    for (name, value) in &answer.headers {
        builder = builder.header(name, value);
    }
    if !has_type {
        builder = builder.header("Content-Type", "application/json");
    }
    builder
        .header("x-amzn-RequestId", request_id)
        .body(Full::new(Bytes::from(answer.body)))
        .unwrap_or_else(|_| {
            // A header the function set that HTTP does not allow.
            let mut response = Response::new(Full::new(Bytes::from_static(
                br#"{"message":"Internal server error"}"#,
            )));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response
        })
}
