//! `deploy.toml` → a resolved [`Stage`]: defaults, then the file's shared
//! tables, then `[stages.<name>]`, then command-line flags.
//!
//! Everything downstream (image, aws, commands) sees only [`Stage`], never
//! the file.
//!
//! The file is read twice over: serde (with `deny_unknown_fields`) into the
//! `Raw*` structs of `raw`, which keep every validated value's span, and,
//! only when serde fails, toml's spanned document tree to find which key the
//! error is at. Either way a [`ConfigError`] names the file, the line and
//! the key, so a typo in CI is a one-line fix.
//!
//! This module finds and reads the file and holds the public API; `raw` is
//! the file as written, `stage` the resolved [`Stage`], `resolve` the layers,
//! and `check` the checks of single values.

pub mod alarms;
mod check;
mod domain;
mod pattern;
mod raw;
mod resolve;
mod stage;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use check::check_region;
pub use domain::certificate_region;
pub use stage::{
    API_TIMEOUT_S, ApiSpec, Architecture, Auth, CorsSpec, DEFAULT_ALLOW_HEADERS, DomainSpec,
    EcrSpec, FunctionSpec, ImageSpec, LOG_RETENTION_DAYS, SettingAt, SmokeTestSpec, Stage,
    ThrottleSpec,
};

pub use pattern::{Ttl, glob_matches};

use check::{check_app_name, check_stage_name};
use pattern::Pattern;
use raw::{RawFile, Source};
use resolve::resolve;

// ---------------------------------------------------------------------------
// Errors

/// What is wrong with the configuration, and where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No `deploy.toml` in the directory or any parent.
    #[error("no {name} found in {} or any parent directory", start.display())]
    NotFound { name: String, start: PathBuf },
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A value (or the syntax) at a line of the file. `key` is empty for a
    /// syntax error that is at no key.
    #[error("{file}:{line}: {}{message}", key_prefix(key))]
    Invalid {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
    #[error(
        "{file}: unknown stage `{stage}`; the stages are: {}",
        list_or_none(known)
    )]
    UnknownStage {
        file: String,
        stage: String,
        known: Vec<String>,
    },
    /// A command-line flag that overrides the file.
    #[error("{flag}: {message}")]
    Flag { flag: &'static str, message: String },
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none (add a [stages.<name>] table)".to_string()
    } else {
        names.join(", ")
    }
}

// ---------------------------------------------------------------------------
// Parsed configuration

/// Command-line flags that override the file (the last layer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub region: Option<String>,
    pub profile: Option<String>,
}

/// A parsed `deploy.toml` with every stage resolved and validated, so a
/// mistake in `prod` is reported even when deploying `dev`.
#[derive(Debug, Clone)]
pub struct Config {
    file: String,
    stages: BTreeMap<String, Stage>,
    /// `[stages."pr-*"]` tables, in the file's order.
    patterns: Vec<Pattern>,
    /// `[app] name` and `region`, and the workspace root: the stage a
    /// deployment's tags name when no table of the file does
    /// ([`Config::untracked_stage`]).
    app: String,
    region: Option<String>,
    root: PathBuf,
}

/// The longest stage name allowed: keeps `{app}-{stage}-exec` within IAM's
/// 64-character role name limit together with [`MAX_APP_LEN`].
pub const MAX_STAGE_LEN: usize = 16;
/// `{app}-{stage}-exec` ≤ 64 for any stage name.
pub const MAX_APP_LEN: usize = 64 - MAX_STAGE_LEN - "--exec".len();

impl Config {
    /// Parses `text`, shown as `file` in errors; relative paths in it are
    /// resolved against (and must exist under) `root`.
    pub fn parse(text: &str, file: &str, root: &Path) -> Result<Config, ConfigError> {
        let src = Source { file, text };
        let raw: RawFile = toml::from_str(text).map_err(|err| src.toml_error(&err))?;
        check_app_name(&src, &raw.app.name)?;
        let mut stages = BTreeMap::new();
        let mut patterns = Vec::new();
        for (name, table) in &raw.stages {
            if pattern::is_pattern(name.get_ref()) {
                pattern::check_pattern(&src, name)?;
                pattern::check_pattern_table(&src, name.get_ref(), table.get_ref())?;
                let stage = resolve(&src, &raw, name.get_ref(), table, root)?;
                patterns.push(Pattern {
                    glob: name.get_ref().clone(),
                    line: src.setting_at(name.span(), String::new()).line,
                    stage,
                });
                continue;
            }
            check_stage_name(&src, name)?;
            let stage = resolve(&src, &raw, name.get_ref(), table, root)?;
            stages.insert(name.get_ref().clone(), stage);
        }
        check_own_repositories(&stages)?;
        Ok(Config {
            file: file.to_string(),
            stages,
            patterns,
            app: raw.app.name.get_ref().clone(),
            region: raw.app.region.as_ref().map(|r| r.get_ref().clone()),
            root: root.to_path_buf(),
        })
    }

    /// Reads and parses the file at `path`; its directory is the root.
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let root = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let root = std::fs::canonicalize(&root).map_err(|source| ConfigError::Read {
            path: root.clone(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string(), &root)
    }

    /// The stages the file defines, sorted.
    pub fn stage_names(&self) -> Vec<String> {
        self.stages.keys().cloned().collect()
    }

    /// The resolved stage `name`, with the flags applied on top: its
    /// `[stages.NAME]` table, else the pattern that matches it best, else
    /// (for the pattern's own key, `pr-*`) the pattern's settings under its
    /// key, which `deployer policy` scopes to.
    pub fn stage(&self, name: &str, overrides: &Overrides) -> Result<Stage, ConfigError> {
        let stage = match self.stages.get(name) {
            Some(stage) => stage.clone(),
            None => match self.patterns.iter().find(|p| p.glob == name) {
                Some(pattern) => {
                    let mut stage = pattern.stage.clone();
                    stage.pattern = Some(pattern.glob.clone());
                    stage
                }
                None => match pattern::best_match(&self.file, &self.patterns, name)? {
                    Some(pattern) => pattern::stage_of(pattern, name)?,
                    None => {
                        return Err(ConfigError::UnknownStage {
                            file: self.file.clone(),
                            stage: name.to_string(),
                            known: self.known_names(),
                        });
                    }
                },
            },
        };
        self.with_overrides(stage, overrides)
    }

    /// The stages and the patterns, as an unknown stage's error lists them.
    fn known_names(&self) -> Vec<String> {
        let mut known = self.stage_names();
        known.extend(self.patterns.iter().map(|p| format!("\"{}\"", p.glob)));
        known
    }

    /// The stage `name` when no table of the file names or matches it (a
    /// pattern removed after its stages were deployed): the defaults under
    /// `[app]`'s name and region, with the flags on top, and the standard
    /// credential chain. Only its names and tags matter: `destroy` finds
    /// what of it exists by them, and `deployer stages` reads it.
    pub fn untracked_stage(&self, name: &str, overrides: &Overrides) -> Result<Stage, ConfigError> {
        if !check::is_stage_name(name) {
            return Err(ConfigError::Flag {
                flag: "--stage",
                message: format!(
                    "a stage name is 1 to {MAX_STAGE_LEN} lowercase letters, digits and `-`, \
                     starting with a letter, got {name:?}"
                ),
            });
        }
        let region = match (&overrides.region, &self.region) {
            (Some(region), _) | (None, Some(region)) => region.clone(),
            (None, None) => {
                return Err(ConfigError::Flag {
                    flag: "--region",
                    message: format!(
                        "stage `{name}` is in no table of {} and [app] sets no region: pass \
                         --region",
                        self.file
                    ),
                });
            }
        };
        let mut stage = Stage::defaults(&self.app, name, &region);
        stage.root = self.root.clone();
        self.with_overrides(stage, overrides)
    }

    /// `stage` with the command line's flags applied.
    fn with_overrides(
        &self,
        mut stage: Stage,
        overrides: &Overrides,
    ) -> Result<Stage, ConfigError> {
        if let Some(region) = &overrides.region {
            check_region(region).map_err(|message| ConfigError::Flag {
                flag: "--region",
                message,
            })?;
            stage.region = region.clone();
        }
        if let Some(profile) = &overrides.profile {
            if profile.trim().is_empty() {
                return Err(ConfigError::Flag {
                    flag: "--profile",
                    message: "must not be empty".into(),
                });
            }
            stage.profile = Some(profile.clone());
        }
        Ok(stage)
    }
}

/// A stage's own repository is its alone: no other stage, whose printed
/// policy may write its own repository, resolves to the same name.
fn check_own_repositories(stages: &BTreeMap<String, Stage>) -> Result<(), ConfigError> {
    // A named repository is blamed before a protected stage's default name.
    let mut owners: Vec<&Stage> = stages.values().collect();
    owners.sort_by_key(|stage| stage.ecr.repository.is_none());
    for stage in owners {
        let Some(at) = &stage.ecr.own_repository_at else {
            continue;
        };
        let repository = stage.repository_name();
        if let Some(other) = stages
            .values()
            .find(|other| other.name != stage.name && other.repository_name() == repository)
        {
            return Err(at.error(format!(
                "the ECR repository `{repository}` would also be stage `{}`'s: a stage's own \
                 repository must be its alone, since every stage's policy may write its \
                 repository; name another one in [stages.{}.ecr] repository",
                other.name, stage.name
            )));
        }
    }
    Ok(())
}

/// Finds the configuration file. A bare file name (the default
/// `deploy.toml`) is searched for in `cwd` and then upward, so commands
/// work from any directory of the workspace; any other path is taken as
/// given.
pub fn find_config(requested: &Path, cwd: &Path) -> Result<PathBuf, ConfigError> {
    let is_bare_name =
        requested.components().count() == 1 && requested.parent() == Some(Path::new(""));
    if !is_bare_name {
        return Ok(requested.to_path_buf());
    }
    for dir in cwd.ancestors() {
        let candidate = dir.join(requested);
        if candidate.is_file() {
            // Shown as `deploy.toml:14:` when it is in the current directory.
            return Ok(candidate
                .strip_prefix(cwd)
                .map(Path::to_path_buf)
                .unwrap_or(candidate));
        }
    }
    Err(ConfigError::NotFound {
        name: requested.display().to_string(),
        start: cwd.to_path_buf(),
    })
}

/// `--config`, `--stage`, `--region`, `--profile` → the resolved stage.
pub fn load(requested: &Path, stage: &str, overrides: &Overrides) -> Result<Stage, ConfigError> {
    StageSource {
        config: requested.to_path_buf(),
        stage: stage.to_string(),
        overrides: overrides.clone(),
    }
    .load()
}

/// `--config`, `--region`, `--profile` → every stage of the file, resolved,
/// and every pattern's (`deployer policy --all-stages`).
pub fn load_all(requested: &Path, overrides: &Overrides) -> Result<Vec<Stage>, ConfigError> {
    let config = Config::read(&config_path(requested)?)?;
    // A pattern's key stands for all its stages (`pr-*`).
    let patterns = config.patterns.iter().map(|p| p.glob.clone());
    config
        .stage_names()
        .into_iter()
        .chain(patterns)
        .map(|name| config.stage(&name, overrides))
        .collect()
}

/// The configuration file `--config` names, found from the working directory.
fn config_path(requested: &Path) -> Result<PathBuf, ConfigError> {
    let cwd = std::env::current_dir().map_err(|source| ConfigError::Read {
        path: PathBuf::from("."),
        source,
    })?;
    find_config(requested, &cwd)
}

/// Where a stage comes from (the flags that name it), so that a command
/// which runs on (`dev`, `up --watch`) can resolve it again after
/// `deploy.toml` changed.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSource {
    /// `--config` as given.
    pub config: PathBuf,
    pub stage: String,
    pub overrides: Overrides,
}

impl StageSource {
    /// The configuration file this source reads.
    pub fn path(&self) -> Result<PathBuf, ConfigError> {
        config_path(&self.config)
    }

    /// Reads the file and resolves the stage, as it is now.
    pub fn load(&self) -> Result<Stage, ConfigError> {
        Config::read(&self.path()?)?.stage(&self.stage, &self.overrides)
    }

    /// Reads the file and resolves the stage; a stage no table names or
    /// matches is the app's stage of that name ([`Config::untracked_stage`]),
    /// for the commands that work from a deployment's tags (`destroy`).
    pub fn load_or_untracked(&self) -> Result<Stage, ConfigError> {
        let config = Config::read(&self.path()?)?;
        match config.stage(&self.stage, &self.overrides) {
            Err(ConfigError::UnknownStage { .. }) => {
                config.untracked_stage(&self.stage, &self.overrides)
            }
            other => other,
        }
    }
}
