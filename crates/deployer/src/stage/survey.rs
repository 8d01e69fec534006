//! The survey: the one start of `plan`, `up`, `status` and `destroy`. It
//! resolves the desired stage, reads the actual one (every resource once,
//! concurrently) and plans between them. What each command needs beyond
//! that is its [`Purpose`]: `plan` and `up` hash the image's inputs and
//! refuse what AWS would refuse half-way; `status` and `destroy` hash
//! nothing (they answer from anywhere deploy.toml is) and list the
//! published versions; `destroy` also asks which other functions use the
//! shared repository.
//!
//! [`Survey::found`] is what of the stage exists, by [`Kind`]: `status`
//! marks its rows from it and `destroy` deletes it (`stage::teardown`).

use anyhow::Result;

use super::actual::{self, ActualStage, Found};
use super::desired::{self, DesiredImage, DesiredStage};
use super::plan::{self, StagePlan};
use crate::aws::{Clients, lambda};
use crate::config::Stage;
use crate::names::Names;
use crate::plan::Kind;

/// What a survey is for: how much it reads and checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `plan` and `up`: with the image's content hash, and the refusals
    /// that must come before anything changes.
    Deploy,
    /// `status`: what is deployed, with the published versions.
    Inspect,
    /// `destroy`: as `Inspect`, without the account's concurrency quota
    /// (destroy removes whatever concurrency exists), and with the other
    /// functions that use the shared repository.
    Destroy,
}

/// The stage as configured, as AWS has it, and the plan between them.
#[derive(Debug, Clone)]
pub struct Survey {
    pub desired: DesiredStage,
    /// The image the stage wants: only a survey for `Deploy` hashes it.
    pub image: Option<DesiredImage>,
    pub actual: ActualStage,
    pub plan: StagePlan,
}

/// Surveys `stage` (named by `names`) for `purpose`. Changes nothing.
pub async fn survey(
    stage: &Stage,
    names: &Names,
    clients: &Clients,
    purpose: Purpose,
) -> Result<Survey> {
    let (mut desired, image) = match purpose {
        Purpose::Deploy => {
            let (desired, image) = desired::resolve(stage, names).await?;
            (desired, Some(image))
        }
        Purpose::Inspect | Purpose::Destroy => (DesiredStage::new(stage, names.clone()), None),
    };
    if purpose == Purpose::Destroy {
        // What the stage asks for, and so the account's quota
        // (GetAccountSettings), is no concern of a destroy.
        desired.concurrency = lambda::DesiredConcurrency::default();
    }
    let wanted = image.as_ref().map(|i| &i.image);
    // The published versions are listed beside the stage's reads, not after
    // them: a function that does not exist has none (NotFound is an empty
    // list), so nothing waits on the read to know whether to ask.
    let versions = || lambda::list_versions(&clients.lambda, &desired.function_name);
    let mut actual = match purpose {
        Purpose::Deploy => actual::read(&desired, wanted, clients).await?,
        Purpose::Inspect => {
            let (actual, versions) =
                tokio::try_join!(actual::read(&desired, wanted, clients), async {
                    versions().await.map_err(anyhow::Error::from)
                })?;
            ActualStage { versions, ..actual }
        }
        Purpose::Destroy => {
            // Never an error: a function that cannot be read counts as a
            // user, so the repository is kept (deletion fails closed).
            let prefix = names.app_function_prefix();
            let (actual, users, versions) = tokio::join!(
                actual::read(&desired, None, clients),
                lambda::functions_using_repository(
                    &clients.lambda,
                    &prefix,
                    &names.repository_uri,
                    &desired.function_name,
                ),
                versions(),
            );
            ActualStage {
                repository_users: users,
                versions: versions?,
                ..actual?
            }
        }
    };
    match purpose {
        Purpose::Deploy => {
            super::parts::check(stage, &desired.parts, &actual.parts)?;
            plan::check_account_room(stage, &desired, &actual)?;
            plan::check_api_is_ours(&desired, &actual)?;
        }
        Purpose::Inspect | Purpose::Destroy => {
            // A REST API with the stage's name but not its tags may be
            // someone else's (API Gateway names are not unique): it is
            // neither shown as the stage's nor deleted.
            actual.api = actual.api.filter(|api| api.is_ours(&desired.api.tags));
        }
    }
    let plan = plan::plan(&desired, wanted, &actual);
    Ok(Survey {
        desired,
        image,
        actual,
        plan,
    })
}

impl Survey {
    /// Every resource of the stage that exists ([`ActualStage::found`]).
    pub fn found(&self) -> Vec<Found> {
        self.actual.found(&self.desired)
    }

    /// Whether anything of the stage itself exists: the repository is
    /// shared by the app's stages, so it alone does not count.
    pub fn deployed(&self) -> bool {
        self.found().iter().any(|f| f.kind != Kind::EcrRepository)
    }
}
