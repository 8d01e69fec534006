//! `deploy.toml` → a resolved [`Stage`]: defaults, then the file's shared
//! tables, then `[stages.<name>]`, then command-line flags.
//!
//! Everything downstream (image, aws, commands) sees only [`Stage`], never
//! the file.
//!
//! The file is read twice over: serde (with `deny_unknown_fields`) into the
//! `Raw*` structs below, which keep every validated value's span, and, only
//! when serde fails, toml's spanned document tree to find which key the
//! error is at. Either way a [`ConfigError`] names the file, the line and
//! the key, so a typo in CI is a one-line fix.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// One deployable stage, fully resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// `[app] name`: the prefix of every resource name.
    pub app: String,
    /// The stage's name (`dev`, `prod`, `local`, ...).
    pub name: String,
    pub region: String,
    /// An AWS profile from the standard config files.
    pub profile: Option<String>,
    /// Where the AWS APIs are (the `local` stage points at moto); `None`
    /// means the real AWS, or whatever `AWS_ENDPOINT_URL` says.
    pub endpoint_url: Option<String>,
    /// Sign with fixed dummy credentials instead of the standard chain: for
    /// a local emulator (moto accepts any), so `up --stage local` needs no
    /// environment variables.
    pub dummy_credentials: bool,
    /// The directory holding `deploy.toml`: the workspace root, which every
    /// relative path below is resolved against.
    pub root: PathBuf,
    pub function: FunctionSpec,
    pub image: ImageSpec,
    pub ecr: EcrSpec,
    pub api: ApiSpec,
    pub smoke_test: SmokeTestSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    /// The workspace package to compile (`prediction-lambda`).
    pub package: String,
    /// Its binary (`bootstrap`).
    pub binary: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub architecture: Architecture,
    pub environment: BTreeMap<String, String>,
    /// X-Ray tracing mode Active.
    pub tracing: bool,
    /// How long the function's log group keeps events; one of
    /// [`LOG_RETENTION_DAYS`].
    pub log_retention_days: i32,
}

/// The retentions CloudWatch Logs accepts (PutRetentionPolicy API
/// reference, `retentionInDays`: "Possible values are: 1, 3, 5, ... 3653").
pub const LOG_RETENTION_DAYS: [i32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    X86_64,
    Arm64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    /// Directory with the Dockerfile, relative to [`Stage::root`].
    pub dockerfile_dir: PathBuf,
    /// Passed to the Dockerfile as the `BASE_IMAGE` build argument.
    pub base_image: String,
    /// Paths (relative to the root) copied into the build context beside
    /// the binary, e.g. `models`, `data`.
    pub include: Vec<PathBuf>,
}

/// The repository's settings. Stages share the repository, so these are
/// set once, in the shared `[ecr]` table (a stage may not override them:
/// two stages with two lifecycle policies would rewrite each other's).
#[derive(Debug, Clone, PartialEq)]
pub struct EcrSpec {
    /// Lifecycle: untagged images (left by an interrupted push) expire
    /// after this many days.
    pub untagged_expire_days: u32,
    /// How many of the newest images `up` keeps besides every image a
    /// function version of any stage still uses; older ones it deletes.
    pub keep_tagged: u32,
    pub scan_on_push: bool,
    pub immutable_tags: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiSpec {
    /// The resource path under the root, without slashes (`predict`).
    pub path: String,
    /// `GET`, `POST` (OPTIONS is added for CORS).
    pub methods: Vec<String>,
    pub cors: CorsSpec,
    pub throttling: ThrottleSpec,
    pub auth: Auth,
}

/// One CORS policy for everything that answers a browser: the preflight,
/// API Gateway's own error answers and the function's answers.
#[derive(Debug, Clone, PartialEq)]
pub struct CorsSpec {
    /// `*`, or origins (`https://app.example`) matched per request.
    pub allow_origins: Vec<String>,
    pub allow_headers: Vec<String>,
}

/// What AWS CDK's `Cors.DEFAULT_HEADERS` allows: JSON bodies, API keys and
/// SigV4-signed requests.
pub const DEFAULT_ALLOW_HEADERS: [&str; 6] = [
    "Content-Type",
    "X-Amz-Date",
    "Authorization",
    "X-Api-Key",
    "X-Amz-Security-Token",
    "X-Amz-User-Agent",
];

impl CorsSpec {
    /// The one `Access-Control-Allow-Origin` value that fits every caller:
    /// `*` when any origin is allowed, the origin when only one is; `None`
    /// with several, which must be matched against each request's `Origin`.
    pub fn static_origin(&self) -> Option<&str> {
        if self.allow_origins.iter().any(|o| o == "*") {
            return Some("*");
        }
        match self.allow_origins.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ThrottleSpec {
    pub rate_limit: f64,
    pub burst_limit: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    ApiKey,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmokeTestSpec {
    pub enabled: bool,
    /// The date the smoke test predicts for (`YYYY-MM-DD`).
    pub date: String,
    /// After the alias moves, call the stage's URL as a browser would
    /// (the CORS preflight, then a GET for `date`).
    pub public_path: bool,
}

impl Stage {
    /// A stage with every default, as `deploy.toml` would give it with only
    /// `[app] name` set. Also the starting point of the tests.
    pub fn defaults(app: &str, stage: &str, region: &str) -> Stage {
        Stage {
            app: app.to_string(),
            name: stage.to_string(),
            region: region.to_string(),
            profile: None,
            endpoint_url: None,
            dummy_credentials: false,
            root: PathBuf::from("."),
            function: FunctionSpec {
                package: "prediction-lambda".into(),
                binary: "bootstrap".into(),
                memory_mb: 2048,
                timeout_s: 300,
                architecture: Architecture::X86_64,
                environment: BTreeMap::new(),
                tracing: true,
                // A group that never expires costs money forever.
                log_retention_days: 30,
            },
            image: ImageSpec {
                dockerfile_dir: PathBuf::from("lambda-image"),
                base_image: "scratch".into(),
                include: vec![PathBuf::from("models"), PathBuf::from("data")],
            },
            ecr: EcrSpec {
                untagged_expire_days: 1,
                keep_tagged: 10,
                scan_on_push: true,
                immutable_tags: true,
            },
            api: ApiSpec {
                path: "predict".into(),
                methods: vec!["GET".into(), "POST".into()],
                cors: CorsSpec {
                    allow_origins: vec!["*".into()],
                    allow_headers: DEFAULT_ALLOW_HEADERS.map(String::from).to_vec(),
                },
                throttling: ThrottleSpec {
                    rate_limit: 100.0,
                    burst_limit: 200,
                },
                auth: Auth::None,
            },
            smoke_test: SmokeTestSpec {
                enabled: true,
                date: "2025-10-20".into(),
                public_path: true,
            },
        }
    }
    // The names derived from a stage are in `crate::names`.
}

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

/// The text being parsed, to turn spans into `file:line: key` errors.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn error(&self, span: Range<usize>, key: String, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            line: self.line_of(span.start),
            key,
            message: message.into(),
        }
    }

    /// A serde or syntax error from toml, placed at its key.
    fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let span = err.span().unwrap_or(0..0);
        let message = err.message().trim_end();
        let key = if message.starts_with("missing field") {
            // The span is the table that lacks the field: name that table.
            table_at(self.text, &span).map(|path| format!("[{}]", path.join(".")))
        } else {
            key_at(self.text, span.start)
                .map(|path| display_key(&path))
                .or_else(|| self.key_text(&span))
        };
        self.error(span, key.unwrap_or_default(), message)
    }

    /// When the document does not parse (a duplicate key, ...), the key is
    /// the text at the span, under the last `[table]` header above it.
    fn key_text(&self, span: &Range<usize>) -> Option<String> {
        let text = self.text.get(span.clone())?.trim();
        let bare = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !bare {
            return None;
        }
        let header = self.text[..span.start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|line| line.starts_with('['));
        Some(match header {
            Some(header) => format!("{header} {text}"),
            None => text.to_string(),
        })
    }
}

/// The dotted path of the deepest key whose name or value covers `offset`.
fn key_at(text: &str, offset: usize) -> Option<Vec<String>> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut best = None;
    deepest_key(doc.get_ref(), offset, &mut Vec::new(), &mut best);
    best
}

/// The path of the table whose span is exactly `span`; `None` for the
/// document itself.
fn table_at(text: &str, span: &Range<usize>) -> Option<Vec<String>> {
    fn find(
        table: &toml::de::DeTable<'_>,
        span: &Range<usize>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        for (key, value) in table {
            path.push(key.get_ref().to_string());
            if let toml::de::DeValue::Table(inner) = value.get_ref() {
                if value.span() == *span {
                    return Some(path.clone());
                }
                if let Some(found) = find(inner, span, path) {
                    return Some(found);
                }
            }
            path.pop();
        }
        None
    }
    let doc = toml::de::DeTable::parse(text).ok()?;
    find(doc.get_ref(), span, &mut Vec::new())
}

fn deepest_key(
    table: &toml::de::DeTable<'_>,
    offset: usize,
    path: &mut Vec<String>,
    best: &mut Option<Vec<String>>,
) {
    for (key, value) in table {
        path.push(key.get_ref().to_string());
        let covers =
            |span: Range<usize>| span.start <= offset && offset < span.end.max(span.start + 1);
        let deeper = best.as_ref().is_none_or(|b| b.len() < path.len());
        if deeper && (covers(key.span()) || covers(value.span())) {
            *best = Some(path.clone());
        }
        // Tables made by `[a.b]` headers need not lie inside their parent's
        // span, so every table is searched.
        match value.get_ref() {
            toml::de::DeValue::Table(inner) => deepest_key(inner, offset, path, best),
            toml::de::DeValue::Array(items) => {
                for item in items.iter() {
                    if let toml::de::DeValue::Table(inner) = item.get_ref() {
                        deepest_key(inner, offset, path, best);
                    }
                }
            }
            _ => {}
        }
        path.pop();
    }
}

/// `["stages", "prod", "function", "memory"]` → `[stages.prod.function] memory`.
fn display_key(path: &[String]) -> String {
    match path.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, tables)) => format!("[{}] {last}", tables.join(".")),
    }
}

// ---------------------------------------------------------------------------
// The file as written. Keys are kebab-case; every table is optional except
// `[app]`, and every field within a table is optional so that a stage table
// overrides only what it names.

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a deploy.toml document"
)]
struct RawFile {
    app: RawApp,
    function: Option<RawFunction>,
    image: Option<RawImage>,
    ecr: Option<RawEcr>,
    api: Option<RawApi>,
    smoke_test: Option<RawSmokeTest>,
    #[serde(default)]
    stages: BTreeMap<Spanned<String>, Spanned<RawStage>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a table with `name` and `region`"
)]
struct RawApp {
    name: Spanned<String>,
    region: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a stage table"
)]
struct RawStage {
    region: Option<Spanned<String>>,
    profile: Option<Spanned<String>>,
    endpoint_url: Option<Spanned<String>>,
    dummy_credentials: Option<Spanned<bool>>,
    function: Option<RawFunction>,
    image: Option<RawImage>,
    /// Refused (the repository is shared): kept to say so at its line.
    ecr: Option<Spanned<toml::Value>>,
    api: Option<RawApi>,
    smoke_test: Option<RawSmokeTest>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a [function] table"
)]
struct RawFunction {
    package: Option<Spanned<String>>,
    binary: Option<Spanned<String>>,
    memory: Option<Spanned<i64>>,
    timeout: Option<Spanned<i64>>,
    architecture: Option<RawArchitecture>,
    environment: Option<BTreeMap<Spanned<String>, String>>,
    tracing: Option<bool>,
    log_retention_days: Option<Spanned<i64>>,
}

#[derive(Deserialize, Clone, Copy)]
enum RawArchitecture {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "an [image] table"
)]
struct RawImage {
    dockerfile_dir: Option<Spanned<String>>,
    base_image: Option<Spanned<String>>,
    include: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "an [ecr] table"
)]
struct RawEcr {
    untagged_expire_days: Option<Spanned<i64>>,
    keep_tagged: Option<Spanned<i64>>,
    scan_on_push: Option<bool>,
    immutable_tags: Option<bool>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "an [api] table"
)]
struct RawApi {
    path: Option<Spanned<String>>,
    methods: Option<Spanned<Vec<Spanned<String>>>>,
    cors: Option<RawCors>,
    throttling: Option<RawThrottling>,
    auth: Option<RawAuth>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a [cors] table"
)]
struct RawCors {
    allow_origins: Option<Spanned<Vec<Spanned<String>>>>,
    allow_headers: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a [throttling] table"
)]
struct RawThrottling {
    rate_limit: Option<Spanned<f64>>,
    burst_limit: Option<Spanned<i64>>,
}

#[derive(Deserialize, Clone, Copy)]
enum RawAuth {
    #[serde(rename = "none")]
    None,
    #[serde(rename = "api_key")]
    ApiKey,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a [smoke-test] table"
)]
struct RawSmokeTest {
    enabled: Option<bool>,
    date: Option<Spanned<String>>,
    public_path: Option<bool>,
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
        for (name, table) in &raw.stages {
            check_stage_name(&src, name)?;
            let stage = resolve(&src, &raw, name.get_ref(), table, root)?;
            stages.insert(name.get_ref().clone(), stage);
        }
        Ok(Config {
            file: file.to_string(),
            stages,
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

    /// The resolved stage `name`, with the flags applied on top.
    pub fn stage(&self, name: &str, overrides: &Overrides) -> Result<Stage, ConfigError> {
        let mut stage =
            self.stages
                .get(name)
                .cloned()
                .ok_or_else(|| ConfigError::UnknownStage {
                    file: self.file.clone(),
                    stage: name.to_string(),
                    known: self.stage_names(),
                })?;
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
    let cwd = std::env::current_dir().map_err(|source| ConfigError::Read {
        path: PathBuf::from("."),
        source,
    })?;
    let path = find_config(requested, &cwd)?;
    Config::read(&path)?.stage(stage, overrides)
}

// ---------------------------------------------------------------------------
// Resolution: defaults ← shared tables ← the stage's table.

fn resolve(
    src: &Source<'_>,
    raw: &RawFile,
    name: &str,
    table: &Spanned<RawStage>,
    root: &Path,
) -> Result<Stage, ConfigError> {
    let region = match (&table.get_ref().region, &raw.app.region) {
        (Some(region), _) => (region, format!("[stages.{name}] region")),
        (None, Some(region)) => (region, "[app] region".to_string()),
        (None, None) => {
            return Err(src.error(
                table.span(),
                format!("[stages.{name}] region"),
                format!("no region: set `region` in [app] or in [stages.{name}]"),
            ));
        }
    };
    check_region(region.0.get_ref()).map_err(|m| src.error(region.0.span(), region.1, m))?;

    let mut stage = Stage::defaults(raw.app.name.get_ref(), name, region.0.get_ref());
    stage.root = root.to_path_buf();

    let own = table.get_ref();
    if let Some(ecr) = &own.ecr {
        return Err(src.error(
            ecr.span(),
            format!("[stages.{name}.ecr]"),
            "the ECR repository is shared by every stage: set its keys in the shared [ecr] table",
        ));
    }
    let prefix = format!("stages.{name}.");
    for (tables, table_prefix) in [
        (Tables::shared(raw), ""),
        (Tables::stage(own), prefix.as_str()),
    ] {
        let at = |table: &str, key: &str| format!("[{table_prefix}{table}] {key}");
        if let Some(f) = tables.function {
            apply_function(src, &mut stage.function, f, &|k| at("function", k))?;
        }
        if let Some(i) = tables.image {
            apply_image(src, &mut stage.image, i, &|k| at("image", k))?;
        }
        if let Some(e) = tables.ecr {
            apply_ecr(src, &mut stage.ecr, e, &|k| at("ecr", k))?;
        }
        if let Some(a) = tables.api {
            apply_api(src, &mut stage.api, a, &|t, k| at(t, k))?;
        }
        if let Some(s) = tables.smoke_test {
            apply_smoke_test(src, &mut stage.smoke_test, s, &|k| at("smoke-test", k))?;
        }
    }

    if let Some(profile) = &own.profile {
        if profile.get_ref().trim().is_empty() {
            return Err(src.error(
                profile.span(),
                format!("[stages.{name}] profile"),
                "must not be empty",
            ));
        }
        stage.profile = Some(profile.get_ref().clone());
    }
    if let Some(url) = &own.endpoint_url {
        let u = url.get_ref();
        let host = u
            .strip_prefix("http://")
            .or_else(|| u.strip_prefix("https://"));
        if host.is_none_or(str::is_empty) {
            return Err(src.error(
                url.span(),
                format!("[stages.{name}] endpoint-url"),
                format!("must be an http:// or https:// URL, got {u:?}"),
            ));
        }
        stage.endpoint_url = Some(u.clone());
    }
    if let Some(dummy) = &own.dummy_credentials {
        // Fixed credentials only make sense against a local emulator; never
        // let them stand in for real ones.
        if *dummy.get_ref() && stage.endpoint_url.is_none() {
            return Err(src.error(
                dummy.span(),
                format!("[stages.{name}] dummy-credentials"),
                "needs `endpoint-url` (a local emulator such as moto); real AWS needs real credentials",
            ));
        }
        stage.dummy_credentials = *dummy.get_ref();
    }
    check_paths(src, &stage, raw, table, name)?;
    Ok(stage)
}

/// The overridable tables of one layer.
struct Tables<'a> {
    function: Option<&'a RawFunction>,
    image: Option<&'a RawImage>,
    ecr: Option<&'a RawEcr>,
    api: Option<&'a RawApi>,
    smoke_test: Option<&'a RawSmokeTest>,
}

impl<'a> Tables<'a> {
    fn shared(raw: &'a RawFile) -> Tables<'a> {
        Tables {
            function: raw.function.as_ref(),
            image: raw.image.as_ref(),
            ecr: raw.ecr.as_ref(),
            api: raw.api.as_ref(),
            smoke_test: raw.smoke_test.as_ref(),
        }
    }

    fn stage(raw: &'a RawStage) -> Tables<'a> {
        Tables {
            function: raw.function.as_ref(),
            image: raw.image.as_ref(),
            // Refused in `resolve`: the repository is shared.
            ecr: None,
            api: raw.api.as_ref(),
            smoke_test: raw.smoke_test.as_ref(),
        }
    }
}

/// Lambda sets these itself and refuses functions that set them.
const RESERVED_ENV_PREFIXES: [&str; 4] = ["AWS_", "_HANDLER", "_X_AMZN", "LAMBDA_"];

fn apply_function(
    src: &Source<'_>,
    spec: &mut FunctionSpec,
    raw: &RawFunction,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if let Some(package) = &raw.package {
        spec.package = non_empty(src, package, key("package"))?;
    }
    if let Some(binary) = &raw.binary {
        spec.binary = non_empty(src, binary, key("binary"))?;
    }
    if let Some(memory) = &raw.memory {
        spec.memory_mb = in_range(src, memory, 128, 10240, "MB", key("memory"))?;
    }
    if let Some(timeout) = &raw.timeout {
        spec.timeout_s = in_range(src, timeout, 1, 900, "seconds", key("timeout"))?;
    }
    if let Some(architecture) = raw.architecture {
        spec.architecture = match architecture {
            RawArchitecture::X86_64 => Architecture::X86_64,
            RawArchitecture::Arm64 => Architecture::Arm64,
        };
    }
    if let Some(environment) = &raw.environment {
        for (name, value) in environment {
            let n = name.get_ref();
            let shaped = n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !shaped {
                return Err(src.error(
                    name.span(),
                    key(&format!("environment.{n}")),
                    "an environment variable name is letters, digits and `_`, not starting with a digit",
                ));
            }
            if RESERVED_ENV_PREFIXES.iter().any(|p| n.starts_with(p)) {
                return Err(src.error(
                    name.span(),
                    key(&format!("environment.{n}")),
                    "reserved by Lambda (names starting with AWS_, LAMBDA_, _HANDLER or _X_AMZN)",
                ));
            }
            spec.environment.insert(n.clone(), value.clone());
        }
    }
    if let Some(tracing) = raw.tracing {
        spec.tracing = tracing;
    }
    if let Some(days) = &raw.log_retention_days {
        let v = *days.get_ref();
        spec.log_retention_days = LOG_RETENTION_DAYS
            .into_iter()
            .find(|allowed| i64::from(*allowed) == v)
            .ok_or_else(|| {
                src.error(
                    days.span(),
                    key("log-retention-days"),
                    format!(
                        "must be one of the retentions CloudWatch Logs accepts ({}), got {v}",
                        LOG_RETENTION_DAYS.map(|d| d.to_string()).join(", ")
                    ),
                )
            })?;
    }
    Ok(())
}

fn apply_image(
    src: &Source<'_>,
    spec: &mut ImageSpec,
    raw: &RawImage,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if let Some(dir) = &raw.dockerfile_dir {
        spec.dockerfile_dir = relative_path(src, dir, key("dockerfile-dir"))?;
    }
    if let Some(base) = &raw.base_image {
        spec.base_image = non_empty(src, base, key("base-image"))?;
    }
    if let Some(include) = &raw.include {
        spec.include = include
            .iter()
            .map(|p| relative_path(src, p, key("include")))
            .collect::<Result<_, _>>()?;
    }
    // Existence is checked once the stage is resolved (`check_paths`).
    Ok(())
}

fn apply_ecr(
    src: &Source<'_>,
    spec: &mut EcrSpec,
    raw: &RawEcr,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if let Some(days) = &raw.untagged_expire_days {
        spec.untagged_expire_days =
            in_range(src, days, 1, 3650, "days", key("untagged-expire-days"))?;
    }
    if let Some(keep) = &raw.keep_tagged {
        spec.keep_tagged = in_range(src, keep, 1, 1000, "images", key("keep-tagged"))?;
    }
    if let Some(scan) = raw.scan_on_push {
        spec.scan_on_push = scan;
    }
    if let Some(immutable) = raw.immutable_tags {
        spec.immutable_tags = immutable;
    }
    Ok(())
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

fn apply_api(
    src: &Source<'_>,
    spec: &mut ApiSpec,
    raw: &RawApi,
    key: &dyn Fn(&str, &str) -> String,
) -> Result<(), ConfigError> {
    if let Some(path) = &raw.path {
        let p = path.get_ref();
        let ok = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(src.error(
                path.span(),
                key("api", "path"),
                format!("must be one path segment of letters, digits, `-`, `_` or `.` (no slashes), got {p:?}"),
            ));
        }
        spec.path = p.clone();
    }
    if let Some(methods) = &raw.methods {
        if methods.get_ref().is_empty() {
            return Err(src.error(
                methods.span(),
                key("api", "methods"),
                "must list at least one method",
            ));
        }
        let mut chosen: Vec<String> = Vec::new();
        for method in methods.get_ref() {
            let m = method.get_ref();
            if !METHODS.contains(&m.as_str()) {
                return Err(src.error(
                    method.span(),
                    key("api", "methods"),
                    format!("must be among {}, got {m:?}", METHODS.join(", ")),
                ));
            }
            if chosen.contains(m) {
                return Err(src.error(
                    method.span(),
                    key("api", "methods"),
                    format!("{m} is listed twice"),
                ));
            }
            chosen.push(m.clone());
        }
        spec.methods = chosen;
    }
    if let Some(cors) = &raw.cors {
        if let Some(origins) = &cors.allow_origins {
            spec.cors.allow_origins = checked_list(
                src,
                origins,
                key("api.cors", "allow-origins"),
                "origin (`*` for any)",
                check_origin,
            )?;
        }
        if let Some(headers) = &cors.allow_headers {
            spec.cors.allow_headers = checked_list(
                src,
                headers,
                key("api.cors", "allow-headers"),
                "header name",
                check_header_name,
            )?;
        }
    }
    if let Some(throttling) = &raw.throttling {
        if let Some(rate) = &throttling.rate_limit {
            let r = *rate.get_ref();
            if !(r.is_finite() && r > 0.0) {
                return Err(src.error(
                    rate.span(),
                    key("api.throttling", "rate-limit"),
                    format!("must be a positive number of requests per second, got {r}"),
                ));
            }
            spec.throttling.rate_limit = r;
        }
        if let Some(burst) = &throttling.burst_limit {
            spec.throttling.burst_limit = in_range(
                src,
                burst,
                1,
                i64::from(i32::MAX),
                "requests",
                key("api.throttling", "burst-limit"),
            )?;
        }
    }
    if let Some(auth) = raw.auth {
        spec.auth = match auth {
            RawAuth::None => Auth::None,
            RawAuth::ApiKey => Auth::ApiKey,
        };
    }
    Ok(())
}

fn apply_smoke_test(
    src: &Source<'_>,
    spec: &mut SmokeTestSpec,
    raw: &RawSmokeTest,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if let Some(enabled) = raw.enabled {
        spec.enabled = enabled;
    }
    if let Some(public_path) = raw.public_path {
        spec.public_path = public_path;
    }
    if let Some(date) = &raw.date {
        let d = date.get_ref();
        if chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err() {
            return Err(src.error(
                date.span(),
                key("date"),
                format!("must be a date written YYYY-MM-DD, got {d:?}"),
            ));
        }
        spec.date = d.clone();
    }
    Ok(())
}

/// The image's inputs must exist: a typo here would otherwise surface as a
/// confusing Docker error minutes into a deploy.
fn check_paths(
    src: &Source<'_>,
    stage: &Stage,
    raw: &RawFile,
    table: &Spanned<RawStage>,
    name: &str,
) -> Result<(), ConfigError> {
    // Blame the layer that set the value; for a default, the stage's table.
    let blame = |field: &dyn Fn(&RawImage) -> Option<Range<usize>>, key: &str| {
        let own = table.get_ref().image.as_ref().and_then(field);
        let shared = raw.image.as_ref().and_then(field);
        match (own, shared) {
            (Some(span), _) => (span, format!("[stages.{name}.image] {key}"), ""),
            (None, Some(span)) => (span, format!("[image] {key}"), ""),
            (None, None) => (
                table.span(),
                format!("[stages.{name}] image.{key}"),
                " (the default)",
            ),
        }
    };
    let dir = stage.root.join(&stage.image.dockerfile_dir);
    if !dir.is_dir() {
        let (span, key, default) = blame(
            &|i| i.dockerfile_dir.as_ref().map(Spanned::span),
            "dockerfile-dir",
        );
        return Err(src.error(
            span,
            key,
            format!("directory {}{default} does not exist", dir.display()),
        ));
    }
    for (index, path) in stage.image.include.iter().enumerate() {
        if !stage.root.join(path).exists() {
            let item = move |i: &RawImage| {
                i.include
                    .as_ref()
                    .and_then(|list| list.get(index))
                    .map(Spanned::span)
            };
            let (span, key, default) = blame(&item, "include");
            return Err(src.error(
                span,
                key,
                format!(
                    "{}{default} does not exist under {}",
                    path.display(),
                    stage.root.display()
                ),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Value checks

fn check_app_name(src: &Source<'_>, name: &Spanned<String>) -> Result<(), ConfigError> {
    let n = name.get_ref();
    let key = "[app] name".to_string();
    if n.is_empty() {
        return Err(src.error(name.span(), key, "must not be empty"));
    }
    if !is_lower_name(n) {
        return Err(src.error(
            name.span(),
            key,
            format!("must be lowercase letters, digits and `-`, starting with a letter, got {n:?}"),
        ));
    }
    // The name is the ECR repository's: CreateRepository wants 2 to 256
    // characters matching `[a-z0-9]+(?:[._-][a-z0-9]+)*` ("CreateRepository",
    // Amazon ECR API Reference), so no `-` at the end and no `--`.
    if n.len() < 2 || n.ends_with('-') || n.contains("--") {
        return Err(src.error(
            name.span(),
            key,
            format!(
                "must be at least 2 characters, not end with `-` and hold no `--`: it names the ECR repository, got {n:?}"
            ),
        ));
    }
    if n.len() > MAX_APP_LEN {
        return Err(src.error(
            name.span(),
            key,
            format!(
                "must be at most {MAX_APP_LEN} characters so that `{{app}}-{{stage}}-exec` fits IAM's 64-character role names, got {}",
                n.len()
            ),
        ));
    }
    Ok(())
}

fn check_stage_name(src: &Source<'_>, name: &Spanned<String>) -> Result<(), ConfigError> {
    let n = name.get_ref();
    if !is_lower_name(n) || n.len() > MAX_STAGE_LEN {
        return Err(src.error(
            name.span(),
            format!("[stages] {n}"),
            format!(
                "a stage name is 1 to {MAX_STAGE_LEN} lowercase letters, digits and `-`, starting with a letter"
            ),
        ));
    }
    Ok(())
}

/// `[a-z][a-z0-9-]*`
fn is_lower_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The shape of an AWS region: `us-east-1`, `ap-southeast-2`, `us-gov-west-1`.
pub fn check_region(region: &str) -> Result<(), String> {
    let parts: Vec<&str> = region.split('-').collect();
    let shaped = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts.last().is_some_and(|n| {
            !n.is_empty() && n.len() <= 2 && n.chars().all(|c| c.is_ascii_digit())
        });
    if !shaped {
        return Err(format!(
            "must be an AWS region such as us-east-1, got {region:?}"
        ));
    }
    // The isolated partitions (us-iso-east-1, us-isob-east-1, eu-isoe-west-1,
    // ...) have their own ARN prefixes and endpoint domains, which the
    // deployer does not know (`crate::names` knows aws, aws-cn, aws-us-gov).
    if parts[1].starts_with("iso") {
        return Err(format!(
            "{region:?} is in an isolated AWS partition, which the deployer does not support (only the aws, aws-cn and aws-us-gov partitions)"
        ));
    }
    Ok(())
}

fn non_empty(
    src: &Source<'_>,
    value: &Spanned<String>,
    key: String,
) -> Result<String, ConfigError> {
    if value.get_ref().trim().is_empty() {
        return Err(src.error(value.span(), key, "must not be empty"));
    }
    Ok(value.get_ref().clone())
}

/// A non-empty list whose every item passes `check` (which says what is
/// wrong with one item). The items become header values, the function's
/// environment and API Gateway's quoted mapping values, so anything that
/// could break out of those is refused here.
fn checked_list(
    src: &Source<'_>,
    values: &Spanned<Vec<Spanned<String>>>,
    key: String,
    what: &str,
    check: fn(&str) -> Result<(), String>,
) -> Result<Vec<String>, ConfigError> {
    if values.get_ref().is_empty() {
        return Err(src.error(values.span(), key, format!("must list at least one {what}")));
    }
    values
        .get_ref()
        .iter()
        .map(|value| {
            check(value.get_ref())
                .map(|()| value.get_ref().clone())
                .map_err(|message| src.error(value.span(), key.clone(), message))
        })
        .collect()
}

/// `*`, or `scheme://host[:port]` as a browser sends it in `Origin`: no
/// path, no trailing slash.
fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let shaped = host.is_some_and(|host| {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    });
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "must be `*` or an origin such as https://app.example.com (scheme, host and port, no path), got {origin:?}"
        ))
    }
}

/// An HTTP header name (letters, digits, `-`, `_`), or `*`.
fn check_header_name(name: &str) -> Result<(), String> {
    let shaped = name == "*"
        || (!name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')));
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "must be a header name of letters, digits, `-` and `_` (or `*`), got {name:?}"
        ))
    }
}

/// A path inside the workspace: relative, and not climbing out of it.
fn relative_path(
    src: &Source<'_>,
    value: &Spanned<String>,
    key: String,
) -> Result<PathBuf, ConfigError> {
    let path = PathBuf::from(value.get_ref());
    let inside = !value.get_ref().is_empty()
        && path.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
    if !inside {
        return Err(src.error(
            value.span(),
            key,
            format!(
                "must be a relative path inside the workspace, got {:?}",
                value.get_ref()
            ),
        ));
    }
    Ok(path)
}

fn in_range<T: TryFrom<i64>>(
    src: &Source<'_>,
    value: &Spanned<i64>,
    min: i64,
    max: i64,
    unit: &str,
    key: String,
) -> Result<T, ConfigError> {
    let v = *value.get_ref();
    let out_of_range = || {
        src.error(
            value.span(),
            key.clone(),
            format!("must be between {min} and {max} {unit}, got {v}"),
        )
    };
    if !(min..=max).contains(&v) {
        return Err(out_of_range());
    }
    T::try_from(v).map_err(|_| out_of_range())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace root holding the paths the defaults name.
    fn root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["lambda-image", "models", "data"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        dir
    }

    fn parse_in(root: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "deploy.toml", root)
    }

    fn error_of(text: &str) -> String {
        let root = root();
        match parse_in(root.path(), text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(err) => err.to_string(),
        }
    }

    const APP: &str = "[app]\nname = \"app\"\nregion = \"us-east-1\"\n";

    #[test]
    fn only_an_app_and_a_stage_gives_the_defaults() {
        let root = root();
        let config = parse_in(root.path(), &format!("{APP}[stages.dev]\n")).unwrap();
        let stage = config.stage("dev", &Overrides::default()).unwrap();
        let mut expected = Stage::defaults("app", "dev", "us-east-1");
        expected.root = root.path().to_path_buf();
        assert_eq!(stage, expected);
    }

    #[test]
    fn the_stage_overrides_the_shared_tables_and_flags_override_both() {
        let root = root();
        let text = r#"
[app]
name = "app"
region = "us-east-1"

[function]
memory = 1024
timeout = 60
architecture = "arm64"
environment = { A = "shared", B = "shared" }

[api]
methods = ["GET"]
auth = "api_key"
throttling = { rate-limit = 10, burst-limit = 20 }

[stages.dev]

[stages.prod]
region = "eu-west-1"
profile = "prod-admin"
function = { memory = 4096, environment = { B = "prod" } }
api.throttling.burst-limit = 50
smoke-test = { enabled = false, date = "2025-01-02", public-path = false }
"#;
        let config = parse_in(root.path(), text).unwrap();
        assert_eq!(config.stage_names(), ["dev", "prod"]);

        let dev = config.stage("dev", &Overrides::default()).unwrap();
        assert_eq!(dev.region, "us-east-1");
        assert_eq!(dev.function.memory_mb, 1024);
        assert_eq!(dev.function.architecture, Architecture::Arm64);
        assert_eq!(dev.api.auth, Auth::ApiKey);
        assert!(dev.smoke_test.enabled);
        assert!(dev.smoke_test.public_path);

        let prod = config.stage("prod", &Overrides::default()).unwrap();
        assert_eq!(prod.region, "eu-west-1");
        assert_eq!(prod.profile.as_deref(), Some("prod-admin"));
        assert_eq!(prod.function.memory_mb, 4096);
        // Only what the stage names is overridden.
        assert_eq!(prod.function.timeout_s, 60);
        assert_eq!(prod.function.environment["A"], "shared");
        assert_eq!(prod.function.environment["B"], "prod");
        assert_eq!(prod.api.methods, ["GET"]);
        assert_eq!(prod.api.throttling.rate_limit, 10.0);
        assert_eq!(prod.api.throttling.burst_limit, 50);
        assert!(!prod.smoke_test.enabled);
        assert!(!prod.smoke_test.public_path);
        assert_eq!(prod.smoke_test.date, "2025-01-02");

        let flags = Overrides {
            region: Some("ap-southeast-2".into()),
            profile: Some("ci".into()),
        };
        let flagged = config.stage("prod", &flags).unwrap();
        assert_eq!(flagged.region, "ap-southeast-2");
        assert_eq!(flagged.profile.as_deref(), Some("ci"));
        assert_eq!(flagged.function.memory_mb, 4096);
    }

    #[test]
    fn an_unknown_stage_lists_the_stages_there_are() {
        let root = root();
        let config = parse_in(root.path(), &format!("{APP}[stages.dev]\n[stages.prod]\n")).unwrap();
        let err = config
            .stage("nope", &Overrides::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "deploy.toml: unknown stage `nope`; the stages are: dev, prod"
        );
    }

    #[test]
    fn a_bad_flag_names_the_flag() {
        let root = root();
        let config = parse_in(root.path(), &format!("{APP}[stages.dev]\n")).unwrap();
        let flags = Overrides {
            region: Some("mars".into()),
            profile: None,
        };
        let err = config.stage("dev", &flags).unwrap_err().to_string();
        assert!(err.starts_with("--region: "), "{err}");
    }

    /// Each bad document, and what its error must say: the file, the line
    /// and the key.
    #[test]
    fn every_validation_names_the_line_and_the_key() {
        let cases: &[(&str, &str)] = &[
            (
                "[app]\nname = \"app\"\nregion = \"us-east-1\"\n[stages.prod.function]\nmemory = 100\n",
                "deploy.toml:5: [stages.prod.function] memory: must be between 128 and 10240 MB, got 100",
            ),
            (
                "[app]\nname = \"app\"\nregion = \"us-east-1\"\n[function]\ntimeout = 901\n[stages.dev]\n",
                "deploy.toml:5: [function] timeout: must be between 1 and 900 seconds, got 901",
            ),
            (
                "[app]\nname = \"app\"\nregion = \"us-east-1\"\n[function]\nlog-retention-days = 31\n[stages.dev]\n",
                "deploy.toml:5: [function] log-retention-days: must be one of the retentions CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653), got 31",
            ),
            (
                "[app]\nname = \"\"\nregion = \"us-east-1\"\n",
                "deploy.toml:2: [app] name: must not be empty",
            ),
            (
                "[app]\nname = \"App\"\nregion = \"us-east-1\"\n",
                "deploy.toml:2: [app] name: must be lowercase",
            ),
            (
                &format!(
                    "[app]\nname = \"{}\"\nregion = \"us-east-1\"\n",
                    "a".repeat(MAX_APP_LEN + 1)
                ),
                "deploy.toml:2: [app] name: must be at most 42 characters",
            ),
            (
                &format!("{APP}[stages.Prod]\n"),
                "deploy.toml:4: [stages] Prod: a stage name is",
            ),
            (
                &format!("{APP}[stages.a-very-long-stage-name]\n"),
                "deploy.toml:4: [stages] a-very-long-stage-name: a stage name is 1 to 16",
            ),
            (
                "[app]\nname = \"app\"\nregion = \"useast1\"\n[stages.dev]\n",
                "deploy.toml:3: [app] region: must be an AWS region",
            ),
            (
                "[app]\nname = \"app\"\n[stages.dev]\n",
                "deploy.toml:3: [stages.dev] region: no region",
            ),
            (
                &format!("{APP}[stages.dev]\n[api]\nmethods = [\"GET\", \"HEAD\"]\n"),
                "deploy.toml:6: [api] methods: must be among GET, POST, PUT, PATCH, DELETE, got \"HEAD\"",
            ),
            (
                &format!("{APP}[api]\nmethods = [\"GET\", \"GET\"]\n[stages.dev]\n"),
                "deploy.toml:5: [api] methods: GET is listed twice",
            ),
            (
                &format!("{APP}[api]\nmethods = []\n[stages.dev]\n"),
                "deploy.toml:5: [api] methods: must list at least one",
            ),
            (
                &format!("{APP}[api]\npath = \"/predict\"\n[stages.dev]\n"),
                "deploy.toml:5: [api] path: must be one path segment",
            ),
            (
                &format!("{APP}[stages.dev.api.throttling]\nrate-limit = 0\n"),
                "deploy.toml:5: [stages.dev.api.throttling] rate-limit: must be a positive number",
            ),
            (
                &format!("{APP}[api.throttling]\nburst-limit = -1\n[stages.dev]\n"),
                "deploy.toml:5: [api.throttling] burst-limit: must be between 1 and",
            ),
            (
                &format!("{APP}[smoke-test]\ndate = \"2025-02-30\"\n[stages.dev]\n"),
                "deploy.toml:5: [smoke-test] date: must be a date written YYYY-MM-DD",
            ),
            (
                &format!("{APP}[stages.dev]\ndummy-credentials = true\n"),
                "deploy.toml:5: [stages.dev] dummy-credentials: needs `endpoint-url`",
            ),
            (
                &format!("{APP}[ecr]\nkeep-tagged = 0\n[stages.dev]\n"),
                "deploy.toml:5: [ecr] keep-tagged: must be between 1 and 1000",
            ),
            // The repository is shared: no stage may set its own lifecycle.
            (
                &format!("{APP}[stages.prod]\n[stages.prod.ecr]\nkeep-tagged = 30\n"),
                "deploy.toml:5: [stages.prod.ecr]: the ECR repository is shared by every stage",
            ),
            // ECR's repository name pattern.
            (
                "[app]\nname = \"a\"\nregion = \"us-east-1\"\n",
                "deploy.toml:2: [app] name: must be at least 2 characters",
            ),
            (
                "[app]\nname = \"shop-\"\nregion = \"us-east-1\"\n",
                "deploy.toml:2: [app] name: must be at least 2 characters, not end with `-`",
            ),
            (
                "[app]\nname = \"my--shop\"\nregion = \"us-east-1\"\n",
                "deploy.toml:2: [app] name: must be at least 2 characters, not end with `-` and hold no `--`",
            ),
            (
                "[app]\nname = \"app\"\nregion = \"us-iso-east-1\"\n[stages.dev]\n",
                "deploy.toml:3: [app] region: \"us-iso-east-1\" is in an isolated AWS partition",
            ),
            (
                &format!(
                    "{APP}[api.cors]\nallow-origins = [\"https://a.example/app\"]\n[stages.dev]\n"
                ),
                "deploy.toml:5: [api.cors] allow-origins: must be `*` or an origin",
            ),
            (
                &format!("{APP}[api.cors]\nallow-origins = []\n[stages.dev]\n"),
                "deploy.toml:5: [api.cors] allow-origins: must list at least one origin",
            ),
            (
                &format!(
                    "{APP}[api.cors]\nallow-headers = [\"X-Ok\", \"Bad, Header\"]\n[stages.dev]\n"
                ),
                "deploy.toml:5: [api.cors] allow-headers: must be a header name",
            ),
            (
                &format!("{APP}[stages.dev.image]\ndockerfile-dir = \"nowhere\"\n"),
                "deploy.toml:5: [stages.dev.image] dockerfile-dir: directory",
            ),
            (
                &format!("{APP}[image]\ninclude = [\"models\", \"missing\"]\n[stages.dev]\n"),
                "deploy.toml:5: [image] include: missing does not exist",
            ),
            (
                &format!(
                    "{APP}[image]\ninclude = [\"models\"]\n[stages.dev.image]\ninclude = [\"missing\"]\n"
                ),
                "deploy.toml:7: [stages.dev.image] include: missing does not exist",
            ),
            (
                &format!("{APP}[image]\ndockerfile-dir = \"../elsewhere\"\n[stages.dev]\n"),
                "deploy.toml:5: [image] dockerfile-dir: must be a relative path",
            ),
            (
                &format!("{APP}[stages.local]\nendpoint-url = \"localhost:5000\"\n"),
                "deploy.toml:5: [stages.local] endpoint-url: must be an http",
            ),
            (
                &format!("{APP}[function.environment]\nAWS_REGION = \"x\"\n[stages.dev]\n"),
                "deploy.toml:5: [function] environment.AWS_REGION: reserved by Lambda",
            ),
            // Rejected by serde; the key is found from the error's span.
            (
                &format!("{APP}colour = \"blue\"\n"),
                "deploy.toml:4: [app] colour: unknown field `colour`",
            ),
            (
                &format!("{APP}[stages.dev]\nmemory = 512\n"),
                "deploy.toml:5: [stages.dev] memory: unknown field `memory`",
            ),
            (
                &format!("{APP}[stages.dev.function]\nmemroy = 512\n"),
                "deploy.toml:5: [stages.dev.function] memroy: unknown field `memroy`",
            ),
            (
                &format!("{APP}[function]\nmemory = \"lots\"\n[stages.dev]\n"),
                "deploy.toml:5: [function] memory: invalid type: string \"lots\", expected i64",
            ),
            (
                &format!("{APP}[function]\narchitecture = \"arm\"\n[stages.dev]\n"),
                "deploy.toml:5: [function] architecture: unknown variant `arm`",
            ),
            (
                &format!("{APP}[api]\nauth = \"iam\"\n[stages.dev]\n"),
                "deploy.toml:5: [api] auth: unknown variant `iam`",
            ),
            (
                &format!(
                    "{APP}[stages.dev]\n[stages.dev.function]\nmemory = 1024\nmemory = 2048\n"
                ),
                "deploy.toml:7: [stages.dev.function] memory: duplicate key",
            ),
            (
                "[app]\nregion = \"us-east-1\"\n[stages.dev]\n",
                "deploy.toml:1: [app]: missing field `name`",
            ),
            ("[app\nname = \"app\"\n", "deploy.toml:1: "),
        ];
        for (text, expected) in cases {
            let err = error_of(text);
            assert!(
                err.starts_with(expected),
                "for:\n{text}\nexpected: {expected}\ngot:      {err}"
            );
        }
    }

    #[test]
    fn a_missing_default_directory_blames_the_stage() {
        let empty = tempfile::tempdir().unwrap();
        let err = parse_in(empty.path(), &format!("{APP}[stages.dev]\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("deploy.toml:4: [stages.dev] image.dockerfile-dir: directory"),
            "{err}"
        );
        assert!(
            err.contains("lambda-image (the default) does not exist"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_app_table_is_an_error_not_a_panic() {
        let err = error_of("[stages.dev]\n");
        assert!(err.contains("app"), "{err}");
        assert!(err.starts_with("deploy.toml:"), "{err}");
    }

    #[test]
    fn the_config_file_is_found_in_a_parent_directory() {
        let root = root();
        std::fs::write(
            root.path().join("deploy.toml"),
            format!("{APP}[stages.dev]\n"),
        )
        .unwrap();
        let nested = root.path().join("crates/deployer");
        std::fs::create_dir_all(&nested).unwrap();

        let found = find_config(Path::new("deploy.toml"), &nested).unwrap();
        assert_eq!(found, root.path().join("deploy.toml"));
        assert_eq!(
            find_config(Path::new("deploy.toml"), root.path()).unwrap(),
            Path::new("deploy.toml")
        );
        // A path with a directory is taken as given.
        assert_eq!(
            find_config(Path::new("x/deploy.toml"), &nested).unwrap(),
            Path::new("x/deploy.toml")
        );

        let empty = tempfile::tempdir().unwrap();
        let err = find_config(Path::new("nothing.toml"), empty.path()).unwrap_err();
        assert!(matches!(err, ConfigError::NotFound { .. }), "{err}");

        let stage = Config::read(&found)
            .unwrap()
            .stage("dev", &Overrides::default())
            .unwrap();
        assert_eq!(stage.root, std::fs::canonicalize(root.path()).unwrap());
    }

    #[test]
    fn region_shapes() {
        for good in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-2",
            "us-gov-west-1",
            "cn-northwest-1",
        ] {
            assert_eq!(check_region(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "US-EAST-1",
            "us-east-x",
            "u-east-1",
            "us--1",
            "us-east-123",
            "us-iso-east-1",
            "us-isob-east-1",
        ] {
            assert!(check_region(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
