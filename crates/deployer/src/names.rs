//! Every name, ARN, host and URL of a stage, in one place.
//!
//! Names that need no account (`{app}-{stage}`, the role, the repository,
//! the tags) are methods of [`Stage`], defined here; everything that also
//! needs the account or the partition is in [`Names`]. Nothing else in the
//! deployer spells `arn:` or a host name.
//!
//! The partition follows the region: ARNs start `arn:aws-cn:` in China and
//! `arn:aws-us-gov:` in GovCloud, and China's endpoints end in
//! `amazonaws.com.cn` ("Endpoints and ARNs for Amazon Web Services in
//! China", AWS General Reference). Service principals do not change with
//! the partition: Lambda and API Gateway are `lambda.amazonaws.com` and
//! `apigateway.amazonaws.com` in China too (aws-cdk#2198: IAM refuses
//! `lambda.amazonaws.com.cn`).

use std::collections::BTreeMap;

use crate::config::Stage;

/// The service principal of Lambda: what assumes the execution role, pulls
/// the image, and the only service the role may be passed to. The same in
/// every partition (module doc).
pub const LAMBDA_PRINCIPAL: &str = "lambda.amazonaws.com";
/// The service principal of API Gateway: what the Lambda permission lets
/// call the alias.
pub const APIGATEWAY_PRINCIPAL: &str = "apigateway.amazonaws.com";

/// The tag that names the app a resource belongs to.
pub const TAG_APP: &str = "deployer:app";
/// The tag that names the stage a resource belongs to.
pub const TAG_STAGE: &str = "deployer:stage";
/// The stage's time to live as written (`7d`), on its function only:
/// `deployer prune` removes the stage once its last deployment is older.
pub const TAG_TTL: &str = "deployer:ttl";
/// `true` on the function of a protected stage, so that `destroy` from the
/// tags alone refuses it as it refuses a stage deploy.toml protects.
pub const TAG_PROTECTED: &str = "deployer:protected";

/// The AWS managed policy every execution role gets: writing the
/// function's logs (a path below [`Partition::managed_policy_arn`]).
pub const BASIC_EXECUTION_POLICY: &str = "service-role/AWSLambdaBasicExecutionRole";
/// The AWS managed policy an execution role gets with tracing on.
pub const XRAY_POLICY: &str = "AWSXRayDaemonWriteAccess";
/// Every AWS managed policy the deployer may attach to an execution role.
pub const EXECUTION_ROLE_POLICIES: [&str; 2] = [BASIC_EXECUTION_POLICY, XRAY_POLICY];

/// The AWS partition a region belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    Aws,
    China,
    GovCloud,
}

impl Partition {
    /// `cn-*` is China, `us-gov-*` GovCloud, every other region `aws`. The
    /// isolated partitions (`us-iso-*`, ...) are refused by the
    /// configuration, so they never reach here.
    pub fn of_region(region: &str) -> Partition {
        if region.starts_with("cn-") {
            Partition::China
        } else if region.starts_with("us-gov-") {
            Partition::GovCloud
        } else {
            Partition::Aws
        }
    }

    /// The partition as ARNs spell it.
    pub fn id(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::China => "aws-cn",
            Partition::GovCloud => "aws-us-gov",
        }
    }

    /// An AWS managed policy (`service-role/AWSLambdaBasicExecutionRole`),
    /// which exists once per partition.
    pub fn managed_policy_arn(self, path: &str) -> String {
        format!("arn:{}:iam::aws:policy/{path}", self.id())
    }

    /// What the partition's endpoint host names end with.
    pub fn dns_suffix(self) -> &'static str {
        match self {
            Partition::China => "amazonaws.com.cn",
            Partition::Aws | Partition::GovCloud => "amazonaws.com",
        }
    }
}

/// The resource names of a stage; none needs the account.
impl Stage {
    /// `{app}-{stage}`: the function and the REST API.
    pub fn function_name(&self) -> String {
        format!("{}-{}", self.app, self.name)
    }

    pub fn api_name(&self) -> String {
        self.function_name()
    }

    /// `{app}-{stage}-exec`: the function's execution role.
    pub fn role_name(&self) -> String {
        format!("{}-{}-exec", self.app, self.name)
    }

    /// The stage's ECR repository: `[stages.X.ecr] repository` when set,
    /// `{app}-{stage}` for a protected stage (a repository of its own, which
    /// no other stage's policy may write), else `{app}`, shared by the
    /// unprotected stages.
    pub fn repository_name(&self) -> String {
        match &self.ecr.repository {
            Some(name) => name.clone(),
            None if self.protected => format!("{}-{}", self.app, self.name),
            None => self.app.clone(),
        }
    }

    /// Whether the stage's repository is its own (see [`Stage::repository_name`]).
    pub fn owns_repository(&self) -> bool {
        self.ecr.repository.is_some() || self.protected
    }

    /// The alias that API Gateway calls: named after the stage.
    pub fn alias_name(&self) -> String {
        self.name.clone()
    }

    /// `/aws/lambda/{function}`.
    pub fn log_group_name(&self) -> String {
        format!("/aws/lambda/{}", self.function_name())
    }

    /// `/deployer/locks/{app}-{stage}`: the log group that is the stage's
    /// lock (`aws::lock`), named like the function it guards.
    pub fn lock_group_name(&self) -> String {
        format!("/deployer/locks/{}", self.function_name())
    }

    /// The tags every resource of this stage carries; `status` and
    /// `destroy` find resources by them. The shared repository carries
    /// only `deployer:app`.
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (TAG_APP.to_string(), self.app.clone()),
            (TAG_STAGE.to_string(), self.name.clone()),
        ])
    }

    /// The function's tags: the stage's ([`Stage::tags`]), and what
    /// `deployer stages`, `prune` and a `destroy` from the tags alone read
    /// of the stage's lifecycle (its time to live, its protection). Only
    /// the function carries them, so API Gateway's tag conditions and the
    /// shared repository stay as they are.
    pub fn function_tags(&self) -> BTreeMap<String, String> {
        let mut tags = self.tags();
        if let Some(ttl) = &self.ttl {
            tags.insert(TAG_TTL.to_string(), ttl.text.clone());
        }
        if self.protected {
            tags.insert(TAG_PROTECTED.to_string(), "true".to_string());
        }
        tags
    }
}

/// Every ARN, host and URL of the stage in one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub partition: Partition,
    pub region: String,
    pub account: String,
    pub app: String,
    pub stage: String,
    /// The API's resource path, without slashes.
    pub path: String,
    /// The stage's `endpoint-url` (an emulator), if it has one.
    pub endpoint_url: Option<String>,
    /// `{account}.dkr.ecr.{region}.{suffix}/{repository}`.
    pub repository_uri: String,
    pub repository_arn: String,
    pub role_arn: String,
    pub function_arn: String,
    pub alias_arn: String,
    /// The function's log group (`Stage::log_group_name`).
    pub log_group: String,
    /// The stage lock's log group (`Stage::lock_group_name`).
    pub lock_group: String,
    /// `[api.domain]`: the custom domain name and its hosted zone, if any.
    pub domain: Option<String>,
    pub hosted_zone_id: Option<String>,
}

impl Names {
    pub fn new(stage: &Stage, account: &str) -> Names {
        let partition = Partition::of_region(&stage.region);
        let p = partition.id();
        let region = &stage.region;
        let function_arn = format!(
            "arn:{p}:lambda:{region}:{account}:function:{}",
            stage.function_name()
        );
        Names {
            partition,
            region: region.clone(),
            account: account.to_string(),
            app: stage.app.clone(),
            stage: stage.name.clone(),
            path: stage.api.path.trim_matches('/').to_string(),
            endpoint_url: stage.endpoint_url.clone(),
            repository_uri: format!(
                "{account}.dkr.ecr.{region}.{}/{}",
                partition.dns_suffix(),
                stage.repository_name()
            ),
            repository_arn: format!(
                "arn:{p}:ecr:{region}:{account}:repository/{}",
                stage.repository_name()
            ),
            role_arn: format!("arn:{p}:iam::{account}:role/{}", stage.role_name()),
            alias_arn: format!("{function_arn}:{}", stage.alias_name()),
            function_arn,
            log_group: stage.log_group_name(),
            lock_group: stage.lock_group_name(),
            domain: stage.api.domain.as_ref().map(|d| d.name.clone()),
            hosted_zone_id: stage
                .api
                .domain
                .as_ref()
                .and_then(|d| d.hosted_zone_id.clone()),
        }
    }

    /// What API Gateway calls for a Lambda proxy integration: the alias,
    /// through Lambda's invocation path.
    pub fn integration_uri(&self) -> String {
        format!(
            "arn:{}:apigateway:{}:lambda:path/2015-03-31/functions/{}/invocations",
            self.partition.id(),
            self.region,
            self.alias_arn
        )
    }

    /// The source ARN of the Lambda permission: `{api_id}/*/*/{path}`.
    ///
    /// The API id already belongs to one stage (each stage has its own API),
    /// so the stage is a wildcard, which also admits the console's test
    /// invocations; the method is a wildcard so that changing the configured
    /// methods needs no new permission; the path is fixed, so nothing else of
    /// the API can call the function.
    pub fn api_source_arn(&self, api_id: &str) -> String {
        format!(
            "arn:{}:execute-api:{}:{}:{api_id}/*/*/{}",
            self.partition.id(),
            self.region,
            self.account,
            self.path
        )
    }

    /// `https://{api_id}.execute-api.{region}.{suffix}/{stage}/{path}`.
    pub fn invoke_url(&self, api_id: &str) -> String {
        format!(
            "https://{api_id}.execute-api.{}.{}/{}/{}",
            self.region,
            self.partition.dns_suffix(),
            self.stage,
            self.path
        )
    }

    /// The URL callers use: [`Names::invoke_url`], or, for a stage with an
    /// `endpoint-url` (an emulator), the emulator's path form
    /// `{endpoint}/restapis/{api_id}/{stage}/_user_request_/{path}`, which
    /// needs no DNS for `{api_id}.execute-api...` (the local AWS and
    /// LocalStack serve it).
    pub fn stage_url(&self, api_id: &str) -> String {
        match &self.endpoint_url {
            Some(endpoint) => format!(
                "{}/restapis/{api_id}/{}/_user_request_/{}",
                endpoint.trim_end_matches('/'),
                self.stage,
                self.path
            ),
            None => self.invoke_url(api_id),
        }
    }

    /// An API Gateway resource by its path (`/restapis/{id}`, `/apikeys`):
    /// how its TagResource and IAM name it.
    pub fn apigateway_arn(&self, path: &str) -> String {
        format!(
            "arn:{}:apigateway:{}::{path}",
            self.partition.id(),
            self.region
        )
    }

    /// The REST API's ARN, as TagResource wants it.
    pub fn rest_api_arn(&self, api_id: &str) -> String {
        self.apigateway_arn(&format!("/restapis/{api_id}"))
    }

    /// The API stage's ARN, as TagResource wants it.
    pub fn api_stage_arn(&self, api_id: &str) -> String {
        format!("{}/stages/{}", self.rest_api_arn(api_id), self.stage)
    }

    /// Every function of the app, whatever its stage: what the repository
    /// policy lets Lambda pull images for.
    pub fn app_functions_arn(&self) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{}-*",
            self.partition.id(),
            self.region,
            self.account,
            self.app
        )
    }

    /// The ARN of the log group `group` (the form TagResource takes,
    /// without the `:*` that DescribeLogGroups appends).
    pub fn log_group_arn(&self, group: &str) -> String {
        format!(
            "arn:{}:logs:{}:{}:log-group:{group}",
            self.partition.id(),
            self.region,
            self.account
        )
    }

    /// The name every function of the app starts with (`{app}-`).
    pub fn app_function_prefix(&self) -> String {
        format!("{}-", self.app)
    }

    /// A custom domain name (`/domainnames/{name}`), as IAM names it.
    pub fn domain_name_arn(&self, domain: &str) -> String {
        self.apigateway_arn(&format!("/domainnames/{domain}"))
    }

    /// The ACM certificates of the account in the stage's region
    /// (`certificate/*`): ACM picks a requested certificate's id, so no
    /// policy written before can name it.
    pub fn certificates_arn(&self) -> String {
        format!(
            "arn:{}:acm:{}:{}:certificate/*",
            self.partition.id(),
            self.region,
            self.account
        )
    }

    /// A CloudWatch alarm's ARN, as TagResource and IAM name it.
    pub fn alarm_arn(&self, alarm: &str) -> String {
        format!(
            "arn:{}:cloudwatch:{}:{}:alarm:{alarm}",
            self.partition.id(),
            self.region,
            self.account
        )
    }

    /// A Route 53 hosted zone: a global resource, without region or
    /// account ("Actions, resources, and condition keys for Amazon Route 53").
    pub fn hosted_zone_arn(&self, zone_id: &str) -> String {
        format!("arn:{}:route53:::hostedzone/{zone_id}", self.partition.id())
    }

    /// Route 53's record changes (`GetChange`), whatever their id.
    pub fn route53_changes_arn(&self) -> String {
        format!("arn:{}:route53:::change/*", self.partition.id())
    }

    /// Every alarm of the stage (`{app}-{stage}-*`), for its policy.
    pub fn stage_alarms_arn(&self) -> String {
        self.alarm_arn(&format!("{}-{}-*", self.app, self.stage))
    }

    /// The stage's own SNS topic (`Stage::alarm_topic_name`): SNS takes the
    /// ARN it would answer CreateTopic with, so it is known before.
    pub fn alarm_topic_arn(&self) -> String {
        format!(
            "arn:{}:sns:{}:{}:{}-{}-alarms",
            self.partition.id(),
            self.region,
            self.account,
            self.app,
            self.stage
        )
    }
}

/// The tag on a requested certificate and on the domain name that names the
/// hosted zone of their records, so that a stage whose `[api.domain]` is
/// gone still finds the records to delete.
pub const TAG_HOSTED_ZONE: &str = "deployer:hosted-zone";

/// The URL callers use through a custom domain:
/// `https://{domain}/{base_path}/{path}`.
pub fn domain_url(domain: &str, base_path: Option<&str>, path: &str) -> String {
    match base_path {
        Some(base) => format!("https://{domain}/{base}/{path}"),
        None => format!("https://{domain}/{path}"),
    }
}

/// How an SNS topic's ARN is written, for errors.
pub const SNS_TOPIC_ARN_FORM: &str = "arn:aws:sns:REGION:ACCOUNT:TOPIC";

/// Whether `text` is an ARN at all (`arn:` and six parts).
pub fn is_arn(text: &str) -> bool {
    text.starts_with("arn:") && text.split(':').count() >= 6
}

/// The Region of an SNS topic ARN (`arn:PARTITION:sns:REGION:ACCOUNT:NAME`);
/// `None` when `arn` is not one.
pub fn sns_topic_region(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    let shaped = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "sns"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && !parts[5].is_empty();
    shaped.then_some(parts[3])
}

/// The names of the stage's alarms and their topic (`[alarms]`).
impl Stage {
    /// `{app}-{stage}-{id}`, e.g. `pde-predict-prod-5xx-rate`.
    pub fn alarm_name(&self, id: crate::config::alarms::AlarmId) -> String {
        format!("{}-{}-{}", self.app, self.name, id.as_str())
    }

    /// `{app}-{stage}-alarms`: the topic the deployer makes for the
    /// e-mail addresses and URLs of `notify`.
    pub fn alarm_topic_name(&self) -> String {
        format!("{}-{}-alarms", self.app, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(region: &str) -> Names {
        Names::new(&Stage::defaults("shop", "prod", region), "123456789012")
    }

    #[test]
    fn the_partition_follows_the_region() {
        assert_eq!(Partition::of_region("eu-west-1"), Partition::Aws);
        assert_eq!(Partition::of_region("cn-northwest-1"), Partition::China);
        assert_eq!(Partition::of_region("us-gov-west-1"), Partition::GovCloud);
        // Not GovCloud: an ordinary US region.
        assert_eq!(Partition::of_region("us-west-2"), Partition::Aws);
    }

    #[test]
    fn names_in_the_aws_partition() {
        let n = names("eu-west-1");
        assert_eq!(
            n.repository_uri,
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop"
        );
        assert_eq!(n.role_arn, "arn:aws:iam::123456789012:role/shop-prod-exec");
        assert_eq!(
            n.function_arn,
            "arn:aws:lambda:eu-west-1:123456789012:function:shop-prod"
        );
        assert_eq!(
            n.alias_arn,
            "arn:aws:lambda:eu-west-1:123456789012:function:shop-prod:prod"
        );
        assert_eq!(
            n.integration_uri(),
            "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:shop-prod:prod/invocations"
        );
        assert_eq!(
            n.api_source_arn("a1"),
            "arn:aws:execute-api:eu-west-1:123456789012:a1/*/*/predict"
        );
        assert_eq!(
            n.invoke_url("a1"),
            "https://a1.execute-api.eu-west-1.amazonaws.com/prod/predict"
        );
        assert_eq!(
            n.rest_api_arn("a1"),
            "arn:aws:apigateway:eu-west-1::/restapis/a1"
        );
        assert_eq!(
            n.api_stage_arn("a1"),
            "arn:aws:apigateway:eu-west-1::/restapis/a1/stages/prod"
        );
        assert_eq!(
            n.app_functions_arn(),
            "arn:aws:lambda:eu-west-1:123456789012:function:shop-*"
        );
        assert_eq!(
            n.repository_arn,
            "arn:aws:ecr:eu-west-1:123456789012:repository/shop"
        );
        assert_eq!(n.log_group, "/aws/lambda/shop-prod");
        assert_eq!(n.lock_group, "/deployer/locks/shop-prod");
        assert_eq!(
            n.log_group_arn(&n.lock_group),
            "arn:aws:logs:eu-west-1:123456789012:log-group:/deployer/locks/shop-prod"
        );
        assert_eq!(
            n.apigateway_arn("/usageplans"),
            "arn:aws:apigateway:eu-west-1::/usageplans"
        );
    }

    #[test]
    fn an_emulator_serves_the_stage_under_its_own_endpoint() {
        let mut stage = Stage::defaults("shop", "local", "us-east-1");
        assert_eq!(
            Names::new(&stage, "1").stage_url("a1"),
            "https://a1.execute-api.us-east-1.amazonaws.com/local/predict"
        );
        stage.endpoint_url = Some("http://127.0.0.1:5000/".into());
        assert_eq!(
            Names::new(&stage, "1").stage_url("a1"),
            "http://127.0.0.1:5000/restapis/a1/local/_user_request_/predict"
        );
    }

    #[test]
    fn names_in_china() {
        let n = names("cn-north-1");
        assert_eq!(
            n.repository_uri,
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/shop"
        );
        assert_eq!(
            n.role_arn,
            "arn:aws-cn:iam::123456789012:role/shop-prod-exec"
        );
        assert!(
            n.integration_uri()
                .starts_with("arn:aws-cn:apigateway:cn-north-1:lambda:path/2015-03-31/functions/arn:aws-cn:lambda:cn-north-1:"),
            "{}",
            n.integration_uri()
        );
        assert_eq!(
            n.api_source_arn("a1"),
            "arn:aws-cn:execute-api:cn-north-1:123456789012:a1/*/*/predict"
        );
        assert_eq!(
            n.invoke_url("a1"),
            "https://a1.execute-api.cn-north-1.amazonaws.com.cn/prod/predict"
        );
        assert_eq!(
            n.api_stage_arn("a1"),
            "arn:aws-cn:apigateway:cn-north-1::/restapis/a1/stages/prod"
        );
        assert_eq!(
            n.app_functions_arn(),
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:shop-*"
        );
        assert_eq!(
            n.repository_arn,
            "arn:aws-cn:ecr:cn-north-1:123456789012:repository/shop"
        );
    }

    #[test]
    fn names_in_govcloud() {
        let n = names("us-gov-west-1");
        assert_eq!(
            n.repository_uri,
            "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com/shop"
        );
        assert_eq!(
            n.alias_arn,
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:shop-prod:prod"
        );
        assert!(
            n.integration_uri()
                .starts_with("arn:aws-us-gov:apigateway:")
        );
        assert_eq!(
            n.api_source_arn("a1"),
            "arn:aws-us-gov:execute-api:us-gov-west-1:123456789012:a1/*/*/predict"
        );
        assert_eq!(
            n.invoke_url("a1"),
            "https://a1.execute-api.us-gov-west-1.amazonaws.com/prod/predict"
        );
        assert_eq!(
            n.rest_api_arn("a1"),
            "arn:aws-us-gov:apigateway:us-gov-west-1::/restapis/a1"
        );
    }

    /// Whether a line of code spells an ARN: a partition (`arn:aws`), a
    /// string that starts one (`"arn:{p}:..."`, `format!("arn:...`), or a
    /// format that fills one in (`arn:{`).
    fn spells_an_arn(line: &str) -> bool {
        line.contains("arn:aws") || line.contains("\"arn:") || line.contains("arn:{")
    }

    #[test]
    fn the_guard_sees_every_way_of_spelling_an_arn() {
        assert!(spells_an_arn(
            r#"let f = format!("arn:{p}:lambda:{region}");"#
        ));
        assert!(spells_an_arn(r#"format!("{x}arn:{}:iam::", p)"#));
        assert!(spells_an_arn(
            r#"const A: &str = "arn:aws-cn:iam::aws:policy/X";"#
        ));
        assert!(spells_an_arn(r#"let a = "arn:".to_string() + p;"#));
        assert!(!spells_an_arn("let arn = names.role_arn.clone();"));
        assert!(!spells_an_arn("pub source_arn: Option<String>,"));
    }

    #[test]
    fn no_name_outside_this_module_spells_a_partition_or_a_host() {
        // Every ARN and host of the deployer is built here: an ARN spelled
        // or formatted (`arn:aws:`, `"arn:{p}:..."`), a host or a service
        // principal (`amazonaws.com`) elsewhere in the sources (tests aside)
        // is a name this module missed.
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        let mut stack = vec![src.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                // A module's unit tests sit in its `tests.rs` or at the end
                // of its file, after `#[cfg(test)]`.
                if path.ends_with("names.rs")
                    || path.to_string_lossy().ends_with("tests.rs")
                    || path.extension() != Some("rs".as_ref())
                {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                for (number, line) in code.lines().enumerate() {
                    let line = line.trim_start();
                    if line.starts_with("//") {
                        continue;
                    }
                    if spells_an_arn(line) || line.contains("amazonaws.com") {
                        found.push(format!(
                            "{}:{}: {line}",
                            path.strip_prefix(&src).unwrap().display(),
                            number + 1
                        ));
                    }
                }
            }
        }
        // The local Runtime API hands the function a fixed, made-up ARN: it
        // names no resource of a stage.
        found.retain(|line| !line.starts_with("local/runtime_api.rs"));
        assert!(
            found.is_empty(),
            "names built outside names.rs:\n{}",
            found.join("\n")
        );
    }
}
