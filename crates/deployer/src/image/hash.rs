//! The image's content hash: sha256 over everything that goes into the
//! image, so that an unchanged function is never rebuilt or pushed again
//! and the tag says exactly what is inside.
//!
//! Inputs, in a fixed order: the function package's sources and those of
//! its workspace path dependencies (found with `cargo metadata --no-deps`,
//! which reads manifests only and compiles nothing), the root `Cargo.toml`
//! and `Cargo.lock`, a toolchain file if any, the Dockerfile directory, the
//! include paths, and the build settings (base image, architecture, target,
//! profile, RUSTFLAGS, rustc version). Every file counts with its path and
//! its execute bit; `target/` and editor junk do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::files::{include_name, io_error, walk};
use super::{BuildError, BuildStep, Recipe};
use crate::config::{Architecture, Stage};

/// Bumped when the hashing scheme itself changes, so old tags are not
/// mistaken for new ones.
const SCHEME: &str = "deployer-image-hash v2";

/// A sha256 over the image's inputs, as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentHash(String);

impl ContentHash {
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// The image tag: `h` and the first 20 hex digits. The prefix keeps the
    /// tag from looking like a number or a digest; 80 bits is plenty
    /// against collisions within one repository.
    pub fn tag(&self) -> String {
        format!("h{}", &self.0[..20])
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hashes every input of the stage's image: the binary by `recipe`'s
/// binary hash, then the files around it. Reads files; runs nothing (the
/// recipe holds what `cargo metadata` and `rustc -V` said).
pub fn content_hash(stage: &Stage, recipe: &Recipe) -> Result<ContentHash, BuildError> {
    let root = workspace_root(stage)?;
    let mut hasher = Sha256::new();
    put(&mut hasher, SCHEME);
    put(&mut hasher, "binary");
    put(&mut hasher, recipe.binary_hash().hex());
    put_tree(
        &mut hasher,
        "dockerfile",
        &root.join(&stage.image.dockerfile_dir),
    )?;
    for include in &stage.image.include {
        let name = include_name(include, BuildStep::Hash)?;
        let path = root.join(include);
        if !path.exists() {
            return Err(missing_include(include, &path));
        }
        put_tree(&mut hasher, &format!("include:{name}"), &path)?;
    }
    put(&mut hasher, "base_image");
    put(&mut hasher, &stage.image.base_image);
    Ok(ContentHash(hex::encode(hasher.finalize())))
}

/// The workspace root's files the binary depends on.
/// `.cargo/config.toml` can set the linker or target options.
const ROOT_FILES: [&str; 6] = [
    "Cargo.toml",
    "Cargo.lock",
    "rust-toolchain",
    "rust-toolchain.toml",
    ".cargo/config.toml",
    ".cargo/config",
];

/// Every file and directory the image is made from — what
/// [`content_hash`] and [`binary_hash`] read: the function's package
/// directories, the root files that exist, the Dockerfile directory and
/// the include paths. `dev` and `up --watch` watch exactly these. Runs
/// `cargo metadata` (to find the packages); compiles nothing.
pub fn input_paths(stage: &Stage) -> Result<Vec<PathBuf>, BuildError> {
    let root = workspace_root(stage)?;
    let mut paths: Vec<PathBuf> = package_dirs(&root, &stage.function.package)?
        .into_values()
        .collect();
    paths.extend(
        ROOT_FILES
            .iter()
            .map(|name| root.join(name))
            .filter(|path| path.exists()),
    );
    paths.push(root.join(&stage.image.dockerfile_dir));
    paths.extend(stage.image.include.iter().map(|include| root.join(include)));
    Ok(paths)
}

fn workspace_root(stage: &Stage) -> Result<PathBuf, BuildError> {
    fs::canonicalize(&stage.root)
        .map_err(|e| io_error(BuildStep::Hash, "find the workspace root", &stage.root, e))
}

/// Hashes only what the compiled binary depends on (sources, lockfile,
/// toolchain and the recipe's target, profile and flags), not models or
/// data: a model change then reuses the binary compiled before, wherever
/// the workspace is checked out. [`Recipe::for_stage`] is its one caller.
pub(super) fn binary_hash(
    stage: &Stage,
    target: &str,
    profile: &str,
    rustflags: &str,
) -> Result<ContentHash, BuildError> {
    let root = workspace_root(stage)?;
    let packages = package_dirs(&root, &stage.function.package)?;
    let rustc = rustc_version(&root)?;

    let mut hasher = Sha256::new();
    put(&mut hasher, SCHEME);
    for (relative, dir) in &packages {
        put_tree(&mut hasher, &format!("package:{relative}"), dir)?;
    }
    for name in ROOT_FILES {
        let path = root.join(name);
        if path.exists() {
            put_file(&mut hasher, &format!("root:{name}"), &path, false)?;
        }
    }
    let architecture = match stage.function.architecture {
        Architecture::X86_64 => "x86_64",
        Architecture::Arm64 => "arm64",
    };
    for (key, value) in [
        ("architecture", architecture),
        ("target", target),
        ("binary", stage.function.binary.as_str()),
        ("profile", profile),
        ("rustflags", rustflags),
        ("rustc", rustc.as_str()),
    ] {
        put(&mut hasher, key);
        put(&mut hasher, value);
    }
    Ok(ContentHash(hex::encode(hasher.finalize())))
}

fn missing_include(include: &Path, path: &Path) -> BuildError {
    BuildError::new(
        BuildStep::Hash,
        format!(
            "image include path `{}` does not exist (looked at {}); fix `[image] include` in deploy.toml",
            include.display(),
            path.display()
        ),
    )
}

/// Length-prefixed, so that no two different input lists hash alike.
fn put(hasher: &mut Sha256, bytes: impl AsRef<[u8]>) {
    let bytes = bytes.as_ref();
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// A file's name, execute bit and content. Only the execute bit of the
/// mode counts: the rest depends on the umask of whoever checked out the
/// repository, and the build context normalizes modes anyway.
fn put_file(
    hasher: &mut Sha256,
    name: &str,
    path: &Path,
    executable: bool,
) -> Result<(), BuildError> {
    let content = fs::read(path).map_err(|e| io_error(BuildStep::Hash, "read", path, e))?;
    put(hasher, "file");
    put(hasher, name);
    put(hasher, if executable { "0755" } else { "0644" });
    put(hasher, content);
    Ok(())
}

/// A file, or a directory with everything under it.
fn put_tree(hasher: &mut Sha256, label: &str, path: &Path) -> Result<(), BuildError> {
    let meta = fs::metadata(path).map_err(|e| io_error(BuildStep::Hash, "read", path, e))?;
    if !meta.is_dir() {
        return put_file(hasher, label, path, super::files::is_executable(&meta));
    }
    put(hasher, "dir");
    put(hasher, label);
    for entry in walk(path, BuildStep::Hash)? {
        let name = format!("{label}/{}", entry.relative);
        if entry.is_dir {
            put(hasher, "dir");
            put(hasher, &name);
        } else {
            put_file(hasher, &name, &entry.path, entry.executable)?;
        }
    }
    Ok(())
}

/// The directories of `package` and of every workspace package it reaches
/// through path dependencies, keyed by their path relative to the root.
fn package_dirs(root: &Path, package: &str) -> Result<BTreeMap<String, PathBuf>, BuildError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .current_dir(root)
        .output()
        .map_err(|e| {
            BuildError::new(
                BuildStep::Hash,
                format!("cannot run `{cargo} metadata`: {e}"),
            )
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(BuildError::new(
            BuildStep::Hash,
            format!(
                "`cargo metadata` failed in {}: {}",
                root.display(),
                output.status
            ),
        )
        .with_output(stderr.lines().map(str::to_string).collect()));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|e| {
        BuildError::new(
            BuildStep::Hash,
            format!("`cargo metadata` printed invalid JSON: {e}"),
        )
    })?;
    let manifests = parse_packages(&metadata)?;

    let Some(start) = manifests.iter().find(|p| p.name == package) else {
        let names: Vec<_> = manifests.iter().map(|p| p.name.as_str()).collect();
        return Err(BuildError::new(
            BuildStep::Hash,
            format!(
                "the function package `{package}` is not in the workspace at {} (it has: {})",
                root.display(),
                names.join(", ")
            ),
        ));
    };
    let mut seen = BTreeSet::new();
    let mut todo = vec![start.dir.clone()];
    while let Some(dir) = todo.pop() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        if let Some(found) = manifests.iter().find(|p| p.dir == dir) {
            todo.extend(found.path_dependencies.iter().cloned());
        }
    }
    let mut dirs = BTreeMap::new();
    for dir in seen {
        // Path dependencies outside the workspace root are hashed under
        // their absolute path: still stable on one machine.
        let relative = dir
            .strip_prefix(root)
            .unwrap_or(&dir)
            .to_string_lossy()
            .replace('\\', "/");
        dirs.insert(relative, dir);
    }
    Ok(dirs)
}

struct PackageManifest {
    name: String,
    dir: PathBuf,
    path_dependencies: Vec<PathBuf>,
}

fn parse_packages(metadata: &serde_json::Value) -> Result<Vec<PackageManifest>, BuildError> {
    let invalid = |what: &str| {
        BuildError::new(
            BuildStep::Hash,
            format!("`cargo metadata` output has no {what}"),
        )
    };
    let packages = metadata["packages"]
        .as_array()
        .ok_or_else(|| invalid("`packages` list"))?;
    let mut manifests = Vec::new();
    for package in packages {
        let name = package["name"]
            .as_str()
            .ok_or_else(|| invalid("package name"))?;
        let manifest = package["manifest_path"]
            .as_str()
            .ok_or_else(|| invalid("package manifest_path"))?;
        let dir = Path::new(manifest)
            .parent()
            .ok_or_else(|| invalid("package directory"))?
            .to_path_buf();
        let path_dependencies = package["dependencies"]
            .as_array()
            .map(|deps| {
                deps.iter()
                    .filter_map(|dep| dep["path"].as_str().map(PathBuf::from))
                    .collect()
            })
            .unwrap_or_default();
        manifests.push(PackageManifest {
            name: name.to_string(),
            dir,
            path_dependencies,
        });
    }
    Ok(manifests)
}

/// `rustc -V` as the workspace would run it (a toolchain file applies): a
/// new compiler makes a different binary.
fn rustc_version(root: &Path) -> Result<String, BuildError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let output = Command::new(&rustc)
        .arg("-V")
        .current_dir(root)
        .output()
        .map_err(|e| BuildError::new(BuildStep::Hash, format!("cannot run `{rustc} -V`: {e}")))?;
    if !output.status.success() {
        return Err(BuildError::new(
            BuildStep::Hash,
            format!("`{rustc} -V` failed: {}", output.status),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small workspace like ours: the function depends on a library by
    /// path; a third crate (the deployer's stand-in) is unrelated.
    fn workspace() -> (tempfile::TempDir, Stage) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write(
            "Cargo.toml",
            "[workspace]\nresolver = \"3\"\nmembers = [\"crates/lib\", \"crates/func\", \"crates/tool\"]\n",
        );
        write(
            "crates/lib/Cargo.toml",
            "[package]\nname = \"lib\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
        );
        write("crates/lib/src/lib.rs", "pub fn f() {}\n");
        write(
            "crates/func/Cargo.toml",
            "[package]\nname = \"func\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[[bin]]\nname = \"bootstrap\"\npath = \"src/main.rs\"\n\n[dependencies]\nlib = { path = \"../lib\" }\n",
        );
        write("crates/func/src/main.rs", "fn main() { lib::f() }\n");
        write(
            "crates/tool/Cargo.toml",
            "[package]\nname = \"tool\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
        );
        write("crates/tool/src/main.rs", "fn main() {}\n");
        write("lambda-image/Dockerfile", "FROM scratch\n");
        write("models/model.bin", "weights v1");
        write("data/weather.csv", "date,t\n");
        write("README.md", "hello\n");
        let mut stage = Stage::defaults("app", "dev", "us-east-1");
        stage.root = root.to_path_buf();
        stage.function.package = "func".into();
        (dir, stage)
    }

    /// The content hash as a run computes it: the recipe, then the hash.
    fn hash_of(stage: &Stage) -> Result<ContentHash, BuildError> {
        content_hash(stage, &Recipe::for_stage(stage)?)
    }

    #[test]
    fn hash_is_stable_and_the_tag_is_valid() {
        let (_dir, stage) = workspace();
        let first = hash_of(&stage).unwrap();
        let second = hash_of(&stage).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.hex().len(), 64);
        let tag = first.tag();
        assert_eq!(tag.len(), 21);
        assert!(tag.starts_with('h'));
        assert!(tag[1..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn hash_changes_with_every_input() {
        let (dir, stage) = workspace();
        let root = dir.path();
        let mut seen = vec![hash_of(&stage).unwrap()];
        let mut changed = |what: &str, change: &dyn Fn()| {
            change();
            let now = hash_of(&stage).unwrap();
            assert!(!seen.contains(&now), "hash did not change after {what}");
            seen.push(now);
        };
        changed("a model file changed", &|| {
            fs::write(root.join("models/model.bin"), "weights v2").unwrap()
        });
        changed("a data file was added", &|| {
            fs::write(root.join("data/more.csv"), "x").unwrap()
        });
        changed("the function's source changed", &|| {
            fs::write(root.join("crates/func/src/main.rs"), "fn main() {}\n").unwrap()
        });
        changed("a path dependency changed", &|| {
            fs::write(root.join("crates/lib/src/lib.rs"), "pub fn f() { }\n").unwrap()
        });
        changed("the Dockerfile changed", &|| {
            fs::write(
                root.join("lambda-image/Dockerfile"),
                "FROM scratch\nCOPY . /\n",
            )
            .unwrap()
        });
        changed("the lock file appeared", &|| {
            fs::write(root.join("Cargo.lock"), "version = 4\n").unwrap()
        });
        changed("a cargo config appeared", &|| {
            fs::create_dir_all(root.join(".cargo")).unwrap();
            fs::write(root.join(".cargo/config.toml"), "[build]\n").unwrap()
        });
        #[cfg(unix)]
        changed("a data file became executable", &|| {
            use std::os::unix::fs::PermissionsExt;
            let path = root.join("data/more.csv");
            fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap()
        });
    }

    #[test]
    fn hash_changes_with_build_settings() {
        let (_dir, stage) = workspace();
        let before = hash_of(&stage).unwrap();
        let mut other = stage.clone();
        other.image.base_image = "public.ecr.aws/lambda/provided:al2023".into();
        assert_ne!(hash_of(&other).unwrap(), before);
        let mut other = stage.clone();
        other.function.architecture = Architecture::Arm64;
        assert_ne!(hash_of(&other).unwrap(), before);
    }

    #[test]
    fn hash_ignores_unrelated_files_and_junk() {
        let (dir, stage) = workspace();
        let root = dir.path();
        let before = hash_of(&stage).unwrap();
        fs::write(root.join("README.md"), "changed\n").unwrap();
        fs::write(root.join("crates/tool/src/main.rs"), "fn main() { }\n").unwrap();
        fs::create_dir_all(root.join("target/release")).unwrap();
        fs::write(root.join("target/release/bootstrap"), "binary").unwrap();
        fs::create_dir_all(root.join("crates/func/target")).unwrap();
        fs::write(root.join("crates/func/target/x"), "x").unwrap();
        fs::write(root.join("crates/func/src/.main.rs.swp"), "junk").unwrap();
        fs::write(root.join("models/model.bin~"), "junk").unwrap();
        assert_eq!(hash_of(&stage).unwrap(), before);
    }

    #[test]
    fn missing_include_and_unknown_package_are_clear_errors() {
        let (_dir, stage) = workspace();
        let mut other = stage.clone();
        other.image.include.push(PathBuf::from("weights"));
        let text = hash_of(&other).unwrap_err().to_string();
        assert!(text.contains("`weights` does not exist"), "{text}");
        let mut other = stage.clone();
        other.function.package = "nope".into();
        let text = hash_of(&other).unwrap_err().to_string();
        assert!(text.contains("`nope` is not in the workspace"), "{text}");
    }

    #[test]
    fn the_recipe_builds_statically_for_the_functions_architecture() {
        let (_dir, stage) = workspace();
        let x86 = Recipe::for_stage(&stage).unwrap();
        assert_eq!(x86.target(), "x86_64-unknown-linux-gnu");
        assert_eq!(x86.profile(), "release");
        assert!(x86.rustflags().contains("+crt-static"), "{x86:?}");
        assert_eq!(Recipe::for_stage(&stage).unwrap(), x86);
        let mut arm = stage.clone();
        arm.function.architecture = Architecture::Arm64;
        let arm = Recipe::for_stage(&arm).unwrap();
        assert_eq!(arm.target(), "aarch64-unknown-linux-gnu");
        assert_ne!(arm.binary_hash(), x86.binary_hash());
    }

    /// The content hash takes what cargo said from the recipe: with the
    /// manifest broken after the recipe was worked out (so `cargo metadata`
    /// fails), it still hashes, and alike.
    #[test]
    fn the_content_hash_runs_no_cargo_of_its_own() {
        let (dir, stage) = workspace();
        let recipe = Recipe::for_stage(&stage).unwrap();
        let before = content_hash(&stage, &recipe).unwrap();
        fs::write(dir.path().join("Cargo.toml"), "not a manifest [").unwrap();
        assert!(
            Recipe::for_stage(&stage).is_err(),
            "cargo metadata read a broken manifest"
        );
        assert_eq!(content_hash(&stage, &recipe).unwrap(), before);
    }

    /// A model changes the image but not the binary, which is reused.
    #[test]
    fn models_change_the_image_not_the_binary() {
        let (dir, stage) = workspace();
        let recipe = Recipe::for_stage(&stage).unwrap();
        let image = content_hash(&stage, &recipe).unwrap();
        fs::write(dir.path().join("models/model.bin"), "weights v2").unwrap();
        let again = Recipe::for_stage(&stage).unwrap();
        assert_eq!(again.binary_hash(), recipe.binary_hash());
        assert_ne!(content_hash(&stage, &again).unwrap(), image);
    }
}
