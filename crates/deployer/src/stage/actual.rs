//! The actual stage: every resource of the stage as AWS has it, each read
//! once and all of them concurrently. Not found is `None`, never an error.
//! `plan` and `up` diff it against the desired stage; `up` hands it to the
//! apply, which reads again only to converge after a race.

use anyhow::Result;

use super::desired::{DesiredStage, PERMISSION_ID};
use super::image::find_image;
use crate::aws::{Clients, apigw, ecr, iam, lambda};

/// What AWS holds for the stage.
#[derive(Debug, Clone, Default)]
pub struct ActualStage {
    pub repository: Option<ecr::ActualRepository>,
    pub lifecycle_policy: Option<String>,
    pub repository_policy: Option<String>,
    /// The digest of the desired image's tag, when the registry holds it.
    pub image_digest: Option<String>,
    pub role: Option<iam::ActualRole>,
    /// `$LATEST`.
    pub function: Option<lambda::ActualFunction>,
    /// The newest published version.
    pub newest_version: Option<lambda::ActualFunction>,
    pub alias: Option<lambda::AliasInfo>,
    pub api: Option<apigw::ActualApi>,
    pub permission: Option<lambda::PermissionStatement>,
}

/// Reads every resource of `desired` once, concurrently.
pub async fn read(desired: &DesiredStage, clients: &Clients) -> Result<ActualStage> {
    let repository = desired.repository.name.as_str();
    let function = desired.function_name.as_str();
    let alias = desired.alias_name.as_str();
    let (
        repository_found,
        lifecycle_policy,
        repository_policy,
        image_digest,
        role,
        latest,
        newest_version,
        alias_found,
        api,
        permission,
    ) = tokio::try_join!(
        ecr::read_repository(&clients.ecr, repository),
        ecr::read_lifecycle_policy(&clients.ecr, repository),
        ecr::read_repository_policy(&clients.ecr, repository),
        find_image(clients, repository, &desired.image),
        iam::read_role(&clients.iam, &desired.role.name),
        lambda::read_function(&clients.lambda, function, None),
        lambda::read_newest_version(&clients.lambda, function),
        lambda::read_alias(&clients.lambda, function, alias),
        apigw::read_api(&clients.apigw, &desired.api),
        lambda::read_permission(&clients.lambda, function, alias, PERMISSION_ID),
    )?;
    Ok(ActualStage {
        repository: repository_found,
        lifecycle_policy,
        repository_policy,
        image_digest,
        role,
        function: latest,
        newest_version,
        alias: alias_found,
        api,
        permission,
    })
}
