//! SIGINT (Ctrl-C) and SIGTERM (what CI sends a cancelled job) while a
//! command holds the stage lock: the work stops where it is (every step is
//! idempotent; the next run finishes it), the lock is released, and the
//! process exits 130 or 143 (128 + the signal's number, as a shell reports
//! a process the signal ended).
//!
//! Listening replaces the signal's default action for the rest of the
//! process, so only the lock's holder listens, and only while it holds it.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// A signal that stops a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM: a CI job cancelled, a container stopped.
    Terminate,
}

/// The command was stopped by a signal; the lock was released on the way
/// out.
#[derive(Debug, thiserror::Error)]
#[error("{}; the stage lock is released and the next run finishes the work", match .signal {
    Stop::Interrupt => "interrupted (SIGINT)",
    Stop::Terminate => "terminated (SIGTERM)",
})]
pub struct Interrupted {
    pub signal: Stop,
}

/// SIGINT and SIGTERM, listened for from now on.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    pub fn listen() -> std::io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The next one to arrive.
    pub async fn next(&mut self) -> Interrupted {
        let signal = tokio::select! {
            _ = self.interrupt.recv() => Stop::Interrupt,
            _ = self.terminate.recv() => Stop::Terminate,
        };
        Interrupted { signal }
    }
}
