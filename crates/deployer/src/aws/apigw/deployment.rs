//! The deployment and the stage: a new deployment carrying the
//! definition's fingerprint, the stage pointed at it (created with its
//! tags when missing), and the stage's settings (throttling, tracing, tags).

use super::*;
use crate::aws::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("GetDeployment", "apigateway:GET", Scope::ApiOwned),
        call("CreateDeployment", "apigateway:POST", Scope::ApiOwned),
        call("GetStage", "apigateway:GET", Scope::ApiOwned),
        call("CreateStage", "apigateway:POST", Scope::ApiOwned),
        call("UpdateStage", "apigateway:PATCH", Scope::ApiOwned),
        call("DeleteStage", "apigateway:DELETE", Scope::ApiOwned),
    ],
};

pub(super) async fn read_stage(
    client: &Client,
    api_id: &str,
    stage: &str,
) -> Result<Option<ActualStage>, AwsError> {
    let answer = client
        .get_stage()
        .rest_api_id(api_id)
        .stage_name(stage)
        .send()
        .await;
    let resource = format!("{api_id}/{stage}");
    let Some(out) = none_if(ErrorKind::NotFound, "GetStage", resource, answer)? else {
        return Ok(None);
    };
    let deployment_id = out.deployment_id().map(str::to_string);
    let deployment_fingerprint = match &deployment_id {
        Some(id) => {
            let answer = client
                .get_deployment()
                .rest_api_id(api_id)
                .deployment_id(id)
                .send()
                .await;
            none_if(ErrorKind::NotFound, "GetDeployment", id, answer)?
                .and_then(|d| d.description().map(str::to_string))
        }
        None => None,
    };
    let settings = out.method_settings().and_then(|m| m.get(ALL_METHODS));
    Ok(Some(ActualStage {
        deployment_id,
        deployment_fingerprint,
        rate_limit: settings.map(|s| s.throttling_rate_limit()),
        burst_limit: settings.map(|s| s.throttling_burst_limit()),
        tracing: out.tracing_enabled(),
        tags: to_btree(out.tags()),
    }))
}

/// A new deployment carrying `fingerprint`, pointed at by the stage (which
/// is created with its tags when missing). Returns the deployment's id.
pub(super) async fn deploy(
    client: &Client,
    api_id: &str,
    desired: &DesiredApi,
    stage_exists: bool,
    fingerprint: &str,
) -> Result<String, AwsError> {
    let stage = format!("{api_id}/{}", desired.stage_name);
    // Deploying without a stage and then pointing the stage at it keeps
    // the stage's own settings and tags untouched.
    let deployment = retry_while(&[ErrorKind::Throttled], QUOTA_RETRY, || async {
        client
            .create_deployment()
            .rest_api_id(api_id)
            .description(fingerprint)
            .send()
            .await
            .map_err(|e| aws_error("CreateDeployment", &stage, e))
    })
    .await?;
    let deployment_id = required(deployment.id(), "CreateDeployment", &stage)?;
    if stage_exists {
        client
            .update_stage()
            .rest_api_id(api_id)
            .stage_name(&desired.stage_name)
            .patch_operations(patch(Op::Replace, "/deploymentId", &deployment_id))
            .send()
            .await
            .map_err(|e| aws_error("UpdateStage", &stage, e))?;
    } else {
        client
            .create_stage()
            .rest_api_id(api_id)
            .stage_name(&desired.stage_name)
            .deployment_id(&deployment_id)
            .set_tags(Some(desired.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| aws_error("CreateStage", &stage, e))?;
    }
    Ok(deployment_id)
}

pub(super) async fn update_stage_settings(
    client: &Client,
    api_id: &str,
    desired: &DesiredApi,
    fields: &BTreeSet<StageField>,
) -> Result<(), AwsError> {
    let stage = format!("{api_id}/{}", desired.stage_name);
    let mut settings = Vec::new();
    let mut tags = false;
    for field in fields {
        match field {
            StageField::Throttling => {
                settings.push(patch(
                    Op::Replace,
                    &format!("/{ALL_METHODS}/throttling/rateLimit"),
                    &desired.rate_limit.to_string(),
                ));
                settings.push(patch(
                    Op::Replace,
                    &format!("/{ALL_METHODS}/throttling/burstLimit"),
                    &desired.burst_limit.to_string(),
                ));
            }
            // X-Ray on the stage as on the function, so a trace starts at
            // the gateway ("Setting up X-Ray tracing for API Gateway REST
            // APIs").
            StageField::Tracing => settings.push(patch(
                Op::Replace,
                "/tracingEnabled",
                if desired.tracing { "true" } else { "false" },
            )),
            StageField::Tags => tags = true,
        }
    }
    if !settings.is_empty() {
        client
            .update_stage()
            .rest_api_id(api_id)
            .stage_name(&desired.stage_name)
            .set_patch_operations(Some(settings))
            .send()
            .await
            .map_err(|e| aws_error("UpdateStage", &stage, e))?;
    }
    if tags {
        tag(client, &desired.names.api_stage_arn(api_id), &desired.tags).await?;
    }
    Ok(())
}

pub(super) async fn delete_stage(
    client: &Client,
    api_id: &str,
    stage: &str,
) -> Result<(), AwsError> {
    delete_ignoring_missing(
        client
            .delete_stage()
            .rest_api_id(api_id)
            .stage_name(stage)
            .send()
            .await,
        "DeleteStage",
        &format!("{api_id}/{stage}"),
    )
}
