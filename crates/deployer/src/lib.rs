//! The deployer as a library: the binary (`main.rs`) is a thin shell over
//! it, and the integration tests call its AWS and image steps directly
//! against the local AWS.

pub mod aws;
pub mod cli;
pub mod commands;
pub mod config;
pub mod exit;
pub mod image;
pub mod local;
pub mod names;
pub mod plan;
pub mod report;
pub mod signals;
pub mod stage;
pub mod ui;
pub mod watch;
