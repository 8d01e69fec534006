//! The stage's plan: desired vs actual, per resource a typed
//! [`Action`]. The decisions `up` would otherwise make twice live here,
//! once: whether the image is built, whether a version is published, where
//! the alias goes, whether the API is redeployed. This is also the only
//! place the resource kinds and their names are spelled for output.

use std::collections::BTreeSet;

use super::actual::ActualStage;
use super::desired::DesiredStage;
use crate::aws::{apigw, ecr, iam, lambda, logs};
use crate::config::Architecture;
use crate::config::Stage;
use crate::exit::{ExitStatus, Failure};
use crate::image::ImageRef;
use crate::plan::{Action, Change, FieldChange, Kind, NoField, Plan};

/// Everything `up` does to the stage, in its order.
#[derive(Debug, Clone, PartialEq)]
pub struct StagePlan {
    /// The image the stage runs, by tag; `None` from a survey that does not
    /// hash the image's inputs (`status`, `destroy`), whose plan is never
    /// applied.
    pub image_ref: Option<ImageRef>,
    pub repository: Action<ecr::RepositoryField>,
    pub lifecycle_policy: Action<ecr::LifecycleField>,
    pub repository_policy: Action<ecr::RepositoryPolicyField>,
    /// `Create`: compile, build and push the image (the registry lacks it).
    pub image: Action<NoField>,
    pub role: Action<iam::RoleField>,
    pub log_group: Action<logs::LogGroupField>,
    pub function: Action<lambda::FunctionField>,
    /// `Create`: publish a version (the function changes, or no published
    /// version runs what `$LATEST` runs).
    pub version: Action<NoField>,
    /// The published version that matches `$LATEST`, when none is published.
    pub current_version: Option<String>,
    pub alias: Action<lambda::AliasField>,
    /// The function's reserved concurrency: set once the function exists.
    pub reserved: Action<lambda::ReservedField>,
    /// The alias's provisioned concurrency: put once the alias points at
    /// the version that runs (Lambda refuses it on `$LATEST`).
    pub provisioned: Action<lambda::ProvisionedField>,
    /// The reservation goes below what the alias has provisioned: lower
    /// the provisioned amount first, or Lambda refuses the reservation.
    pub provisioned_first: bool,
    /// Wait until the alias's provisioned concurrency is `READY`: it was
    /// put, the alias moves (Lambda allocates for the new version), or a
    /// run before this one left it still allocating.
    pub wait_provisioned: bool,
    pub api: apigw::ApiPlan,
    pub permission: Action<lambda::PermissionField>,
    /// The old and new values of the updated fields, for output.
    pub values: Values,
    /// The optional parts' plan.
    pub parts: super::parts::PartsPlan,
}

/// Per resource the plan updates, each changed field's old and new value
/// (`terraform plan`'s `~ memory_size = 128 -> 256`), so that the question
/// before a protected `up` shows what it is about. Secrets never: the
/// function's environment is shown by variable names only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Values {
    pub function: Vec<FieldChange>,
    pub log_group: Vec<FieldChange>,
    pub reserved: Vec<FieldChange>,
    pub provisioned: Vec<FieldChange>,
    pub alias: Vec<FieldChange>,
}

/// The fields of `action` that an update changes.
fn updated<F: Copy>(action: &Action<F>) -> Vec<F> {
    match action {
        Action::Update(fields) => fields.iter().copied().collect(),
        Action::Create | Action::Delete | Action::Unchanged => Vec::new(),
    }
}

fn architecture(a: Architecture) -> &'static str {
    match a {
        Architecture::X86_64 => "x86_64",
        Architecture::Arm64 => "arm64",
    }
}

/// `k=v, ...` of the tags `wanted` names, as `actual` has them.
fn tags_text(
    wanted: &std::collections::BTreeMap<String, String>,
    actual: &std::collections::BTreeMap<String, String>,
) -> (String, String) {
    let old: Vec<String> = wanted
        .keys()
        .filter_map(|k| actual.get(k).map(|v| format!("{k}={v}")))
        .collect();
    let new: Vec<String> = wanted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    (old.join(", "), new.join(", "))
}

/// Which variables an environment change adds, changes and removes, by
/// name only: their values may be secrets.
fn environment_detail(
    wanted: &std::collections::BTreeMap<String, String>,
    actual: &std::collections::BTreeMap<String, String>,
) -> String {
    let mut parts = Vec::new();
    let added: Vec<&str> = wanted
        .keys()
        .filter(|k| !actual.contains_key(*k))
        .map(String::as_str)
        .collect();
    let changed: Vec<&str> = wanted
        .iter()
        .filter(|(k, v)| actual.get(*k).is_some_and(|old| old != *v))
        .map(|(k, _)| k.as_str())
        .collect();
    let removed: Vec<&str> = actual
        .keys()
        .filter(|k| !wanted.contains_key(*k))
        .map(String::as_str)
        .collect();
    for (what, names) in [("added", added), ("changed", changed), ("removed", removed)] {
        if !names.is_empty() {
            parts.push(format!("{what} {}", names.join(", ")));
        }
    }
    format!("{} (values not shown)", parts.join("; "))
}

fn function_values(
    desired: &lambda::DesiredFunction,
    actual: Option<&lambda::ActualFunction>,
    action: &Action<lambda::FunctionField>,
) -> Vec<FieldChange> {
    use lambda::FunctionField as F;
    let Some(actual) = actual else {
        return Vec::new();
    };
    updated(action)
        .into_iter()
        .map(|field| match field {
            F::Image => FieldChange::new(field, Some(&actual.image_uri), Some(&desired.image_uri)),
            F::Architecture => FieldChange::new(
                field,
                actual.architecture.map(architecture),
                Some(architecture(desired.architecture)),
            ),
            F::Memory => FieldChange::new(
                field,
                Some(format!("{} MB", actual.memory_mb)),
                Some(format!("{} MB", desired.memory_mb)),
            ),
            F::Timeout => FieldChange::new(
                field,
                Some(format!("{} s", actual.timeout_s)),
                Some(format!("{} s", desired.timeout_s)),
            ),
            F::Environment => FieldChange::sensitive(
                field,
                environment_detail(&desired.environment, &actual.environment),
            ),
            F::Tracing => {
                let mode = |on: bool| if on { "Active" } else { "PassThrough" };
                FieldChange::new(
                    field,
                    Some(mode(actual.tracing)),
                    Some(mode(desired.tracing)),
                )
            }
            F::Role => FieldChange::new(field, Some(&actual.role_arn), Some(&desired.role_arn)),
            F::Tags => {
                let (old, new) = tags_text(&desired.tags, &actual.tags);
                FieldChange::new(field, Some(old), Some(new))
            }
        })
        .collect()
}

fn log_group_values(
    desired: &logs::DesiredLogGroup,
    actual: Option<&logs::ActualLogGroup>,
    action: &Action<logs::LogGroupField>,
) -> Vec<FieldChange> {
    let Some(actual) = actual else {
        return Vec::new();
    };
    let days = |d: i32| format!("{d} days");
    updated(action)
        .into_iter()
        .map(|field| match field {
            logs::LogGroupField::Retention => FieldChange::new(
                field,
                Some(actual.retention_days.map_or("never expire".into(), days)),
                Some(days(desired.retention_days)),
            ),
            logs::LogGroupField::Tags => {
                let (old, new) = tags_text(&desired.tags, &actual.tags);
                FieldChange::new(field, Some(old), Some(new))
            }
        })
        .collect()
}

/// Refuses, before anything changes, reserved or provisioned concurrency
/// the account cannot give (its quota, read by the survey): AWS would
/// refuse it half-way through `up`, after the image, the function and the
/// alias had moved. The error names the deploy.toml line that asks for it.
pub fn check_account_room(
    stage: &Stage,
    desired: &DesiredStage,
    actual: &ActualStage,
) -> anyhow::Result<()> {
    let Some(account) = actual.account else {
        return Ok(());
    };
    let held = lambda::DesiredConcurrency {
        reserved: actual.reserved,
        provisioned: actual.provisioned.as_ref().map(|p| p.requested),
    };
    let Some(why) = lambda::room_for(desired.concurrency, held, account) else {
        return Ok(());
    };
    let at = if desired.concurrency.reserved.is_some() {
        &stage.function.reserved_at
    } else {
        &stage.function.provisioned_at
    };
    Err(match at {
        Some(at) => at.error(why).into(),
        None => Failure::tag(ExitStatus::Usage, anyhow::anyhow!(why)),
    })
}

/// Refuses, before anything changes, a REST API that has the stage's name
/// but not its tags: it may be another team's (API Gateway names are not
/// unique), and adopting it would rewrite its resources, methods and
/// deployment. The error says how to make it the stage's, or get it out of
/// the way.
pub fn check_api_is_ours(desired: &DesiredStage, actual: &ActualStage) -> anyhow::Result<()> {
    let api = match &actual.api {
        Some(api) if !api.is_ours(&desired.api.tags) => api,
        _ => return Ok(()),
    };
    let tags: Vec<String> = desired
        .api
        .tags
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    Err(Failure::tag(
        ExitStatus::Usage,
        anyhow::anyhow!(
            "REST API {} ({}) has the stage's name but not its tags ({}): it may belong to \
             someone else, so it is left untouched and nothing was changed. If it is this \
             stage's, tag it and run again: aws apigateway tag-resource --resource-arn {} \
             --tags {}; otherwise delete or rename it, or give [app] another name",
            desired.api.name,
            api.id,
            tags.join(", "),
            desired.names.rest_api_arn(&api.id),
            tags.join(",")
        ),
    ))
}

/// Compares the desired stage (running `image`, when known) with the
/// actual one. Changes nothing.
pub fn plan(desired: &DesiredStage, image: Option<&ImageRef>, actual: &ActualStage) -> StagePlan {
    // Before the image exists, its digest is unknown: any placeholder that
    // cannot equal a real digest makes the function's image differ.
    let image_uri = match (&actual.image_digest, image) {
        (Some(digest), _) => ecr::image_uri_by_digest(&desired.names.repository_uri, digest),
        (None, Some(image)) => {
            format!("{}@<new image {}>", desired.names.repository_uri, image.tag)
        }
        (None, None) => format!("{}@<image not hashed>", desired.names.repository_uri),
    };
    let role = iam::diff_role(&desired.role, actual.role.as_ref());
    let mut function =
        lambda::diff_function(&desired.function(&image_uri), actual.function.as_ref());
    // A role recreated under its old name keeps its ARN but not its
    // principal, and Lambda's grant to decrypt the function's environment
    // was made for the old one: every invoke fails with
    // KMSAccessDeniedException until the configuration is updated (AWS
    // Knowledge Center, "How do I resolve KMSAccessDeniedException errors
    // from AWS Lambda?"). So the role is set again, and the new version
    // this publishes is checked before the alias moves.
    if role == Action::Create && actual.function.is_some() {
        function = match function {
            Action::Update(mut fields) => {
                fields.insert(lambda::FunctionField::Role);
                Action::Update(fields)
            }
            _ => Action::Update(BTreeSet::from([lambda::FunctionField::Role])),
        };
    }
    let matching = match (&actual.function, &actual.newest_version) {
        (Some(latest), Some(newest)) if lambda::same_code_and_configuration(latest, newest) => {
            Some(newest.version.clone())
        }
        _ => None,
    };
    let publish = function.is_change() || matching.is_none();
    let log_group = logs::diff_log_group(&desired.log_group, actual.log_group.as_ref());
    let current_version = if publish { None } else { matching };
    let alias = match (&current_version, &actual.alias) {
        (Some(version), actual) => lambda::diff_alias(version, actual.as_ref()),
        (None, Some(_)) => Action::Update(BTreeSet::from([lambda::AliasField::Version])),
        (None, None) => Action::Create,
    };
    let permission = match (&actual.api, &actual.alias) {
        (Some(api), Some(_)) => lambda::diff_permission(
            &desired.permission_source(&api.id),
            actual.permission.as_ref(),
        ),
        _ => Action::Create,
    };
    let wanted = desired.concurrency;
    let reserved = lambda::diff_reserved(wanted.reserved, actual.reserved);
    let provisioned = lambda::diff_provisioned(wanted.provisioned, actual.provisioned.as_ref());
    let provisioned_first = reserved.is_change()
        && provisioned.is_change()
        && match (wanted.reserved, &actual.provisioned) {
            (Some(cap), Some(now)) => now.requested > cap,
            _ => false,
        };
    let wait_provisioned = wanted.provisioned.is_some()
        && (provisioned.is_change()
            || alias.is_change()
            || actual.provisioned.as_ref().is_some_and(|p| !p.is_ready()));
    StagePlan {
        image_ref: image.cloned(),
        repository: ecr::diff_repository(&desired.repository, actual.repository.as_ref()),
        lifecycle_policy: ecr::diff_lifecycle_policy(
            &desired.lifecycle_policy,
            actual.lifecycle_policy.as_deref(),
        ),
        repository_policy: ecr::diff_repository_policy(
            &desired.pull_statement,
            actual.repository_policy.as_deref(),
        ),
        image: Action::create_if(image.is_some() && actual.image_digest.is_none()),
        role,
        log_group: log_group.clone(),
        function: function.clone(),
        version: Action::create_if(publish),
        current_version: current_version.clone(),
        alias: alias.clone(),
        reserved: reserved.clone(),
        provisioned: provisioned.clone(),
        provisioned_first,
        wait_provisioned,
        api: apigw::diff_api(&desired.api, actual.api.as_ref()),
        parts: super::parts::plan(
            &desired.parts,
            &actual.parts,
            actual.api.as_ref().map(|api| api.id.as_str()),
        ),
        permission,
        values: Values {
            function: function_values(
                &desired.function(&image_uri),
                actual.function.as_ref(),
                &function,
            ),
            log_group: log_group_values(&desired.log_group, actual.log_group.as_ref(), &log_group),
            reserved: updated(&reserved)
                .into_iter()
                .map(|field| FieldChange::new(field, actual.reserved, wanted.reserved))
                .collect(),
            provisioned: updated(&provisioned)
                .into_iter()
                .map(|field| match field {
                    lambda::ProvisionedField::Amount => FieldChange::new(
                        field,
                        actual.provisioned.as_ref().map(|p| p.requested),
                        wanted.provisioned,
                    ),
                    lambda::ProvisionedField::Allocation => FieldChange::new(
                        field,
                        actual.provisioned.as_ref().map(|p| p.status.clone()),
                        Some("put again"),
                    ),
                })
                .collect(),
            alias: updated(&alias)
                .into_iter()
                .map(|field| {
                    let new = current_version
                        .clone()
                        .unwrap_or_else(|| "(the version this up publishes)".into());
                    FieldChange::new(field, actual.alias.as_ref().map(|a| &a.version), Some(new))
                })
                .collect(),
        },
    }
}

impl StagePlan {
    /// Every change, in the order `up` makes them, for output.
    pub fn changes(&self, desired: &DesiredStage) -> Plan {
        let repository = &desired.repository.name;
        let function = &desired.function_name;
        let mut changes = vec![
            Change::new(Kind::EcrRepository, repository, &self.repository),
            Change::new(Kind::EcrLifecyclePolicy, repository, &self.lifecycle_policy),
            Change::new(
                Kind::EcrRepositoryPolicy,
                repository,
                &self.repository_policy,
            ),
        ];
        // Without the image's hash (`status`, `destroy`) there is no image
        // to name.
        changes.extend(
            self.image_ref
                .as_ref()
                .map(|image| Change::new(Kind::EcrImage, image.by_tag(), &self.image)),
        );
        changes.extend([
            Change::new(Kind::IamRole, &desired.role.name, &self.role),
            Change::new(Kind::LogGroup, &desired.log_group.name, &self.log_group)
                .with_values(self.values.log_group.clone()),
            Change::new(Kind::LambdaFunction, function, &self.function)
                .with_values(self.values.function.clone()),
        ]);
        // The concurrency settings show when the stage asks for them or
        // has one to remove, as the API key does: most stages set neither.
        let concurrency = desired.concurrency;
        let provisioned =
            (concurrency.provisioned.is_some() || self.provisioned.is_change()).then(|| {
                Change::new(
                    Kind::LambdaProvisionedConcurrency,
                    desired.alias_label(),
                    &self.provisioned,
                )
                .with_values(self.values.provisioned.clone())
            });
        if self.provisioned_first {
            changes.extend(provisioned.clone());
        }
        if concurrency.reserved.is_some() || self.reserved.is_change() {
            changes.push(
                Change::new(Kind::LambdaReservedConcurrency, function, &self.reserved)
                    .with_values(self.values.reserved.clone()),
            );
        }
        changes.push(Change::new(Kind::LambdaVersion, function, &self.version));
        changes.push(
            Change::new(Kind::LambdaAlias, desired.alias_label(), &self.alias)
                .with_values(self.values.alias.clone()),
        );
        if !self.provisioned_first {
            changes.extend(provisioned);
        }
        changes.extend(api_changes(&desired.api, &self.api));
        changes.push(Change::new(
            Kind::LambdaPermission,
            desired.permission_label(),
            &self.permission,
        ));
        self.parts.add_changes(&desired.parts, &mut changes);
        Plan { changes }
    }
}

/// The API's changes, in the order `apigw::apply_api` makes them.
pub fn api_changes(desired: &apigw::DesiredApi, plan: &apigw::ApiPlan) -> Vec<Change> {
    let api = &desired.name;
    let resource = format!("{api}/{}", desired.path);
    let stage = format!("{api}/{}", desired.stage_name);
    let mut changes = vec![
        Change::new(Kind::ApiRestApi, api, &plan.rest_api),
        Change::new(Kind::ApiResource, &resource, &plan.resource),
    ];
    for stale in &plan.stale_resources {
        changes.push(Change::new(
            Kind::ApiResource,
            format!("{api}{}", stale.path),
            &Action::<NoField>::Delete,
        ));
    }
    for (method, action) in &plan.methods {
        changes.push(Change::new(
            Kind::ApiMethod,
            format!("{method} {resource}"),
            action,
        ));
    }
    for (response, action) in &plan.gateway_responses {
        changes.push(Change::new(
            Kind::ApiGatewayResponse,
            format!("{api}/{response}"),
            action,
        ));
    }
    changes.push(Change::new(Kind::ApiDeployment, &stage, &plan.deployment));
    changes.push(Change::new(Kind::ApiStage, &stage, &plan.stage));
    // Without api_key auth, the key and plan show only when there is one
    // to remove.
    let key_name = desired.api_key_name.as_deref().unwrap_or(api);
    if desired.api_key_name.is_some() || plan.api_key.is_change() {
        changes.push(Change::new(Kind::ApiKey, key_name, &plan.api_key));
    }
    if desired.api_key_name.is_some() || plan.usage_plan.is_change() {
        changes.push(Change::new(Kind::ApiUsagePlan, key_name, &plan.usage_plan));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Stage;
    use crate::names::Names;

    fn wanting(provisioned: i32, reserved: i32) -> (DesiredStage, ImageRef) {
        let mut stage = Stage::defaults("shop", "prod", "us-east-1");
        stage.function.provisioned_concurrency = provisioned;
        stage.function.reserved_concurrency = reserved;
        let desired = DesiredStage::new(&stage, Names::new(&stage, "123456789012"));
        let image = ImageRef::new(&desired.names.repository_uri, "abc");
        (desired, image)
    }

    fn ready(requested: i32) -> lambda::ProvisionedConcurrency {
        lambda::ProvisionedConcurrency {
            requested,
            allocated: requested,
            available: requested,
            status: "READY".into(),
            reason: None,
        }
    }

    /// The kinds of the plan's changes, in their order.
    fn kinds(desired: &DesiredStage, plan: &StagePlan) -> Vec<Kind> {
        plan.changes(desired)
            .changes
            .into_iter()
            .map(|c| c.kind)
            .collect()
    }

    #[test]
    fn a_stage_without_concurrency_settings_shows_none() {
        let (desired, image) = wanting(0, 0);
        let plan = plan(&desired, Some(&image), &ActualStage::default());
        let kinds = kinds(&desired, &plan);
        assert!(
            !kinds.iter().any(|k| matches!(
                k,
                Kind::LambdaReservedConcurrency | Kind::LambdaProvisionedConcurrency
            )),
            "{kinds:?}"
        );
        assert!(!plan.wait_provisioned);
    }

    #[test]
    fn provisioned_goes_on_the_alias_after_it_moves_and_is_waited_for() {
        let (desired, image) = wanting(1, 5);
        let plan = plan(&desired, Some(&image), &ActualStage::default());
        assert_eq!(plan.provisioned, Action::Create);
        assert_eq!(plan.reserved, Action::Create);
        assert!(plan.wait_provisioned && !plan.provisioned_first);
        let kinds = kinds(&desired, &plan);
        let at = |kind: Kind| kinds.iter().position(|k| *k == kind).unwrap();
        assert!(at(Kind::LambdaFunction) < at(Kind::LambdaReservedConcurrency));
        assert!(at(Kind::LambdaReservedConcurrency) < at(Kind::LambdaVersion));
        assert!(at(Kind::LambdaAlias) < at(Kind::LambdaProvisionedConcurrency));
    }

    #[test]
    fn a_reservation_below_the_provisioned_amount_lowers_it_first() {
        let (desired, image) = wanting(1, 2);
        let actual = ActualStage {
            provisioned: Some(ready(4)),
            ..ActualStage::default()
        };
        let plan = plan(&desired, Some(&image), &actual);
        assert!(plan.provisioned_first);
        let kinds = kinds(&desired, &plan);
        let at = |kind: Kind| kinds.iter().position(|k| *k == kind).unwrap();
        assert!(at(Kind::LambdaProvisionedConcurrency) < at(Kind::LambdaReservedConcurrency));
        assert!(at(Kind::LambdaProvisionedConcurrency) < at(Kind::LambdaAlias));

        // Raising the reservation needs no such care.
        let (desired, image) = wanting(4, 8);
        assert!(!super::plan(&desired, Some(&image), &actual).provisioned_first);
    }

    #[test]
    fn a_release_waits_for_the_allocation_that_follows_the_alias() {
        let (desired, image) = wanting(1, 0);
        let actual = ActualStage {
            alias: Some(lambda::AliasInfo {
                name: "prod".into(),
                arn: "arn:aws:lambda:us-east-1:123456789012:function:shop-prod:prod".into(),
                version: "1".into(),
            }),
            provisioned: Some(ready(1)),
            ..ActualStage::default()
        };
        let plan = plan(&desired, Some(&image), &actual);
        assert!(plan.alias.is_change());
        assert_eq!(plan.provisioned, Action::Unchanged);
        assert!(plan.wait_provisioned);
    }

    #[test]
    fn an_update_shows_old_and_new_values_but_no_secret() {
        let (desired, image) = wanting(0, 0);
        let wanted = desired.function("repo@sha256:new");
        let mut environment = wanted.environment.clone();
        environment.insert("API_TOKEN".into(), "old-secret".into());
        environment.insert("GONE".into(), "x".into());
        let actual = lambda::ActualFunction {
            name: wanted.name.clone(),
            arn: "arn:aws:lambda:us-east-1:123456789012:function:shop-prod".into(),
            version: "$LATEST".into(),
            image_uri: "repo@sha256:old".into(),
            role_arn: wanted.role_arn.clone(),
            memory_mb: wanted.memory_mb / 2,
            timeout_s: wanted.timeout_s,
            architecture: Some(wanted.architecture),
            environment,
            tracing: wanted.tracing,
            state: "Active".into(),
            last_update_status: "Successful".into(),
            tags: wanted.tags.clone(),
        };
        let mut with_secret = wanted.clone();
        with_secret
            .environment
            .insert("API_TOKEN".into(), "new-secret".into());
        let action = lambda::diff_function(&with_secret, Some(&actual));
        let values = function_values(&with_secret, Some(&actual), &action);
        let field = |name: &str| values.iter().find(|v| v.field == name).unwrap();
        let memory = field("memory");
        assert_eq!(memory.old, Some(format!("{} MB", wanted.memory_mb / 2)));
        assert_eq!(memory.new, Some(format!("{} MB", wanted.memory_mb)));
        assert_eq!(field("image").old.as_deref(), Some("repo@sha256:old"));
        let environment = field("environment");
        assert!(environment.sensitive && environment.old.is_none() && environment.new.is_none());
        assert_eq!(
            environment.detail.as_deref(),
            Some("changed API_TOKEN; removed GONE (values not shown)")
        );
        let text = format!("{values:?}");
        assert!(!text.contains("secret"), "{text}");

        // The whole plan carries them on the function's change.
        let actual_stage = ActualStage {
            function: Some(actual),
            ..ActualStage::default()
        };
        let plan = plan(&desired, Some(&image), &actual_stage);
        let changes = plan.changes(&desired).changes;
        let function = changes
            .iter()
            .find(|c| c.kind == Kind::LambdaFunction)
            .unwrap();
        assert!(
            function.values.iter().any(|v| v.field == "memory"),
            "{function:?}"
        );
    }

    #[test]
    fn a_recreated_role_updates_the_function_and_publishes_a_version() {
        let (desired, image) = wanting(0, 0);
        let uri = ecr::image_uri_by_digest(&desired.names.repository_uri, "sha256:1");
        let wanted = desired.function(&uri);
        let latest = lambda::ActualFunction {
            name: wanted.name.clone(),
            arn: format!(
                "arn:aws:lambda:us-east-1:123456789012:function:{}",
                wanted.name
            ),
            version: "$LATEST".into(),
            image_uri: wanted.image_uri.clone(),
            role_arn: wanted.role_arn.clone(),
            memory_mb: wanted.memory_mb,
            timeout_s: wanted.timeout_s,
            architecture: Some(wanted.architecture),
            environment: wanted.environment.clone(),
            tracing: wanted.tracing,
            state: "Active".into(),
            last_update_status: "Successful".into(),
            tags: wanted.tags.clone(),
        };
        let actual = ActualStage {
            image_digest: Some("sha256:1".into()),
            newest_version: Some(lambda::ActualFunction {
                version: "1".into(),
                ..latest.clone()
            }),
            function: Some(latest),
            ..ActualStage::default()
        };
        // The role is missing (deleted): it is created, and the function,
        // unchanged otherwise, is given it again and published anew.
        let plan = plan(&desired, Some(&image), &actual);
        assert_eq!(plan.role, Action::Create);
        assert_eq!(
            plan.function,
            Action::Update(BTreeSet::from([lambda::FunctionField::Role]))
        );
        assert_eq!(plan.version, Action::Create);
        assert!(plan.alias.is_change());
    }
}
