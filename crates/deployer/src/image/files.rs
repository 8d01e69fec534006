//! Walking the image's input trees in a stable order, skipping build
//! output and editor junk, shared by the content hash and the build context
//! so that both see exactly the same files.

use std::fs;
use std::path::{Path, PathBuf};

use super::{BuildError, BuildStep};

/// One file or directory under a walked root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The path on disk.
    pub path: PathBuf,
    /// The path relative to the walked root, with `/` separators.
    pub relative: String,
    pub is_dir: bool,
    /// Whether any execute bit is set (files only).
    pub executable: bool,
}

/// Names that never go into an image or its hash: build output, version
/// control, editor and OS droppings.
pub(crate) fn is_junk(name: &str) -> bool {
    name == "target"
        || name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swo")
        || (name.starts_with('#') && name.ends_with('#'))
}

/// Every file and directory under `root` (not `root` itself), sorted by
/// relative path so that the order does not depend on the file system.
/// Symbolic links are followed.
pub(crate) fn walk(root: &Path, step: BuildStep) -> Result<Vec<Entry>, BuildError> {
    let mut entries = Vec::new();
    walk_into(root, "", &mut entries, step)?;
    Ok(entries)
}

fn walk_into(
    dir: &Path,
    prefix: &str,
    entries: &mut Vec<Entry>,
    step: BuildStep,
) -> Result<(), BuildError> {
    let read = fs::read_dir(dir).map_err(|e| io_error(step, "read the directory", dir, e))?;
    let mut children = Vec::new();
    for child in read {
        let child = child.map_err(|e| io_error(step, "read the directory", dir, e))?;
        let name = child.file_name().to_string_lossy().into_owned();
        if !is_junk(&name) {
            children.push((name, child.path()));
        }
    }
    children.sort();
    for (name, path) in children {
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let meta = fs::metadata(&path).map_err(|e| io_error(step, "read", &path, e))?;
        let is_dir = meta.is_dir();
        entries.push(Entry {
            path: path.clone(),
            relative: relative.clone(),
            is_dir,
            executable: !is_dir && is_executable(&meta),
        });
        if is_dir {
            walk_into(&path, &relative, entries, step)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
pub(crate) fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
pub(crate) fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

pub(crate) fn io_error(
    step: BuildStep,
    action: &str,
    path: &Path,
    e: std::io::Error,
) -> BuildError {
    BuildError::new(step, format!("cannot {action} {}: {e}", path.display()))
}

/// The name an include path gets in the build context: its last component
/// (`models`, `data`), as the Dockerfile contract says.
pub(crate) fn include_name(include: &Path, step: BuildStep) -> Result<String, BuildError> {
    include
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| {
            BuildError::new(
                step,
                format!(
                    "image include path `{}` has no file name (use a path such as `models`)",
                    include.display()
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_is_sorted_and_skips_junk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/target")).unwrap();
        fs::create_dir_all(root.join(".git")).unwrap();
        fs::write(root.join("b/z.txt"), "z").unwrap();
        fs::write(root.join("b/target/out"), "o").unwrap();
        fs::write(root.join("a.txt"), "a").unwrap();
        fs::write(root.join("a.txt~"), "a").unwrap();
        fs::write(root.join(".a.txt.swp"), "a").unwrap();
        let names: Vec<_> = walk(root, BuildStep::Hash)
            .unwrap()
            .into_iter()
            .map(|e| (e.relative, e.is_dir))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a.txt".to_string(), false),
                ("b".to_string(), true),
                ("b/z.txt".to_string(), false)
            ]
        );
    }
}
