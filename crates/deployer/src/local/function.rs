//! Starts the function against a [`RuntimeApi`]: the static binary as a
//! child process, or the real image as a Docker container on the host's
//! network (a container reaches the host's loopback only that way).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{LogsOptionsBuilder, RemoveContainerOptionsBuilder};
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::runtime_api::{Invocation, RuntimeApi};
use crate::image::Runner;

enum Process {
    Child(tokio::process::Child),
    /// `pid`: the container's main process as the host sees it.
    Container {
        docker: Docker,
        id: String,
        pid: Option<u32>,
    },
}

/// A running function and the Runtime API it polls.
pub struct LocalFunction {
    api: RuntimeApi,
    process: Option<Process>,
    /// From starting the process to its first poll for an event.
    init: Duration,
    output: Arc<Mutex<Vec<String>>>,
}

/// The environment Lambda gives every function, which `lambda_runtime`
/// insists on.
fn lambda_environment(api: &RuntimeApi, memory_mb: i32) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("AWS_LAMBDA_RUNTIME_API".into(), api.address().to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), "local".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            memory_mb.to_string(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            "/aws/lambda/local".into(),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), "local".into()),
        ("AWS_REGION".into(), "local".into()),
        ("TZ".into(), ":UTC".into()),
    ])
}

impl LocalFunction {
    /// Starts the function with `environment` on top of Lambda's own and
    /// waits (up to `init_timeout`) until it asks for its first event.
    pub async fn start(
        runner: &Runner,
        environment: &BTreeMap<String, String>,
        memory_mb: i32,
        init_timeout: Duration,
    ) -> Result<LocalFunction> {
        let api = RuntimeApi::start()
            .await
            .context("cannot serve the Lambda Runtime API on loopback")?;
        let mut env = lambda_environment(&api, memory_mb);
        env.extend(environment.clone());
        let output = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let process = match runner {
            Runner::Binary(path) => spawn_binary(path, &env, &output)?,
            Runner::Image(image) => spawn_container(image, &env, &output).await?,
        };
        let mut function = LocalFunction {
            api,
            process: Some(process),
            init: Duration::ZERO,
            output,
        };
        match function.api.wait_ready(init_timeout).await {
            Ok(ready) => {
                function.init = ready.saturating_duration_since(started);
                Ok(function)
            }
            Err(message) => {
                let log = function.output().join("\n");
                function.stop().await;
                Err(anyhow!("{message}\nfunction output:\n{log}"))
            }
        }
    }

    /// From process start to the first poll for an event: the cold start.
    pub fn init_duration(&self) -> Duration {
        self.init
    }

    pub async fn invoke(&self, payload: Vec<u8>, timeout: Duration) -> Result<Invocation> {
        self.api
            .invoke(payload, timeout)
            .await
            .map_err(|message| anyhow!("{message}\nfunction output:\n{}", self.output().join("\n")))
    }

    /// What the function printed so far (its log lines).
    pub fn output(&self) -> Vec<String> {
        self.output
            .lock()
            .map(|lines| lines.clone())
            .unwrap_or_default()
    }

    /// The process's id as this host sees it, to read its memory from
    /// /proc (a container's when the engine runs on this host).
    pub fn pid(&self) -> Option<u32> {
        match &self.process {
            Some(Process::Child(child)) => child.id(),
            Some(Process::Container { pid, .. }) => *pid,
            None => None,
        }
    }

    /// Stops the process or removes the container.
    pub async fn stop(&mut self) {
        match self.process.take() {
            Some(Process::Child(mut child)) => {
                let _ = child.kill().await;
            }
            Some(Process::Container { docker, id, .. }) => {
                let options = RemoveContainerOptionsBuilder::new().force(true).build();
                let _ = docker.remove_container(&id, Some(options)).await;
            }
            None => {}
        }
    }
}

impl Drop for LocalFunction {
    fn drop(&mut self) {
        if let Some(Process::Child(child)) = &mut self.process {
            let _ = child.start_kill();
        }
    }
}

fn spawn_binary(
    path: &PathBuf,
    env: &BTreeMap<String, String>,
    output: &Arc<Mutex<Vec<String>>>,
) -> Result<Process> {
    // A clean environment, as on Lambda: nothing of the caller's (least of
    // all its AWS credentials) leaks into the function.
    let mut child = tokio::process::Command::new(path)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", path.display()))?;
    if let Some(stdout) = child.stdout.take() {
        collect_lines(BufReader::new(stdout), output.clone());
    }
    if let Some(stderr) = child.stderr.take() {
        collect_lines(BufReader::new(stderr), output.clone());
    }
    Ok(Process::Child(child))
}

fn collect_lines<R>(reader: BufReader<R>, output: Arc<Mutex<Vec<String>>>)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = reader.lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(mut out) = output.lock() {
                out.push(line);
            }
        }
    });
}

async fn spawn_container(
    image: &str,
    env: &BTreeMap<String, String>,
    output: &Arc<Mutex<Vec<String>>>,
) -> Result<Process> {
    let docker = Docker::connect_with_defaults()
        .context("cannot reach the Docker engine (is it running? see scripts/local-cloud up)")?;
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        host_config: Some(HostConfig {
            network_mode: Some("host".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(None, body)
        .await
        .with_context(|| format!("cannot create a container from {image}"))?;
    let id = created.id;
    if let Err(err) = docker.start_container(&id, None).await {
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        let _ = docker.remove_container(&id, Some(options)).await;
        return Err(anyhow!(err).context(format!("cannot start a container from {image}")));
    }
    let logs_options = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut logs = docker.logs(&id, Some(logs_options));
    let sink = output.clone();
    tokio::spawn(async move {
        while let Some(Ok(chunk)) = logs.next().await {
            let text = chunk.to_string();
            if let Ok(mut out) = sink.lock() {
                out.extend(text.lines().map(str::to_string));
            }
        }
    });
    let pid = docker
        .inspect_container(&id, None)
        .await
        .ok()
        .and_then(|info| info.state?.pid)
        .and_then(|pid| u32::try_from(pid).ok())
        .filter(|pid| *pid > 0);
    Ok(Process::Container { docker, id, pid })
}
