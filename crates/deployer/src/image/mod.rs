//! The function's container image: compile, assemble the build context,
//! hash it, build and push it through bollard.
//!
//! The order a command runs them in:
//! 1. [`Recipe::for_stage`] → how the binary is made and from what, once
//!    per run; both of the next steps take it.
//! 2. [`content_hash`] → the tag ([`ContentHash::tag`]); if the repository
//!    already holds that tag, stop here: nothing changed.
//! 3. [`compile`] (can run on its own task while AWS resources are set up),
//! 4. [`build_context`] with the binary, [`connect_docker`], [`build_image`],
//! 5. [`push_image`] with ECR's credentials → the [`ImageRef`] with its
//!    digest, which Lambda is pointed at.
//!
//! Nothing here prints: every step reports progress as [`ImageEvent`]s to a
//! callback, and the command layer decides how to show them. Every failure
//! is a [`BuildError`], which the binary maps to its own exit code.

pub(crate) mod build;
pub mod compile;
pub(crate) mod context;
mod files;
pub(crate) use files::is_junk;
pub(crate) mod hash;
pub(crate) mod push;
pub(crate) mod recipe;

use std::fmt;
use std::path::PathBuf;

pub use build::{build_image, connect_docker, connect_docker_at, image_exists};
pub use compile::compile;
pub use context::build_context;
pub use hash::{ContentHash, content_hash, input_paths};
pub use push::{
    RegistryCredentials, digest_of_taken_tag, push_image, pushed_by_this_engine, registry_digest,
};
pub use recipe::Recipe;

/// What runs the function on this machine (`crate::local`): the static
/// `bootstrap` binary that [`compile`] makes, or an image [`build_image`]
/// made.
#[derive(Debug, Clone)]
pub enum Runner {
    /// The static `bootstrap` binary, run directly.
    Binary(PathBuf),
    /// A local image reference, run by Docker.
    Image(String),
}

/// An image in a repository: by tag while it is being built, by digest
/// once pushed (Lambda is always pointed at the digest, which cannot move).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `{account}.dkr.ecr.{region}.amazonaws.com/{repository}`.
    pub repository_uri: String,
    pub tag: String,
    /// `sha256:...`, known after the push.
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn new(repository_uri: &str, tag: &str) -> ImageRef {
        ImageRef {
            repository_uri: repository_uri.to_string(),
            tag: tag.to_string(),
            digest: None,
        }
    }

    /// `{repository_uri}:{tag}`.
    pub fn by_tag(&self) -> String {
        format!("{}:{}", self.repository_uri, self.tag)
    }
}

/// Progress of the image steps, for the command layer to show.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageEvent {
    /// One line of cargo's output while compiling the function.
    Compile(String),
    /// One line of the Docker build's log.
    BuildLog(String),
    /// Progress of one layer while pushing. `id` is empty when the engine's
    /// message does not name a layer (bollard 0.21's push messages carry no
    /// layer id field).
    Layer {
        id: String,
        status: String,
        current: Option<i64>,
        total: Option<i64>,
    },
}

/// Where a step sends its [`ImageEvent`]s. `Sync` so that the steps'
/// futures are `Send` and can be spawned, e.g. compiling while the AWS
/// resources are being set up.
pub type OnEvent<'a> = &'a (dyn Fn(ImageEvent) + Sync);

/// The step of the image pipeline that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStep {
    Hash,
    Compile,
    Context,
    Build,
    Push,
}

impl fmt::Display for BuildStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BuildStep::Hash => "hashing the image inputs",
            BuildStep::Compile => "compiling the function",
            BuildStep::Context => "assembling the build context",
            BuildStep::Build => "building the image",
            BuildStep::Push => "pushing the image",
        })
    }
}

/// Compiling, building or pushing the image failed. `output` holds the last
/// lines of the tool's output (cargo's stderr, the build log), because the
/// cause is nearly always in them.
#[derive(Debug, thiserror::Error)]
#[error("{step} failed: {message}{}", format_output(.output))]
pub struct BuildError {
    pub step: BuildStep,
    pub message: String,
    pub output: Vec<String>,
}

impl BuildError {
    pub fn new(step: BuildStep, message: impl Into<String>) -> BuildError {
        BuildError {
            step,
            message: message.into(),
            output: Vec::new(),
        }
    }

    pub fn with_output(mut self, output: Vec<String>) -> BuildError {
        self.output = output;
        self
    }
}

fn format_output(output: &[String]) -> String {
    if output.is_empty() {
        return String::new();
    }
    let mut text = String::from("\n--- output ---");
    for line in output {
        text.push('\n');
        text.push_str(line);
    }
    text
}

/// The last lines of a long output, kept while streaming it so that an
/// error can show them without holding the whole log.
#[derive(Debug)]
pub(crate) struct Tail {
    lines: std::collections::VecDeque<String>,
    keep: usize,
}

impl Tail {
    pub(crate) fn new(keep: usize) -> Tail {
        Tail {
            lines: std::collections::VecDeque::with_capacity(keep),
            keep,
        }
    }

    pub(crate) fn push(&mut self, line: &str) {
        if self.lines.len() == self.keep {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_string());
    }

    pub(crate) fn into_lines(self) -> Vec<String> {
        self.lines.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Stage;

    fn assert_send<T: Send>(_: &T) {}

    /// The steps that wait can run on another task while AWS work goes on.
    #[test]
    fn step_futures_are_send() {
        let mut stage = Stage::defaults("app", "dev", "us-east-1");
        stage.root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let recipe = Recipe::for_stage(&stage).unwrap();
        let on_event: OnEvent = &|_| {};
        assert_send(&compile(&stage, &recipe, on_event));
        assert_send(&connect_docker());
        let docker = bollard::Docker::connect_with_http(
            "http://127.0.0.1:1",
            1,
            bollard::API_DEFAULT_VERSION,
        )
        .unwrap();
        let image = ImageRef::new("repo", "tag");
        assert_send(&build_image(&docker, &stage, Vec::new(), &image, on_event));
        let credentials = RegistryCredentials {
            username: "AWS".into(),
            password: String::new(),
            server_address: "host".into(),
        };
        assert_send(&push_image(&docker, &image, &credentials, on_event));
    }

    #[test]
    fn image_ref_names() {
        let image = ImageRef::new("123.dkr.ecr.us-east-1.amazonaws.com/app", "habc");
        assert_eq!(
            image.by_tag(),
            "123.dkr.ecr.us-east-1.amazonaws.com/app:habc"
        );
    }

    #[test]
    fn tail_keeps_the_last_lines_and_the_error_shows_them() {
        let mut tail = Tail::new(2);
        for line in ["one", "two", "three"] {
            tail.push(line);
        }
        let error = BuildError::new(BuildStep::Build, "exit 1").with_output(tail.into_lines());
        let text = error.to_string();
        assert!(
            text.starts_with("building the image failed: exit 1"),
            "{text}"
        );
        assert!(text.contains("two\nthree"), "{text}");
        assert!(!text.contains("one"), "{text}");
    }
}
