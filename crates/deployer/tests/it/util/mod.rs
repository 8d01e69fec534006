//! Helpers shared by the deployer's integration tests: reaching the local
//! AWS that `scripts/local-cloud up` starts (moto, the registry at the ECR
//! host, dockerd) through the same standard SDK configuration the deployer
//! uses, names that never collide in moto's shared state, and a dump of
//! moto's state when a test fails. `fixture` is the workspace the end-to-end
//! tests run the `deployer` binary in; `proxy` injects AWS faults;
//! `running` follows a `deployer` that runs on (`dev`, `up --watch`);
//! `up_path` brings one resource in line the way `up` does (read, diff,
//! apply).
//!
//! The test binary's `main.rs` declares it once (`mod util;`); each area's
//! module uses it as `crate::util`.

pub mod fixture;
pub mod iam_moto;
pub mod own_moto;
pub mod proxy;
pub mod registry;
pub mod running;
pub mod snapshot;
pub mod up_path;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use base64::Engine as _;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use deployer::aws::ErrorKind;

/// moto's account: every ARN and the ECR host name carry it.
pub const ACCOUNT: &str = "123456789012";
/// Where moto listens when `AWS_ENDPOINT_URL` does not say otherwise.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:5000";
const DEFAULT_REGION: &str = "us-east-1";
const DOCKER_SOCKET: &str = "/var/run/docker.sock";
const TIMEOUT: Duration = Duration::from_secs(5);

/// The moto endpoint, as the SDK will see it.
pub fn endpoint_url() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| DEFAULT_ENDPOINT.to_string())
}

/// The log group that is the lock of `app`'s `stage` (`Stage::lock_group_name`).
pub fn lock_group(app: &str, stage: &str) -> String {
    deployer::config::Stage::defaults(app, stage, &region()).lock_group_name()
}

/// The region, as the SDK will see it.
pub fn region() -> String {
    ["AWS_REGION", "AWS_DEFAULT_REGION", "LOCAL_CLOUD_REGION"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| DEFAULT_REGION.to_string())
}

/// The ECR host moto hands out, which the local registry serves on 127.0.0.1:443.
pub fn registry_host() -> String {
    format!("{ACCOUNT}.dkr.ecr.{}.amazonaws.com", region())
}

/// The workspace root (where `scripts/` and `.local-cloud/` live).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails the test, naming what does not answer, unless moto, the registry
/// and dockerd all answer. Tests never skip when the local AWS is down.
pub fn require_local_cloud() {
    let mut down = Vec::new();
    if let Err(why) = moto_answers() {
        down.push(format!("moto at {}: {why}", endpoint_url()));
    }
    if let Err(why) = registry_answers() {
        down.push(format!("registry at {}: {why}", registry_host()));
    }
    if let Err(why) = dockerd_answers() {
        down.push(format!("dockerd at {DOCKER_SOCKET}: {why}"));
    }
    if !down.is_empty() {
        panic!(
            "the local AWS is not running; start it with `scripts/local-cloud up` \
             (then `eval \"$(scripts/local-cloud env)\"`).\nNot answering:\n  {}",
            down.join("\n  ")
        );
    }
}

fn moto_answers() -> Result<(), String> {
    let (status, _) = http_request("GET", "/moto-api/", None)?;
    if status == 200 {
        Ok(())
    } else {
        Err(format!("GET /moto-api/ answered HTTP {status}"))
    }
}

// A TCP connect to the name the deployer pushes to: this checks /etc/hosts
// and the listener; the tests' pushes check TLS and dockerd's trust.
fn registry_answers() -> Result<(), String> {
    let host = registry_host();
    let addrs: Vec<_> = (host.as_str(), 443)
        .to_socket_addrs()
        .map_err(|e| format!("the name does not resolve ({e})"))?
        .collect();
    let addr = addrs
        .first()
        .ok_or_else(|| "the name resolves to no address".to_string())?;
    TcpStream::connect_timeout(addr, TIMEOUT)
        .map(|_| ())
        .map_err(|e| format!("cannot connect to {addr}: {e}"))
}

fn dockerd_answers() -> Result<(), String> {
    let mut socket = UnixStream::connect(DOCKER_SOCKET).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    socket
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    socket
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!(
            "/_ping answered {:?}",
            answer.lines().next().unwrap_or("")
        ))
    }
}

/// One plain HTTP/1.0 request to moto's own API (not an AWS API, so not
/// through the SDK). Returns the status code and the body.
pub fn http_request(method: &str, path: &str, body: Option<&str>) -> Result<(u16, String), String> {
    let endpoint = endpoint_url();
    let authority = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| format!("AWS_ENDPOINT_URL {endpoint:?} is not an http:// URL"))?
        .trim_end_matches('/');
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {:?}", answer.lines().next()))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// One HTTP answer: status, headers (names lower-case, in order), body.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    /// The first value of the header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): HTTP {} {}", self.status, self.body))
    }
}

/// `METHOD url` (an `http://host:port/...` URL, as the local stage's is)
/// with `headers`, as a browser or curl would send it.
pub fn call_url(method: &str, url: &str, headers: &[(&str, &str)]) -> HttpAnswer {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http:// URL: {url}"));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = authority
        .to_socket_addrs()
        .unwrap()
        .next()
        .expect("the URL's host resolves to no address");
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    // A `Host` of the caller's (a custom domain served by its Host header)
    // replaces the URL's.
    let host = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map_or(authority, |(_, value)| *value);
    let mut request = format!("{method} /{path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
    {
        request += &format!("{name}: {value}\r\n");
    }
    request += "\r\n";
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer from {url}: {answer:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    HttpAnswer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// The CORS preflight a browser sends before a cross-origin POST from
/// `origin`, checked against the default policy (any origin; GET, POST and
/// OPTIONS; the default headers): the deployed stage's MOCK answer, which
/// `deployer dev` gives too.
pub fn assert_default_preflight(url: &str, origin: &str) {
    let preflight = call_url(
        "OPTIONS",
        url,
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
    );
    assert_eq!(preflight.status, 204, "{preflight:?}");
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET,POST,OPTIONS")
    );
    let allowed = preflight.header("access-control-allow-headers");
    assert!(
        allowed.is_some_and(|h| h.contains("Content-Type") && h.contains("X-Api-Key")),
        "{preflight:?}"
    );
}

/// The SDK configuration aimed at the local AWS through the standard chain:
/// `AWS_ENDPOINT_URL` (default moto's address), the region, and dummy
/// credentials when none are set, so no test can reach a real account.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_in(&region()).await
}

/// [`sdk_config`] for another region.
pub async fn sdk_config_in(region: &str) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_string()));
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        loader = loader.endpoint_url(DEFAULT_ENDPOINT);
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(aws_sdk_sts::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "local-cloud-tests",
        ));
    }
    loader.load().await
}

/// What `read` answers once it answers `Some`, asking again for up to 30 s.
/// AWS shows some changes only once they have propagated (a role just
/// created, a log group in DescribeLogGroups): a test is a client, and
/// waits for them as a real client would.
pub async fn eventually<T, F, Fut>(what: &str, mut read: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = read().await {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not show within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `call`'s answer once AWS stops answering "not yet" — a role Lambda
/// cannot assume yet, a function or version `Pending`, an update in
/// progress, a log group create racing a delete, a detach not propagated —
/// asking again for up to 30 s, as a real client would. Any other error
/// fails the test. `what` names the call in the failure.
pub async fn once_ready<T, E, R, F, Fut>(what: &'static str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match call().await {
            Ok(answer) => return answer,
            Err(err) => {
                let err = deployer::aws::errors::aws_error(what, "", err);
                let not_yet = matches!(err.kind, ErrorKind::Conflict | ErrorKind::RoleNotAssumable);
                assert!(not_yet && std::time::Instant::now() < deadline, "{err}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Fails the test unless the local AWS is our strict one (scripts/moto_ext
/// with every behaviour on), so that a test meant to meet AWS's answers
/// cannot pass against a forgiving moto.
pub fn require_strict_local_aws() {
    let (status, body) = http_request("GET", "/_local-aws/status", None)
        .unwrap_or_else(|why| panic!("cannot ask the local AWS for its status: {why}"));
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert!(
        status == 200
            && answer["strict"] == true
            && answer["behaviours"]
                .as_array()
                .is_some_and(|b| b.len() >= 11),
        "the local AWS at {} is not the strict one (scripts/moto_ext with every behaviour on): \
         HTTP {status} {body}",
        endpoint_url()
    );
}

/// The Docker engine, from `DOCKER_HOST` or the default socket.
pub fn docker() -> Docker {
    Docker::connect_with_defaults().unwrap()
}

/// A name no other test, process or earlier run uses in moto's shared
/// state: `<prefix>-<time>-<pid>-<n>`, lowercase letters, digits and `-`,
/// at most 48 characters (valid for ECR repositories, Lambda functions,
/// IAM roles and API Gateway APIs).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut clean: String = prefix
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(24)
        .collect();
    if clean.is_empty() || !clean.starts_with(|c: char| c.is_ascii_lowercase()) {
        clean.insert(0, 't');
    }
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!(
        "{clean}-{}-{}-{}",
        base36(seconds),
        base36(u64::from(std::process::id())),
        base36(u64::from(n))
    )
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// The ECR repository `name`, asserted immutable-tagged and scanned on
/// push (what `up` must always leave).
pub async fn locked_down_repository(
    ecr: &aws_sdk_ecr::Client,
    name: &str,
) -> aws_sdk_ecr::types::Repository {
    let answer = ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .unwrap();
    let repo = answer.repositories()[0].clone();
    assert_eq!(
        repo.image_tag_mutability(),
        Some(&aws_sdk_ecr::types::ImageTagMutability::Immutable),
        "{name}: tags are not immutable"
    );
    assert_eq!(
        repo.image_scanning_configuration()
            .map(|c| c.scan_on_push()),
        Some(true),
        "{name}: images are not scanned on push"
    );
    repo
}

/// Credentials for the registry from ECR's GetAuthorizationToken, as the
/// deployer gets them (base64 `AWS:<password>`).
pub async fn registry_credentials(config: &SdkConfig) -> DockerCredentials {
    let ecr = aws_sdk_ecr::Client::new(config);
    let answer = ecr.get_authorization_token().send().await.unwrap();
    let data = answer
        .authorization_data()
        .first()
        .expect("GetAuthorizationToken answered no authorization data");
    let token = data
        .authorization_token()
        .expect("GetAuthorizationToken answered no token");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .unwrap();
    let decoded = String::from_utf8(decoded).unwrap();
    let (username, password) = decoded
        .split_once(':')
        .expect("the ECR token is not `user:password`");
    DockerCredentials {
        username: Some(username.to_string()),
        password: Some(password.to_string()),
        serveraddress: data.proxy_endpoint().map(str::to_string),
        ..Default::default()
    }
}

/// How many deployments (snapshots API Gateway serves) the REST API has.
pub async fn deployment_count(apigw: &aws_sdk_apigateway::Client, api_id: &str) -> usize {
    apigw
        .get_deployments()
        .rest_api_id(api_id)
        .send()
        .await
        .unwrap()
        .items()
        .len()
}

/// The version the stage's alias points at.
pub async fn alias_version(lambda: &aws_sdk_lambda::Client, function: &str, alias: &str) -> String {
    lambda
        .get_alias()
        .function_name(function)
        .name(alias)
        .send()
        .await
        .unwrap()
        .function_version()
        .unwrap()
        .to_string()
}

/// Prints moto's state about the resources whose names contain `filter`
/// (everything when empty) if the test is panicking when this drops.
/// Keep it alive for the whole test: `let _dump = DumpOnFailure::new(&name);`
pub struct DumpOnFailure {
    filter: String,
}

impl DumpOnFailure {
    pub fn new(filter: &str) -> DumpOnFailure {
        DumpOnFailure {
            filter: filter.to_string(),
        }
    }
}

impl Drop for DumpOnFailure {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let filter = self.filter.clone();
        // Drop cannot await, and the test's runtime may be the one unwinding:
        // ask moto from a thread with its own small runtime.
        let dump = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            Ok::<String, String>(runtime.block_on(describe_local_cloud(&filter)))
        })
        .join();
        match dump {
            Ok(Ok(text)) => eprintln!("{text}"),
            Ok(Err(why)) => eprintln!("--- local AWS state: could not ask moto: {why}"),
            Err(_) => eprintln!("--- local AWS state: the dump itself panicked"),
        }
    }
}

/// A readable summary of moto's Lambda functions, REST APIs, IAM roles and
/// ECR repositories matching `filter`, and the tail of moto's log.
pub async fn describe_local_cloud(filter: &str) -> String {
    let config = sdk_config().await;
    let keep = |name: &str| filter.is_empty() || name.contains(filter);
    let mut out = format!("--- local AWS state (names containing {filter:?}) ---\n");

    let lambda = aws_sdk_lambda::Client::new(&config);
    match lambda.list_functions().send().await {
        Ok(answer) => {
            for f in answer.functions() {
                let name = f.function_name().unwrap_or("?");
                if keep(name) {
                    out += &format!(
                        "lambda {name}: state {:?}, image/code {:?}, role {:?}\n",
                        f.state(),
                        f.code_sha256(),
                        f.role()
                    );
                }
            }
        }
        Err(e) => out += &format!("lambda list-functions failed: {e:?}\n"),
    }

    let apigw = aws_sdk_apigateway::Client::new(&config);
    match apigw.get_rest_apis().limit(500).send().await {
        Ok(answer) => {
            for api in answer.items() {
                let name = api.name().unwrap_or("?");
                if keep(name) {
                    out += &format!("rest api {name}: id {:?}\n", api.id());
                }
            }
        }
        Err(e) => out += &format!("apigateway get-rest-apis failed: {e:?}\n"),
    }

    let iam = aws_sdk_iam::Client::new(&config);
    match iam.list_roles().max_items(1000).send().await {
        Ok(answer) => {
            for role in answer.roles() {
                if keep(role.role_name()) {
                    out += &format!("iam role {}: {}\n", role.role_name(), role.arn());
                }
            }
        }
        Err(e) => out += &format!("iam list-roles failed: {e:?}\n"),
    }

    let ecr = aws_sdk_ecr::Client::new(&config);
    match ecr.describe_repositories().max_results(1000).send().await {
        Ok(answer) => {
            for repo in answer.repositories() {
                let name = repo.repository_name().unwrap_or("?");
                if keep(name) {
                    out += &format!("ecr repository {name}: {:?}\n", repo.repository_uri());
                }
            }
        }
        Err(e) => out += &format!("ecr describe-repositories failed: {e:?}\n"),
    }

    // scripts/local-cloud keeps one log per moto port.
    let port = std::env::var("LOCAL_CLOUD_MOTO_PORT").unwrap_or_else(|_| "5000".into());
    let log = workspace_root().join(format!(".local-cloud/moto-{port}.log"));
    if let Ok(text) = std::fs::read_to_string(&log) {
        let lines: Vec<&str> = text.lines().collect();
        out += &format!("--- last lines of {} ---\n", log.display());
        for line in &lines[lines.len().saturating_sub(15)..] {
            out += line;
            out.push('\n');
        }
    }
    out
}
