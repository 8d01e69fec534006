//! Compiling the function into the static Linux binary that goes into the
//! image as `bootstrap`.
//!
//! A `FROM scratch` image has no C library, so the binary is linked
//! statically (`+crt-static` on the gnu target, the only one this
//! toolchain has). It is built in its own target directory,
//! `{root}/target/lambda`, because different RUSTFLAGS would otherwise
//! make cargo throw away the host build every time.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::{BuildError, BuildStep, ImageEvent, OnEvent, Recipe, Tail};
use crate::config::Stage;

/// Lines of cargo's output kept for the error message.
const TAIL_LINES: usize = 40;

/// `lambda/` under `CARGO_TARGET_DIR` when it is set (as cargo itself
/// would use it), else `{root}/target/lambda`: apart from the host's own
/// builds, whose flags differ.
pub fn target_dir(stage: &Stage) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => std::env::current_dir()
            .map(|cwd| cwd.join(&dir))
            .unwrap_or_else(|_| PathBuf::from(&dir))
            .join("lambda"),
        None => stage.root.join("target").join("lambda"),
    }
}

/// Where a binary compiled from inputs with this hash is kept, so that any
/// checkout with the same sources reuses it without running cargo.
fn cached_binary(stage: &Stage, key: &str) -> PathBuf {
    target_dir(stage)
        .join("bin")
        .join(key)
        .join(&stage.function.binary)
}

/// Keeps a copy of the fresh binary under its inputs' hash. Copied to a
/// temporary name and renamed, so a killed run never leaves half a file.
fn keep_binary(binary: &Path, cached: &Path) -> Result<(), BuildError> {
    let keep = |e: std::io::Error| {
        BuildError::new(
            BuildStep::Compile,
            format!("cannot keep the binary at {}: {e}", cached.display()),
        )
    };
    let dir = cached.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(keep)?;
    let partial = dir.join(format!(".partial-{}", std::process::id()));
    std::fs::copy(binary, &partial).map_err(keep)?;
    std::fs::rename(&partial, cached).map_err(keep)
}

/// Builds `stage.function.binary` of `stage.function.package` by `recipe`
/// (a static release binary) and returns its path; a binary compiled
/// before under the recipe's binary hash is reused. Every line cargo
/// writes to stderr goes to `on_event` as [`ImageEvent::Compile`].
pub async fn compile(
    stage: &Stage,
    recipe: &Recipe,
    on_event: OnEvent<'_>,
) -> Result<PathBuf, BuildError> {
    let cached = cached_binary(stage, recipe.binary_hash().hex());
    if cached.is_file() {
        on_event(ImageEvent::Compile(format!(
            "sources unchanged: reusing {}",
            cached.display()
        )));
        return Ok(cached);
    }
    let triple = recipe.target();
    ensure_target_installed(&stage.root, triple).await?;

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let target_dir = target_dir(stage);
    let mut command = Command::new(&cargo);
    command
        .args(["build", "--profile", recipe.profile(), "--locked"])
        .args(["-p", &stage.function.package])
        .args(["--bin", &stage.function.binary])
        .args(["--target", triple])
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--manifest-path")
        .arg(stage.root.join("Cargo.toml"))
        .current_dir(&stage.root)
        .env("RUSTFLAGS", recipe.rustflags())
        // Either of these would override RUSTFLAGS or the target directory.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Profile overrides from the environment would change the binary
    // without changing its content hash.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CARGO_PROFILE_") {
            command.env_remove(name);
        }
    }
    let mut child = command.spawn().map_err(|e| {
        BuildError::new(
            BuildStep::Compile,
            format!("cannot run `{cargo} build`: {e}"),
        )
    })?;

    let mut tail = Tail::new(TAIL_LINES);
    if let Some(stderr) = child.stderr.take() {
        let mut lines = BufReader::new(stderr).lines();
        while let Some(line) = lines.next_line().await.map_err(|e| {
            BuildError::new(
                BuildStep::Compile,
                format!("cannot read cargo's output: {e}"),
            )
        })? {
            tail.push(&line);
            on_event(ImageEvent::Compile(line));
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| BuildError::new(BuildStep::Compile, format!("cannot wait for cargo: {e}")))?;
    if !status.success() {
        return Err(BuildError::new(
            BuildStep::Compile,
            format!(
                "`cargo build -p {} --bin {} --target {triple}` failed ({status})",
                stage.function.package, stage.function.binary
            ),
        )
        .with_output(tail.into_lines()));
    }

    let binary = target_dir
        .join(triple)
        .join(recipe.profile())
        .join(&stage.function.binary);
    if !binary.is_file() {
        return Err(BuildError::new(
            BuildStep::Compile,
            format!("cargo succeeded but {} is not there", binary.display()),
        ));
    }
    keep_binary(&binary, &cached)?;
    Ok(cached)
}

/// The standard library for `triple` must be installed; cargo's own error
/// for a missing one ("can't find crate for `core`") says little.
async fn ensure_target_installed(root: &Path, triple: &str) -> Result<(), BuildError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .current_dir(root)
        .output()
        .await
        .map_err(|e| BuildError::new(BuildStep::Compile, format!("cannot run `{rustc}`: {e}")))?;
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || sysroot.is_empty() {
        return Err(BuildError::new(
            BuildStep::Compile,
            format!("`{rustc} --print sysroot` failed ({})", output.status),
        ));
    }
    let target_lib = Path::new(&sysroot)
        .join("lib/rustlib")
        .join(triple)
        .join("lib");
    if !target_lib.is_dir() {
        return Err(BuildError::new(
            BuildStep::Compile,
            format!(
                "the Rust target `{triple}` is not installed (no {}); install it with \
                 `rustup target add {triple}` or deploy with architecture x86_64",
                target_lib.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Architecture;
    use crate::image::recipe::target_triple;

    #[tokio::test]
    async fn a_missing_target_is_a_clear_error() {
        let mut stage = Stage::defaults("app", "dev", "us-east-1");
        stage.root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let error = ensure_target_installed(&stage.root, "riscv64gc-unknown-none-elf-nope")
            .await
            .unwrap_err();
        assert_eq!(error.step, BuildStep::Compile);
        assert!(error.message.contains("is not installed"), "{error}");
        assert!(error.message.contains("rustup target add"), "{error}");
        ensure_target_installed(&stage.root, target_triple(Architecture::X86_64))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_compile_error_returns_cargo_output() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(
            root.join("Cargo.toml"),
            "[package]\nname = \"func\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[[bin]]\nname = \"bootstrap\"\npath = \"src/main.rs\"\n",
        )
        .unwrap();
        std::fs::write(
            root.join("Cargo.lock"),
            "version = 4\n\n[[package]]\nname = \"func\"\nversion = \"0.1.0\"\n",
        )
        .unwrap();
        std::fs::write(
            root.join("src/main.rs"),
            "fn main() { let x: u32 = \"not a number\"; }\n",
        )
        .unwrap();
        let mut stage = Stage::defaults("app", "dev", "us-east-1");
        stage.root = root.to_path_buf();
        stage.function.package = "func".into();
        let recipe = Recipe::for_stage(&stage).unwrap();
        let lines = std::sync::Mutex::new(Vec::new());
        let error = compile(&stage, &recipe, &|event| {
            if let ImageEvent::Compile(line) = event {
                lines.lock().unwrap().push(line);
            }
        })
        .await
        .unwrap_err();
        assert_eq!(error.step, BuildStep::Compile);
        let text = error.to_string();
        assert!(text.contains("mismatched types"), "{text}");
        assert!(
            lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("mismatched types")),
            "cargo's lines were not streamed"
        );
    }
}
