//! `deployer metrics`: how the stage's function and API have been doing
//! over `--since` (one hour by default) — the alias's invocations, errors,
//! throttles, duration percentiles, concurrency and cold starts, the API
//! stage's requests, 4xx, 5xx and latencies, and the peak memory against
//! the configured one — as sparklines and figures, or one JSON object.
//! Reads only (`stage::metrics`).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::aws::{self, Clients};
use crate::cli::MetricsArgs;
use crate::config::Stage;
use crate::stage::metrics;
use crate::ui::Ui;

pub async fn run(stage: &Stage, ui: &Ui, args: &MetricsArgs) -> Result<()> {
    let clients = Clients::new(&aws::sdk_config(&stage.connection()).await);
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default();
    let step = ui.step("read metrics");
    let report = metrics::read(stage, &clients, args.since, now_s).await?;
    step.finish(if report.deployed {
        format!("{} periods of {} s", report.periods, report.period_seconds)
    } else {
        "nothing deployed".into()
    });
    ui.result(&report)
}
