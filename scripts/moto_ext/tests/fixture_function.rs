//! A Lambda function for the extension's tests: a custom runtime in plain
//! `std` (no crates, so `rustc` alone builds it, statically linked, for a
//! `FROM scratch` image). It speaks the Lambda Runtime API at
//! `AWS_LAMBDA_RUNTIME_API` and behaves as its event says (the first
//! `"mode"` in it: a key of a direct invoke's payload, or a query parameter
//! of an API Gateway request), else as its environment (`FIXTURE_MODE`) says:
//!
//! - `FIXTURE_INIT=crash` exits 3 before polling; `=error` posts to
//!   `/init/error` and exits; `=slow` sleeps `FIXTURE_INIT_MS` first.
//! - `"mode":"echo"` (the default) answers what it saw: the event, the
//!   Runtime API's headers, its environment, its user, whether `/tmp` and
//!   `/` are writable.
//! - `"mode":"proxy"` answers an API Gateway proxy response whose body is
//!   the event; `"mode":"static"` answers `FIXTURE_ANSWER` verbatim;
//!   `"mode":"error"` posts a function error; `"mode":"exit"` exits 7;
//!   `"mode":"sleep"` sleeps `"sleep_ms"` first; `"mode":"memory"` touches
//!   `"mb"` megabytes first.
//!
//! Every invocation prints `fixture: handling <request id>` to stdout and
//! `fixture: stderr line` to stderr.

use std::env;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread::sleep;
use std::time::Duration;

fn main() {
    let api = env::var("AWS_LAMBDA_RUNTIME_API").expect("AWS_LAMBDA_RUNTIME_API");
    let init = env::var("FIXTURE_INIT").unwrap_or_default();
    println!("fixture: init {init}");
    match init.as_str() {
        "crash" => {
            eprintln!("fixture: init crashed on purpose");
            std::process::exit(3);
        }
        "error" => {
            let body = r#"{"errorMessage":"fixture init failed","errorType":"FixtureInitError"}"#;
            request(&api, "POST", "/2018-06-01/runtime/init/error", body, &[("Lambda-Runtime-Function-Error-Type", "FixtureInitError")]);
            std::process::exit(4);
        }
        "slow" => {
            let ms = env::var("FIXTURE_INIT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
            sleep(Duration::from_millis(ms));
        }
        _ => {}
    }
    loop {
        let (headers, event) = request(&api, "GET", "/2018-06-01/runtime/invocation/next", "", &[]);
        let id = header(&headers, "lambda-runtime-aws-request-id");
        println!("fixture: handling {id}");
        eprintln!("fixture: stderr line");
        let mode = field(&event, "mode").unwrap_or_else(|| env::var("FIXTURE_MODE").unwrap_or_else(|_| "echo".into()));
        if let Some(ms) = field(&event, "sleep_ms").and_then(|v| v.parse::<u64>().ok()) {
            sleep(Duration::from_millis(ms));
        }
        let answer = match mode.as_str() {
            "exit" => std::process::exit(7),
            "error" => {
                let body = r#"{"errorMessage":"fixture failed on purpose","errorType":"FixtureError"}"#;
                request(&api, "POST", &format!("/2018-06-01/runtime/invocation/{id}/error"), body, &[("Lambda-Runtime-Function-Error-Type", "FixtureError")]);
                continue;
            }
            "memory" => {
                let mb = field(&event, "mb").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1);
                let block = vec![1u8; mb * 1024 * 1024];
                format!("{{\"touched\":{}}}", block.iter().map(|b| *b as usize).sum::<usize>())
            }
            "static" => env::var("FIXTURE_ANSWER").unwrap_or_default(),
            "proxy" => format!(
                "{{\"statusCode\":200,\"headers\":{{\"Content-Type\":\"application/json\",\"X-Fixture\":\"proxy\"}},\"multiValueHeaders\":{{\"Set-Cookie\":[\"a=1\",\"b=2\"]}},\"body\":{}}}",
                quote(&event)
            ),
            _ => echo(&event, &headers),
        };
        request(&api, "POST", &format!("/2018-06-01/runtime/invocation/{id}/response"), &answer, &[]);
    }
}

fn echo(event: &str, headers: &[(String, String)]) -> String {
    let names = [
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "FIXTURE_VALUE",
    ];
    let environment: Vec<String> = names
        .iter()
        .map(|n| format!("{}:{}", quote(n), quote(&env::var(n).unwrap_or_default())))
        .collect();
    let runtime: Vec<String> = headers
        .iter()
        .filter(|(k, _)| k.starts_with("lambda-runtime-"))
        .map(|(k, v)| format!("{}:{}", quote(k), quote(v)))
        .collect();
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string()))
        .unwrap_or_default();
    let tmp = std::fs::write("/tmp/fixture-probe", b"x").is_ok();
    let root = std::fs::write("/fixture-probe", b"x").is_ok();
    format!(
        "{{\"event\":{event},\"env\":{{{}}},\"runtime\":{{{}}},\"uid\":{},\"tmp_writable\":{tmp},\"root_writable\":{root}}}",
        environment.join(","),
        runtime.join(","),
        quote(&uid)
    )
}

/// The text of `"key":"value"` or `"key":123` in a JSON text, if present.
fn field(text: &str, key: &str) -> Option<String> {
    let start = text.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = text[start..].trim_start();
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.find('"').map(|end| quoted[..end].to_string());
    }
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn header(headers: &[(String, String)], name: &str) -> String {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// One HTTP/1.1 request on a fresh connection; the answer's headers
/// (lower-case names) and body.
fn request(api: &str, method: &str, path: &str, body: &str, extra: &[(&str, &str)]) -> (Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(api).expect("connect to the Runtime API");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {api}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(body.as_bytes()).expect("write");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header line");
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((k, v)) = trimmed.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim().to_string();
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).expect("body");
    (headers, String::from_utf8_lossy(&body).into_owned())
}
