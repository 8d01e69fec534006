//! `deployer dev`: the stage's API on localhost with no AWS at all. The
//! first line printed is the URL to curl; then a line per request served.
//! When the function's crates, `models/`, `data/` or deploy.toml change,
//! the function is rebuilt (the host binary, or the image with `--docker`)
//! and restarted; requests that arrive meanwhile wait for it. A rebuild
//! that fails leaves the previous function serving.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::RwLock;

use crate::cli::DevArgs;
use crate::config::{Auth, Stage, StageSource};
use crate::local::serve::{self, Current, OnServed};
use crate::local::{LocalApi, LocalFunction};
use crate::stage::image as stage_image;
use crate::ui::Ui;
use crate::watch::Watcher;

/// How long a local function may take from process start to its first
/// poll (a container start included).
const INIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The first thing `dev` prints: where to send requests.
#[derive(Debug, Serialize)]
pub struct Serving {
    /// A request for the stage's smoke-test date, ready to curl.
    pub url: String,
    /// With `auth = "api_key"`: the key to send as `x-api-key`.
    pub api_key: Option<String>,
}

impl fmt::Display for Serving {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.url)?;
        if let Some(key) = &self.api_key {
            write!(f, "\napi key: {key} (send it as the x-api-key header)")?;
        }
        Ok(())
    }
}

pub async fn run(source: &StageSource, stage: &Stage, ui: &Ui, args: &DevArgs) -> Result<()> {
    let listener = serve::bind(args.port)
        .await
        .with_context(|| format!("cannot serve on 127.0.0.1:{} (try --port)", args.port))?;
    let address = listener.local_addr()?;
    let api_key = match &args.api_key {
        Some(key) => key.clone(),
        None => random_key()?,
    };
    let shared = Arc::new(RwLock::new(Current::new(LocalApi::new(stage, &api_key))));
    // Held until the first function is up: requests sent as soon as the
    // URL is printed wait for it.
    let mut current = shared.clone().write_owned().await;
    let printer = ui.clone();
    let on_served: OnServed = Arc::new(move |served| {
        for line in &served.output {
            printer.detail(format!("function: {line}"));
        }
        let _ = printer.item(&served);
    });
    let server = serve::serve(listener, shared.clone(), on_served);
    ui.item(&Serving {
        url: format!(
            "http://{address}/{}?date={}",
            stage.api.path, stage.smoke_test.date
        ),
        api_key: (stage.api.auth == Auth::ApiKey).then(|| api_key.clone()),
    })?;

    // Ctrl-C, or a TERM from a process manager: either way no container
    // may outlive `dev`. Streams made once, before any work, keep a signal
    // that comes while no wait is under way (a new `ctrl_c()` per wait
    // would miss it, and `dev` would never stop).
    let mut interrupt =
        signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C (SIGINT)")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let debounce = Duration::from_millis(args.debounce_ms);
    let config_file = source.path()?;
    let mut watcher = Watcher::for_stage(stage, &config_file, debounce)?;
    let mut stage = stage.clone();
    restart(&stage, ui, args.docker, &mut current).await;
    drop(current);

    loop {
        let changed = tokio::select! {
            changed = watcher.next_change() => changed,
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
        };
        ui.info(format!("changed: {}", changed.join(", ")));
        let mut current = shared.write().await;
        let reloaded = match source.load() {
            Ok(reloaded) => reloaded,
            Err(err) => {
                ui.warn(format!("{err}; still serving the previous configuration"));
                continue;
            }
        };
        // A new include path or function package changes what to watch.
        if reloaded.image != stage.image || reloaded.function.package != stage.function.package {
            watcher = Watcher::for_stage(&reloaded, &config_file, debounce)?;
        }
        stage = reloaded;
        current.api = LocalApi::new(&stage, &api_key);
        restart(&stage, ui, args.docker, &mut current).await;
    }
    server.abort();
    if let Some(mut function) = shared.write().await.function.take() {
        function.stop().await;
    }
    Ok(())
}

/// Builds and starts the function; the one it replaces stops once the new
/// one is ready. A failure is shown and leaves the previous one serving.
async fn restart(stage: &Stage, ui: &Ui, docker: bool, current: &mut Current) {
    let started = Instant::now();
    match start(stage, ui, docker).await {
        Ok(function) => {
            let init = function.init_duration();
            if let Some(mut old) = current.replace_function(function) {
                old.stop().await;
            }
            ui.info(format!(
                "ready: rebuilt and started in {:.1} s (init {:.1} ms)",
                started.elapsed().as_secs_f64(),
                init.as_secs_f64() * 1000.0
            ));
        }
        Err(err) => {
            let serving = if current.function.is_some() {
                "the previous build still serves"
            } else {
                "requests get 502 until a change fixes it"
            };
            ui.warn(format!("the rebuild failed ({serving}):\n{err:#}"));
        }
    }
}

async fn start(stage: &Stage, ui: &Ui, docker: bool) -> Result<LocalFunction> {
    let (runner, environment) = stage_image::local_runner(stage, ui, docker).await?;
    let step = ui.step("start function");
    let function = LocalFunction::start(
        &runner,
        &environment,
        stage.function.memory_mb,
        INIT_TIMEOUT,
    )
    .await?;
    step.finish(format!(
        "ready in {:.1} ms",
        function.init_duration().as_secs_f64() * 1000.0
    ));
    Ok(function)
}

/// A fresh API key for this run: 20 random bytes, hex.
fn random_key() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 20];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for an API key (pass --api-key)")?;
    Ok(hex::encode(bytes))
}
