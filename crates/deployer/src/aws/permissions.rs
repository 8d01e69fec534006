//! The IAM permissions the deployer's AWS calls need, and the policy
//! document `deployer policy` assembles from them.
//!
//! One source of truth: every file under `aws/` that calls the SDK declares,
//! beside its calls, a [`Declared`] list (`PERMISSIONS`) naming each
//! operation it calls, the IAM action AWS authorizes it by and the
//! [`Scope`] it acts on. The policy is built from those lists only, and a
//! unit test reads every file's source and fails on an SDK call whose
//! operation the file does not declare (and on a declaration no call
//! uses), so a new call cannot ship without its permission. Adding one is
//! one line in that file's list, e.g.
//! `call("GetFunctionConcurrency", "lambda:GetFunctionConcurrency", Scope::Function)`.
//!
//! This file is the vocabulary: adapters import it, and it imports none of
//! them (the list of every file's declaration is `aws::declared`).
//!
//! Resources are the app's own, with the account and partition resolved;
//! `*` only where AWS authorizes nothing narrower ("Actions, resources, and
//! condition keys" of each service, Service Authorization Reference: an
//! action with no resource type takes only `*`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::names::{EXECUTION_ROLE_POLICIES, LAMBDA_PRINCIPAL, Names, TAG_APP, TAG_STAGE};

/// What one SDK call (or one step of Docker's push) needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    /// The SDK operation as the code calls it (`GetFunction`); `None` for
    /// what Docker does against the registry with the login token, which
    /// no SDK call of ours makes.
    pub operation: Option<&'static str>,
    /// The IAM action AWS authorizes it by (`lambda:GetFunction`,
    /// `apigateway:GET`).
    pub action: &'static str,
    pub scope: Scope,
}

/// An SDK operation and its IAM action, on `scope`.
pub const fn call(operation: &'static str, action: &'static str, scope: Scope) -> Permission {
    Permission {
        operation: Some(operation),
        action,
        scope,
    }
}

/// An action AWS checks without an SDK operation of ours by that name:
/// `iam:PassRole` when a call hands Lambda the role, and what Docker's push
/// does in the registry with the login token.
pub const fn implied(action: &'static str, scope: Scope) -> Permission {
    Permission {
        operation: None,
        action,
        scope,
    }
}

/// An SDK operation that needs no permission (`GetCallerIdentity`):
/// declared so the call-site test knows it, left out of the policy.
pub const fn needs_nothing(operation: &'static str) -> Permission {
    Permission {
        operation: Some(operation),
        action: "",
        scope: Scope::Nothing,
    }
}

/// The permissions one source file's calls need; `file` is that file's
/// `file!()`, which the call-site test reads.
#[derive(Debug, Clone, Copy)]
pub struct Declared {
    pub file: &'static str,
    pub permissions: &'static [Permission],
}

/// What an action is allowed on. Each scope becomes one statement of the
/// policy; the order here is the statements' order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The stage's ECR repository: `{app}`, shared by the unprotected
    /// stages, or the stage's own (`Stage::repository_name`), which no
    /// other stage's policy names.
    Repository,
    /// The stage's function `{app}-{stage}`, its versions and alias.
    Function,
    /// Every function of the app (`{app}-*`), read to see which images
    /// another stage's versions still use before deleting any.
    AppFunctions,
    /// The stage's execution role `{app}-{stage}-exec`.
    ExecutionRole,
    /// Attaching a policy to the execution role: only the AWS managed
    /// policies the deployer attaches (condition `iam:PolicyARN`).
    AttachToExecutionRole,
    /// Passing the execution role: only to Lambda (condition
    /// `iam:PassedToService`).
    PassExecutionRole,
    /// The function's log group `/aws/lambda/{app}-{stage}`.
    FunctionLogGroup,
    /// The stage lock's log groups: `/deployer/locks/{app}-{stage}` and
    /// every group below `/deployer/locks/{app}-{stage}/` (the one-shot
    /// marker that breaks a stale lock, and whatever else the lock keeps
    /// there).
    LockLogGroup,
    /// Listing API Gateway's collections (`/restapis`, `/apikeys`,
    /// `/usageplans`) to find the stage's by name: a collection has no
    /// tags, so no tag condition can narrow it (docs/iam-policy.md).
    ApiCollections,
    /// Creating a REST API, API key or usage plan: only with the stage's
    /// tags in the request (conditions `aws:RequestTag/...`, `aws:TagKeys`).
    ApiCreation,
    /// Any REST API, key or usage plan (and what is under them, and their
    /// tags) that carries the stage's tags (condition
    /// `aws:ResourceTag/...`): API Gateway picks ids at creation, so no
    /// policy written before can name them; the tags prove them ours.
    ApiOwned,
    /// `*`: actions AWS authorizes on no narrower resource
    /// (`ecr:GetAuthorizationToken`, `lambda:ListFunctions`,
    /// `logs:DescribeLogGroups`, `cloudwatch:GetMetricData`).
    Any,
    /// Nothing to allow ([`needs_nothing`]).
    Nothing,
    /// The stage's CloudWatch alarms, `alarm:{app}-{stage}-*`.
    StageAlarms,
    /// The stage's own alarm topic, `{app}-{stage}-alarms`.
    AlarmTopic,
}

/// API Gateway's collections of what the deployer creates there.
const COLLECTIONS: [&str; 3] = ["/restapis", "/apikeys", "/usageplans"];

/// The keys of the tags every resource of a stage carries (`Stage::tags`).
const TAG_KEYS: [&str; 2] = [TAG_APP, TAG_STAGE];

/// `StringEquals` on `{prefix}/deployer:app` and `{prefix}/deployer:stage`:
/// the targets' apps and stages.
fn tag_condition(prefix: &str, targets: &[Names]) -> serde_json::Value {
    let apps: BTreeSet<&str> = targets.iter().map(|t| t.app.as_str()).collect();
    let stages: BTreeSet<&str> = targets.iter().map(|t| t.stage.as_str()).collect();
    let [app_key, stage_key] = TAG_KEYS;
    serde_json::json!({"StringEquals": {
        format!("{prefix}/{app_key}"): apps,
        format!("{prefix}/{stage_key}"): stages,
    }})
}

impl Scope {
    /// The resource ARNs the scope stands for on a stage.
    pub fn resources(self, names: &Names) -> Vec<String> {
        let log_group = |name: &str| {
            let arn = names.log_group_arn(name);
            // Both forms: TagResource and ListTagsForResource take the
            // bare ARN, the other actions are authorized on `...:*`
            // ("Overview of managing access permissions to your CloudWatch
            // Logs resources", CloudWatch Logs User Guide).
            vec![format!("{arn}:*"), arn]
        };
        match self {
            Scope::Repository => vec![names.repository_arn.clone()],
            // Qualified ARNs (`:{alias}`, `:{version}`) are what version and
            // alias actions are authorized on.
            Scope::Function => vec![
                names.function_arn.clone(),
                format!("{}:*", names.function_arn),
            ],
            Scope::AppFunctions => vec![names.app_functions_arn()],
            Scope::ExecutionRole | Scope::AttachToExecutionRole | Scope::PassExecutionRole => {
                vec![names.role_arn.clone()]
            }
            Scope::FunctionLogGroup => log_group(&names.log_group),
            Scope::LockLogGroup => {
                let mut arns = log_group(&names.lock_group);
                // Below the lock: `*` spans the rest of the ARN, so this one
                // pattern is both forms of every group there.
                arns.push(names.log_group_arn(&format!("{}/*", names.lock_group)));
                arns
            }
            Scope::ApiCollections | Scope::ApiCreation => COLLECTIONS
                .iter()
                .map(|c| names.apigateway_arn(c))
                .collect(),
            Scope::ApiOwned => COLLECTIONS
                .iter()
                .chain(&["/tags"])
                .map(|c| names.apigateway_arn(&format!("{c}/*")))
                .collect(),
            Scope::Any => vec!["*".to_string()],
            Scope::Nothing => Vec::new(),
            Scope::StageAlarms => vec![names.stage_alarms_arn()],
            Scope::AlarmTopic => vec![names.alarm_topic_arn()],
        }
    }

    /// The condition the scope puts on its statement, if any.
    fn condition(self, targets: &[Names]) -> Option<serde_json::Value> {
        match self {
            // "Granting a user permissions to pass a role to an AWS
            // service" (IAM User Guide): the role can be passed to Lambda
            // and nothing else.
            Scope::PassExecutionRole => Some(serde_json::json!({
                "StringEquals": {"iam:PassedToService": LAMBDA_PRINCIPAL}
            })),
            Scope::AttachToExecutionRole => {
                let arns: BTreeSet<String> = targets
                    .iter()
                    .flat_map(|t| {
                        EXECUTION_ROLE_POLICIES
                            .iter()
                            .map(|path| t.partition.managed_policy_arn(path))
                    })
                    .collect();
                Some(serde_json::json!({"ArnEquals": {"iam:PolicyARN": arns}}))
            }
            // "Using tags to control access to API Gateway REST API
            // resources" (API Gateway Developer Guide): a create is allowed
            // with the stage's tags in the request and no other key...
            Scope::ApiCreation => {
                let mut condition = tag_condition("aws:RequestTag", targets);
                condition["ForAllValues:StringEquals"] =
                    serde_json::json!({"aws:TagKeys": TAG_KEYS});
                Some(condition)
            }
            // ...and anything else on a resource that carries them (a REST
            // API's children inherit its tags, a usage plan's keys the
            // plan's: "API Gateway resources that can be tagged").
            Scope::ApiOwned => Some(tag_condition("aws:ResourceTag", targets)),
            _ => None,
        }
    }

    /// The statement's Sid.
    fn sid(self) -> &'static str {
        match self {
            Scope::Repository => "EcrRepository",
            Scope::Function => "LambdaFunction",
            Scope::AppFunctions => "LambdaAppFunctionsRead",
            Scope::ExecutionRole => "IamExecutionRole",
            Scope::AttachToExecutionRole => "IamAttachManagedPolicies",
            Scope::PassExecutionRole => "IamPassExecutionRoleToLambda",
            Scope::FunctionLogGroup => "LogsFunctionLogGroup",
            Scope::LockLogGroup => "LogsStageLock",
            Scope::ApiCollections => "ApiGatewayList",
            Scope::ApiCreation => "ApiGatewayCreateTagged",
            Scope::ApiOwned => "ApiGatewayTaggedOwn",
            Scope::Any => "NoResourceLevelPermissions",
            Scope::Nothing => "",
            Scope::StageAlarms => "CloudWatchStageAlarms",
            Scope::AlarmTopic => "SnsAlarmTopic",
        }
    }
}

/// An IAM policy document.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: &'static str,
    pub statement: Vec<Statement>,
}

/// One Allow statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub sid: &'static str,
    pub effect: &'static str,
    pub action: Vec<&'static str>,
    pub resource: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<serde_json::Value>,
}

/// The policy that lets an identity run every command on the stages
/// `targets` names: one statement per scope, its actions and resources
/// sorted and unique.
pub fn policy(targets: &[Names], declared: &[Declared]) -> PolicyDocument {
    let mut actions: BTreeMap<Scope, BTreeSet<&'static str>> = BTreeMap::new();
    for permission in declared.iter().flat_map(|d| d.permissions) {
        if permission.scope == Scope::Nothing {
            continue;
        }
        actions
            .entry(permission.scope)
            .or_default()
            .insert(permission.action);
    }
    let statement = actions
        .into_iter()
        .map(|(scope, actions)| {
            let resources: BTreeSet<String> =
                targets.iter().flat_map(|t| scope.resources(t)).collect();
            Statement {
                sid: scope.sid(),
                effect: "Allow",
                action: actions.into_iter().collect(),
                resource: resources.into_iter().collect(),
                condition: scope.condition(targets),
            }
        })
        .collect();
    PolicyDocument {
        version: "2012-10-17",
        statement,
    }
}

#[cfg(test)]
mod tests;
