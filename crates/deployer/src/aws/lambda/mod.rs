//! The function `{app}-{stage}`: its image (always by digest) and
//! configuration, its published versions, the stage's alias, the
//! permission that lets API Gateway call the alias, and invoking it.
//!
//! Lambda refuses a second update while one is in progress, a new
//! function is `Pending` until it is ready, and so is a new version; so
//! every change is followed by [`wait_until_ready`], a `ResourceConflict`
//! is retried with backoff for a bounded time, and a version is invoked
//! only once it is `Active` ("Lambda function states",
//! https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture as LambdaArchitecture, Environment, FunctionCode, LastUpdateStatus, LogType,
    PackageType, State, TracingConfig, TracingMode,
};
use base64::Engine as _;
use serde::Serialize;

use super::errors::{AwsError, ErrorKind, aws_error, none_if};
use super::permissions::Declared;
use super::retry::retry_while;
use super::{Outcome, missing_tags};
use crate::config::Architecture;
use crate::plan::{Action, Field};

mod alias;
mod concurrency;
mod function;
mod images;
mod invoke;
mod permission;
mod prune;
mod stages;
mod state;
mod version;

pub use alias::*;
pub use concurrency::*;
pub use function::*;
pub use images::*;
pub use invoke::*;
pub use permission::*;
pub use prune::*;
pub use stages::*;
pub use state::*;
pub use version::*;

/// The IAM permissions of the calls in this module's files.
pub(crate) const PERMISSIONS: &[Declared] = &[
    alias::PERMISSIONS,
    concurrency::PERMISSIONS,
    function::PERMISSIONS,
    images::PERMISSIONS,
    invoke::PERMISSIONS,
    permission::PERMISSIONS,
    prune::PERMISSIONS,
    stages::PERMISSIONS,
    state::PERMISSIONS,
    version::PERMISSIONS,
];

/// How long a new role, or a policy just attached to it, may take before
/// Lambda can use it (IAM is eventually consistent).
const ROLE_PROPAGATION: Duration = Duration::from_secs(120);

/// How long an update may stay `InProgress` (image optimisation included).
const READY_TIMEOUT: Duration = Duration::from_secs(600);

/// How long to retry a call that meets an update in progress.
const CONFLICT_RETRY: Duration = Duration::from_secs(120);

fn lambda_architecture(architecture: Architecture) -> LambdaArchitecture {
    match architecture {
        Architecture::X86_64 => LambdaArchitecture::X8664,
        Architecture::Arm64 => LambdaArchitecture::Arm64,
    }
}

fn environment(variables: &BTreeMap<String, String>) -> Environment {
    Environment::builder()
        .set_variables(Some(variables.clone().into_iter().collect()))
        .build()
}

fn tracing(active: bool) -> TracingConfig {
    TracingConfig::builder()
        .mode(if active {
            TracingMode::Active
        } else {
            TracingMode::PassThrough
        })
        .build()
}

#[cfg(test)]
mod tests;
