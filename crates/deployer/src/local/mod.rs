//! Runs the function on this machine with no AWS: a Lambda Runtime API
//! served on loopback ([`RuntimeApi`]), and the function itself started
//! against it, either as the real image in Docker or as the static binary
//! ([`LocalFunction`]). `deployer invoke --local` and the benchmarks use it.

mod function;
mod runtime_api;

pub use function::{LocalFunction, Runner};
pub use runtime_api::{Invocation, InvocationOutcome, RuntimeApi};
