//! The Docker build context as an in-memory tar: the Dockerfile directory's
//! files at the root, the static binary as `bootstrap`, and each include
//! path under its own name (`models/`, `data/`).
//!
//! The tar is deterministic: sorted entries, fixed mtime, owner root, and
//! modes set here rather than copied from disk (files 0644, directories and
//! `bootstrap` 0755), because Lambda runs the image as a non-root user that
//! must be able to read every file, and a checkout's modes depend on umask.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use super::files::{include_name, io_error, walk};
use super::{BuildError, BuildStep};
use crate::config::Stage;

/// The binary's name in the context; the Dockerfile copies it from here.
pub const BOOTSTRAP: &str = "bootstrap";

const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;
const EXEC_MODE: u32 = 0o755;
/// Any fixed time works; the epoch says "not a real time".
const MTIME: u64 = 0;

/// Builds the context tar for `stage` with `bootstrap` (the compiled
/// binary) in it.
pub fn build_context(stage: &Stage, bootstrap: &Path) -> Result<Vec<u8>, BuildError> {
    let mut context = Context {
        tar: tar::Builder::new(Vec::new()),
        names: BTreeSet::new(),
    };

    let dockerfile_dir = stage.root.join(&stage.image.dockerfile_dir);
    if !dockerfile_dir.join("Dockerfile").is_file() {
        return Err(BuildError::new(
            BuildStep::Context,
            format!(
                "no Dockerfile in {} (set `[image] dockerfile_dir` in deploy.toml)",
                dockerfile_dir.display()
            ),
        ));
    }
    for entry in walk(&dockerfile_dir, BuildStep::Context)? {
        if entry.is_dir {
            context.dir(&entry.relative)?;
        } else {
            context.file(&entry.relative, &entry.path, FILE_MODE)?;
        }
    }

    context.file(BOOTSTRAP, bootstrap, EXEC_MODE)?;

    for include in &stage.image.include {
        let name = include_name(include, BuildStep::Context)?;
        let path = stage.root.join(include);
        let meta = fs::metadata(&path)
            .map_err(|e| io_error(BuildStep::Context, "read the image include path", &path, e))?;
        if !meta.is_dir() {
            context.file(&name, &path, FILE_MODE)?;
            continue;
        }
        context.dir(&name)?;
        for entry in walk(&path, BuildStep::Context)? {
            let inside = format!("{name}/{}", entry.relative);
            if entry.is_dir {
                context.dir(&inside)?;
            } else {
                context.file(&inside, &entry.path, FILE_MODE)?;
            }
        }
    }

    context
        .tar
        .into_inner()
        .map_err(|e| BuildError::new(BuildStep::Context, format!("cannot finish the tar: {e}")))
}

struct Context {
    tar: tar::Builder<Vec<u8>>,
    /// Every path added so far, to refuse two inputs with the same name.
    names: BTreeSet<String>,
}

impl Context {
    fn claim(&mut self, name: &str) -> Result<(), BuildError> {
        if self.names.insert(name.to_string()) {
            return Ok(());
        }
        Err(BuildError::new(
            BuildStep::Context,
            format!(
                "`{name}` would be in the build context twice (the Dockerfile directory, \
                 the binary and the include paths must not share names)"
            ),
        ))
    }

    fn dir(&mut self, name: &str) -> Result<(), BuildError> {
        self.claim(name)?;
        let header = header(tar::EntryType::Directory, DIR_MODE, 0);
        self.append(header, &format!("{name}/"), &[][..])
    }

    fn file(&mut self, name: &str, path: &Path, mode: u32) -> Result<(), BuildError> {
        self.claim(name)?;
        let content = fs::read(path).map_err(|e| io_error(BuildStep::Context, "read", path, e))?;
        let header = header(tar::EntryType::Regular, mode, content.len() as u64);
        self.append(header, name, content.as_slice())
    }

    fn append(
        &mut self,
        mut header: tar::Header,
        name: &str,
        data: &[u8],
    ) -> Result<(), BuildError> {
        // append_data writes long names as GNU extensions and sets the checksum.
        self.tar.append_data(&mut header, name, data).map_err(|e| {
            BuildError::new(
                BuildStep::Context,
                format!("cannot add `{name}` to the tar: {e}"),
            )
        })
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(MTIME);
    header.set_uid(0);
    header.set_gid(0);
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::path::PathBuf;

    fn stage_with_inputs() -> (tempfile::TempDir, Stage, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("lambda-image")).unwrap();
        fs::write(root.join("lambda-image/Dockerfile"), "FROM scratch\n").unwrap();
        fs::create_dir_all(root.join("models/nested")).unwrap();
        fs::write(root.join("models/nested/m.bin"), "weights").unwrap();
        fs::write(root.join("models/.m.bin.swp"), "junk").unwrap();
        fs::create_dir_all(root.join("data")).unwrap();
        fs::write(root.join("data/w.csv"), "a,b\n").unwrap();
        fs::create_dir_all(root.join("target/lambda")).unwrap();
        let binary = root.join("target/lambda/bootstrap");
        fs::write(&binary, "\x7fELF").unwrap();
        let mut stage = Stage::defaults("app", "dev", "us-east-1");
        stage.root = root.to_path_buf();
        (dir, stage, binary)
    }

    fn entries(tar: &[u8]) -> Vec<(String, u32, u64, u64, String)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let header = entry.header().clone();
                let mut content = String::new();
                entry.read_to_string(&mut content).unwrap();
                (
                    entry.path().unwrap().to_string_lossy().into_owned(),
                    header.mode().unwrap(),
                    header.mtime().unwrap(),
                    header.uid().unwrap(),
                    content,
                )
            })
            .collect()
    }

    #[test]
    fn context_has_the_contract_layout_and_modes() {
        let (_dir, stage, binary) = stage_with_inputs();
        let tar = build_context(&stage, &binary).unwrap();
        let found: Vec<_> = entries(&tar)
            .into_iter()
            .map(|(path, mode, mtime, uid, content)| {
                assert_eq!((mtime, uid), (MTIME, 0), "{path}");
                (path, mode, content)
            })
            .collect();
        let expected = [
            ("Dockerfile", 0o644, "FROM scratch\n"),
            ("bootstrap", 0o755, "\x7fELF"),
            ("models/", 0o755, ""),
            ("models/nested/", 0o755, ""),
            ("models/nested/m.bin", 0o644, "weights"),
            ("data/", 0o755, ""),
            ("data/w.csv", 0o644, "a,b\n"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(p, m, c)| (p.to_string(), *m, c.to_string()))
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn context_is_deterministic() {
        let (_dir, stage, binary) = stage_with_inputs();
        let first = build_context(&stage, &binary).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = stage.root.join("data/w.csv");
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(build_context(&stage, &binary).unwrap(), first);
    }

    #[test]
    fn bad_inputs_are_clear_errors() {
        let (_dir, stage, binary) = stage_with_inputs();
        let mut other = stage.clone();
        other.image.include.push(PathBuf::from("other/data"));
        fs::create_dir_all(stage.root.join("other/data")).unwrap();
        let text = build_context(&other, &binary).unwrap_err().to_string();
        assert!(
            text.contains("`data` would be in the build context twice"),
            "{text}"
        );

        let mut other = stage.clone();
        other.image.dockerfile_dir = PathBuf::from("nowhere");
        let text = build_context(&other, &binary).unwrap_err().to_string();
        assert!(text.contains("no Dockerfile in"), "{text}");

        let text = build_context(&stage, &stage.root.join("missing"))
            .unwrap_err()
            .to_string();
        assert!(text.contains("cannot read"), "{text}");
    }
}
