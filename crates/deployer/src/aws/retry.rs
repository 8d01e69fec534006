//! Retrying what AWS answers "not yet": an update in progress, a role or
//! permission IAM has not propagated, a control-plane quota. The SDK's own
//! retries (a few attempts within seconds) cover transient faults; these
//! windows last from seconds to minutes, so each caller names what it
//! waits out and for how long.

use std::future::Future;
use std::time::{Duration, Instant};

use super::errors::{AwsError, ErrorKind};

/// The first pause between attempts; it doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(8);

/// Retries `call` while it fails with one of `kinds`, with exponential
/// backoff, for at most `budget`; then returns its last answer.
pub async fn retry_while<T, F, Fut>(
    kinds: &[ErrorKind],
    budget: Duration,
    mut call: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AwsError>>,
{
    let started = Instant::now();
    let mut delay = FIRST_DELAY;
    loop {
        match call().await {
            Err(err) if kinds.contains(&err.kind) && started.elapsed() + delay < budget => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_DELAY);
                // A retry is a write again: only while the stage lock of
                // the work (if any) is still ours (`held::still_held`).
                super::held::still_held().await.map_err(|lost| AwsError {
                    operation: err.operation,
                    resource: err.resource.clone(),
                    message: lost.to_string(),
                    kind: ErrorKind::Other,
                })?;
            }
            answer => return answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: ErrorKind) -> AwsError {
        AwsError {
            operation: "CreateFunction",
            resource: "f".into(),
            message: "not yet".into(),
            kind,
        }
    }

    #[tokio::test]
    async fn retry_waits_out_the_named_kinds() {
        let mut calls = 0;
        let answer = retry_while(
            &[ErrorKind::RoleNotAssumable, ErrorKind::Conflict],
            Duration::from_secs(5),
            || {
                calls += 1;
                let attempt = calls;
                async move {
                    match attempt {
                        1 => Err(failure(ErrorKind::RoleNotAssumable)),
                        2 => Err(failure(ErrorKind::Conflict)),
                        _ => Ok(attempt),
                    }
                }
            },
        )
        .await;
        assert_eq!(answer.unwrap(), 3);
    }

    #[tokio::test]
    async fn retry_gives_up_on_other_errors_at_once() {
        let mut calls = 0;
        let answer: Result<(), AwsError> =
            retry_while(&[ErrorKind::Conflict], Duration::from_secs(5), || {
                calls += 1;
                async { Err(AwsError::invalid_answer("X", "y", "z")) }
            })
            .await;
        assert!(answer.is_err());
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn retry_gives_up_when_the_budget_is_spent() {
        let started = Instant::now();
        let answer: Result<(), AwsError> =
            retry_while(&[ErrorKind::Throttled], Duration::from_secs(1), || async {
                Err(failure(ErrorKind::Throttled))
            })
            .await;
        assert_eq!(answer.unwrap_err().kind, ErrorKind::Throttled);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
