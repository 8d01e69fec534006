//! `deployer stages`: every deployed stage of the app, from the tags in
//! AWS (`stage::deployed`), so a forgotten preview is found even when
//! deploy.toml no longer names it: its URL, the version it serves, when it
//! was last deployed, and when its time to live runs out. Reads only, in
//! the account and region `--stage` resolves to (default `dev`).

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use crate::aws::{self, Clients};
use crate::cli::StagesArgs;
use crate::config::{Config, Stage, StageSource};
use crate::stage::deployed::{self, DeployedStage};
use crate::stage::desired;
use crate::ui::Ui;

/// The app's deployed stages.
#[derive(Debug, Serialize)]
pub struct StagesReport {
    pub app: String,
    pub region: String,
    pub stages: Vec<DeployedStage>,
    /// Functions of the app that could not be read (and so are not listed).
    pub unreadable: Vec<String>,
}

impl fmt::Display for StagesReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stages.is_empty() {
            write!(
                f,
                "No stage of {} is deployed in {}.",
                self.app, self.region
            )?;
        } else {
            let rows: Vec<[String; 5]> = self
                .stages
                .iter()
                .map(|s| {
                    let or = |v: &Option<String>, none: &str| {
                        v.clone().unwrap_or_else(|| none.to_string())
                    };
                    let expires = match (&s.expires, s.expired, s.protected) {
                        (_, _, true) => "never (protected)".to_string(),
                        (Some(at), true, _) => format!("{at} (expired)"),
                        (Some(at), false, _) => at.clone(),
                        (None, _, _) => "never".to_string(),
                    };
                    [
                        s.stage.clone(),
                        or(&s.version, "no alias"),
                        or(&s.last_deployed, "-"),
                        expires,
                        or(&s.url, "no API"),
                    ]
                })
                .collect();
            let header = ["stage", "version", "last deployed", "expires", "url"].map(String::from);
            let widths: Vec<usize> = (0..5)
                .map(|i| {
                    std::iter::once(&header)
                        .chain(&rows)
                        .map(|r| r[i].len())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |r: &[String; 5]| {
                format!(
                    "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2],
                    w3 = widths[3]
                )
            };
            write!(f, "{}", line(&header).trim_end())?;
            for row in &rows {
                write!(f, "\n{}", line(row).trim_end())?;
            }
        }
        for why in &self.unreadable {
            write!(f, "\nnot readable, not listed: {why}")?;
        }
        Ok(())
    }
}

pub async fn run(source: &StageSource, stage: &Stage, ui: &Ui, _args: &StagesArgs) -> Result<()> {
    let config = Config::read(&source.path()?)?;
    let clients = Clients::new(&aws::sdk_config(&stage.connection()).await);
    let names = desired::names(stage, &clients).await?;
    let step = ui.step("stages");
    let found = deployed::list(
        &names,
        &clients,
        &|name| deployed::stage_of(&config, &source.overrides, stage, name),
        chrono::Utc::now(),
    )
    .await?;
    step.finish(format!("{} deployed", found.stages.len()));
    ui.result(&StagesReport {
        app: stage.app.clone(),
        region: stage.region.clone(),
        stages: found.stages,
        unreadable: found.unreadable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployed(stage: &str) -> DeployedStage {
        DeployedStage {
            stage: stage.into(),
            function: format!("shop-{stage}"),
            url: Some(format!(
                "https://a1.execute-api.us-east-1.amazonaws.com/{stage}/predict"
            )),
            version: Some("3".into()),
            last_deployed: Some("2025-10-20T08:00:00+00:00".into()),
            ttl: Some("1d".into()),
            expires: Some("2025-10-21T08:00:00+00:00".into()),
            expired: false,
            protected: false,
        }
    }

    #[test]
    fn each_stage_is_a_row_with_its_expiry() {
        let report = StagesReport {
            app: "shop".into(),
            region: "us-east-1".into(),
            stages: vec![
                DeployedStage {
                    expired: true,
                    ..deployed("pr-1")
                },
                DeployedStage {
                    ttl: None,
                    expires: None,
                    protected: true,
                    ..deployed("prod")
                },
                DeployedStage {
                    version: None,
                    url: None,
                    ..deployed("pr-22")
                },
            ],
            unreadable: vec!["shop-qa: AccessDenied".into()],
        };
        let text = report.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("stage  version   last deployed"),
            "{text}"
        );
        assert!(
            lines[1].contains("2025-10-21T08:00:00+00:00 (expired)"),
            "{text}"
        );
        assert!(lines[2].contains("never (protected)"), "{text}");
        assert!(
            lines[3].contains("no alias") && lines[3].ends_with("no API"),
            "{text}"
        );
        assert_eq!(lines[4], "not readable, not listed: shop-qa: AccessDenied");
        let none = StagesReport {
            stages: Vec::new(),
            unreadable: Vec::new(),
            ..report
        };
        assert_eq!(
            none.to_string(),
            "No stage of shop is deployed in us-east-1."
        );
    }
}
