//! The deployer as a library: the binary (`main.rs`) is a thin shell over
//! it, and the integration tests call its AWS and image steps directly
//! against the local AWS. Only what those two use is `pub`; the rest is
//! private to the crate, so the compiler reports what nothing calls.

pub mod aws;
pub mod cli;
pub mod commands;
pub mod config;
pub mod exit;
pub mod image;
// `local`, `stage::image` and `stage::release` are public for the local
// invoke benchmark (`benches/local_invoke`), which runs the function as
// `deployer invoke --local` does.
pub mod local;
pub mod names;
pub mod plan;
mod report;
mod signals;
pub mod stage;
pub mod ui;
mod watch;
