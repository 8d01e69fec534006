//! The stage lock a task's work holds, as the writes and retries inside
//! `aws` see it. `lock.rs` holds the lock and implements [`Held`];
//! `retry.rs` only asks [`still_held`]. Kept apart from both so that the
//! retry loop (which the lock's own calls use) imports no lock code: no
//! circle between `lock`, `logs` and `retry`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// This run no longer holds the stage lock: it stopped before its next
/// write.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "stopped: the stage lock {group} is no longer ours ({why}); nothing more was written. \
     Run `deployer up` again once the other run has finished: it finishes the work"
)]
pub struct LockLost {
    pub group: String,
    pub why: String,
}

/// A lock held by this task's work: confirms, before a write, that it is
/// still ours.
pub trait Held: Send + Sync {
    fn verify(&self) -> Pin<Box<dyn Future<Output = Result<(), LockLost>> + Send + '_>>;
}

tokio::task_local! {
    /// The stage lock the work of this task holds (`stage::lock::locked`
    /// sets it), so that the steps and the retries inside `aws` can check
    /// it before a write without being handed it.
    pub static HELD: Arc<dyn Held>;
}

/// Before a write: the lock this task's work holds is still ours (a
/// heartbeat now, see `LockGuard::verify`). Work under no lock (a test
/// calling an adapter itself) always may write.
pub async fn still_held() -> Result<(), LockLost> {
    match HELD.try_with(Arc::clone) {
        Ok(guard) => guard.verify().await,
        Err(_) => Ok(()),
    }
}
