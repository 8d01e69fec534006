//! The deployer's integration tests: one test binary with a module per
//! area, as ripgrep's `tests/tests.rs`. Each file under `tests/` used to be
//! its own binary, and each linked the six AWS SDKs, bollard and hyper
//! again; one binary is one link.
//!
//! The tests of all areas run side by side in one process (libtest's
//! threads, one per core unless `--test-threads` says otherwise), so none
//! may rely on being alone: names in moto's shared state are unique
//! (`util::unique_name`), nothing sets process-wide state such as
//! environment variables, and a test that counts or times something counts
//! only its own. Run one area with its module path, e.g.
//! `cargo test -p deployer --test it up::`.

mod util;

mod alarms;
mod aws_apigw;
mod aws_apigw_quotas;
mod aws_ecr;
mod aws_iam;
mod aws_lambda;
mod aws_lambda_reads;
mod aws_logs;
mod bench_figures;
mod callers;
mod ci;
mod cli;
mod concurrency;
mod concurrency_config;
mod config_proptest;
mod config_repo;
mod cross_stage;
mod dev;
mod docs;
mod domain;
mod errors;
mod faults;
mod iam_policy;
mod image;
mod image_cleanup;
mod invoke;
mod local_cloud;
mod lock_across_machines;
mod metrics;
mod ops_logs_destroy;
mod ops_status_rollback;
mod plan_apply;
mod previews;
mod protect;
mod public_path;
mod rollback_heals;
mod security;
mod shared_repository;
mod smoke;
mod up;
mod watch;
