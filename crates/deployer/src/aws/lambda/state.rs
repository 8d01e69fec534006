//! The function's state as Lambda reports it, and the bounded waits until
//! a version is ready or an update may start.
//!
//! `Inactive` is not ready: "When you try to invoke a function that is
//! inactive, the invocation fails and Lambda sets the function to pending
//! state until the function resources are recreated" ("Lambda function
//! states", https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html).
//! So a wait that meets it invokes once to start the restore (see
//! [`wake`]), then waits for `Active` as for any `Pending` version.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[call(
        "GetFunctionConfiguration",
        "lambda:GetFunctionConfiguration",
        Scope::Function,
    )],
};

/// What a function's (or version's) state allows, as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Something is in flight (`Pending`, `InProgress`): ask again.
    Wait,
    /// Idle (`Inactive`): an invoke starts Lambda's restore, then wait.
    Inactive,
    /// Waiting cannot help; why.
    Broken(String),
}

/// The state, last update status and reasons of a function or version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionState {
    pub state: State,
    pub last_update: LastUpdateStatus,
    pub state_reason: Option<String>,
    pub last_update_reason: Option<String>,
}

impl FunctionState {
    fn reason(reason: &Option<String>) -> &str {
        reason.as_deref().unwrap_or("no reason given")
    }

    /// Whether Lambda accepts an update now. "Lambda function states":
    /// after a failed update "the function's previous code and
    /// configuration remain available" and a new update is allowed; an
    /// `Inactive` function is re-activated by an update; a function whose
    /// creation failed "must be deleted and recreated".
    pub fn before_update(&self) -> Readiness {
        if self.state == State::Failed {
            return Readiness::Broken(format!(
                "its creation failed ({}); Lambda cannot update it: delete the function \
                 (deployer destroy) and deploy again",
                Self::reason(&self.state_reason)
            ));
        }
        if self.state == State::Pending || self.last_update == LastUpdateStatus::InProgress {
            return Readiness::Wait;
        }
        Readiness::Ready
    }

    /// Whether a change just made has taken, or a version may be invoked:
    /// `Active` with a successful last update. `Inactive` must be woken
    /// first: an invoke of it fails until Lambda has restored it.
    pub fn after_change(&self) -> Readiness {
        if self.state == State::Failed {
            return Readiness::Broken(format!(
                "the function failed: {}; a function whose creation failed must be deleted \
                 (deployer destroy) and deployed again",
                Self::reason(&self.state_reason)
            ));
        }
        if self.last_update == LastUpdateStatus::Failed {
            return Readiness::Broken(format!(
                "the last update failed: {}",
                Self::reason(&self.last_update_reason)
            ));
        }
        if self.state == State::Pending || self.last_update == LastUpdateStatus::InProgress {
            return Readiness::Wait;
        }
        if self.state == State::Inactive {
            return Readiness::Inactive;
        }
        Readiness::Ready
    }
}

/// How many times a wait wakes an `Inactive` function before it gives up:
/// "If Lambda fails to recreate the resources, the function returns to the
/// inactive state" ("Lambda function states").
const WAKE_ATTEMPTS: u32 = 3;

/// Waits (bounded) until the function, or its version `qualifier`, has
/// taken the last change: `Active` with a successful last update; an
/// `Inactive` one is woken first. A failure is an error with Lambda's
/// reason.
pub async fn wait_until_ready(
    client: &Client,
    name: &str,
    qualifier: Option<&str>,
) -> Result<(), AwsError> {
    wait_for(client, name, qualifier, FunctionState::after_change).await
}

/// Waits (bounded) until Lambda accepts an update of the function: nothing
/// in flight. A failed last update or an `Inactive` function is no reason
/// to wait or to stop: the update replaces or re-activates it.
pub async fn wait_until_updatable(client: &Client, name: &str) -> Result<(), AwsError> {
    wait_for(client, name, None, FunctionState::before_update).await
}

/// Polls the state of `name` (or `name:qualifier`) until `judge` says
/// `Ready`. A version is `Pending` after PublishVersion; the SDK's
/// PublishedVersionActive waiter does the same, but first sleeps 5 s.
pub(super) async fn wait_for(
    client: &Client,
    name: &str,
    qualifier: Option<&str>,
    judge: fn(&FunctionState) -> Readiness,
) -> Result<(), AwsError> {
    let resource = match qualifier {
        Some(q) => format!("{name}:{q}"),
        None => name.to_string(),
    };
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut woken = 0;
    loop {
        let config = client
            .get_function_configuration()
            .function_name(name)
            .set_qualifier(qualifier.map(str::to_string))
            .send()
            .await
            .map_err(|err| aws_error("GetFunctionConfiguration", resource.clone(), err))?;
        let now = FunctionState {
            state: config.state().cloned().unwrap_or(State::Active),
            last_update: config
                .last_update_status()
                .cloned()
                .unwrap_or(LastUpdateStatus::Successful),
            state_reason: config.state_reason().map(str::to_string),
            last_update_reason: config.last_update_status_reason().map(str::to_string),
        };
        match judge(&now) {
            Readiness::Ready => return Ok(()),
            Readiness::Broken(why) => {
                return Err(AwsError::invalid_answer(
                    "GetFunctionConfiguration",
                    resource,
                    why,
                ));
            }
            Readiness::Wait => {}
            // Met again after a wake: Lambda could not restore it.
            Readiness::Inactive if woken >= WAKE_ATTEMPTS => {
                return Err(AwsError::invalid_answer(
                    "GetFunctionConfiguration",
                    resource,
                    format!(
                        "still Inactive after {woken} invokes to restore it: {}",
                        FunctionState::reason(&now.state_reason)
                    ),
                ));
            }
            Readiness::Inactive => {
                woken += 1;
                // Lambda sets it Pending once the invoke has failed.
                wake(client, name, qualifier).await?;
            }
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(AwsError {
                operation: "GetFunctionConfiguration",
                resource,
                message: format!(
                    "still {} / {} after {} s",
                    now.state.as_str(),
                    now.last_update.as_str(),
                    READY_TIMEOUT.as_secs()
                ),
                kind: ErrorKind::Conflict,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
