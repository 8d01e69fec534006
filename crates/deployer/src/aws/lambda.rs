//! The function `{app}-{stage}`: its image (always by digest) and
//! configuration, its published versions, the stage's alias, the
//! permission that lets API Gateway call the alias, and invoking it.
//!
//! Lambda refuses a second update while one is in progress, a new
//! function is `Pending` until it is ready, and so is a new version; so
//! every change is followed by [`wait_until_ready`], a `ResourceConflict`
//! is retried with backoff for a bounded time, and a version is invoked
//! only once it is `Active` ("Lambda function states",
//! https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture as LambdaArchitecture, Environment, FunctionCode, LastUpdateStatus, LogType,
    PackageType, State, TracingConfig, TracingMode,
};
use base64::Engine as _;
use serde::Serialize;

use super::errors::{AwsError, ErrorKind, aws_error, none_if};
use super::retry::retry_while;
use super::{Outcome, missing_tags};
use crate::config::{Architecture, Stage};
use crate::plan::{Action, Field};

/// How long a new role, or a policy just attached to it, may take before
/// Lambda can use it (IAM is eventually consistent).
const ROLE_PROPAGATION: Duration = Duration::from_secs(120);
/// How long an update may stay `InProgress` (image optimisation included).
const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// How long to retry a call that meets an update in progress.
const CONFLICT_RETRY: Duration = Duration::from_secs(120);

/// The function as the stage wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredFunction {
    pub name: String,
    /// `<repository uri>@sha256:...`: by digest, never by tag.
    pub image_uri: String,
    pub role_arn: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub architecture: Architecture,
    pub environment: BTreeMap<String, String>,
    /// X-Ray tracing `Active` (else `PassThrough`).
    pub tracing: bool,
    pub tags: BTreeMap<String, String>,
}

impl DesiredFunction {
    pub fn for_stage(stage: &Stage, image_uri: &str, role_arn: &str) -> DesiredFunction {
        DesiredFunction {
            name: stage.function_name(),
            image_uri: image_uri.to_string(),
            role_arn: role_arn.to_string(),
            memory_mb: stage.function.memory_mb,
            timeout_s: stage.function.timeout_s,
            architecture: stage.function.architecture,
            environment: stage.function.environment.clone(),
            tracing: stage.function.tracing,
            tags: stage.tags(),
        }
    }
}

/// The function (or one of its versions) as Lambda has it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActualFunction {
    pub name: String,
    /// The ARN, qualified when a version was read.
    pub arn: String,
    /// `$LATEST` or the version number.
    pub version: String,
    pub image_uri: String,
    pub role_arn: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
    /// `None` when Lambda reports one we do not deploy.
    pub architecture: Option<Architecture>,
    pub environment: BTreeMap<String, String>,
    pub tracing: bool,
    /// `Pending`, `Active`, `Failed`, ...
    pub state: String,
    /// `InProgress`, `Successful`, `Failed`, ...
    pub last_update_status: String,
    /// The function's tags, read for `$LATEST` only (versions carry none).
    pub tags: BTreeMap<String, String>,
}

/// A published version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    pub version: String,
    pub arn: String,
    pub description: String,
    pub last_modified: String,
}

/// The stage's alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasInfo {
    pub name: String,
    pub arn: String,
    pub version: String,
}

/// One statement of the function's resource policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionStatement {
    pub statement_id: String,
    pub principal: String,
    pub source_arn: Option<String>,
}

/// What an invocation answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeResult {
    pub status_code: i32,
    /// `Unhandled` or `Handled` when the function failed.
    pub function_error: Option<String>,
    pub payload: String,
    /// The last 4 KB of the function's log, decoded.
    pub log_tail: Option<String>,
    pub executed_version: Option<String>,
}

/// The function's `$LATEST`, or a version or alias when `qualifier` is
/// given; `None` when it does not exist.
pub async fn read_function(
    client: &Client,
    name: &str,
    qualifier: Option<&str>,
) -> Result<Option<ActualFunction>, AwsError> {
    let answer = client
        .get_function()
        .function_name(name)
        .set_qualifier(qualifier.map(str::to_string))
        .send()
        .await;
    let Some(answer) = none_if(ErrorKind::NotFound, "GetFunction", name, answer)? else {
        return Ok(None);
    };
    let Some(config) = answer.configuration() else {
        return Err(AwsError::invalid_answer(
            "GetFunction",
            name,
            "the answer has no configuration",
        ));
    };
    let architecture = match config.architectures().first() {
        Some(LambdaArchitecture::Arm64) => Some(Architecture::Arm64),
        Some(LambdaArchitecture::X8664) | None => Some(Architecture::X86_64),
        Some(_) => None,
    };
    Ok(Some(ActualFunction {
        name: name.to_string(),
        arn: config.function_arn().unwrap_or_default().to_string(),
        version: config.version().unwrap_or("$LATEST").to_string(),
        image_uri: answer
            .code()
            .and_then(|code| code.image_uri())
            .unwrap_or_default()
            .to_string(),
        role_arn: config.role().unwrap_or_default().to_string(),
        memory_mb: config.memory_size().unwrap_or_default(),
        timeout_s: config.timeout().unwrap_or_default(),
        architecture,
        environment: config
            .environment()
            .and_then(|env| env.variables())
            .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        tracing: config
            .tracing_config()
            .and_then(|t| t.mode())
            .is_some_and(|mode| *mode == TracingMode::Active),
        state: config
            .state()
            .map(|s| s.as_str())
            .unwrap_or("Active")
            .to_string(),
        last_update_status: config
            .last_update_status()
            .map(|s| s.as_str())
            .unwrap_or("Successful")
            .to_string(),
        tags: match qualifier {
            None => list_tags(client, name, config.function_arn()).await?,
            Some(_) => BTreeMap::new(),
        },
    }))
}

/// The function's tags, from ListTags. GetFunction's `Tags` are no
/// substitute: "Lambda returns tag data only if you have explicit allow
/// permissions for lambda:ListTags" (GetFunction, AWS Lambda API
/// Reference), so without that permission every `up` would see no tags,
/// tag again and count the function as changed.
async fn list_tags(
    client: &Client,
    name: &str,
    arn: Option<&str>,
) -> Result<BTreeMap<String, String>, AwsError> {
    let Some(arn) = arn.filter(|arn| !arn.is_empty()) else {
        return Err(AwsError::invalid_answer(
            "GetFunction",
            name,
            "the answer has no function ARN",
        ));
    };
    let answer = client.list_tags().resource(arn).send().await;
    // Deleted between the two calls: it has no tags any more.
    Ok(none_if(ErrorKind::NotFound, "ListTags", name, answer)?
        .and_then(|answer| answer.tags().cloned())
        .map(|tags| tags.into_iter().collect())
        .unwrap_or_default())
}

/// What of the function can differ from the desired one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionField {
    Image,
    Architecture,
    Memory,
    Timeout,
    Environment,
    Tracing,
    Role,
    /// Missing or different tags (extra tags are left alone).
    Tags,
}

impl Field for FunctionField {}

/// The call that sets a field on an existing function.
enum FunctionCall {
    UpdateCode,
    UpdateConfiguration,
    TagResource,
}

impl FunctionField {
    fn call(self) -> FunctionCall {
        match self {
            FunctionField::Image | FunctionField::Architecture => FunctionCall::UpdateCode,
            FunctionField::Memory
            | FunctionField::Timeout
            | FunctionField::Environment
            | FunctionField::Tracing
            | FunctionField::Role => FunctionCall::UpdateConfiguration,
            FunctionField::Tags => FunctionCall::TagResource,
        }
    }
}

/// What [`apply_function`] has to do, with the fields that differ.
pub fn diff_function(
    desired: &DesiredFunction,
    actual: Option<&ActualFunction>,
) -> Action<FunctionField> {
    let Some(actual) = actual else {
        return Action::Create;
    };
    let differs = [
        (FunctionField::Image, desired.image_uri != actual.image_uri),
        (
            FunctionField::Architecture,
            Some(desired.architecture) != actual.architecture,
        ),
        (FunctionField::Memory, desired.memory_mb != actual.memory_mb),
        (
            FunctionField::Timeout,
            desired.timeout_s != actual.timeout_s,
        ),
        (
            FunctionField::Environment,
            desired.environment != actual.environment,
        ),
        (FunctionField::Tracing, desired.tracing != actual.tracing),
        (FunctionField::Role, desired.role_arn != actual.role_arn),
        (
            FunctionField::Tags,
            missing_tags(&desired.tags, &actual.tags).next().is_some(),
        ),
    ];
    Action::update_if(
        differs
            .into_iter()
            .filter(|(_, differs)| *differs)
            .map(|(field, _)| field)
            .collect(),
    )
}

/// Creates the function or brings it in line (read, diff, apply); returns
/// the outcome and the function as it now is.
pub async fn ensure_function(
    client: &Client,
    desired: &DesiredFunction,
) -> Result<(Outcome, ActualFunction), AwsError> {
    let name = desired.name.as_str();
    let actual = read_function(client, name, None).await?;
    let action = diff_function(desired, actual.as_ref());
    let outcome = apply_function(client, desired, actual.as_ref(), &action).await?;
    let now = match (outcome, actual) {
        (Outcome::Unchanged, Some(actual)) => Some(actual),
        _ => read_function(client, name, None).await?,
    };
    let now = now.ok_or_else(|| {
        AwsError::invalid_answer(
            "GetFunction",
            name,
            "the function was created but cannot be read back",
        )
    })?;
    Ok((outcome, now))
}

/// Carries out `action` on the function `actual` was read as: creates it,
/// or updates its code and then its configuration (each only when a field
/// of it is named), waiting for Lambda between calls, or deletes it. A
/// create that finds the function made meanwhile reads it and converges.
pub async fn apply_function(
    client: &Client,
    desired: &DesiredFunction,
    actual: Option<&ActualFunction>,
    action: &Action<FunctionField>,
) -> Result<Outcome, AwsError> {
    let name = desired.name.as_str();
    match (action, actual) {
        (Action::Unchanged, _) => Ok(Outcome::Unchanged),
        (Action::Delete, _) => {
            delete_function(client, name).await?;
            Ok(Outcome::Deleted)
        }
        (Action::Update(fields), Some(actual)) => {
            update_function(client, desired, &actual.arn, fields).await?;
            Ok(Outcome::Updated)
        }
        (Action::Create | Action::Update(_), _) => {
            // A new role is not assumable for a few seconds after IAM made it.
            let created = retry_while(&[ErrorKind::RoleNotAssumable], ROLE_PROPAGATION, || {
                create_function(client, desired)
            })
            .await;
            match created {
                Ok(()) => {
                    wait_until_ready(client, name, None).await?;
                    Ok(Outcome::Created)
                }
                // A concurrent or interrupted run made it: converge on it.
                Err(err) if err.kind == ErrorKind::AlreadyExists => {
                    wait_until_ready(client, name, None).await?;
                    let now = read_function(client, name, None).await?.ok_or_else(|| {
                        AwsError::invalid_answer(
                            "GetFunction",
                            name,
                            "the function exists (CreateFunction said so) but cannot be read",
                        )
                    })?;
                    // Made meanwhile: unchanged unless it differs.
                    match diff_function(desired, Some(&now)) {
                        Action::Update(fields) => {
                            update_function(client, desired, &now.arn, &fields).await?;
                            Ok(Outcome::Updated)
                        }
                        _ => Ok(Outcome::Unchanged),
                    }
                }
                Err(err) => Err(err),
            }
        }
    }
}

/// Makes the updates `fields` name: one UpdateFunctionCode for the code
/// fields, one UpdateFunctionConfiguration for the configuration fields,
/// one TagResource for the tags.
async fn update_function(
    client: &Client,
    desired: &DesiredFunction,
    arn: &str,
    fields: &BTreeSet<FunctionField>,
) -> Result<(), AwsError> {
    let name = desired.name.as_str();
    let (mut code, mut configuration, mut tags) = (false, false, false);
    for field in fields {
        match field.call() {
            FunctionCall::UpdateCode => code = true,
            FunctionCall::UpdateConfiguration => configuration = true,
            FunctionCall::TagResource => tags = true,
        }
    }
    if code || configuration {
        // The last run may have left an update in flight.
        wait_until_updatable(client, name).await?;
    }
    if code {
        retry_while(&[ErrorKind::Conflict], CONFLICT_RETRY, || async {
            client
                .update_function_code()
                .function_name(name)
                .image_uri(&desired.image_uri)
                .architectures(lambda_architecture(desired.architecture))
                .send()
                .await
                .map(|_| ())
                .map_err(|err| aws_error("UpdateFunctionCode", name, err))
        })
        .await?;
        wait_until_ready(client, name, None).await?;
    }
    if configuration {
        // With tracing Active, Lambda checks the role's X-Ray permission,
        // which may have been attached just now.
        let not_yet = [ErrorKind::Conflict, ErrorKind::RoleNotAssumable];
        retry_while(&not_yet, CONFLICT_RETRY.max(ROLE_PROPAGATION), || async {
            client
                .update_function_configuration()
                .function_name(name)
                .role(&desired.role_arn)
                .memory_size(desired.memory_mb)
                .timeout(desired.timeout_s)
                .environment(environment(&desired.environment))
                .tracing_config(tracing(desired.tracing))
                .send()
                .await
                .map(|_| ())
                .map_err(|err| aws_error("UpdateFunctionConfiguration", name, err))
        })
        .await?;
        wait_until_ready(client, name, None).await?;
    }
    if tags && !arn.is_empty() {
        client
            .tag_resource()
            .resource(arn)
            .set_tags(Some(desired.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|err| aws_error("TagResource", name, err))?;
    }
    Ok(())
}

async fn create_function(client: &Client, desired: &DesiredFunction) -> Result<(), AwsError> {
    client
        .create_function()
        .function_name(&desired.name)
        .package_type(PackageType::Image)
        .code(
            FunctionCode::builder()
                .image_uri(&desired.image_uri)
                .build(),
        )
        .role(&desired.role_arn)
        .memory_size(desired.memory_mb)
        .timeout(desired.timeout_s)
        .architectures(lambda_architecture(desired.architecture))
        .environment(environment(&desired.environment))
        .tracing_config(tracing(desired.tracing))
        .set_tags(Some(desired.tags.clone().into_iter().collect()))
        .publish(false)
        .send()
        .await
        .map(|_| ())
        .map_err(|err| aws_error("CreateFunction", &desired.name, err))
}

/// What a function's (or version's) state allows, as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Something is in flight (`Pending`, `InProgress`): ask again.
    Wait,
    /// Waiting cannot help; why.
    Broken(String),
}

/// The state, last update status and reasons of a function or version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionState {
    pub state: State,
    pub last_update: LastUpdateStatus,
    pub state_reason: Option<String>,
    pub last_update_reason: Option<String>,
}

impl FunctionState {
    fn reason(reason: &Option<String>) -> &str {
        reason.as_deref().unwrap_or("no reason given")
    }

    /// Whether Lambda accepts an update now. "Lambda function states":
    /// after a failed update "the function's previous code and
    /// configuration remain available" and a new update is allowed; an
    /// `Inactive` function is re-activated by an update; a function whose
    /// creation failed "must be deleted and recreated".
    pub fn before_update(&self) -> Readiness {
        if self.state == State::Failed {
            return Readiness::Broken(format!(
                "its creation failed ({}); Lambda cannot update it: delete the function \
                 (deployer destroy) and deploy again",
                Self::reason(&self.state_reason)
            ));
        }
        if self.state == State::Pending || self.last_update == LastUpdateStatus::InProgress {
            return Readiness::Wait;
        }
        Readiness::Ready
    }

    /// Whether a change just made has taken: `Active` (or `Inactive`, an
    /// idle function an invoke re-activates) with a successful last update.
    pub fn after_change(&self) -> Readiness {
        if self.state == State::Failed {
            return Readiness::Broken(format!(
                "the function failed: {}; a function whose creation failed must be deleted \
                 (deployer destroy) and deployed again",
                Self::reason(&self.state_reason)
            ));
        }
        if self.last_update == LastUpdateStatus::Failed {
            return Readiness::Broken(format!(
                "the last update failed: {}",
                Self::reason(&self.last_update_reason)
            ));
        }
        if self.state == State::Pending || self.last_update == LastUpdateStatus::InProgress {
            return Readiness::Wait;
        }
        Readiness::Ready
    }
}

/// Waits (bounded) until the function, or its version `qualifier`, has
/// taken the last change: `Active` with a successful last update. A
/// failure is an error with Lambda's reason.
pub async fn wait_until_ready(
    client: &Client,
    name: &str,
    qualifier: Option<&str>,
) -> Result<(), AwsError> {
    wait_for(client, name, qualifier, FunctionState::after_change).await
}

/// Waits (bounded) until Lambda accepts an update of the function: nothing
/// in flight. A failed last update or an `Inactive` function is no reason
/// to wait or to stop: the update replaces or re-activates it.
pub async fn wait_until_updatable(client: &Client, name: &str) -> Result<(), AwsError> {
    wait_for(client, name, None, FunctionState::before_update).await
}

/// Polls the state of `name` (or `name:qualifier`) until `judge` says
/// `Ready`. A version is `Pending` after PublishVersion; the SDK's
/// PublishedVersionActive waiter does the same, but first sleeps 5 s.
async fn wait_for(
    client: &Client,
    name: &str,
    qualifier: Option<&str>,
    judge: fn(&FunctionState) -> Readiness,
) -> Result<(), AwsError> {
    let resource = match qualifier {
        Some(q) => format!("{name}:{q}"),
        None => name.to_string(),
    };
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        let config = client
            .get_function_configuration()
            .function_name(name)
            .set_qualifier(qualifier.map(str::to_string))
            .send()
            .await
            .map_err(|err| aws_error("GetFunctionConfiguration", resource.clone(), err))?;
        let now = FunctionState {
            state: config.state().cloned().unwrap_or(State::Active),
            last_update: config
                .last_update_status()
                .cloned()
                .unwrap_or(LastUpdateStatus::Successful),
            state_reason: config.state_reason().map(str::to_string),
            last_update_reason: config.last_update_status_reason().map(str::to_string),
        };
        match judge(&now) {
            Readiness::Ready => return Ok(()),
            Readiness::Broken(why) => {
                return Err(AwsError::invalid_answer(
                    "GetFunctionConfiguration",
                    resource,
                    why,
                ));
            }
            Readiness::Wait => {}
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(AwsError {
                operation: "GetFunctionConfiguration",
                resource,
                message: format!(
                    "still {} / {} after {} s",
                    now.state.as_str(),
                    now.last_update.as_str(),
                    READY_TIMEOUT.as_secs()
                ),
                kind: ErrorKind::Conflict,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Publishes `$LATEST` as a new version when `changed` (the function was
/// just created or updated) or when no published version has what
/// `$LATEST` has; otherwise returns that version. The outcome is `Created`
/// when a version was published.
pub async fn publish_version(
    client: &Client,
    name: &str,
    changed: bool,
) -> Result<(Outcome, String), AwsError> {
    if !changed && let Some(version) = version_matching_latest(client, name).await? {
        return Ok((Outcome::Unchanged, version));
    }
    Ok((Outcome::Created, publish(client, name).await?))
}

/// Publishes `$LATEST` as a new version; returns its number. Whether one
/// is needed is the plan's decision, not this call's.
pub async fn publish(client: &Client, name: &str) -> Result<String, AwsError> {
    let published = retry_while(&[ErrorKind::Conflict], CONFLICT_RETRY, || async {
        client
            .publish_version()
            .function_name(name)
            .send()
            .await
            .map_err(|err| aws_error("PublishVersion", name, err))
    })
    .await?;
    let version = published
        .version()
        .filter(|v| *v != "$LATEST")
        .ok_or_else(|| {
            AwsError::invalid_answer("PublishVersion", name, "the answer has no version number")
        })?;
    Ok(version.to_string())
}

/// The newest published version, if its image and configuration are
/// those of `$LATEST`.
pub async fn version_matching_latest(
    client: &Client,
    name: &str,
) -> Result<Option<String>, AwsError> {
    let (latest, newest) = tokio::try_join!(
        read_function(client, name, None),
        read_newest_version(client, name),
    )?;
    Ok(match (latest, newest) {
        (Some(latest), Some(newest)) if same_code_and_configuration(&latest, &newest) => {
            Some(newest.version)
        }
        _ => None,
    })
}

/// The newest published version as Lambda has it; `None` when there is
/// none (or no function).
pub async fn read_newest_version(
    client: &Client,
    name: &str,
) -> Result<Option<ActualFunction>, AwsError> {
    let Some(newest) = list_versions(client, name).await?.pop() else {
        return Ok(None);
    };
    read_function(client, name, Some(&newest.version)).await
}

/// Whether a published version runs what `$LATEST` runs, as it is
/// configured: publishing `$LATEST` again would add nothing.
pub fn same_code_and_configuration(latest: &ActualFunction, published: &ActualFunction) -> bool {
    latest.image_uri == published.image_uri
        && latest.architecture == published.architecture
        && latest.memory_mb == published.memory_mb
        && latest.timeout_s == published.timeout_s
        && latest.environment == published.environment
        && latest.tracing == published.tracing
        && latest.role_arn == published.role_arn
}

/// The published versions (not `$LATEST`), oldest first; a function that
/// does not exist has none (Lambda answers ListVersionsByFunction of a
/// missing function with 404 ResourceNotFoundException, API reference).
pub async fn list_versions(client: &Client, name: &str) -> Result<Vec<VersionInfo>, AwsError> {
    let answer = client
        .list_versions_by_function()
        .function_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await;
    let Some(answer) = none_if(ErrorKind::NotFound, "ListVersionsByFunction", name, answer)? else {
        return Ok(Vec::new());
    };
    let mut versions: Vec<VersionInfo> = answer
        .iter()
        .filter(|v| v.version().is_some_and(|n| n != "$LATEST"))
        .map(|v| VersionInfo {
            version: v.version().unwrap_or_default().to_string(),
            arn: v.function_arn().unwrap_or_default().to_string(),
            description: v.description().unwrap_or_default().to_string(),
            last_modified: v.last_modified().unwrap_or_default().to_string(),
        })
        .collect();
    versions.sort_by_key(|v| v.version.parse::<u64>().unwrap_or(0));
    Ok(versions)
}

/// The alias; `None` when it (or the function) does not exist.
pub async fn read_alias(
    client: &Client,
    function: &str,
    alias: &str,
) -> Result<Option<AliasInfo>, AwsError> {
    let answer = client
        .get_alias()
        .function_name(function)
        .name(alias)
        .send()
        .await;
    let resource = format!("{function}:{alias}");
    Ok(
        none_if(ErrorKind::NotFound, "GetAlias", resource, answer)?.map(|answer| AliasInfo {
            name: alias.to_string(),
            arn: answer.alias_arn().unwrap_or_default().to_string(),
            version: answer.function_version().unwrap_or_default().to_string(),
        }),
    )
}

/// What of the alias can differ: the version it points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AliasField {
    Version,
}

impl Field for AliasField {}

/// Whether the alias must be created or moved to `version`.
pub fn diff_alias(version: &str, actual: Option<&AliasInfo>) -> Action<AliasField> {
    match actual {
        None => Action::Create,
        Some(alias) if alias.version == version => Action::Unchanged,
        Some(_) => Action::Update(BTreeSet::from([AliasField::Version])),
    }
}

/// Points the alias at `version`, creating it if needed (read, diff, apply).
pub async fn ensure_alias(
    client: &Client,
    function: &str,
    alias: &str,
    version: &str,
) -> Result<(Outcome, AliasInfo), AwsError> {
    let actual = read_alias(client, function, alias).await?;
    if let Some(actual) = actual.as_ref().filter(|a| a.version == version) {
        return Ok((Outcome::Unchanged, actual.clone()));
    }
    let action = diff_alias(version, actual.as_ref());
    apply_alias(client, function, alias, version, &action).await
}

/// Carries out `action` on the alias: creates it at `version` (moving it
/// if another run created it meanwhile), moves it, or deletes it.
pub async fn apply_alias(
    client: &Client,
    function: &str,
    alias: &str,
    version: &str,
    action: &Action<AliasField>,
) -> Result<(Outcome, AliasInfo), AwsError> {
    let resource = format!("{function}:{alias}");
    let info = |arn: Option<&str>| AliasInfo {
        name: alias.to_string(),
        arn: arn.unwrap_or_default().to_string(),
        version: version.to_string(),
    };
    let outcome = match action {
        Action::Unchanged => return Ok((Outcome::Unchanged, info(None))),
        Action::Delete => {
            delete_alias(client, function, alias).await?;
            return Ok((Outcome::Deleted, info(None)));
        }
        Action::Create => {
            let created = client
                .create_alias()
                .function_name(function)
                .name(alias)
                .function_version(version)
                .send()
                .await;
            if let Some(answer) =
                none_if(ErrorKind::AlreadyExists, "CreateAlias", &resource, created)?
            {
                return Ok((Outcome::Created, info(answer.alias_arn())));
            }
            // Made meanwhile by another run: move it below.
            Outcome::Updated
        }
        Action::Update(fields) => {
            for field in fields {
                match field {
                    AliasField::Version => {}
                }
            }
            Outcome::Updated
        }
    };
    let answer = retry_while(&[ErrorKind::Conflict], CONFLICT_RETRY, || async {
        client
            .update_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .send()
            .await
            .map_err(|err| aws_error("UpdateAlias", resource.clone(), err))
    })
    .await?;
    Ok((outcome, info(answer.alias_arn())))
}

/// The statement `statement_id` of the policy on `function:qualifier`;
/// `None` when there is no policy or no such statement.
pub async fn read_permission(
    client: &Client,
    function: &str,
    qualifier: &str,
    statement_id: &str,
) -> Result<Option<PermissionStatement>, AwsError> {
    let resource = format!("{function}:{qualifier}");
    let answer = client
        .get_policy()
        .function_name(function)
        .qualifier(qualifier)
        .send()
        .await;
    let Some(answer) = none_if(ErrorKind::NotFound, "GetPolicy", &resource, answer)? else {
        return Ok(None);
    };
    let Some(text) = answer.policy() else {
        return Ok(None);
    };
    let policy: serde_json::Value = serde_json::from_str(text).map_err(|err| {
        AwsError::invalid_answer(
            "GetPolicy",
            resource.clone(),
            format!("the policy is not JSON: {err}"),
        )
    })?;
    Ok(statement_in_policy(&policy, statement_id))
}

fn statement_in_policy(
    policy: &serde_json::Value,
    statement_id: &str,
) -> Option<PermissionStatement> {
    let statements = policy.get("Statement")?.as_array()?;
    let statement = statements
        .iter()
        .find(|s| s.get("Sid").and_then(|v| v.as_str()) == Some(statement_id))?;
    let principal = match statement.get("Principal") {
        Some(serde_json::Value::String(p)) => p.clone(),
        Some(p) => p
            .get("Service")
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_string(),
        None => String::new(),
    };
    let source_arn = statement
        .get("Condition")
        .and_then(|c| c.get("ArnLike"))
        .and_then(|c| c.get("AWS:SourceArn"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    Some(PermissionStatement {
        statement_id: statement_id.to_string(),
        principal,
        source_arn,
    })
}

/// What of the permission can differ from the desired one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionField {
    Principal,
    SourceArn,
}

impl Field for PermissionField {}

/// Whether the permission must be added or replaced (another source ARN
/// or principal).
pub fn diff_permission(
    source_arn: &str,
    actual: Option<&PermissionStatement>,
) -> Action<PermissionField> {
    let Some(actual) = actual else {
        return Action::Create;
    };
    let mut fields = BTreeSet::new();
    if actual.principal != "apigateway.amazonaws.com" {
        fields.insert(PermissionField::Principal);
    }
    if actual.source_arn.as_deref() != Some(source_arn) {
        fields.insert(PermissionField::SourceArn);
    }
    Action::update_if(fields)
}

/// Lets API Gateway (from `source_arn` only) invoke `function:alias`
/// (read, diff, apply).
pub async fn ensure_permission(
    client: &Client,
    function: &str,
    alias: &str,
    statement_id: &str,
    source_arn: &str,
) -> Result<Outcome, AwsError> {
    let actual = read_permission(client, function, alias, statement_id).await?;
    let action = diff_permission(source_arn, actual.as_ref());
    apply_permission(client, function, alias, statement_id, source_arn, &action).await
}

/// Carries out `action` on the permission statement `statement_id` of
/// `function:alias`.
pub async fn apply_permission(
    client: &Client,
    function: &str,
    alias: &str,
    statement_id: &str,
    source_arn: &str,
    action: &Action<PermissionField>,
) -> Result<Outcome, AwsError> {
    let resource = format!("{function}:{alias}");
    let outcome = match action {
        Action::Unchanged => return Ok(Outcome::Unchanged),
        Action::Create => Outcome::Created,
        Action::Delete => {
            remove_permission(client, function, alias, statement_id).await?;
            return Ok(Outcome::Deleted);
        }
        Action::Update(fields) => {
            for field in fields {
                match field {
                    // A statement cannot be edited: it is removed and added
                    // anew, whatever differs.
                    PermissionField::Principal | PermissionField::SourceArn => {}
                }
            }
            remove_permission(client, function, alias, statement_id).await?;
            Outcome::Updated
        }
    };
    let added = client
        .add_permission()
        .function_name(function)
        .qualifier(alias)
        .statement_id(statement_id)
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(source_arn)
        .send()
        .await;
    match added {
        Ok(_) => Ok(outcome),
        // Added meanwhile by another run; it is right if its source is.
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_conflict_exception()) =>
        {
            let now = read_permission(client, function, alias, statement_id).await?;
            if diff_permission(source_arn, now.as_ref()).is_change() {
                Err(aws_error("AddPermission", resource, err))
            } else {
                Ok(outcome)
            }
        }
        Err(err) => Err(aws_error("AddPermission", resource, err)),
    }
}

/// Removes the alias (and with it its permissions); gone already is fine.
pub async fn delete_alias(client: &Client, function: &str, alias: &str) -> Result<(), AwsError> {
    let deleted = client
        .delete_alias()
        .function_name(function)
        .name(alias)
        .send()
        .await;
    none_if(
        ErrorKind::NotFound,
        "DeleteAlias",
        format!("{function}:{alias}"),
        deleted,
    )?;
    Ok(())
}

/// Removes one statement; gone already is fine.
pub async fn remove_permission(
    client: &Client,
    function: &str,
    qualifier: &str,
    statement_id: &str,
) -> Result<(), AwsError> {
    let removed = client
        .remove_permission()
        .function_name(function)
        .qualifier(qualifier)
        .statement_id(statement_id)
        .send()
        .await;
    let resource = format!("{function}:{qualifier} {statement_id}");
    none_if(ErrorKind::NotFound, "RemovePermission", resource, removed)?;
    Ok(())
}

/// Invokes the function synchronously with the tail of its log.
pub async fn invoke(
    client: &Client,
    function: &str,
    qualifier: Option<&str>,
    payload: &[u8],
) -> Result<InvokeResult, AwsError> {
    let resource = match qualifier {
        Some(q) => format!("{function}:{q}"),
        None => function.to_string(),
    };
    let answer = client
        .invoke()
        .function_name(function)
        .set_qualifier(qualifier.map(str::to_string))
        .log_type(LogType::Tail)
        .payload(Blob::new(payload))
        .send()
        .await
        .map_err(|err| aws_error("Invoke", resource, err))?;
    let log_tail = answer.log_result().and_then(|encoded| {
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    });
    Ok(InvokeResult {
        status_code: answer.status_code(),
        function_error: answer.function_error().map(str::to_string),
        payload: answer
            .payload()
            .map(|blob| String::from_utf8_lossy(blob.as_ref()).into_owned())
            .unwrap_or_default(),
        log_tail,
        executed_version: answer.executed_version().map(str::to_string),
    })
}

/// Deletes the function with its versions and aliases. Returns whether
/// there was one; gone already is fine.
pub async fn delete_function(client: &Client, name: &str) -> Result<bool, AwsError> {
    let deleted = retry_while(&[ErrorKind::Conflict], CONFLICT_RETRY, || async {
        let deleted = client.delete_function().function_name(name).send().await;
        Ok(none_if(ErrorKind::NotFound, "DeleteFunction", name, deleted)?.is_some())
    })
    .await?;
    Ok(deleted)
}

/// The container-image functions of the app: those named `{app}-...`
/// (`prefix`). Only these are read further, so `destroy` and `up` never
/// call GetFunction on other teams' functions, which the deployer may not
/// be allowed to read (and which would cost one call each).
async fn app_functions(client: &Client, prefix: &str) -> Result<Vec<String>, AwsError> {
    let mut names = Vec::new();
    let mut marker = None;
    loop {
        let page = client
            .list_functions()
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|err| aws_error("ListFunctions", prefix, err))?;
        names.extend(
            page.functions()
                .iter()
                .filter(|f| f.package_type().is_none_or(|t| *t == PackageType::Image))
                .filter_map(|f| f.function_name())
                .filter(|name| name.starts_with(prefix))
                .map(str::to_string),
        );
        match page.next_marker() {
            Some(next) if !next.is_empty() => marker = Some(next.to_string()),
            _ => break,
        }
    }
    Ok(names)
}

/// The image of a function or version: as it was given when that was by
/// digest, else the digest Lambda resolved (`ResolvedImageUri`); `None`
/// when it is gone (another deploy may delete it meanwhile) or the deployer
/// may not read it: a function named like the app's that the deployer
/// cannot read is not one it deployed.
async fn image_of(
    client: &Client,
    name: &str,
    qualifier: Option<&str>,
) -> Result<Option<String>, AwsError> {
    let answer = client
        .get_function()
        .function_name(name)
        .set_qualifier(qualifier.map(str::to_string))
        .send()
        .await;
    match answer {
        Ok(answer) => Ok(answer.code().and_then(|code| {
            // The deployer always gives a digest; only an image given by
            // tag needs the digest Lambda resolved.
            match code.image_uri() {
                Some(uri) if uri.contains('@') => Some(uri.to_string()),
                given => code.resolved_image_uri().or(given).map(str::to_string),
            }
        })),
        Err(err) => match aws_error("GetFunction", name, err) {
            err if matches!(err.kind, ErrorKind::NotFound | ErrorKind::AccessDenied) => Ok(None),
            err => Err(err),
        },
    }
}

/// The app's functions (named with `prefix`, other than `except`) whose
/// image is in the repository at `repository_uri`, by name: the repository
/// is still in use while any is left. Zip functions cannot use it and are
/// skipped.
pub async fn functions_using_repository(
    client: &Client,
    prefix: &str,
    repository_uri: &str,
    except: &str,
) -> Result<Vec<String>, AwsError> {
    let mut users = Vec::new();
    for name in app_functions(client, prefix).await? {
        if name == except {
            continue;
        }
        if let Some(image) = image_of(client, &name, None).await?
            && image_in_repository(&image, repository_uri)
        {
            users.push(name);
        }
    }
    Ok(users)
}

/// The digests of the repository's images that a function of the app
/// (named with `prefix`) uses, in `$LATEST` or in any published version:
/// any version may be an alias's target, or a rollback's.
pub async fn images_in_use(
    client: &Client,
    prefix: &str,
    repository_uri: &str,
) -> Result<BTreeSet<String>, AwsError> {
    let mut digests = BTreeSet::new();
    for name in app_functions(client, prefix).await? {
        let versions = match list_versions(client, &name).await {
            Ok(versions) => versions,
            Err(err) if matches!(err.kind, ErrorKind::NotFound | ErrorKind::AccessDenied) => {
                continue;
            }
            Err(err) => return Err(err),
        };
        let qualifiers =
            std::iter::once(None).chain(versions.iter().map(|v| Some(v.version.as_str())));
        for qualifier in qualifiers {
            if let Some(image) = image_of(client, &name, qualifier).await?
                && image_in_repository(&image, repository_uri)
                && let Some((_, digest)) = image.split_once('@')
            {
                digests.insert(digest.to_string());
            }
        }
    }
    Ok(digests)
}

/// Whether `image_uri` (by tag or by digest) names an image of the
/// repository at `repository_uri` (and not of one whose name only starts
/// the same).
pub fn image_in_repository(image_uri: &str, repository_uri: &str) -> bool {
    image_uri
        .strip_prefix(repository_uri)
        .is_some_and(|rest| rest.starts_with('@') || rest.starts_with(':'))
}

fn lambda_architecture(architecture: Architecture) -> LambdaArchitecture {
    match architecture {
        Architecture::X86_64 => LambdaArchitecture::X8664,
        Architecture::Arm64 => LambdaArchitecture::Arm64,
    }
}

fn environment(variables: &BTreeMap<String, String>) -> Environment {
    Environment::builder()
        .set_variables(Some(variables.clone().into_iter().collect()))
        .build()
}

fn tracing(active: bool) -> TracingConfig {
    TracingConfig::builder()
        .mode(if active {
            TracingMode::Active
        } else {
            TracingMode::PassThrough
        })
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_in_its_repository_only() {
        let repo = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop";
        assert!(image_in_repository(&format!("{repo}@sha256:ab"), repo));
        assert!(image_in_repository(&format!("{repo}:v1"), repo));
        assert!(!image_in_repository(
            &format!("{repo}-other@sha256:ab"),
            repo
        ));
        assert!(!image_in_repository(&format!("{repo}/sub:v1"), repo));
        assert!(!image_in_repository("", repo));
    }

    fn desired() -> DesiredFunction {
        DesiredFunction::for_stage(
            &Stage::defaults("app", "dev", "us-east-1"),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:aa",
            "arn:aws:iam::123456789012:role/app-dev-exec",
        )
    }

    fn actual_of(desired: &DesiredFunction) -> ActualFunction {
        ActualFunction {
            name: desired.name.clone(),
            arn: "arn:aws:lambda:us-east-1:123456789012:function:app-dev".into(),
            version: "$LATEST".into(),
            image_uri: desired.image_uri.clone(),
            role_arn: desired.role_arn.clone(),
            memory_mb: desired.memory_mb,
            timeout_s: desired.timeout_s,
            architecture: Some(desired.architecture),
            environment: desired.environment.clone(),
            tracing: desired.tracing,
            state: "Active".into(),
            last_update_status: "Successful".into(),
            tags: desired.tags.clone(),
        }
    }

    #[test]
    fn function_diff_lists_each_changed_field() {
        let desired = desired();
        assert_eq!(diff_function(&desired, None), Action::Create);
        assert_eq!(
            diff_function(&desired, Some(&actual_of(&desired))),
            Action::Unchanged
        );
        let mut other = actual_of(&desired);
        other.memory_mb += 1;
        other.image_uri.push('b');
        other.architecture = Some(Architecture::Arm64);
        other.tracing = !desired.tracing;
        other.environment.insert("X".into(), "1".into());
        assert_eq!(
            diff_function(&desired, Some(&other)),
            Action::Update(BTreeSet::from([
                FunctionField::Image,
                FunctionField::Architecture,
                FunctionField::Memory,
                FunctionField::Environment,
                FunctionField::Tracing
            ]))
        );
    }

    #[test]
    fn alias_and_permission_diffs() {
        let alias = AliasInfo {
            name: "dev".into(),
            arn: "arn".into(),
            version: "3".into(),
        };
        assert_eq!(diff_alias("3", None), Action::Create);
        assert_eq!(diff_alias("3", Some(&alias)), Action::Unchanged);
        assert!(diff_alias("4", Some(&alias)).is_change());

        let policy = serde_json::json!({"Statement": [{
            "Sid": "apigw",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Condition": {"ArnLike": {"AWS:SourceArn": "arn:a"}}
        }]});
        let statement = statement_in_policy(&policy, "apigw").unwrap();
        assert_eq!(statement.source_arn.as_deref(), Some("arn:a"));
        assert_eq!(statement_in_policy(&policy, "other"), None);
        assert_eq!(
            diff_permission("arn:a", Some(&statement)),
            Action::Unchanged
        );
        assert_eq!(
            diff_permission("arn:b", Some(&statement)),
            Action::Update(BTreeSet::from([PermissionField::SourceArn]))
        );
        assert_eq!(diff_permission("arn:a", None), Action::Create);
    }

    fn state(state: State, last_update: LastUpdateStatus) -> FunctionState {
        FunctionState {
            state,
            last_update,
            state_reason: Some("image not found".into()),
            last_update_reason: Some("out of memory".into()),
        }
    }

    #[test]
    fn an_update_may_follow_a_failed_one_and_reactivates_an_inactive_function() {
        use LastUpdateStatus as U;
        assert_eq!(
            state(State::Active, U::Failed).before_update(),
            Readiness::Ready
        );
        assert_eq!(
            state(State::Inactive, U::Successful).before_update(),
            Readiness::Ready
        );
        assert_eq!(
            state(State::Active, U::Successful).before_update(),
            Readiness::Ready
        );
        assert_eq!(
            state(State::Active, U::InProgress).before_update(),
            Readiness::Wait
        );
        assert_eq!(
            state(State::Pending, U::Successful).before_update(),
            Readiness::Wait
        );
        let Readiness::Broken(why) = state(State::Failed, U::Successful).before_update() else {
            panic!("a function whose creation failed can be updated");
        };
        assert!(
            why.contains("image not found") && why.contains("delete"),
            "{why}"
        );
    }

    #[test]
    fn a_change_has_taken_when_active_and_successful() {
        use LastUpdateStatus as U;
        assert_eq!(
            state(State::Active, U::Successful).after_change(),
            Readiness::Ready
        );
        assert_eq!(
            state(State::Pending, U::Successful).after_change(),
            Readiness::Wait
        );
        assert_eq!(
            state(State::Active, U::InProgress).after_change(),
            Readiness::Wait
        );
        let Readiness::Broken(why) = state(State::Active, U::Failed).after_change() else {
            panic!("a failed update was taken for a success");
        };
        assert!(why.contains("out of memory"), "{why}");
        assert!(matches!(
            state(State::Failed, U::Successful).after_change(),
            Readiness::Broken(_)
        ));
    }
}
