//! The stage's desired state, its actual state and the plan between them.
//! `plan` prints the [`Survey`]; `up` carries it out, skipping every
//! resource the plan leaves unchanged, so that the plan is exactly what
//! `up` then does.

use anyhow::{Context, Result};

use crate::aws::{self, Clients, apigw, ecr, iam, lambda};
use crate::config::Stage;
use crate::image::{self, ContentHash, ImageRef};
use crate::plan::{Action, Change, Plan};

/// The statement id of the permission that lets the stage's API call the alias.
pub const PERMISSION_ID: &str = "deployer-apigateway";

/// Every name and ARN of the stage in one account, all derived from the
/// configuration; nothing here needs the resources to exist.
#[derive(Debug, Clone)]
pub struct Names {
    pub account: String,
    pub repository_uri: String,
    pub role_arn: String,
    pub function_arn: String,
    pub alias_arn: String,
}

impl Names {
    pub fn new(stage: &Stage, account: &str) -> Names {
        let partition = iam::partition(&stage.region);
        let suffix = if partition == "aws-cn" { ".cn" } else { "" };
        let function_arn = format!(
            "arn:{partition}:lambda:{}:{account}:function:{}",
            stage.region,
            stage.function_name()
        );
        Names {
            account: account.to_string(),
            repository_uri: format!(
                "{account}.dkr.ecr.{}.amazonaws.com{suffix}/{}",
                stage.region,
                stage.repository_name()
            ),
            role_arn: format!("arn:{partition}:iam::{account}:role/{}", stage.role_name()),
            alias_arn: format!("{function_arn}:{}", stage.alias_name()),
            function_arn,
        }
    }
}

/// What a survey found: the names, the image, the actual state the plan
/// was made from, and the plan.
#[derive(Debug)]
pub struct Survey {
    pub names: Names,
    pub hash: ContentHash,
    /// The image by tag, with its digest when the registry already holds it.
    pub image: ImageRef,
    pub repository: Action,
    pub lifecycle: Action,
    pub role: Action,
    pub function: Action,
    /// A new version will be published (the code or configuration moved,
    /// or no published version matches `$LATEST`).
    pub publish: bool,
    /// The published version that matches `$LATEST`, when no new one is needed.
    pub current_version: Option<String>,
    pub alias: Action,
    pub alias_version: Option<String>,
    pub api: Vec<Change>,
    pub api_id: Option<String>,
    pub permission: Action,
    pub plan: Plan,
}

impl Survey {
    pub fn image_exists(&self) -> bool {
        self.image.digest.is_some()
    }

    pub fn api_changes(&self) -> bool {
        self.api.iter().any(|c| c.action.is_change())
    }
}

/// The desired function for an image (by digest) — with the function's CORS
/// origin taken from the API's configuration, so both answer alike.
pub fn desired_function(stage: &Stage, image_uri: &str, role_arn: &str) -> lambda::DesiredFunction {
    let mut desired = lambda::DesiredFunction::for_stage(stage, image_uri, role_arn);
    if let Some(origin) = stage.api.cors.allow_origins.first() {
        desired
            .environment
            .entry("CORS_ALLOW_ORIGIN".into())
            .or_insert_with(|| origin.clone());
    }
    desired
}

/// Reads everything the stage has in AWS (concurrently) and compares it
/// with the configuration. Changes nothing.
pub async fn survey(stage: &Stage, clients: &Clients) -> Result<Survey> {
    let hash_stage = stage.clone();
    let (account, hash) = tokio::try_join!(
        async { Ok::<_, anyhow::Error>(apigw::caller_account(&clients.sts).await?) },
        async {
            tokio::task::spawn_blocking(move || image::content_hash(&hash_stage))
                .await
                .context("hashing the image inputs stopped")?
                .map_err(anyhow::Error::from)
        },
    )?;
    let names = Names::new(stage, &account);
    let mut image = ImageRef::new(&names.repository_uri, &hash.tag());

    let desired_repo = ecr::DesiredRepository::for_stage(stage);
    let desired_policy = ecr::lifecycle_policy_text(&stage.ecr);
    let desired_role = iam::DesiredRole::for_stage(stage);
    let desired_api = apigw::DesiredApi::from_stage(stage, &names.alias_arn);
    let function_name = stage.function_name();
    let alias_name = stage.alias_name();

    let (repo, policy, digest, role, function, alias, api, matching) = tokio::try_join!(
        ecr::read_repository(&clients.ecr, &desired_repo.name),
        ecr::read_lifecycle_policy(&clients.ecr, &desired_repo.name),
        find_image(clients, &desired_repo.name, &image),
        iam::read_role(&clients.iam, &desired_role.name),
        lambda::read_function(&clients.lambda, &function_name, None),
        lambda::read_alias(&clients.lambda, &function_name, &alias_name),
        apigw::read_api(&clients.apigw, &desired_api),
        lambda::version_matching_latest(&clients.lambda, &function_name),
    )?;
    image.digest = digest;

    let repository = ecr::diff_repository(&desired_repo, repo.as_ref());
    let lifecycle = ecr::diff_lifecycle_policy(&desired_policy, policy.as_deref());
    let role_action = iam::diff_role(&desired_role, role.as_ref());
    // Before the image exists, its digest is unknown: any placeholder that
    // cannot equal a real digest makes the function's image differ.
    let image_uri = image
        .by_digest()
        .unwrap_or_else(|| format!("{}@<new image {}>", names.repository_uri, image.tag));
    let desired_fn = desired_function(stage, &image_uri, &names.role_arn);
    let function_action = lambda::diff_function(&desired_fn, function.as_ref());
    let publish = function_action.is_change() || matching.is_none();
    let current_version = if publish { None } else { matching };
    let alias_action = match (&current_version, &alias) {
        (Some(version), actual) => lambda::diff_alias(version, actual.as_ref()),
        (None, Some(_)) => Action::Update {
            fields: vec!["version".into()],
        },
        (None, None) => Action::Create,
    };
    let api_changes = apigw::diff_api(&desired_api, api.as_ref());
    let api_id = api.as_ref().map(|a| a.id.clone());
    let permission = match (&api_id, &alias) {
        (Some(id), Some(_)) => {
            let source = apigw::source_arn(id, &stage.region, &account, &stage.api.path);
            let actual = lambda::read_permission(
                &clients.lambda,
                &function_name,
                &alias_name,
                PERMISSION_ID,
            )
            .await?;
            lambda::diff_permission(&source, actual.as_ref())
        }
        _ => Action::Create,
    };

    let mut changes = vec![
        Change {
            kind: "ecr repository".into(),
            name: desired_repo.name.clone(),
            action: repository.clone(),
        },
        Change {
            kind: "ecr lifecycle policy".into(),
            name: desired_repo.name.clone(),
            action: lifecycle.clone(),
        },
        Change {
            kind: "ecr image".into(),
            name: image.by_tag(),
            action: if image.digest.is_some() {
                Action::Unchanged
            } else {
                Action::Create
            },
        },
        Change {
            kind: "iam role".into(),
            name: desired_role.name.clone(),
            action: role_action.clone(),
        },
        Change {
            kind: "lambda function".into(),
            name: function_name.clone(),
            action: function_action.clone(),
        },
        Change {
            kind: "lambda version".into(),
            name: function_name.clone(),
            action: if publish {
                Action::Create
            } else {
                Action::Unchanged
            },
        },
        Change {
            kind: "lambda alias".into(),
            name: format!("{function_name}:{alias_name}"),
            action: alias_action.clone(),
        },
    ];
    changes.extend(api_changes.iter().cloned());
    changes.push(Change {
        kind: "lambda permission".into(),
        name: format!("{function_name}:{alias_name}/{PERMISSION_ID}"),
        action: permission.clone(),
    });

    Ok(Survey {
        names,
        hash,
        image,
        repository,
        lifecycle,
        role: role_action,
        function: function_action,
        publish,
        current_version,
        alias: alias_action,
        alias_version: alias.map(|a| a.version),
        api: api_changes,
        api_id,
        permission,
        plan: Plan { changes },
    })
}

/// The digest of the image's tag: from ECR's API, or else from the
/// registry itself through the Docker engine (a registry that ECR's API
/// does not list, like the local one, still answers). `None` when neither
/// has it (no repository yet included), or the engine cannot be reached.
async fn find_image(
    clients: &Clients,
    repository: &str,
    image: &ImageRef,
) -> Result<Option<String>, aws::AwsError> {
    if let Some(digest) = ecr::find_image(&clients.ecr, repository, &image.tag).await? {
        return Ok(Some(digest));
    }
    let Ok(docker) = image::connect_docker().await else {
        return Ok(None);
    };
    let credentials = registry_credentials(clients).await?;
    Ok(image::registry_digest(&docker, image, &credentials).await)
}

/// A fresh registry login from ECR's GetAuthorizationToken (tokens expire:
/// one is asked for right before use and never kept).
pub async fn registry_credentials(
    clients: &Clients,
) -> Result<image::RegistryCredentials, aws::AwsError> {
    let auth = ecr::registry_auth(&clients.ecr).await?;
    Ok(image::RegistryCredentials {
        username: auth.username,
        password: auth.password,
        server_address: auth.server,
    })
}
