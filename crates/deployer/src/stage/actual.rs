//! The actual stage: every resource of the stage as AWS has it, each read
//! once and all of them concurrently. Not found is `None`, never an error.
//! `plan` and `up` diff it against the desired stage; `up` hands it to the
//! apply, which reads again only to converge after a race.

use anyhow::Result;

use super::desired::{DesiredStage, PERMISSION_ID};
use super::image::{find_image, own_digest};
use crate::aws::{Clients, apigw, ecr, iam, lambda, logs};
use crate::image::ImageRef;

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
    let (
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
    ) = tokio::try_join!(
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
    )?;
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
    })
}
