//! The actual stage: every resource of the stage as AWS has it, each read
//! once and all of them concurrently. Not found is `None`, never an error.
//! `plan` and `up` diff it against the desired stage; `up` hands it to the
//! apply, which reads again only to converge after a race. [`ActualStage::found`]
//! is what of the stage exists, by kind, for `status` and `destroy`.

use anyhow::Result;

use super::desired::{DesiredStage, PERMISSION_ID};
use super::image::{find_image, own_digest};
use crate::aws::{Clients, apigw, ecr, iam, lambda, logs};
use crate::image::ImageRef;
use crate::plan::Kind;
use serde::Serialize;

/// What AWS holds for the stage.
#[derive(Debug, Clone, Default)]
pub struct ActualStage {
    pub repository: Option<ecr::ActualRepository>,
    pub lifecycle_policy: Option<String>,
    pub repository_policy: Option<String>,
    /// The digest of the desired image's tag, when the registry holds it
    /// and the stage can tell it is its own build (`image::own_digest`).
    pub image_digest: Option<String>,
    pub role: Option<iam::ActualRole>,
    pub log_group: Option<logs::ActualLogGroup>,
    /// `$LATEST`.
    pub function: Option<lambda::ActualFunction>,
    /// The newest published version.
    pub newest_version: Option<lambda::ActualFunction>,
    pub alias: Option<lambda::AliasInfo>,
    /// The function's reserved concurrency.
    pub reserved: Option<i32>,
    /// The alias's provisioned concurrency.
    pub provisioned: Option<lambda::ProvisionedConcurrency>,
    /// The account's concurrency quota: read only when the stage asks for
    /// reserved or provisioned concurrency.
    pub account: Option<lambda::AccountConcurrency>,
    pub api: Option<apigw::ActualApi>,
    pub permission: Option<lambda::PermissionStatement>,
    /// Every published version, oldest first: listed only by a survey for
    /// `status` or `destroy` (`up` needs only the newest).
    pub versions: Vec<lambda::VersionInfo>,
    /// Other functions of the app whose image is in the shared repository:
    /// asked only by a survey for `destroy`.
    pub repository_users: Vec<String>,
    /// The optional parts that exist.
    pub parts: super::parts::ActualParts,
}

/// One resource of the stage that exists, as output names it (`destroy
/// --json` writes it as `{"kind", "name"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    pub kind: Kind,
    pub name: String,
}

impl ActualStage {
    /// Every resource of the stage that exists, in the order `up` makes
    /// them, named from `DesiredStage` and `Names` (as the plan names
    /// them). The versions are listed only by a survey for `status` or
    /// `destroy`.
    pub fn found(&self, desired: &DesiredStage) -> Vec<Found> {
        let actual = self;
        let function = &desired.function_name;
        let mut found = Vec::new();
        let mut add = |kind: Kind, name: String, exists: bool| {
            if exists {
                found.push(Found { kind, name });
            }
        };
        for &kind in Kind::ALL {
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
                        add(kind, desired.version_label(&version.version), true);
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
                // The optional parts' kinds: each part's resources at its
                // first kind.
                _ => {
                    for part in super::parts::found_at(kind, &desired.parts, &actual.parts) {
                        add(part.kind, part.name, true);
                    }
                }
            }
        }
        found
    }
}

/// Reads every resource of `desired` once, concurrently, and the digest of
/// `image` when one is given.
pub async fn read(
    desired: &DesiredStage,
    image: Option<&ImageRef>,
    clients: &Clients,
) -> Result<ActualStage> {
    let repository = desired.repository.name.as_str();
    let function = desired.function_name.as_str();
    let alias = desired.alias_name.as_str();
    // The core's reads and the optional parts' run at once: each is a round
    // trip to AWS, and the parts' (alarms, domain names) would otherwise
    // wait for the slowest of the core's. The core's join is boxed: fourteen
    // futures joined inline and joined again with the parts' made a future
    // too big for a debug build's stack.
    let core = Box::pin(async {
        tokio::try_join!(
            ecr::read_repository(&clients.ecr, repository),
            ecr::read_lifecycle_policy(&clients.ecr, repository),
            ecr::read_repository_policy(&clients.ecr, repository),
            async {
                match image {
                    Some(image) => find_image(clients, repository, image).await,
                    None => Ok(None),
                }
            },
            iam::read_role(&clients.iam, &desired.role.name),
            logs::read_log_group(&clients.logs, &desired.log_group),
            lambda::read_function(&clients.lambda, function, None),
            lambda::read_newest_version(&clients.lambda, function),
            lambda::read_alias(&clients.lambda, function, alias),
            lambda::read_reserved(&clients.lambda, function),
            lambda::read_provisioned(&clients.lambda, function, alias),
            async {
                let wanted = desired.concurrency;
                if wanted.reserved.is_some() || wanted.provisioned.is_some() {
                    lambda::read_account_concurrency(&clients.lambda)
                        .await
                        .map(Some)
                } else {
                    Ok(None)
                }
            },
            apigw::read_api(&clients.apigw, &desired.api),
            lambda::read_permission(&clients.lambda, function, alias, PERMISSION_ID),
        )
        .map_err(anyhow::Error::from)
    });
    let stage_tags = desired.stage.tags();
    let parts = Box::pin(super::parts::read(&desired.parts, &stage_tags, clients));
    let (
        (
            repository_found,
            lifecycle_policy,
            repository_policy,
            image_digest,
            role,
            log_group,
            latest,
            newest_version,
            alias_found,
            reserved,
            provisioned,
            account,
            api,
            permission,
        ),
        parts,
    ) = tokio::try_join!(core, parts)?;
    let running: Vec<&str> = [&latest, &newest_version]
        .into_iter()
        .flatten()
        .map(|f| f.image_uri.as_str())
        .collect();
    let image_digest = match (image, image_digest) {
        (Some(image), Some(digest)) => own_digest(image, digest, &running).await,
        _ => None,
    };
    Ok(ActualStage {
        repository: repository_found,
        lifecycle_policy,
        repository_policy,
        image_digest,
        role,
        log_group,
        function: latest,
        newest_version,
        alias: alias_found,
        reserved,
        provisioned,
        account,
        api,
        permission,
        versions: Vec::new(),
        repository_users: Vec::new(),
        parts,
    })
}
