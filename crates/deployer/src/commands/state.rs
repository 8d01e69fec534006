//! The stage's desired state, its actual state and the plan between them.
//! `plan` prints the [`Survey`]; `up` carries it out, skipping every
//! resource the plan leaves unchanged, so that the plan is exactly what
//! `up` then does.

use anyhow::{Context, Result};

use serde::Serialize;

use crate::aws::{self, Clients, apigw, ecr, iam, lambda};
use crate::config::Stage;
use crate::image::{self, ContentHash, ImageRef, Recipe};
use crate::names::Names;
use crate::plan::{Action, Change, Plan};

/// The statement id of the permission that lets the stage's API call the alias.
pub const PERMISSION_ID: &str = "deployer-apigateway";

/// What a survey found: the names, the image, the actual state the plan
/// was made from, and the plan.
#[derive(Debug)]
pub struct Survey {
    pub names: Names,
    pub hash: ContentHash,
    /// How the function is compiled; the build takes it from here.
    pub recipe: Recipe,
    /// The image by tag, with its digest when the registry already holds it.
    pub image: ImageRef,
    pub repository: Action,
    pub lifecycle: Action,
    /// The repository policy statement that lets Lambda pull the images.
    pub repository_policy: Action,
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
    /// The API key that `api_key` auth asks callers for, when it exists.
    pub api_key_id: Option<String>,
    pub permission: Action,
    pub plan: Plan,
    /// What the configuration does that AWS will not do as written.
    pub warnings: Vec<String>,
}

impl Survey {
    pub fn image_exists(&self) -> bool {
        self.image.digest.is_some()
    }

    pub fn api_changes(&self) -> bool {
        self.api.iter().any(|c| c.action.is_change())
    }
}

/// The desired function for an image (by digest) — with the function's
/// CORS policy taken from the API's configuration, so that the function's
/// answers allow what the preflight and the gateway's answers allow:
/// `CORS_ALLOW_ORIGIN` (`*` or the allowed origins, comma-separated; the
/// function echoes the caller's when it is one of them) and
/// `CORS_ALLOW_HEADERS`. A value set in `[function.environment]` wins.
pub fn desired_function(stage: &Stage, image_uri: &str, role_arn: &str) -> lambda::DesiredFunction {
    let mut desired = lambda::DesiredFunction::for_stage(stage, image_uri, role_arn);
    let cors = &stage.api.cors;
    let origins = match cors.static_origin() {
        Some(origin) => origin.to_string(),
        None => cors.allow_origins.join(","),
    };
    desired
        .environment
        .entry("CORS_ALLOW_ORIGIN".into())
        .or_insert(origins);
    desired
        .environment
        .entry("CORS_ALLOW_HEADERS".into())
        .or_insert_with(|| cors.allow_headers.join(", "));
    desired
}

/// API Gateway's default integration timeout for a REST API: past it the
/// caller gets a 504 while the function runs on ("Amazon API Gateway
/// quotas": 50 ms to 29 s; more only by a quota increase for Regional and
/// private REST APIs, which may lower the account's throttle quota).
pub const API_TIMEOUT_S: i32 = 29;

/// What the stage's configuration asks for that AWS will not do as
/// written; shown by `plan` and `up`, never an error.
pub fn warnings(stage: &Stage) -> Vec<String> {
    let mut warnings = Vec::new();
    let timeout = stage.function.timeout_s;
    if timeout > API_TIMEOUT_S {
        warnings.push(format!(
            "the function's timeout ({timeout} s) is longer than API Gateway's {API_TIMEOUT_S} s \
             integration timeout: a request through the API that takes longer gets a 504 while \
             the function runs on (direct invocations get the full {timeout} s); lower \
             [function] timeout, or raise the integration timeout through a Service Quotas \
             request (Regional REST APIs only)"
        ));
    }
    warnings
}

/// The stage's API key, by id, and how to read its value: the deployer
/// never reads or prints the value itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyReport {
    pub id: String,
    /// The AWS CLI command that prints the key's value.
    pub value_command: String,
}

impl ApiKeyReport {
    pub fn new(stage: &Stage, id: &str) -> ApiKeyReport {
        let mut command = format!(
            "aws apigateway get-api-key --api-key {id} --include-value --query value --output text --region {}",
            stage.region
        );
        if let Some(profile) = &stage.profile {
            command += &format!(" --profile {profile}");
        }
        ApiKeyReport {
            id: id.to_string(),
            value_command: command,
        }
    }
}

impl std::fmt::Display for ApiKeyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (its value: {})", self.id, self.value_command)
    }
}

/// Reads everything the stage has in AWS (concurrently) and compares it
/// with the configuration. Changes nothing.
pub async fn survey(stage: &Stage, clients: &Clients) -> Result<Survey> {
    let hash_stage = stage.clone();
    let (account, (recipe, hash)) = tokio::try_join!(
        async { Ok::<_, anyhow::Error>(apigw::caller_account(&clients.sts).await?) },
        async {
            tokio::task::spawn_blocking(move || {
                let recipe = Recipe::for_stage(&hash_stage)?;
                let hash = image::content_hash(&hash_stage, &recipe)?;
                Ok::<_, image::BuildError>((recipe, hash))
            })
            .await
            .context("hashing the image inputs stopped")?
            .map_err(anyhow::Error::from)
        },
    )?;
    let names = Names::new(stage, &account);
    let mut image = ImageRef::new(&names.repository_uri, &hash.tag());

    let desired_repo = ecr::DesiredRepository::for_stage(stage);
    let desired_policy = ecr::lifecycle_policy_text(&stage.ecr);
    let pull_statement = ecr::lambda_pull_statement(&names.app_functions_arn());
    let desired_role = iam::DesiredRole::for_stage(stage);
    let desired_api = apigw::DesiredApi::from_stage(stage, &names);
    let function_name = stage.function_name();
    let alias_name = stage.alias_name();

    let (repo, policy, repo_policy, digest, role, function, alias, api, matching) = tokio::try_join!(
        ecr::read_repository(&clients.ecr, &desired_repo.name),
        ecr::read_lifecycle_policy(&clients.ecr, &desired_repo.name),
        ecr::read_repository_policy(&clients.ecr, &desired_repo.name),
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
    let repository_policy = ecr::diff_repository_policy(&pull_statement, repo_policy.as_deref());
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
    let api_key_id = api
        .as_ref()
        .and_then(|a| a.api_key.as_ref())
        .map(|k| k.id.clone());
    let permission = match (&api_id, &alias) {
        (Some(id), Some(_)) => {
            let source = names.api_source_arn(id);
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
            kind: "ecr repository policy".into(),
            name: desired_repo.name.clone(),
            action: repository_policy.clone(),
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
        recipe,
        image,
        repository,
        lifecycle,
        repository_policy,
        role: role_action,
        function: function_action,
        publish,
        current_version,
        alias: alias_action,
        alias_version: alias.map(|a| a.version),
        api: api_changes,
        api_id,
        api_key_id,
        permission,
        plan: Plan { changes },
        warnings: warnings(stage),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_past_the_gateway_limit_is_a_warning() {
        let mut stage = Stage::defaults("shop", "dev", "us-east-1");
        stage.function.timeout_s = 300;
        let warnings = warnings(&stage);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("300 s") && warnings[0].contains("29 s"),
            "{warnings:?}"
        );
        stage.function.timeout_s = API_TIMEOUT_S;
        assert!(super::warnings(&stage).is_empty());
    }

    #[test]
    fn the_api_key_report_says_how_to_read_the_value_never_the_value() {
        let mut stage = Stage::defaults("shop", "prod", "eu-west-1");
        stage.profile = Some("prod-admin".into());
        let report = ApiKeyReport::new(&stage, "k3y1d");
        assert_eq!(
            report.value_command,
            "aws apigateway get-api-key --api-key k3y1d --include-value --query value --output text --region eu-west-1 --profile prod-admin"
        );
        assert!(report.to_string().starts_with("k3y1d "), "{report}");
    }

    #[test]
    fn the_function_gets_the_api_cors_policy() {
        let mut stage = Stage::defaults("shop", "dev", "us-east-1");
        stage.api.cors.allow_origins = vec!["https://a.example".into(), "https://b.example".into()];
        stage.api.cors.allow_headers = vec!["Content-Type".into(), "Authorization".into()];
        let desired = desired_function(&stage, "repo@sha256:00", "arn:role");
        assert_eq!(
            desired.environment["CORS_ALLOW_ORIGIN"],
            "https://a.example,https://b.example"
        );
        assert_eq!(
            desired.environment["CORS_ALLOW_HEADERS"],
            "Content-Type, Authorization"
        );
        // `*` anywhere in the list allows any origin.
        stage.api.cors.allow_origins.push("*".into());
        let desired = desired_function(&stage, "repo@sha256:00", "arn:role");
        assert_eq!(desired.environment["CORS_ALLOW_ORIGIN"], "*");
        // A value the configuration sets itself wins.
        stage
            .function
            .environment
            .insert("CORS_ALLOW_ORIGIN".into(), "https://c.example".into());
        let desired = desired_function(&stage, "repo@sha256:00", "arn:role");
        assert_eq!(
            desired.environment["CORS_ALLOW_ORIGIN"],
            "https://c.example"
        );
    }
}
