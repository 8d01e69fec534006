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

use crate::names::{
    EXECUTION_ROLE_POLICIES, LAMBDA_PRINCIPAL, Names, TAG_APP, TAG_HOSTED_ZONE, TAG_STAGE,
};

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
    /// Requesting an ACM certificate for the stage's custom domain: only
    /// with the stage's tags in the request (RequestCertificate has no
    /// resource type; it takes `aws:RequestTag` and `aws:TagKeys`).
    CertificateRequest,
    /// Reading the ACM certificates of the region (`certificate/*`): a
    /// given certificate carries no tags of ours, and ACM picks a requested
    /// one's id.
    Certificates,
    /// Deleting a certificate: only one with the stage's tags (condition
    /// `aws:ResourceTag/...`), so a given certificate is never deleted.
    CertificatesOwned,
    /// The stage's hosted zone (`hostedzone/{id}`): its records, changed
    /// only for the domain's name and the names below it (condition
    /// `route53:ChangeResourceRecordSetsNormalizedRecordNames`).
    HostedZone,
    /// Route 53's changes (`change/*`), whose ids Route 53 picks.
    Route53Changes,
    /// Listing the ACM certificates of the region, to find those requested
    /// for the stage by their tags (no resource type: `*`).
    CertificateList,
    /// Creating the stage's custom domain name in `/domainnames`: only with
    /// the stage's tags in the request, as [`Scope::ApiCreation`].
    DomainNameCreation,
    /// The stage's custom domain name and its base path mappings
    /// (`/domainnames/{name}`, `/domainnames/{name}/*`).
    DomainName,
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

/// API Gateway's custom domain names: listed by every survey (a stage whose
/// `[api.domain]` is gone still finds its domain by its tags).
const DOMAIN_NAMES: &str = "/domainnames";

/// The keys of the tags every resource of a stage carries (`Stage::tags`).
const TAG_KEYS: [&str; 2] = [TAG_APP, TAG_STAGE];

/// `StringEquals` on `{prefix}/deployer:app` and `{prefix}/deployer:stage`:
/// the targets' apps and stages.
fn tag_condition(prefix: &str, targets: &[Names]) -> serde_json::Value {
    let apps: BTreeSet<&str> = targets.iter().map(|t| t.app.as_str()).collect();
    let stages: BTreeSet<&str> = targets.iter().map(|t| t.stage.as_str()).collect();
    let [app_key, stage_key] = TAG_KEYS;
    // A stage pattern (`pr-*`, the previews' CI role) matches its stages'
    // tags with StringLike, whose `*` is any run of characters ("String
    // condition operators", IAM User Guide); a plain name matches itself.
    if stages.iter().any(|stage| stage.contains('*')) {
        return serde_json::json!({
            "StringEquals": {format!("{prefix}/{app_key}"): apps},
            "StringLike": {format!("{prefix}/{stage_key}"): stages},
        });
    }
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
            Scope::ApiCollections => COLLECTIONS
                .iter()
                .chain(&[DOMAIN_NAMES])
                .map(|c| names.apigateway_arn(c))
                .collect(),
            Scope::ApiCreation => COLLECTIONS
                .iter()
                .map(|c| names.apigateway_arn(c))
                .collect(),
            Scope::ApiOwned => COLLECTIONS
                .iter()
                .chain(&["/tags"])
                .map(|c| names.apigateway_arn(&format!("{c}/*")))
                .collect(),
            // The domain's scopes name nothing on a stage without one: their
            // statements are left out of its policy.
            Scope::CertificateRequest => names
                .domain
                .as_ref()
                .map(|_| vec!["*".to_string()])
                .unwrap_or_default(),
            Scope::Certificates | Scope::CertificatesOwned => names
                .domain
                .as_ref()
                .map(|_| vec![names.certificates_arn()])
                .unwrap_or_default(),
            Scope::HostedZone => names
                .hosted_zone_id
                .iter()
                .map(|zone| names.hosted_zone_arn(zone))
                .collect(),
            Scope::Route53Changes => names
                .hosted_zone_id
                .as_ref()
                .map(|_| vec![names.route53_changes_arn()])
                .unwrap_or_default(),
            Scope::CertificateList => names
                .domain
                .as_ref()
                .map(|_| vec!["*".to_string()])
                .unwrap_or_default(),
            Scope::DomainNameCreation => names
                .domain
                .as_ref()
                .map(|_| vec![names.apigateway_arn(DOMAIN_NAMES)])
                .unwrap_or_default(),
            Scope::DomainName => names
                .domain
                .iter()
                .flat_map(|domain| {
                    let arn = names.domain_name_arn(domain);
                    [format!("{arn}/*"), arn]
                })
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
            // "Actions, resources, and condition keys for AWS Certificate
            // Manager": RequestCertificate takes the request's tags, the
            // certificate resource its own.
            Scope::CertificateRequest | Scope::DomainNameCreation => {
                let mut condition = tag_condition("aws:RequestTag", targets);
                condition["ForAllValues:StringEquals"] =
                    serde_json::json!({"aws:TagKeys": [TAG_APP, TAG_STAGE, TAG_HOSTED_ZONE]});
                Some(condition)
            }
            Scope::CertificatesOwned => Some(tag_condition("aws:ResourceTag", targets)),
            // "Using IAM policy conditions for fine-grained access control"
            // (Route 53 Developer Guide): the record names a change may
            // touch, lower-case and without the final dot. Absent on the
            // zone's reads, which `ForAllValues` lets through.
            Scope::HostedZone => {
                let names: BTreeSet<String> = targets
                    .iter()
                    .filter_map(|t| t.domain.as_ref())
                    .flat_map(|domain| [domain.clone(), format!("*.{domain}")])
                    .collect();
                Some(serde_json::json!({"ForAllValues:StringLike": {
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames": names
                }}))
            }
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
            Scope::CertificateRequest => "AcmRequestTagged",
            Scope::Certificates => "AcmRead",
            Scope::CertificatesOwned => "AcmTaggedOwn",
            Scope::HostedZone => "Route53HostedZone",
            Scope::Route53Changes => "Route53Changes",
            Scope::CertificateList => "AcmList",
            Scope::DomainNameCreation => "ApiGatewayDomainNameCreateTagged",
            Scope::DomainName => "ApiGatewayDomainName",
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
        .filter_map(|(scope, actions)| {
            let resources: BTreeSet<String> =
                targets.iter().flat_map(|t| scope.resources(t)).collect();
            // A scope that names nothing on these stages (a custom domain's,
            // on stages without one) has no statement.
            (!resources.is_empty()).then(|| Statement {
                sid: scope.sid(),
                effect: "Allow",
                action: actions.into_iter().collect(),
                resource: resources.into_iter().collect(),
                condition: scope.condition(targets),
            })
        })
        .collect();
    PolicyDocument {
        version: "2012-10-17",
        statement,
    }
}

#[cfg(test)]
mod tests;
