//! Every AWS call of the deployer lives below this module, one module per
//! resource kind. Each offers `read_*` (not found is `None`, not an
//! error), pure `diff_*` (desired vs actual → a [`crate::plan::Action`]
//! over the kind's own field enum), `apply_*` (carries out the action it
//! is given, reading again only to converge after a race such as "already
//! exists") and `delete_*`. `stage::actual` reads, `stage::plan` diffs and
//! `stage::apply` applies; nothing above `aws` calls the SDK.
//!
//! Each file declares the IAM permissions of its calls beside them (the
//! vocabulary is [`permissions`], which imports no adapter); [`declared`]
//! collects them for `deployer policy` and the call-site test.

pub mod acm;
pub mod alarms;
pub mod apigw;
pub mod ecr;
pub mod errors;
pub(crate) mod held;
pub mod iam;
pub mod lambda;
pub mod lock;
pub mod logs;
pub(crate) mod metrics;
pub mod permissions;
pub(crate) mod retry;
pub mod route53;
pub mod sns;
pub mod sts;

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig};

pub use errors::{AwsError, ErrorKind};
use permissions::Declared;

/// Every file's declaration of the permissions its calls need (each
/// service module collects its own files'): what `deployer policy` is
/// built from, and what the call-site test holds the code against.
pub fn declared() -> Vec<Declared> {
    let mut all = Vec::new();
    all.extend_from_slice(ecr::PERMISSIONS);
    all.extend_from_slice(lambda::PERMISSIONS);
    all.extend_from_slice(apigw::PERMISSIONS);
    all.push(iam::PERMISSIONS);
    all.push(logs::PERMISSIONS);
    all.push(metrics::PERMISSIONS);
    all.push(lock::PERMISSIONS);
    all.push(sts::PERMISSIONS);
    all.push(acm::PERMISSIONS);
    all.push(route53::PERMISSIONS);
    all.push(alarms::PERMISSIONS);
    all.push(sns::PERMISSIONS);
    all
}

/// What an `apply_*` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    Deleted,
}

/// Where and as whom the SDK calls AWS: a stage's region, profile and
/// endpoint (`Stage::connection`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub region: String,
    pub profile: Option<String>,
    /// An emulator's URL (the `local` stage's), if any.
    pub endpoint_url: Option<String>,
    /// Fixed made-up credentials, for an emulator that checks none.
    pub dummy_credentials: bool,
}

/// The SDK configuration for a connection, from the standard chain
/// (profile, environment, web identity, ...) with its region, profile and
/// endpoint on top. Tests aim this very code at the local AWS through
/// `AWS_ENDPOINT_URL` or the `local` stage's endpoint.
pub async fn sdk_config(stage: &Connection) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(stage.region.clone()))
        // Throttling and 5xx are retried with backoff; adaptive mode also
        // slows the client down when AWS says it is going too fast.
        .retry_config(RetryConfig::adaptive().with_max_attempts(6));
    if let Some(profile) = &stage.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = &stage.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if stage.dummy_credentials {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            "local",
            "local",
            None,
            None,
            "deploy.toml",
        ));
    }
    loader.load().await
}

/// One client per service, all from the same [`SdkConfig`].
#[derive(Clone, Debug)]
pub struct Clients {
    pub ecr: aws_sdk_ecr::Client,
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigw: aws_sdk_apigateway::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sts: aws_sdk_sts::Client,
    /// A custom domain's certificate, its records, and the alarms' topic.
    pub acm: aws_sdk_acm::Client,
    pub route53: aws_sdk_route53::Client,
    pub sns: aws_sdk_sns::Client,
}

impl Clients {
    pub fn new(config: &SdkConfig) -> Clients {
        Clients {
            ecr: aws_sdk_ecr::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            lambda: aws_sdk_lambda::Client::new(config),
            apigw: aws_sdk_apigateway::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            acm: aws_sdk_acm::Client::new(config),
            route53: aws_sdk_route53::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
        }
    }
}

/// The desired tags that `actual` lacks or holds with another value. Tags
/// someone else added are left alone, so they never count.
pub(crate) fn missing_tags<'a>(
    desired: &'a BTreeMap<String, String>,
    actual: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = (&'a String, &'a String)> {
    desired
        .iter()
        .filter(move |(key, value)| actual.get(*key) != Some(*value))
}
