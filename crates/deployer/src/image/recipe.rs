//! How the function's binary is made — the Rust target, the cargo profile
//! and the RUSTFLAGS — and the hash of what it is made from. Both the
//! content hash (which must change when the binary would) and the compile
//! (which keeps the binary under that hash) take one [`Recipe`], worked out
//! once per run: it runs `cargo metadata` and `rustc -V`, which each step
//! used to run again on its own.

use super::BuildError;
use super::hash::{ContentHash, binary_hash};
use crate::config::{Architecture, Stage};

/// The cargo profile the function is built with.
const PROFILE: &str = "release";

/// Set for the function's build, replacing the caller's RUSTFLAGS, so
/// that the binary depends on nothing from the environment.
const RUSTFLAGS: &str = "-C target-feature=+crt-static";

/// The Rust target for a Lambda architecture.
pub fn target_triple(architecture: Architecture) -> &'static str {
    match architecture {
        Architecture::X86_64 => "x86_64-unknown-linux-gnu",
        Architecture::Arm64 => "aarch64-unknown-linux-gnu",
    }
}

/// The recipe of one stage's function binary. Its fields are private so
/// that the binary hash always belongs to the target, profile and flags
/// beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    target: &'static str,
    profile: &'static str,
    rustflags: &'static str,
    binary_hash: ContentHash,
}

impl Recipe {
    /// The recipe for `stage`'s function: reads its sources and runs
    /// `cargo metadata` and `rustc -V` once each; compiles nothing.
    pub fn for_stage(stage: &Stage) -> Result<Recipe, BuildError> {
        let target = target_triple(stage.function.architecture);
        let binary_hash = binary_hash(stage, target, PROFILE, RUSTFLAGS)?;
        Ok(Recipe {
            target,
            profile: PROFILE,
            rustflags: RUSTFLAGS,
            binary_hash,
        })
    }

    /// `--target` of the build (`x86_64-unknown-linux-gnu`).
    pub fn target(&self) -> &'static str {
        self.target
    }

    /// `--profile` of the build (`release`).
    pub fn profile(&self) -> &'static str {
        self.profile
    }

    /// The build's RUSTFLAGS (static linking: the image has no C library).
    pub fn rustflags(&self) -> &'static str {
        self.rustflags
    }

    /// A sha256 over everything the binary depends on (sources, lockfile,
    /// toolchain and this recipe) and nothing it does not (models, data):
    /// the compiled binary is kept under it.
    pub fn binary_hash(&self) -> &ContentHash {
        &self.binary_hash
    }
}
