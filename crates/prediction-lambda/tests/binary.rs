//! The real `bootstrap` binary: its init failures (exit non-zero, naming
//! the file or variable) and its serving loop against a Lambda Runtime API
//! on loopback that hands out events and collects the answers, as Lambda's
//! own does (`/2018-06-01/runtime/invocation/next`, `.../{id}/response`).

mod common;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::workspace;
use serde_json::{Value, json};

fn bootstrap(models: &Path, extra_env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bootstrap"));
    command
        .env_clear()
        .env("PREDICTION_MODELS_DIR", models)
        .env("PREDICTION_DATA_DIR", workspace().join("data"))
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn run(command: &mut Command) -> (Output, String, String) {
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

#[test]
fn missing_models_fail_the_init_naming_the_path() {
    let missing = std::env::temp_dir().join("prediction-lambda-no-such-models");
    let (output, _, stderr) = run(&mut bootstrap(&missing, &[]));
    assert!(!output.status.success());
    assert!(stderr.contains("init failed"), "{stderr}");
    assert!(
        stderr.contains("prediction-lambda-no-such-models"),
        "{stderr}"
    );
}

#[test]
fn a_corrupt_model_file_fails_the_init_naming_the_file() {
    let models = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(workspace().join("models")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), models.path().join(entry.file_name())).unwrap();
    }
    let postcard = models.path().join("models.postcard");
    let bytes = std::fs::read(&postcard).unwrap();
    std::fs::write(&postcard, &bytes[..bytes.len() / 2]).unwrap();
    let (output, _, stderr) = run(&mut bootstrap(models.path(), &[]));
    assert!(!output.status.success());
    assert!(stderr.contains("init failed"), "{stderr}");
    assert!(stderr.contains(models.path().to_str().unwrap()), "{stderr}");
}

#[test]
fn a_bad_cors_origin_fails_the_init_naming_the_variable() {
    let models = workspace().join("models");
    let (output, _, stderr) = run(&mut bootstrap(&models, &[("CORS_ALLOW_ORIGIN", "a\nb")]));
    assert!(!output.status.success());
    assert!(stderr.contains("CORS_ALLOW_ORIGIN"), "{stderr}");
}

#[test]
fn outside_lambda_it_loads_then_says_what_is_missing() {
    let (output, stdout, stderr) = run(&mut bootstrap(&workspace().join("models"), &[]));
    assert!(!output.status.success());
    assert!(
        stderr.contains("AWS_LAMBDA_RUNTIME_API: is not set"),
        "{stderr}"
    );
    let init: Value = serde_json::from_str(stdout.lines().next().unwrap_or_default()).unwrap();
    assert_eq!(init["message"], json!("init"));
    assert!(
        init["model_version"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{init}"
    );
}

/// What the function posted back for one request id.
type Answer = (String, Value);

/// Reads one HTTP/1.1 request: request line and body (by Content-Length).
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((request_line, body))
}

fn serve_connection(
    stream: TcpStream,
    events: Arc<Mutex<VecDeque<(String, Value)>>>,
    answers: Sender<Answer>,
) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some((request_line, body)) = read_request(&mut reader) {
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        if path.ends_with("/invocation/next") {
            let Some((id, event)) = events.lock().unwrap().pop_front() else {
                // No more events: leave the function waiting, as Lambda does.
                std::thread::sleep(Duration::from_secs(60));
                return;
            };
            let body = event.to_string();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Lambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: 99999999999999\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:predict\r\n\r\n",
                body.len()
            );
            writer.write_all(head.as_bytes()).unwrap();
            writer.write_all(body.as_bytes()).unwrap();
        } else {
            // `/invocation/{id}/response` or `/error`: keep what was sent.
            let answer = serde_json::from_slice(&body).unwrap_or(Value::Null);
            answers.send((path, answer)).unwrap();
            writer
                .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
                .unwrap();
        }
    }
}

#[test]
fn it_serves_runtime_api_events_and_logs_each_once() {
    let events = vec![
        (
            "req-1".to_string(),
            serde_json::from_str(include_str!("data/shortest.json")).unwrap(),
        ),
        (
            "req-2".to_string(),
            serde_json::from_str(include_str!("data/s3-put.json")).unwrap(),
        ),
        (
            "req-3".to_string(),
            serde_json::from_str(include_str!("data/options.json")).unwrap(),
        ),
    ];
    let events = Arc::new(Mutex::new(VecDeque::from(events)));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (answers_tx, answers) = channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (events, answers_tx) = (events.clone(), answers_tx.clone());
            std::thread::spawn(move || serve_connection(stream, events, answers_tx));
        }
    });

    let models = workspace().join("models");
    let lambda_env = [
        ("AWS_LAMBDA_RUNTIME_API", address.as_str()),
        ("AWS_LAMBDA_FUNCTION_NAME", "predict"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        // Two origins: the preflight (from the dashboard) gets its own
        // echoed; the events without an Origin get the first one.
        (
            "CORS_ALLOW_ORIGIN",
            "https://other.example,https://dashboard.example.com",
        ),
        ("CORS_ALLOW_HEADERS", "Content-Type, X-Custom-Header"),
    ];
    let child = bootstrap(&models, &lambda_env).spawn().unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        match answers.recv_timeout(Duration::from_secs(30)) {
            Ok(answer) => got.push(answer),
            Err(_) => break,
        }
    }
    let mut child = child;
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        got.len(),
        3,
        "answers {got:?}\nstdout {stdout}\nstderr {stderr}"
    );

    let statuses: Vec<(&str, u64)> = got
        .iter()
        .map(|(path, answer)| (path.as_str(), answer["statusCode"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("/2018-06-01/runtime/invocation/req-1/response", 200),
            ("/2018-06-01/runtime/invocation/req-2/response", 400),
            ("/2018-06-01/runtime/invocation/req-3/response", 204),
        ]
    );
    let origins: Vec<&Value> = got
        .iter()
        .map(|(_, answer)| &answer["headers"]["Access-Control-Allow-Origin"])
        .collect();
    assert_eq!(
        origins,
        [
            &json!("https://other.example"),
            &json!("https://other.example"),
            &json!("https://dashboard.example.com"),
        ]
    );
    for (_, answer) in &got {
        assert_eq!(answer["headers"]["Vary"], json!("Origin"));
        assert_eq!(
            answer["headers"]["Access-Control-Allow-Headers"],
            json!("Content-Type, X-Custom-Header")
        );
    }
    let forecast: Value = serde_json::from_str(got[0].1["body"].as_str().unwrap()).unwrap();
    assert_eq!(forecast["date"], json!("2025-10-20"));

    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(lines[0]["message"], json!("init"));
    let logged: Vec<(&str, u64, bool)> = lines[1..]
        .iter()
        .map(|l| {
            (
                l["request_id"].as_str().unwrap(),
                l["status"].as_u64().unwrap(),
                l["cold_start"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        logged,
        [
            ("req-1", 200, true),
            ("req-2", 400, false),
            ("req-3", 204, false)
        ]
    );
    assert_eq!(lines[1]["date"], json!("2025-10-20"));
}
