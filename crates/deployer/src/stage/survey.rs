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
use serde::Serialize;

use super::actual::{self, ActualStage};
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

/// One resource of the stage that exists, as output names it (`destroy
/// --json` writes it as `{"kind", "name"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    pub kind: Kind,
    pub name: String,
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
    let mut actual = match purpose {
        Purpose::Deploy | Purpose::Inspect => actual::read(&desired, wanted, clients).await?,
        Purpose::Destroy => {
            // Never an error: a function that cannot be read counts as a
            // user, so the repository is kept (deletion fails closed).
            let prefix = names.app_function_prefix();
            let (actual, users) = tokio::join!(
                actual::read(&desired, None, clients),
                lambda::functions_using_repository(
                    &clients.lambda,
                    &prefix,
                    &names.repository_uri,
                    &desired.function_name,
                ),
            );
            ActualStage {
                repository_users: users,
                ..actual?
            }
        }
    };
    match purpose {
        Purpose::Deploy => {
            plan::check_account_room(stage, &desired, &actual)?;
            plan::check_api_is_ours(&desired, &actual)?;
        }
        Purpose::Inspect | Purpose::Destroy => {
            // A REST API with the stage's name but not its tags may be
            // someone else's (API Gateway names are not unique): it is
            // neither shown as the stage's nor deleted.
            actual.api = actual.api.filter(|api| api.is_ours(&desired.api.tags));
            if actual.function.is_some() {
                actual.versions =
                    lambda::list_versions(&clients.lambda, &desired.function_name).await?;
            }
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
    /// Every resource of the stage that exists, in the order `up` makes
    /// them, named from `DesiredStage` and `Names`. The versions are listed
    /// only by a survey for `status` or `destroy`.
    pub fn found(&self) -> Vec<Found> {
        let desired = &self.desired;
        let actual = &self.actual;
        let function = &desired.function_name;
        let mut found = Vec::new();
        let mut add = |kind: Kind, name: String, exists: bool| {
            if exists {
                found.push(Found { kind, name });
            }
        };
        for kind in Kind::ALL {
            match kind {
                Kind::EcrRepository => add(
                    kind,
                    desired.repository.name.clone(),
                    actual.repository.is_some(),
                ),
                Kind::IamRole => add(kind, desired.role.name.clone(), actual.role.is_some()),
                Kind::LogGroup => add(
                    kind,
                    desired.log_group.name.clone(),
                    actual.log_group.is_some(),
                ),
                Kind::LambdaFunction => add(kind, function.clone(), actual.function.is_some()),
                Kind::LambdaReservedConcurrency => {
                    add(kind, function.clone(), actual.reserved.is_some())
                }
                Kind::LambdaVersion => {
                    for version in &actual.versions {
                        add(kind, format!("{function}:{}", version.version), true);
                    }
                }
                Kind::LambdaAlias => {
                    if let Some(alias) = &actual.alias {
                        let name = format!("{} (version {})", desired.alias_label(), alias.version);
                        add(kind, name, true);
                    }
                }
                Kind::LambdaProvisionedConcurrency => {
                    add(kind, desired.alias_label(), actual.provisioned.is_some())
                }
                Kind::ApiRestApi => {
                    if let Some(api) = &actual.api {
                        for id in std::iter::once(&api.id).chain(&api.duplicates) {
                            add(kind, desired.rest_api_label(id), true);
                        }
                    }
                }
                Kind::ApiStage => add(
                    kind,
                    desired.api_stage_label(),
                    actual.api.as_ref().is_some_and(|a| a.stage.is_some()),
                ),
                Kind::ApiKey => {
                    if let Some(key) = actual.api.as_ref().and_then(|a| a.api_key.as_ref()) {
                        add(kind, key.id.clone(), true);
                    }
                }
                Kind::ApiUsagePlan => {
                    if let Some(plan) = actual.api.as_ref().and_then(|a| a.usage_plan.as_ref()) {
                        add(kind, plan.id.clone(), true);
                    }
                }
                Kind::LambdaPermission => add(
                    kind,
                    desired.permission_label(),
                    actual.alias.is_some() && actual.permission.is_some(),
                ),
                // Parts of a resource above, found and deleted with it.
                Kind::EcrLifecyclePolicy
                | Kind::EcrRepositoryPolicy
                | Kind::EcrImage
                | Kind::ApiResource
                | Kind::ApiMethod
                | Kind::ApiGatewayResponse
                | Kind::ApiDeployment => {}
            }
        }
        found
    }

    /// Whether anything of the stage itself exists: the repository is
    /// shared by the app's stages, so it alone does not count.
    pub fn deployed(&self) -> bool {
        self.found().iter().any(|f| f.kind != Kind::EcrRepository)
    }
}
