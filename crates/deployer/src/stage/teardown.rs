//! Tearing a stage down: a plan of deletes over what the survey found
//! ([`Survey::found`]), and the one function that carries it out, callers
//! before what they call — the API's permission on the alias, the REST API
//! (with its key and usage plan), the alias's provisioned concurrency and
//! the function's reservation, the function (with its alias and versions),
//! the role, the log group, and last the app's ECR repository, but only
//! once no other function uses an image of it (stages share it). Deleting
//! in this order, an interrupted run leaves nothing that points at what is
//! gone, and a second run finishes the work.

use anyhow::Result;
use serde::Serialize;

use super::actual::Found;
use super::desired::PERMISSION_ID;
use super::survey::Survey;
use crate::aws::{Clients, apigw, ecr, iam, lambda, logs};
use crate::plan::Kind;
use crate::ui::Ui;

/// A resource left in place, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kept {
    pub kind: Kind,
    pub name: String,
    pub reason: String,
}

/// What a destroy deletes, in the order it deletes it, and what it keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Teardown {
    pub remove: Vec<Found>,
    pub kept: Vec<Kept>,
}

/// Where a kind goes in a teardown: callers first. `None`: it is part of
/// another resource and goes with it, unlisted (the API's stage, methods
/// and deployments with the REST API; the repository's policies and images
/// with the repository).
fn teardown_rank(kind: Kind) -> Option<u8> {
    match kind {
        Kind::LambdaPermission => Some(0),
        Kind::ApiRestApi => Some(1),
        Kind::ApiKey => Some(2),
        Kind::ApiUsagePlan => Some(3),
        // Deleting the function would take both with it; removed on their
        // own first, so the output names them and the allocation (which is
        // billed) ends before the slower deletions.
        Kind::LambdaProvisionedConcurrency => Some(4),
        Kind::LambdaReservedConcurrency => Some(5),
        Kind::LambdaAlias => Some(6),
        Kind::LambdaVersion => Some(7),
        Kind::LambdaFunction => Some(8),
        Kind::IamRole => Some(9),
        Kind::LogGroup => Some(10),
        Kind::EcrRepository => Some(11),
        Kind::ApiResource
        | Kind::ApiMethod
        | Kind::ApiGatewayResponse
        | Kind::ApiDeployment
        | Kind::ApiStage
        | Kind::EcrLifecyclePolicy
        | Kind::EcrRepositoryPolicy
        | Kind::EcrImage => None,
        // The optional parts' kinds, ranked among the above by `parts`.
        _ => super::parts::teardown_rank(kind),
    }
}

/// The deletes that remove everything `survey` found, callers first. The
/// repository stays while another function uses an image of it.
pub fn plan(survey: &Survey) -> Teardown {
    let users = &survey.actual.repository_users;
    let mut teardown = Teardown::default();
    for found in survey.found() {
        if teardown_rank(found.kind).is_none() {
            continue;
        }
        if found.kind == Kind::EcrRepository && !users.is_empty() {
            teardown.kept.push(Kept {
                kind: found.kind,
                name: found.name,
                reason: format!("still used by {}", users.join(", ")),
            });
        } else {
            teardown.remove.push(found);
        }
    }
    // Stable: several of a kind (versions, duplicate APIs) keep their order.
    teardown.remove.sort_by_key(|f| teardown_rank(f.kind));
    teardown
}

/// Whether the stage's function carries `deployer:protected=true`: it was
/// deployed protected, whatever deploy.toml says now.
pub fn tagged_protected(survey: &Survey) -> bool {
    survey
        .actual
        .function
        .as_ref()
        .and_then(|f| f.tags.get(crate::names::TAG_PROTECTED))
        .is_some_and(|v| v == "true")
}

/// Surveys `stage` for a destroy, and says whether its function's tags say
/// it is protected where deploy.toml does not (it was deployed protected,
/// and its table is gone or changed). Such a stage had a repository of its
/// own, `{app}-{stage}`, so it is surveyed again as protected to find it.
pub async fn survey_tagged(
    stage: &crate::config::Stage,
    names: &crate::names::Names,
    clients: &Clients,
) -> Result<(Survey, bool)> {
    let survey = super::survey(stage, names, clients, super::Purpose::Destroy).await?;
    if stage.protected || !tagged_protected(&survey) {
        return Ok((survey, false));
    }
    let protected = crate::config::Stage {
        protected: true,
        ..stage.clone()
    };
    let names = crate::names::Names::new(&protected, &names.account);
    let survey = super::survey(&protected, &names, clients, super::Purpose::Destroy).await?;
    Ok((survey, true))
}

/// Surveys the stage for a destroy and removes everything found, with no
/// question: `deployer prune`'s removal of an expired preview, run under
/// the stage's lock by its caller.
pub async fn remove_stage(
    stage: &crate::config::Stage,
    names: &crate::names::Names,
    ui: &Ui,
    clients: &Clients,
) -> Result<Teardown> {
    let survey = super::survey(stage, names, clients, super::Purpose::Destroy).await?;
    // Checked again under the lock: a stage deployed protected meanwhile
    // is not a preview to prune.
    if tagged_protected(&survey) {
        anyhow::bail!(
            "stage `{}` is now tagged protected: not pruned, nothing was deleted",
            stage.name
        );
    }
    let teardown = plan(&survey);
    carry_out(ui, clients, &survey, &teardown).await?;
    Ok(teardown)
}

/// Deletes what `teardown` lists, in its order: each step is idempotent,
/// so a run stopped anywhere is finished by the next.
pub async fn carry_out(
    ui: &Ui,
    clients: &Clients,
    survey: &Survey,
    teardown: &Teardown,
) -> Result<()> {
    let desired = &survey.desired;
    let actual = &survey.actual;
    let function = desired.function_name.as_str();
    let alias = desired.alias_name.as_str();
    let mut api_deleted = false;
    let mut parts = super::parts::PartsRemoval::default();
    for found in &teardown.remove {
        match found.kind {
            Kind::LambdaPermission => {
                let step = ui.step(found.kind);
                lambda::remove_permission(&clients.lambda, function, alias, PERMISSION_ID).await?;
                step.finish("removed");
            }
            // One call deletes every REST API of the stage's name and tags
            // (duplicates too) with its key and usage plan.
            Kind::ApiRestApi if !api_deleted => {
                let step = ui.step(found.kind);
                apigw::delete_api(&clients.apigw, &desired.api.name, &desired.api.tags).await?;
                api_deleted = true;
                let extras = actual
                    .api
                    .as_ref()
                    .is_some_and(|a| a.api_key.is_some() || a.usage_plan.is_some());
                step.finish(if extras {
                    "removed with its key and usage plan"
                } else {
                    "removed"
                });
            }
            Kind::LambdaProvisionedConcurrency => {
                let step = ui.step(found.kind);
                lambda::delete_provisioned(&clients.lambda, function, alias).await?;
                step.finish("removed");
            }
            Kind::LambdaReservedConcurrency => {
                let step = ui.step(found.kind);
                lambda::delete_reserved(&clients.lambda, function).await?;
                step.finish("removed");
            }
            Kind::LambdaFunction => {
                let step = ui.step(found.kind);
                lambda::delete_function(&clients.lambda, function).await?;
                let versions = match actual.versions.len() {
                    1 => "1 version".to_string(),
                    n => format!("{n} versions"),
                };
                let alias = if actual.alias.is_some() {
                    "its alias and "
                } else {
                    ""
                };
                step.finish(format!("removed with {alias}{versions}"));
            }
            Kind::IamRole => {
                let step = ui.step(found.kind);
                iam::delete_role(&clients.iam, &desired.role.name).await?;
                step.finish("removed");
            }
            Kind::LogGroup => {
                let step = ui.step(found.kind);
                logs::delete_log_group(&clients.logs, &desired.log_group.name).await?;
                step.finish("removed");
            }
            Kind::EcrRepository => {
                let step = ui.step(found.kind);
                ecr::delete_repository(&clients.ecr, &desired.repository.name).await?;
                step.finish("removed with its images");
            }
            // Gone with the REST API or the function; the others are
            // never listed (`teardown_rank`).
            Kind::ApiRestApi
            | Kind::ApiKey
            | Kind::ApiUsagePlan
            | Kind::LambdaAlias
            | Kind::LambdaVersion
            | Kind::ApiResource
            | Kind::ApiMethod
            | Kind::ApiGatewayResponse
            | Kind::ApiDeployment
            | Kind::ApiStage
            | Kind::EcrLifecyclePolicy
            | Kind::EcrRepositoryPolicy
            | Kind::EcrImage => {}
            // The optional parts' kinds.
            _ => {
                parts
                    .remove(ui, clients, &desired.parts, &actual.parts, found)
                    .await?
            }
        }
    }
    for kept in &teardown.kept {
        ui.step(kept.kind).finish(format!("kept: {}", kept.reason));
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::aws::apigw::ActualApi;
    use crate::config::Stage;
    use crate::names::Names;
    use crate::stage::actual::ActualStage;
    use crate::stage::desired::DesiredStage;
    use crate::stage::plan;

    pub(crate) fn survey(actual: ActualStage) -> Survey {
        let stage = Stage::defaults("shop", "dev", "us-east-1");
        let desired = DesiredStage::new(&stage, Names::new(&stage, "123456789012"));
        let plan = plan::plan(&desired, None, &actual);
        Survey {
            desired,
            image: None,
            actual,
            plan,
        }
    }

    pub(crate) fn kinds(found: &[Found]) -> Vec<Kind> {
        found.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn nothing_found_is_nothing_to_remove() {
        let teardown = plan(&survey(ActualStage::default()));
        assert_eq!(teardown, Teardown::default());
    }

    #[test]
    fn callers_go_before_what_they_call_and_a_used_repository_stays() {
        let function = lambda::ActualFunction {
            name: "shop-dev".into(),
            arn: "arn:aws:lambda:us-east-1:123456789012:function:shop-dev".into(),
            version: "$LATEST".into(),
            image_uri: "repo@sha256:1".into(),
            role_arn: "role".into(),
            memory_mb: 128,
            timeout_s: 3,
            architecture: None,
            environment: Default::default(),
            tracing: false,
            state: "Active".into(),
            last_update_status: "Successful".into(),
            tags: Default::default(),
        };
        let actual = ActualStage {
            repository: Some(ecr::ActualRepository {
                name: "shop".into(),
                arn: "arn".into(),
                uri: "uri".into(),
                scan_on_push: true,
                immutable_tags: false,
                tags: Default::default(),
            }),
            role: Some(iam::ActualRole {
                name: "shop-dev-exec".into(),
                arn: "arn".into(),
                trust_policy: serde_json::Value::Null,
                managed_policies: Default::default(),
                inline_policies: Vec::new(),
                tags: Default::default(),
            }),
            log_group: Some(logs::ActualLogGroup {
                name: "/aws/lambda/shop-dev".into(),
                retention_days: Some(30),
                tags: Default::default(),
            }),
            function: Some(function),
            reserved: Some(2),
            provisioned: Some(lambda::ProvisionedConcurrency {
                requested: 1,
                allocated: 1,
                available: 1,
                status: "READY".into(),
                reason: None,
            }),
            alias: Some(lambda::AliasInfo {
                name: "dev".into(),
                arn: "arn".into(),
                version: "1".into(),
            }),
            permission: Some(lambda::PermissionStatement {
                statement_id: PERMISSION_ID.into(),
                principal: "apigateway.amazonaws.com".into(),
                source_arn: None,
            }),
            versions: vec![lambda::VersionInfo {
                version: "1".into(),
                arn: "arn".into(),
                description: String::new(),
                last_modified: String::new(),
            }],
            repository_users: vec!["shop-prod".into()],
            ..ActualStage::default()
        };
        let teardown = plan(&survey(actual.clone()));
        assert_eq!(
            kinds(&teardown.remove),
            [
                Kind::LambdaPermission,
                Kind::LambdaProvisionedConcurrency,
                Kind::LambdaReservedConcurrency,
                Kind::LambdaAlias,
                Kind::LambdaVersion,
                Kind::LambdaFunction,
                Kind::IamRole,
                Kind::LogGroup
            ]
        );
        let names: Vec<&str> = teardown.remove.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names[0], "shop-dev:dev/deployer-apigateway");
        assert_eq!(names[3], "shop-dev:dev (version 1)");
        assert_eq!(names[4], "shop-dev:1");
        assert_eq!(teardown.kept.len(), 1);
        assert!(
            teardown.kept[0].reason.contains("shop-prod"),
            "{teardown:?}"
        );

        let unused = plan(&survey(ActualStage {
            repository_users: Vec::new(),
            ..actual
        }));
        assert_eq!(
            unused.remove.last().map(|f| f.kind),
            Some(Kind::EcrRepository)
        );
        assert!(unused.kept.is_empty());
    }

    /// The stage's REST API `a1`, with its tags, and `duplicates`.
    pub(crate) fn tagged_api(stage: &Stage, duplicates: Vec<String>) -> ActualApi {
        ActualApi {
            id: "a1".into(),
            regional: true,
            tags: stage.tags(),
            duplicates,
            root_id: "root".into(),
            resource: None,
            stale_resources: Vec::new(),
            stage: None,
            gateway_responses: Default::default(),
            api_key: None,
            usage_plan: None,
        }
    }

    #[test]
    fn the_stage_s_api_goes_with_its_duplicates() {
        let stage = Stage::defaults("shop", "dev", "us-east-1");
        let api = tagged_api(&stage, vec!["a2".into()]);
        let teardown = plan(&survey(ActualStage {
            api: Some(api),
            ..ActualStage::default()
        }));
        let names: Vec<(Kind, &str)> = teardown
            .remove
            .iter()
            .map(|f| (f.kind, f.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                (Kind::ApiRestApi, "shop-dev (a1)"),
                (Kind::ApiRestApi, "shop-dev (a2)")
            ]
        );
    }
}
