//! The API's plan: a field enum per part of the API and [`ApiPlan`], one
//! action per part, with the redeploy decided here once.

use super::*;

/// What of the REST API itself can differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestApiField {
    EndpointType,
    Tags,
}

impl Field for RestApiField {}

/// What of a gateway response can differ: its CORS headers, put whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayResponseField {
    CorsHeaders,
}

impl Field for GatewayResponseField {}

/// What of the stage's settings can differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageField {
    Throttling,
    Tracing,
    Tags,
}

impl Field for StageField {}

/// What of the usage plan can differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsagePlanField {
    /// The plan does not cover the stage.
    ApiStages,
    Throttle,
    /// The stage's API key is not bound to the plan.
    ApiKey,
}

impl Field for UsagePlanField {}

/// Every action on the stage's API, in the order [`apply_api`] takes them:
/// rest api, resource (stale ones deleted), methods (with their
/// integrations), gateway responses, deployment, stage, api key, usage
/// plan. The redeploy decision is made here, once.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiPlan {
    pub rest_api: Action<RestApiField>,
    pub resource: Action<NoField>,
    /// Other resources under the root (an old path): each is deleted.
    pub stale_resources: Vec<ActualResource>,
    /// By HTTP method: the desired ones, then those to delete.
    pub methods: Vec<(String, Action<MethodField>)>,
    /// By gateway response type.
    pub gateway_responses: Vec<(String, Action<GatewayResponseField>)>,
    /// `Create`: a new deployment (after any change above, or when the
    /// stage serves another definition than the desired one).
    pub deployment: Action<NoField>,
    pub stage: Action<StageField>,
    pub api_key: Action<NoField>,
    pub usage_plan: Action<UsagePlanField>,
}

impl ApiPlan {
    pub fn is_change(&self) -> bool {
        self.rest_api.is_change()
            || self.resource.is_change()
            || !self.stale_resources.is_empty()
            || self.methods.iter().any(|(_, a)| a.is_change())
            || self.gateway_responses.iter().any(|(_, a)| a.is_change())
            || self.deployment.is_change()
            || self.stage.is_change()
            || self.api_key.is_change()
            || self.usage_plan.is_change()
    }
}

pub(super) fn diff_rest_api(
    desired: &DesiredApi,
    actual: Option<&ActualApi>,
) -> Action<RestApiField> {
    let Some(actual) = actual else {
        return Action::Create;
    };
    let mut fields = BTreeSet::new();
    if !actual.regional {
        fields.insert(RestApiField::EndpointType);
    }
    if missing_tags(&desired.tags, &actual.tags).next().is_some() {
        fields.insert(RestApiField::Tags);
    }
    Action::update_if(fields)
}

/// Per desired method its action, then the methods to delete.
pub(super) fn diff_methods(
    desired: &DesiredApi,
    actual: Option<&ActualResource>,
) -> Vec<(String, Action<MethodField>)> {
    let empty = BTreeMap::new();
    let actual_methods = actual.map(|r| &r.methods).unwrap_or(&empty);
    let wanted = desired.methods.iter().map(|(name, shape)| {
        let action = match actual_methods.get(name) {
            None => Action::Create,
            Some(current) => Action::update_if(shape.differences(current)),
        };
        (name.clone(), action)
    });
    let removed = actual_methods
        .keys()
        .filter(|name| !desired.methods.contains_key(*name))
        .map(|name| (name.clone(), Action::Delete));
    wanted.chain(removed).collect()
}

/// Per gateway response type the deployer sets, its action: `Create`
/// when the type is at API Gateway's default, an update of its
/// `cors_headers` when they differ. Headers someone else added count as a
/// difference: the response is put whole.
pub(super) fn diff_gateway_responses(
    desired: &DesiredApi,
    actual: Option<&ActualApi>,
) -> Vec<(String, Action<GatewayResponseField>)> {
    desired
        .gateway_responses
        .iter()
        .map(|(kind, headers)| {
            let action = match actual.and_then(|a| a.gateway_responses.get(kind)) {
                None => Action::Create,
                Some(current) if current == headers => Action::Unchanged,
                Some(_) => Action::Update(BTreeSet::from([GatewayResponseField::CorsHeaders])),
            };
            (kind.clone(), action)
        })
        .collect()
}

pub(super) fn diff_stage_settings(
    desired: &DesiredApi,
    actual: Option<&ActualStage>,
) -> Action<StageField> {
    let Some(stage) = actual else {
        return Action::Create;
    };
    let mut fields = BTreeSet::new();
    if stage.rate_limit != Some(desired.rate_limit)
        || stage.burst_limit != Some(desired.burst_limit)
    {
        fields.insert(StageField::Throttling);
    }
    if stage.tracing != desired.tracing {
        fields.insert(StageField::Tracing);
    }
    if missing_tags(&desired.tags, &stage.tags).next().is_some() {
        fields.insert(StageField::Tags);
    }
    Action::update_if(fields)
}

pub(super) fn diff_usage_plan(
    desired: &DesiredApi,
    api_id: Option<&str>,
    actual: Option<&ActualUsagePlan>,
    key: Option<&ActualApiKey>,
) -> Action<UsagePlanField> {
    let Some(plan) = actual else {
        return Action::Create;
    };
    let mut fields = BTreeSet::new();
    let bound = api_id.is_some_and(|id| {
        plan.api_stages
            .iter()
            .any(|(a, s)| a == id && *s == desired.stage_name)
    });
    if !bound {
        fields.insert(UsagePlanField::ApiStages);
    }
    if plan.rate_limit != Some(desired.rate_limit) || plan.burst_limit != Some(desired.burst_limit)
    {
        fields.insert(UsagePlanField::Throttle);
    }
    if !key.is_some_and(|k| plan.key_ids.contains(&k.id)) {
        fields.insert(UsagePlanField::ApiKey);
    }
    Action::update_if(fields)
}

/// Everything [`apply_api`] has to do to make `actual` the desired API.
pub fn diff_api(desired: &DesiredApi, actual: Option<&ActualApi>) -> ApiPlan {
    let rest_api = diff_rest_api(desired, actual);
    let resource = actual.and_then(|a| a.resource.as_ref());
    let stale_resources = actual
        .map(|a| a.stale_resources.clone())
        .unwrap_or_default();
    let methods = diff_methods(desired, resource);
    let gateway_responses = diff_gateway_responses(desired, actual);
    let resource = Action::create_if(resource.is_none());
    let api_changed = rest_api.is_change()
        || resource.is_change()
        || !stale_resources.is_empty()
        || methods.iter().any(|(_, a)| a.is_change())
        || gateway_responses.iter().any(|(_, a)| a.is_change());
    let stage = actual.and_then(|a| a.stage.as_ref());
    let deployment = Action::create_if(
        api_changed
            || stage.and_then(|s| s.deployment_fingerprint.as_deref())
                != Some(desired.fingerprint().as_str()),
    );
    let key = actual.and_then(|a| a.api_key.as_ref());
    let plan = actual.and_then(|a| a.usage_plan.as_ref());
    let (api_key, usage_plan) = match &desired.api_key_name {
        Some(_) => (
            Action::create_if(key.is_none()),
            diff_usage_plan(desired, actual.map(|a| a.id.as_str()), plan, key),
        ),
        None => (
            if key.is_some() {
                Action::Delete
            } else {
                Action::Unchanged
            },
            if plan.is_some() {
                Action::Delete
            } else {
                Action::Unchanged
            },
        ),
    };
    ApiPlan {
        rest_api,
        resource,
        stale_resources,
        methods,
        gateway_responses,
        deployment,
        stage: diff_stage_settings(desired, stage),
        api_key,
        usage_plan,
    }
}
