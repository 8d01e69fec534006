//! The /predict function's process: loads models and data once at init
//! (a failure exits non-zero with a message naming the file, which Lambda
//! shows as the init error), then serves proxy events from the Lambda
//! Runtime API, writing one JSON log line per request to stdout.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use lambda_runtime::{LambdaEvent, service_fn};
use prediction::{Predictor, Settings};
use prediction_lambda::config::check_runtime_environment;
use prediction_lambda::{FunctionConfig, Invocation, ProxyResponse, handle};
use serde_json::{Value, json};

// One request at a time per Lambda process: a single thread is enough.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let init_started = Instant::now();
    let (predictor, config) = match init() {
        Ok(loaded) => loaded,
        Err(message) => {
            eprintln!("prediction-lambda: init failed: {message}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "{}",
        json!({
            "message": "init",
            "model_version": predictor.model_version(),
            "init_us": u64::try_from(init_started.elapsed().as_micros()).unwrap_or(u64::MAX),
        })
    );

    // Checked after loading, so a run outside Lambda still shows the models load.
    if let Err(err) = check_runtime_environment(|name| std::env::var(name).ok()) {
        eprintln!("prediction-lambda: {err}");
        return ExitCode::FAILURE;
    }

    let cold_start = AtomicBool::new(true);
    let serve = service_fn(|event: LambdaEvent<Value>| {
        let invocation = Invocation {
            request_id: event.context.request_id.clone(),
            cold_start: cold_start.swap(false, Ordering::Relaxed),
            today: chrono::Utc::now().date_naive(),
        };
        let (response, log) = handle(&event.payload, &predictor, &config, &invocation);
        if let Ok(line) = serde_json::to_string(&log) {
            println!("{line}");
        }
        std::future::ready(Ok::<ProxyResponse, lambda_runtime::Error>(response))
    });
    match lambda_runtime::run(serve).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("prediction-lambda: the Lambda runtime stopped: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init() -> Result<(Predictor, FunctionConfig), String> {
    let settings = Settings::from_env().map_err(|err| err.to_string())?;
    let config = FunctionConfig::from_env().map_err(|err| err.to_string())?;
    let predictor = Predictor::load(&settings).map_err(|err| err.to_string())?;
    Ok((predictor, config))
}
