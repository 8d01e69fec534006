//! One resource at a time, the path `up` takes: read it (as
//! `stage::actual` does), diff it against the desired one (as
//! `stage::plan` does) and carry out that action (as `stage::apply` does),
//! with the adapters' own `read_*`, `diff_*` and `apply_*`. The adapters'
//! end-to-end tests go through here, so they test what `up` runs and
//! nothing the deployer itself never calls.
//!
//! Where a test wants the resource as it is afterwards, it is read back
//! here, after the apply, as a test's own look.

use deployer::aws::apigw::{self, ApiInfo, DesiredApi};
use deployer::aws::ecr::{self, ActualRepository, DesiredRepository};
use deployer::aws::iam::{self, DesiredRole};
use deployer::aws::lambda::{self, ActualFunction, DesiredFunction};
use deployer::aws::{AwsError, Outcome};

/// The repository; returns what was done and the repository read back.
pub async fn repository(
    client: &aws_sdk_ecr::Client,
    desired: &DesiredRepository,
) -> Result<(Outcome, ActualRepository), AwsError> {
    let actual = ecr::read_repository(client, &desired.name).await?;
    let action = ecr::diff_repository(desired, actual.as_ref());
    let outcome = ecr::apply_repository(client, desired, actual.as_ref(), &action).await?;
    let now = ecr::read_repository(client, &desired.name).await?;
    Ok((
        outcome,
        now.expect("the repository is there after its apply"),
    ))
}

/// The repository's lifecycle policy, `text`.
pub async fn lifecycle_policy(
    client: &aws_sdk_ecr::Client,
    repository: &str,
    text: &str,
) -> Result<Outcome, AwsError> {
    let actual = ecr::read_lifecycle_policy(client, repository).await?;
    let action = ecr::diff_lifecycle_policy(text, actual.as_deref());
    ecr::apply_lifecycle_policy(client, repository, text, &action).await
}

/// The repository policy's statement `statement`, beside any others.
pub async fn repository_policy(
    client: &aws_sdk_ecr::Client,
    repository: &str,
    statement: &serde_json::Value,
) -> Result<Outcome, AwsError> {
    let actual = ecr::read_repository_policy(client, repository).await?;
    let action = ecr::diff_repository_policy(statement, actual.as_deref());
    ecr::apply_repository_policy(client, repository, statement, actual.as_deref(), &action).await
}

/// The execution role; returns what was done and the role's ARN.
pub async fn role(
    client: &aws_sdk_iam::Client,
    desired: &DesiredRole,
) -> Result<(Outcome, String), AwsError> {
    let actual = iam::read_role(client, &desired.name).await?;
    let action = iam::diff_role(desired, actual.as_ref());
    let (outcome, arn) = iam::apply_role(client, desired, actual.as_ref(), &action).await?;
    Ok((outcome, arn.expect("only a delete leaves no role ARN")))
}

/// The function (`$LATEST`); returns what was done and the function read
/// back.
pub async fn function(
    client: &aws_sdk_lambda::Client,
    desired: &DesiredFunction,
) -> Result<(Outcome, ActualFunction), AwsError> {
    let actual = lambda::read_function(client, &desired.name, None).await?;
    let action = lambda::diff_function(desired, actual.as_ref());
    let outcome = lambda::apply_function(client, desired, actual.as_ref(), &action).await?;
    let now = lambda::read_function(client, &desired.name, None).await?;
    Ok((outcome, now.expect("the function is there after its apply")))
}

/// The permission `statement_id` that lets API Gateway, from `source_arn`
/// only, invoke `function:alias`.
pub async fn permission(
    client: &aws_sdk_lambda::Client,
    function: &str,
    alias: &str,
    statement_id: &str,
    source_arn: &str,
) -> Result<Outcome, AwsError> {
    let actual = lambda::read_permission(client, function, alias, statement_id).await?;
    let action = lambda::diff_permission(source_arn, actual.as_ref());
    lambda::apply_permission(client, function, alias, statement_id, source_arn, &action).await
}

/// The stage's API, everything of it the plan covers.
pub async fn api(
    client: &aws_sdk_apigateway::Client,
    desired: &DesiredApi,
) -> Result<(Outcome, ApiInfo), AwsError> {
    let actual = apigw::read_api(client, desired).await?;
    let plan = apigw::diff_api(desired, actual.as_ref());
    apigw::apply_api(client, desired, actual.as_ref(), &plan).await
}
