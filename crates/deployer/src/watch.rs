//! Following the files a stage is made from, for `deployer dev` and
//! `deployer up --watch`: every input of the image
//! ([`image::input_paths`], the same list the content hash reads) and the
//! configuration file, watched through the OS (inotify on Linux), with
//! changes gathered until the files have been quiet for the debounce
//! window, so that an editor's save (several writes) or a training run
//! (the models and their manifest) is one change.
//!
//! Reads are not changes (building the image reads every input), and
//! neither are metadata-only events (`touch`, a new mtime): the content
//! hash would not change, so there would be nothing to redeploy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::config::Stage;
use crate::image;

/// A watch over a stage's inputs.
pub struct Watcher {
    /// Kept alive: dropping it ends the watch.
    _watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<PathBuf>,
    root: PathBuf,
    debounce: Duration,
}

/// What is watched: whole trees, and single files (watched through their
/// directory, since editors replace a file by renaming a new one onto it,
/// which a watch on the file itself would not survive).
#[derive(Debug, Clone, PartialEq)]
struct Watched {
    trees: Vec<PathBuf>,
    files: BTreeSet<PathBuf>,
}

impl Watched {
    fn new(paths: Vec<PathBuf>) -> Watched {
        let mut watched = Watched {
            trees: Vec::new(),
            files: BTreeSet::new(),
        };
        for path in paths {
            if path.is_dir() {
                watched.trees.push(path);
            } else {
                watched.files.insert(path);
            }
        }
        watched
    }

    /// Whether an event at `path` is a change of an input: in a watched
    /// tree (and not build output or editor junk there) or a watched file.
    fn covers(&self, path: &Path) -> bool {
        if self.files.contains(path) {
            return true;
        }
        self.trees.iter().any(|tree| {
            path.strip_prefix(tree).is_ok_and(|rest| {
                !rest
                    .components()
                    .any(|part| image::is_junk(&part.as_os_str().to_string_lossy()))
            })
        })
    }
}

/// Whether a file event can change what the inputs hash to.
fn is_content_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Any
        | EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Other => true,
    }
}

impl Watcher {
    /// Starts watching `stage`'s image inputs and `config_file`.
    pub fn for_stage(stage: &Stage, config_file: &Path, debounce: Duration) -> Result<Watcher> {
        let mut paths = image::input_paths(stage)?;
        paths.push(
            std::fs::canonicalize(config_file)
                .with_context(|| format!("cannot find {}", config_file.display()))?,
        );
        let root = std::fs::canonicalize(&stage.root)
            .with_context(|| format!("cannot find {}", stage.root.display()))?;
        Watcher::new(root, paths, debounce)
    }

    fn new(root: PathBuf, paths: Vec<PathBuf>, debounce: Duration) -> Result<Watcher> {
        let watched = Watched::new(paths);
        let (tx, events) = mpsc::unbounded_channel();
        let filter = watched.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // An error of the OS watch (a queue overflow) is reported as an
                // event with no path we know; a rebuild too many is harmless.
                let Ok(event) = event else { return };
                if !is_content_change(&event.kind) {
                    return;
                }
                for path in event.paths {
                    if filter.covers(&path) {
                        let _ = tx.send(path);
                    }
                }
            })
            .context("cannot watch files (the OS refused an inotify instance)")?;
        for tree in &watched.trees {
            watcher
                .watch(tree, RecursiveMode::Recursive)
                .with_context(|| format!("cannot watch {}", tree.display()))?;
        }
        let parents: BTreeSet<&Path> = watched.files.iter().filter_map(|f| f.parent()).collect();
        for dir in parents {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .with_context(|| format!("cannot watch {}", dir.display()))?;
        }
        Ok(Watcher {
            _watcher: watcher,
            events,
            root,
            debounce,
        })
    }

    /// Waits for the next change and returns the paths it touched,
    /// relative to the workspace root and sorted, once no event came for
    /// the debounce window. Events that arrived while the caller was busy
    /// (an `up` running) are part of the next change, never lost.
    pub async fn next_change(&mut self) -> Vec<String> {
        let mut changed = BTreeSet::new();
        let Some(first) = self.events.recv().await else {
            // The watch ended (it cannot while `self` holds it): nothing
            // will ever change again.
            return std::future::pending().await;
        };
        changed.insert(first);
        while let Ok(Some(path)) = tokio::time::timeout(self.debounce, self.events.recv()).await {
            changed.insert(path);
        }
        changed
            .into_iter()
            .map(|path| {
                path.strip_prefix(&self.root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_count_and_junk_does_not() {
        let watched = Watched::new(vec![
            PathBuf::from("/nonexistent/models-as-file"),
            std::env::temp_dir(),
        ]);
        let tmp = std::env::temp_dir();
        assert!(watched.covers(Path::new("/nonexistent/models-as-file")));
        assert!(watched.covers(&tmp.join("models/manifest.json")));
        assert!(!watched.covers(&tmp.join("models/.manifest.json.swp")));
        assert!(!watched.covers(&tmp.join("target/release/x")));
        assert!(!watched.covers(Path::new("/elsewhere/file")));
        assert!(!watched.covers(Path::new("/nonexistent/other-file")));
    }

    #[test]
    fn reads_and_touches_are_not_changes() {
        use notify::event::{AccessKind, CreateKind, DataChange, MetadataKind};
        assert!(!is_content_change(&EventKind::Access(AccessKind::Any)));
        assert!(!is_content_change(&EventKind::Modify(
            ModifyKind::Metadata(MetadataKind::WriteTime)
        )));
        assert!(is_content_change(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(is_content_change(&EventKind::Create(CreateKind::File)));
    }

    #[tokio::test]
    async fn writes_within_the_window_are_one_change() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let models = root.join("models");
        std::fs::create_dir(&models).unwrap();
        std::fs::write(root.join("deploy.toml"), "a").unwrap();
        let mut watcher = Watcher::new(
            root.clone(),
            vec![models.clone(), root.join("deploy.toml")],
            Duration::from_secs(1),
        )
        .unwrap();
        std::fs::write(models.join("a.bin"), "1").unwrap();
        std::fs::write(models.join("b.json"), "2").unwrap();
        std::fs::write(root.join("deploy.toml"), "b").unwrap();
        // Not an input: no change of its own.
        std::fs::write(root.join("notes.txt"), "x").unwrap();
        let changed = watcher.next_change().await;
        assert_eq!(changed, ["deploy.toml", "models/a.bin", "models/b.json"]);
        // A read is no change: the next one is the next write.
        std::fs::read(models.join("b.json")).unwrap();
        std::fs::write(models.join("a.bin"), "3").unwrap();
        assert_eq!(watcher.next_change().await, ["models/a.bin"]);
    }
}
