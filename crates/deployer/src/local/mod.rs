//! Runs the function on this machine with no AWS: a Lambda Runtime API
//! served on loopback ([`runtime_api::RuntimeApi`]), and the function itself started
//! against it, either as the real image in Docker or as the static binary
//! ([`LocalFunction`]). `deployer invoke --local` and the benchmarks use it;
//! `deployer dev` puts API Gateway's part in front of it ([`LocalApi`],
//! served over HTTP by [`serve`]).

mod function;
mod gateway;
mod runtime_api;
pub mod serve;

pub use function::LocalFunction;
pub use gateway::LocalApi;
pub use runtime_api::InvocationOutcome;
