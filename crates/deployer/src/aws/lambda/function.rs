//! The function itself (`$LATEST`): read, diff over [`FunctionField`],
//! create (retrying while a new role is not yet assumable), update its code
//! and configuration, tag, delete.

use super::*;
use crate::aws::permissions::{Declared, Scope, call, implied};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
// CreateFunction and UpdateFunctionConfiguration hand Lambda the execution
// role: IAM checks iam:PassRole for it ("Grant a user permissions to pass
// a role to an AWS service", IAM User Guide).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("GetFunction", "lambda:GetFunction", Scope::Function),
        call("ListTags", "lambda:ListTags", Scope::Function),
        call("TagResource", "lambda:TagResource", Scope::Function),
        call("CreateFunction", "lambda:CreateFunction", Scope::Function),
        call(
            "UpdateFunctionCode",
            "lambda:UpdateFunctionCode",
            Scope::Function,
        ),
        call(
            "UpdateFunctionConfiguration",
            "lambda:UpdateFunctionConfiguration",
            Scope::Function,
        ),
        call("DeleteFunction", "lambda:DeleteFunction", Scope::Function),
        implied("iam:PassRole", Scope::PassExecutionRole),
    ],
};

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

/// The function's `$LATEST`, or a version or alias when `qualifier` is
/// given; `None` when it does not exist.
pub async fn read_function(
    client: &Client,
    name: &str,
    qualifier: Option<&str>,
) -> Result<Option<ActualFunction>, AwsError> {
    let Some(answer) = none_if(
        ErrorKind::NotFound,
        "GetFunction",
        name,
        get_function(client, name, qualifier).await,
    )?
    else {
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
        image_uri: answer.code().and_then(code_image).unwrap_or_default(),
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

/// GetFunction of `$LATEST`, or of a version or alias (`qualifier`): the
/// one call both [`read_function`] and the image readers make.
pub(super) async fn get_function(
    client: &Client,
    name: &str,
    qualifier: Option<&str>,
) -> Result<
    aws_sdk_lambda::operation::get_function::GetFunctionOutput,
    aws_sdk_lambda::error::SdkError<aws_sdk_lambda::operation::get_function::GetFunctionError>,
> {
    client
        .get_function()
        .function_name(name)
        .set_qualifier(qualifier.map(str::to_string))
        .send()
        .await
}

/// The image a function or version runs: as it was given when that was by
/// digest (the deployer always gives one), else the digest Lambda resolved
/// from the tag (`ResolvedImageUri`).
pub(super) fn code_image(code: &aws_sdk_lambda::types::FunctionCodeLocation) -> Option<String> {
    match code.image_uri() {
        Some(uri) if uri.contains('@') => Some(uri.to_string()),
        given => code.resolved_image_uri().or(given).map(str::to_string),
    }
}

/// The function's tags, from ListTags. GetFunction's `Tags` are no
/// substitute: "Lambda returns tag data only if you have explicit allow
/// permissions for lambda:ListTags" (GetFunction, AWS Lambda API
/// Reference), so without that permission every `up` would see no tags,
/// tag again and count the function as changed.
pub(super) async fn list_tags(
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
pub(super) enum FunctionCall {
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
pub(super) async fn update_function(
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

pub(super) async fn create_function(
    client: &Client,
    desired: &DesiredFunction,
) -> Result<(), AwsError> {
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

/// The function tag that records the versions that passed their checks
/// (the smoke test and the public path check), newest last, as numbers
/// separated by spaces. A tag, because it must outlive the machine that
/// deployed, and on the function, because "Lambda does not support adding
/// tags to aliases or versions" (TagResource, AWS Lambda API Reference).
pub const PASSED_TAG: &str = "deployer:passed-versions";

/// How many passed versions the tag keeps: a tag value holds at most 256
/// characters ("Tag naming limits and requirements", Tagging AWS
/// Resources), and a rollback goes a few versions back at most.
const PASSED_KEPT: usize = 20;

/// The versions recorded in a [`PASSED_TAG`] value, oldest first; what is
/// not a version number (a tag edited by hand) is ignored.
pub fn parse_passed(value: &str) -> Vec<u64> {
    let mut versions: Vec<u64> = value
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    versions.sort_unstable();
    versions.dedup();
    versions
}

/// The [`PASSED_TAG`] value with `version` added, keeping the newest
/// [`PASSED_KEPT`].
pub fn with_passed(value: &str, version: u64) -> String {
    let mut versions = parse_passed(value);
    versions.push(version);
    versions.sort_unstable();
    versions.dedup();
    let skip = versions.len().saturating_sub(PASSED_KEPT);
    versions[skip..]
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The versions of the function that passed their checks, oldest first
/// (none when the function does not exist or never recorded one). Old
/// versions may be pruned, but never the newest of these: it is where
/// `rollback` goes.
pub async fn passed_versions(client: &Client, name: &str) -> Result<Vec<u64>, AwsError> {
    let Some(function) = read_function(client, name, None).await? else {
        return Ok(Vec::new());
    };
    Ok(function
        .tags
        .get(PASSED_TAG)
        .map(|value| parse_passed(value))
        .unwrap_or_default())
}

/// Records that `version` of the function passed its checks. The stage
/// lock makes this read-then-write safe from another deployer.
pub async fn record_passed(client: &Client, name: &str, version: &str) -> Result<(), AwsError> {
    let Ok(number) = version.parse::<u64>() else {
        return Err(AwsError::invalid_answer(
            "TagResource",
            name,
            format!("{version:?} is not a published version number"),
        ));
    };
    let Some(function) = read_function(client, name, None).await? else {
        return Err(AwsError::invalid_answer(
            "TagResource",
            name,
            "the function no longer exists",
        ));
    };
    let now = function.tags.get(PASSED_TAG).map(String::as_str);
    client
        .tag_resource()
        .resource(&function.arn)
        .tags(PASSED_TAG, with_passed(now.unwrap_or_default(), number))
        .send()
        .await
        .map_err(|err| aws_error("TagResource", name, err))?;
    Ok(())
}
