//! The desired stage: what the configuration asks for, with the names of
//! the account it goes to, and the desired image (by the content hash of
//! its inputs). Pure, apart from [`names`], which asks STS for the account,
//! and [`resolve`], which hashes the image's inputs (`status` and
//! `destroy` need no image and use [`DesiredStage::new`]).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};

use crate::aws::{Clients, apigw, ecr, iam, lambda, logs, sts};
use crate::config::{API_TIMEOUT_S, Auth, CorsSpec, Stage};
use crate::image::{self, ImageRef, Recipe};
use crate::names::{BASIC_EXECUTION_POLICY, Names, Partition, XRAY_POLICY};

/// The statement id of the permission that lets the stage's API call the alias.
pub const PERMISSION_ID: &str = "deployer-apigateway";

/// Every resource of the stage as the configuration wants it.
#[derive(Debug, Clone)]
pub struct DesiredStage {
    pub stage: Stage,
    pub names: Names,
    pub repository: ecr::DesiredRepository,
    pub lifecycle_policy: String,
    /// The repository policy statement that lets Lambda pull the images.
    pub pull_statement: serde_json::Value,
    pub role: iam::DesiredRole,
    /// The function's log group, made before the function.
    pub log_group: logs::DesiredLogGroup,
    pub function_name: String,
    pub alias_name: String,
    /// Reserved (on the function) and provisioned (on the alias).
    pub concurrency: lambda::DesiredConcurrency,
    pub api: apigw::DesiredApi,
    /// What the configuration asks that AWS will not do as written.
    pub warnings: Vec<String>,
    /// The optional parts the configuration asks for.
    pub parts: super::parts::DesiredParts,
}

/// The image the stage wants: its reference by the content hash of its
/// inputs, and the recipe its binary is compiled by, worked out once for
/// the hash and kept for the build.
#[derive(Debug, Clone)]
pub struct DesiredImage {
    pub image: ImageRef,
    pub recipe: Recipe,
}

/// The stage's names in the caller's account: the one STS call of a
/// command (the lock's ARN and every desired resource come from it).
pub async fn names(stage: &Stage, clients: &Clients) -> Result<Names> {
    let account = sts::caller_account(&clients.sts).await?;
    Ok(Names::new(stage, &account))
}

/// The desired stage and its image by tag (its digest is known once it is
/// in the registry), from the content hash of the image's inputs.
pub async fn resolve(stage: &Stage, names: &Names) -> Result<(DesiredStage, DesiredImage)> {
    let hash_stage = stage.clone();
    let (recipe, hash) = tokio::task::spawn_blocking(move || {
        let recipe = Recipe::for_stage(&hash_stage)?;
        let hash = image::content_hash(&hash_stage, &recipe)?;
        anyhow::Ok((recipe, hash))
    })
    .await
    .context("hashing the image inputs stopped")??;
    let image = ImageRef::new(&names.repository_uri, &hash.tag());
    Ok((
        DesiredStage::new(stage, names.clone()),
        DesiredImage { image, recipe },
    ))
}

impl DesiredStage {
    pub fn new(stage: &Stage, names: Names) -> DesiredStage {
        DesiredStage {
            repository: ecr::DesiredRepository::for_stage(stage),
            lifecycle_policy: ecr::lifecycle_policy_text(stage.ecr.untagged_expire_days),
            pull_statement: ecr::lambda_pull_statement(&names.app_functions_arn()),
            role: iam::DesiredRole::for_stage(stage),
            log_group: logs::DesiredLogGroup {
                name: stage.log_group_name(),
                arn: names.log_group_arn(&stage.log_group_name()),
                retention_days: stage.function.log_retention_days,
                tags: stage.tags(),
            },
            function_name: stage.function_name(),
            alias_name: stage.alias_name(),
            concurrency: lambda::DesiredConcurrency {
                reserved: (stage.function.reserved_concurrency > 0)
                    .then_some(stage.function.reserved_concurrency),
                provisioned: (stage.function.provisioned_concurrency > 0)
                    .then_some(stage.function.provisioned_concurrency),
            },
            api: apigw::DesiredApi::from_stage(stage, &names),
            warnings: warnings(stage),
            parts: super::parts::DesiredParts::new(stage, &names),
            stage: stage.clone(),
            names,
        }
    }

    /// The function running the image `image_uri` (by digest).
    pub fn function(&self, image_uri: &str) -> lambda::DesiredFunction {
        desired_function(&self.stage, image_uri, &self.names.role_arn)
    }

    /// The source ARN the permission allows, for the API `api_id`.
    pub fn permission_source(&self, api_id: &str) -> String {
        self.names.api_source_arn(api_id)
    }

    /// The alias as output names it: `function:alias`.
    pub fn alias_label(&self) -> String {
        format!("{}:{}", self.function_name, self.alias_name)
    }

    /// A published version of the function as output names it:
    /// `function:version`.
    pub fn version_label(&self, version: &str) -> String {
        format!("{}:{version}", self.function_name)
    }

    /// The API's permission on the alias as output names it.
    pub fn permission_label(&self) -> String {
        format!("{}/{PERMISSION_ID}", self.alias_label())
    }

    /// A REST API of the stage as output names it: `name (id)`.
    pub fn rest_api_label(&self, api_id: &str) -> String {
        format!("{} ({api_id})", self.api.name)
    }

    /// The API's stage as output names it: `api/stage`.
    pub fn api_stage_label(&self) -> String {
        format!("{}/{}", self.api.name, self.api.stage_name)
    }

    /// The URL callers use (`parts::DesiredParts::url`).
    pub fn url(&self, api_id: &str) -> String {
        self.parts.url(&self.names, api_id)
    }
}

/// The desired function for an image (by digest) — with the function's
/// CORS policy taken from the API's configuration, so that the function's
/// answers allow what the preflight and the gateway's answers allow:
/// `CORS_ALLOW_ORIGIN` (`*` or the allowed origins, comma-separated; the
/// function echoes the caller's when it is one of them) and
/// `CORS_ALLOW_HEADERS`; and the one path it answers, `API_PATH` (`[api]
/// path`). A value set in `[function.environment]` wins.
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
        .environment
        .entry("API_PATH".into())
        .or_insert_with(|| stage.api.path.trim_matches('/').to_string());
    desired
}

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
    warnings.extend(super::parts::warnings(stage));
    warnings
}

// The aws types as this stage wants them. They are built here, not in
// `aws`, so that the SDK adapters never see the configuration.

impl ecr::DesiredRepository {
    pub fn for_stage(stage: &Stage) -> ecr::DesiredRepository {
        // A shared repository belongs to no one stage; a stage's own
        // repository carries its stage tag like its other resources.
        let tags = stage
            .tags()
            .into_iter()
            .filter(|(key, _)| stage.owns_repository() || key == "deployer:app")
            .collect();
        ecr::DesiredRepository {
            name: stage.repository_name(),
            scan_on_push: stage.ecr.scan_on_push,
            immutable_tags: stage.ecr.immutable_tags,
            tags,
        }
    }
}

impl iam::DesiredRole {
    pub fn for_stage(stage: &Stage) -> iam::DesiredRole {
        let partition = Partition::of_region(&stage.region);
        let mut managed_policies =
            BTreeSet::from([partition.managed_policy_arn(BASIC_EXECUTION_POLICY)]);
        if stage.function.tracing {
            managed_policies.insert(partition.managed_policy_arn(XRAY_POLICY));
        }
        iam::DesiredRole {
            name: stage.role_name(),
            trust_policy: iam::lambda_trust_policy(),
            managed_policies,
            tags: stage.tags(),
        }
    }
}

impl lambda::DesiredFunction {
    pub fn for_stage(stage: &Stage, image_uri: &str, role_arn: &str) -> lambda::DesiredFunction {
        lambda::DesiredFunction {
            name: stage.function_name(),
            image_uri: image_uri.to_string(),
            role_arn: role_arn.to_string(),
            memory_mb: stage.function.memory_mb,
            timeout_s: stage.function.timeout_s,
            architecture: stage.function.architecture,
            environment: stage.function.environment.clone(),
            tracing: stage.function.tracing,
            tags: stage.function_tags(),
        }
    }
}

impl apigw::DesiredApi {
    /// The API of `stage`, whose methods call the stage's Lambda alias.
    pub fn from_stage(stage: &Stage, names: &Names) -> apigw::DesiredApi {
        let api = &stage.api;
        let api_key_required = api.auth == Auth::ApiKey;
        let proxy = |api_key_required: bool| apigw::MethodShape {
            authorization_type: "NONE".into(),
            api_key_required,
            integration_type: "AWS_PROXY".into(),
            integration_http_method: Some("POST".into()),
            uri: Some(names.integration_uri()),
            request_template: None,
            response_status: None,
            response_headers: BTreeMap::new(),
            declared_headers: BTreeSet::new(),
        };
        let mut methods: BTreeMap<String, apigw::MethodShape> = api
            .methods
            .iter()
            .map(|method| (method.to_ascii_uppercase(), proxy(api_key_required)))
            .collect();
        let mut allowed: Vec<String> = methods.keys().cloned().collect();
        allowed.push("OPTIONS".into());
        let allowed = allowed.join(",");
        // The browser's preflight carries no API key, so OPTIONS never
        // requires one.
        let preflight = match api.cors.static_origin() {
            Some(origin) => {
                let response_headers = cors_headers(&api.cors, origin, &allowed);
                apigw::MethodShape {
                    authorization_type: "NONE".into(),
                    api_key_required: false,
                    integration_type: "MOCK".into(),
                    integration_http_method: None,
                    uri: None,
                    request_template: Some(format!(
                        "{{\"statusCode\": {}}}",
                        apigw::PREFLIGHT_STATUS
                    )),
                    response_status: Some(apigw::PREFLIGHT_STATUS.into()),
                    declared_headers: response_headers.keys().cloned().collect(),
                    response_headers,
                }
            }
            // Several origins: a static answer cannot pick the caller's, so
            // the function answers the preflight itself.
            None => proxy(false),
        };
        methods.insert("OPTIONS".into(), preflight);
        let mut gateway_headers: BTreeMap<String, String> = cors_headers(
            &api.cors,
            api.cors.static_origin().unwrap_or_default(),
            &allowed,
        )
        .into_iter()
        .map(|(header, value)| (header, format!("'{value}'")))
        .collect();
        if api.cors.static_origin().is_none() {
            gateway_headers.insert(
                apigw::ALLOW_ORIGIN.to_string(),
                "method.request.header.Origin".to_string(),
            );
            // Caches must not serve one origin's answer to another.
            gateway_headers.insert("Vary".to_string(), "'Origin'".to_string());
        }
        apigw::DesiredApi {
            name: stage.api_name(),
            names: names.clone(),
            tags: stage.tags(),
            path: api.path.trim_matches('/').to_string(),
            methods,
            stage_name: stage.name.clone(),
            rate_limit: api.throttling.rate_limit,
            burst_limit: api.throttling.burst_limit,
            tracing: stage.function.tracing,
            gateway_responses: apigw::GATEWAY_RESPONSES
                .iter()
                .map(|kind| (kind.to_string(), gateway_headers.clone()))
                .collect(),
            api_key_name: api_key_required.then(|| stage.api_name()),
        }
    }
}

/// The CORS headers API Gateway answers with itself (the MOCK preflight,
/// the gateway responses), by name, unquoted; `origin` is the allowed one.
/// The function's own answers carry the same list of headers: it gets it
/// through its environment (see [`desired_function`]).
fn cors_headers(cors: &CorsSpec, origin: &str, methods: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (apigw::ALLOW_ORIGIN.to_string(), origin.to_string()),
        (
            "Access-Control-Allow-Methods".to_string(),
            methods.to_string(),
        ),
        (
            "Access-Control-Allow-Headers".to_string(),
            cors.allow_headers.join(","),
        ),
    ])
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
