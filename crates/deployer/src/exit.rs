//! The process exit codes, distinct per kind of failure so that CI can
//! tell a bad deploy.toml from an AWS outage from a failed release. What
//! each one means to an operator is in the one table of `docs/exit-codes.md`
//! (`tests/it/ci.rs` fails when a variant below is missing there or has
//! another code).
//!
//! `plan --detailed-exitcode` also exits 2 when the plan would change
//! something (as `terraform plan -detailed-exitcode`); a usage error
//! before it could plan is told apart by its `error:` line.
//!
//! Errors of the lower layers (AWS, configuration, build, the stage lock)
//! have a type of their own that decides their status; an error born
//! higher up is tagged where it arises with [`Failure`]. This module
//! imports nothing above those layers, so nothing here depends on `ui` or
//! `commands`.

use std::process::ExitCode;

use crate::aws::AwsError;
use crate::aws::lock::{LockHeld, LockLost};
use crate::config::ConfigError;
use crate::image::BuildError;
use crate::signals::{Interrupted, Stop};

/// How the deployer ended. The codes are in [`ExitStatus::code`], the one
/// place a test reads them from to hold `docs/exit-codes.md` to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    Failure,
    Usage,
    Aws,
    Build,
    SmokeTestFailed,
    /// Another run held the stage's lock for the whole wait, or this run
    /// lost it mid-run.
    Locked,
    /// `plan --detailed-exitcode`: the plan would change something. Not a
    /// failure; it shares code 2 with usage errors, as Terraform's does.
    Changes,
    /// SIGINT stopped the run (128 + 2, as a shell reports it).
    Interrupted,
    /// SIGTERM stopped the run (128 + 15).
    Terminated,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Aws => 3,
            ExitStatus::Build => 4,
            ExitStatus::SmokeTestFailed => 5,
            ExitStatus::Locked => 6,
            ExitStatus::Changes => 2,
            ExitStatus::Interrupted => 130,
            ExitStatus::Terminated => 143,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        ExitCode::from(status.code())
    }
}

/// An error tagged with its exit status where it arose (uv's
/// `UvError::user(err)`): it reads exactly as the error it carries.
#[derive(Debug)]
pub struct Failure {
    pub status: ExitStatus,
    source: anyhow::Error,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.source, f)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}

impl Failure {
    /// `err`, tagged with `status`.
    pub fn tag(status: ExitStatus, err: impl Into<anyhow::Error>) -> anyhow::Error {
        anyhow::Error::new(Failure {
            status,
            source: err.into(),
        })
    }

    /// The error it carries.
    pub fn inner(&self) -> &anyhow::Error {
        &self.source
    }
}

/// The exit status for an error: the first cause in its chain that has a
/// known kind decides, so context added on top (`.context("deploying")`)
/// does not hide an AWS or configuration error underneath.
pub fn classify(err: &anyhow::Error) -> ExitStatus {
    for cause in err.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            return failure.status;
        }
        if cause.is::<ConfigError>() || cause.is::<clap::Error>() {
            return ExitStatus::Usage;
        }
        if cause.is::<AwsError>() {
            return ExitStatus::Aws;
        }
        if cause.is::<BuildError>() {
            return ExitStatus::Build;
        }
        if cause.is::<LockHeld>() || cause.is::<LockLost>() {
            return ExitStatus::Locked;
        }
        if let Some(stopped) = cause.downcast_ref::<Interrupted>() {
            return match stopped.signal {
                Stop::Interrupt => ExitStatus::Interrupted,
                Stop::Terminate => ExitStatus::Terminated,
            };
        }
    }
    ExitStatus::Failure
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::ErrorKind;

    fn aws_error() -> AwsError {
        AwsError {
            operation: "GetFunction",
            resource: "app-dev".into(),
            message: "boom".into(),
            kind: ErrorKind::Other,
        }
    }

    #[test]
    fn errors_are_classified_through_their_context() {
        let config = ConfigError::Flag {
            flag: "--region",
            message: "bad".into(),
        };
        assert_eq!(classify(&anyhow::Error::new(config)), ExitStatus::Usage);
        let wrapped = anyhow::Error::new(aws_error()).context("ensuring the function");
        assert_eq!(classify(&wrapped), ExitStatus::Aws);
        assert_eq!(
            classify(&anyhow::anyhow!("something else")),
            ExitStatus::Failure
        );
        let refused = Failure::tag(ExitStatus::Usage, anyhow::anyhow!("destroy? (no --yes)"))
            .context("destroying");
        assert_eq!(classify(&refused), ExitStatus::Usage);
        assert_eq!(format!("{refused:#}"), "destroying: destroy? (no --yes)");
    }

    #[test]
    fn codes_are_distinct() {
        let all = [
            ExitStatus::Success,
            ExitStatus::Failure,
            ExitStatus::Usage,
            ExitStatus::Aws,
            ExitStatus::Build,
            ExitStatus::SmokeTestFailed,
            ExitStatus::Locked,
            ExitStatus::Interrupted,
            ExitStatus::Terminated,
        ];
        let codes: Vec<u8> = all.iter().map(|s| s.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 130, 143]);
        // Terraform's "changes present" code, only with --detailed-exitcode.
        assert_eq!(ExitStatus::Changes.code(), 2);
    }
}
