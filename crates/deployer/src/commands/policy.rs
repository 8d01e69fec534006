//! `deployer policy [--stage S | --all-stages] [--account ID]`: the IAM
//! policy document an identity (a CI role) needs to run every command —
//! `up`, `plan`, `build`'s push, `status`, `invoke`, `logs`, `rollback`,
//! `destroy` — on the stage, printed as JSON to paste into IAM.
//!
//! Nothing here lists actions: they are declared beside the calls that
//! need them (`aws::permissions`), and this only resolves the stages'
//! names into ARNs. Reads nothing from AWS but, without `--account`, the
//! caller's account (GetCallerIdentity, which needs no permission).

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use crate::aws::permissions::{self, PolicyDocument};
use crate::aws::{self, Clients, sts};
use crate::cli::PolicyArgs;
use crate::config::Stage;
use crate::exit::{ExitStatus, Failure};
use crate::names::Names;
use crate::ui::Ui;

/// The printed policy: the document itself, as IAM takes it.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct PolicyReport {
    pub document: PolicyDocument,
}

impl fmt::Display for PolicyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string_pretty(&self.document).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

/// No stage left to write a policy for.
#[derive(Debug, thiserror::Error)]
#[error(
    "no stage of deploy.toml deploys to AWS: every one has an endpoint-url (an emulator); \
     name one with --stage"
)]
pub struct NoAwsStage;

/// Prints the policy for `stages` (the one of `--stage`, or every stage
/// with `--all-stages`; those with an endpoint-url are then left out).
pub async fn run(stages: &[Stage], ui: &Ui, args: &PolicyArgs) -> Result<()> {
    let stages: Vec<&Stage> = if args.all_stages {
        stages.iter().filter(|s| s.endpoint_url.is_none()).collect()
    } else {
        stages.iter().collect()
    };
    let Some(first) = stages.first() else {
        return Err(Failure::tag(ExitStatus::Usage, NoAwsStage));
    };
    let account = match &args.account {
        Some(account) => account.clone(),
        None => {
            let config = aws::sdk_config(&first.connection()).await;
            sts::caller_account(&Clients::new(&config).sts).await?
        }
    };
    // A stage a pattern made (`pr-123`) gets the pattern's policy: the CI
    // role that deploys previews holds one policy for all of them.
    let targets: Vec<Names> = stages
        .iter()
        .map(|stage| match &stage.pattern {
            Some(pattern) => Names::new(
                &Stage {
                    name: pattern.clone(),
                    ..(*stage).clone()
                },
                &account,
            ),
            None => Names::new(stage, &account),
        })
        .collect();
    ui.info(format!(
        "the policy for stage{} {} of {} in account {account}",
        if targets.len() == 1 { "" } else { "s" },
        targets
            .iter()
            .map(|t| format!("{} ({})", t.stage, t.region))
            .collect::<Vec<_>>()
            .join(", "),
        first.app,
    ));
    let document = permissions::policy(&targets, &aws::declared());
    ui.result(&PolicyReport { document })
}
