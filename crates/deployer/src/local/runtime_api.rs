//! The Lambda Runtime API (the `2018-06-01` HTTP protocol a custom runtime
//! polls), served on loopback so the real `bootstrap` can run here.
//!
//! The function asks `GET /runtime/invocation/next` and blocks until
//! [`RuntimeApi::invoke`] queues an event; its answer comes back through
//! `POST /runtime/invocation/{id}/response` (or `/error`). An init failure
//! arrives at `/runtime/init/error`.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

/// Lambda's own limit for a synchronous response payload.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
const PREFIX: &str = "/2018-06-01/runtime";

/// How one invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum InvocationOutcome {
    /// The function's response payload.
    Response(Vec<u8>),
    /// The function reported an error (its JSON error document).
    Error(Vec<u8>),
}

/// One finished invocation and how long the function took over it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub outcome: InvocationOutcome,
    /// From handing the event to the function to its answer.
    pub duration: Duration,
}

struct Pending {
    request_id: String,
    payload: Vec<u8>,
    deadline_ms: u128,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    /// Invocations handed out and not yet answered.
    in_flight: HashMap<String, (Instant, oneshot::Sender<(InvocationOutcome, Instant)>)>,
    /// Waiters for invocations not yet handed out.
    waiting: HashMap<String, oneshot::Sender<(InvocationOutcome, Instant)>>,
    first_poll: Option<Instant>,
    init_error: Option<Vec<u8>>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes a `next` poll when an event is queued.
    event_queued: Notify,
    /// Wakes whoever waits for the function to become ready or fail init.
    ready_or_failed: Notify,
    next_id: std::sync::atomic::AtomicU64,
}

/// A Runtime API server on `127.0.0.1:<port>`; it stops when dropped.
pub struct RuntimeApi {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Binds an ephemeral loopback port and starts serving.
    pub async fn start() -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            event_queued: Notify::new(),
            ready_or_failed: Notify::new(),
            next_id: std::sync::atomic::AtomicU64::new(1),
        });
        let for_server = shared.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = for_server.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| serve(shared.clone(), req));
                    // A function that hangs up mid-request is its own problem;
                    // the invocation then times out on our side.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(RuntimeApi {
            address,
            shared,
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Waits until the function first polls for an event (its init is
    /// done) and returns when that happened; fails on an init error or
    /// when `timeout` passes.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<Instant, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.ready_or_failed.notified();
            {
                let state = lock(&self.shared.state);
                if let Some(error) = &state.init_error {
                    return Err(format!(
                        "the function failed to initialise: {}",
                        String::from_utf8_lossy(error)
                    ));
                }
                if let Some(at) = state.first_poll {
                    return Ok(at);
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(format!(
                    "the function did not ask for an event within {} s",
                    timeout.as_secs()
                ));
            }
        }
    }

    /// Queues one event and waits for the function's answer.
    pub async fn invoke(&self, payload: Vec<u8>, timeout: Duration) -> Result<Invocation, String> {
        let number = self
            .shared
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request_id = format!("00000000-0000-4000-8000-{number:012}");
        let deadline_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
            + timeout.as_millis();
        let (tx, rx) = oneshot::channel();
        {
            let mut state = lock(&self.shared.state);
            state.waiting.insert(request_id.clone(), tx);
            state.queue.push_back(Pending {
                request_id: request_id.clone(),
                payload,
                deadline_ms,
            });
        }
        self.shared.event_queued.notify_one();
        let answer = tokio::time::timeout(timeout, rx).await;
        let mut state = lock(&self.shared.state);
        let started = state.in_flight.remove(&request_id).map(|(at, _)| at);
        state.waiting.remove(&request_id);
        // An event never handed out must not reach the function later,
        // when nobody waits for its answer.
        state
            .queue
            .retain(|pending| pending.request_id != request_id);
        drop(state);
        match answer {
            Ok(Ok((outcome, finished))) => Ok(Invocation {
                duration: started
                    .map(|s| finished.saturating_duration_since(s))
                    .unwrap_or_default(),
                outcome,
            }),
            Ok(Err(_)) => Err("the Runtime API stopped".into()),
            Err(_) => Err(format!(
                "the function did not answer within {} s",
                timeout.as_secs()
            )),
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn serve(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(reply(StatusCode::NOT_FOUND, "unknown path"));
    };
    let method = req.method().clone();
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (Method::GET, ["invocation", "next"]) => Ok(next_event(&shared).await),
        (Method::POST, ["invocation", id, kind @ ("response" | "error")]) => {
            let body = match read_body(req).await {
                Ok(body) => body,
                Err(response) => return Ok(response),
            };
            let finished = Instant::now();
            let outcome = if *kind == "response" {
                InvocationOutcome::Response(body)
            } else {
                InvocationOutcome::Error(body)
            };
            let sender = lock(&shared.state)
                .in_flight
                .get_mut(*id)
                .map(|entry| std::mem::replace(&mut entry.1, oneshot::channel().0));
            match sender {
                Some(tx) => {
                    let _ = tx.send((outcome, finished));
                    Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"))
                }
                None => Ok(reply(StatusCode::BAD_REQUEST, "unknown request id")),
            }
        }
        (Method::POST, ["init", "error"]) => {
            let body = read_body(req).await.unwrap_or_default();
            lock(&shared.state).init_error = Some(body);
            shared.ready_or_failed.notify_waiters();
            Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"))
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, "unknown path")),
    }
}

async fn next_event(shared: &Shared) -> Response<Full<Bytes>> {
    {
        let mut state = lock(&shared.state);
        if state.first_poll.is_none() {
            state.first_poll = Some(Instant::now());
            shared.ready_or_failed.notify_waiters();
        }
    }
    loop {
        let notified = shared.event_queued.notified();
        let pending = {
            let mut state = lock(&shared.state);
            let pending = state.queue.pop_front();
            if let Some(p) = &pending
                && let Some(tx) = state.waiting.remove(&p.request_id)
            {
                state
                    .in_flight
                    .insert(p.request_id.clone(), (Instant::now(), tx));
            }
            pending
        };
        if let Some(p) = pending {
            return Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", &p.request_id)
                .header("lambda-runtime-deadline-ms", p.deadline_ms.to_string())
                .header(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:local:000000000000:function:local",
                )
                .header(
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000",
                )
                .body(Full::new(Bytes::from(p.payload)))
                .unwrap_or_else(|_| reply(StatusCode::INTERNAL_SERVER_ERROR, "bad event"));
        }
        notified.await;
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Vec<u8>, Response<Full<Bytes>>> {
    match Limited::new(req.into_body(), MAX_PAYLOAD).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(_) => Err(reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload over Lambda's 6 MB limit",
        )),
    }
}

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One HTTP/1.1 request as a function's runtime client sends it;
    /// returns the whole answer (head and body).
    async fn request(api: &RuntimeApi, method: &str, path: &str, body: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(api.address()).await.unwrap();
        let text = format!(
            "{method} {PREFIX}{path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(text.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    fn request_id(answer: &str) -> String {
        answer
            .lines()
            .find_map(|l| l.strip_prefix("lambda-runtime-aws-request-id: "))
            .unwrap()
            .trim()
            .to_string()
    }

    #[tokio::test]
    async fn an_event_goes_out_on_next_and_its_answer_comes_back() {
        let api = Arc::new(RuntimeApi::start().await.unwrap());
        let function = {
            let api = api.clone();
            tokio::spawn(async move {
                let event = request(&api, "GET", "/invocation/next", "").await;
                assert!(event.ends_with("{\"date\":\"2025-10-20\"}"), "{event}");
                let id = request_id(&event);
                let ack = request(&api, "POST", &format!("/invocation/{id}/response"), "42").await;
                assert!(ack.starts_with("HTTP/1.1 202"), "{ack}");
            })
        };
        api.wait_ready(Duration::from_secs(5)).await.unwrap();
        let done = api
            .invoke(
                b"{\"date\":\"2025-10-20\"}".to_vec(),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(done.outcome, InvocationOutcome::Response(b"42".to_vec()));
        function.await.unwrap();
    }

    #[tokio::test]
    async fn an_init_error_fails_the_wait_with_its_text() {
        let api = RuntimeApi::start().await.unwrap();
        request(
            &api,
            "POST",
            "/init/error",
            "{\"errorMessage\":\"no models\"}",
        )
        .await;
        let err = api.wait_ready(Duration::from_secs(5)).await.unwrap_err();
        assert!(err.contains("no models"), "{err}");
    }

    #[tokio::test]
    async fn an_event_given_up_on_is_not_handed_out_later() {
        let api = RuntimeApi::start().await.unwrap();
        let err = api
            .invoke(b"{}".to_vec(), Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(err.contains("did not answer"), "{err}");
        assert!(lock(&api.shared.state).queue.is_empty());
        let unknown = request(&api, "POST", "/invocation/nope/response", "1").await;
        assert!(unknown.starts_with("HTTP/1.1 400"), "{unknown}");
    }
}
