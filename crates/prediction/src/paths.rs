//! Where the workspace's `models/` and `data/` are when a binary runs from
//! a checkout (the `predict`, `train` and `generate` binaries, the tests
//! and the benchmarks), rather than from the image.

use std::path::{Path, PathBuf};

/// The workspace root: the nearest ancestor of the current directory whose
/// `Cargo.toml` declares a `[workspace]`, else the one this crate was built in.
pub fn workspace_root() -> PathBuf {
    let is_root = |dir: &Path| {
        std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
    };
    if let Ok(cwd) = std::env::current_dir()
        && let Some(root) = cwd.ancestors().find(|d| is_root(d))
    {
        return root.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `variable` if set, else `<workspace>/<name>`.
pub fn dir_from_env_or_workspace(variable: &str, name: &str) -> PathBuf {
    match std::env::var_os(variable) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => workspace_root().join(name),
    }
}

/// `PREDICTION_MODELS_DIR`, else the workspace's `models/`.
pub fn models_dir() -> PathBuf {
    dir_from_env_or_workspace("PREDICTION_MODELS_DIR", "models")
}

/// `PREDICTION_DATA_DIR`, else the workspace's `data/`.
pub fn data_dir() -> PathBuf {
    dir_from_env_or_workspace("PREDICTION_DATA_DIR", "data")
}

/// Settings for a run from a checkout: the directories above and
/// `PREDICTION_SLA`.
pub fn workspace_settings() -> Result<crate::Settings, crate::LoadError> {
    Ok(crate::Settings {
        models_dir: models_dir(),
        data_dir: data_dir(),
        sla: crate::parse_sla(std::env::var("PREDICTION_SLA").ok().as_deref())?,
    })
}
