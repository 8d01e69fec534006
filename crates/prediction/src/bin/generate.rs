//! Writes the sample data, `data/PDE-Runtimes-2025.csv` and
//! `data/file_audit.json`, from a fixed seed: the same bytes every run.
//!
//! Usage: `generate [--seed N] [--out DIR]` (default: the workspace's `data/`).

use std::path::PathBuf;
use std::process::ExitCode;

use prediction::generate::{DEFAULT_SEED, generate};

fn main() -> ExitCode {
    let mut seed = DEFAULT_SEED;
    let mut out = prediction::paths::workspace_root().join("data");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--seed", Some(v)) => match v.parse() {
                Ok(s) => seed = s,
                Err(_) => return usage(&format!("--seed: `{v}` is not a whole number")),
            },
            ("--out", Some(v)) => out = PathBuf::from(v),
            _ => return usage(&format!("unexpected argument `{arg}`")),
        }
    }
    let sample = generate(seed);
    if let Err(e) = sample.write_to(&out) {
        eprintln!("error: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {} (seed {seed})", out.display());
    ExitCode::SUCCESS
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("error: {problem}\nusage: generate [--seed N] [--out DIR]");
    ExitCode::from(2)
}
