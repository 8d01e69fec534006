//! The resolved stage: what every command deploys, reads or removes, with
//! every default filled in and every value checked.

use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// `protected = true`: a stage callers depend on (`prod`). `up` asks
    /// before applying a plan that changes it (`--yes` answers), `destroy`
    /// wants its name typed (or `--force-protected`), `up --watch` refuses,
    /// and it has an ECR repository of its own (see [`EcrSpec`]).
    pub protected: bool,
    /// Where `protected` was set, for the refusals that name it.
    pub protected_at: Option<SettingAt>,
    /// The directory holding `deploy.toml`: the workspace root, which every
    /// relative path below is resolved against.
    pub root: PathBuf,
    pub function: FunctionSpec,
    pub image: ImageSpec,
    pub ecr: EcrSpec,
    pub api: ApiSpec,
    pub smoke_test: SmokeTestSpec,
    /// The `[stages."pr-*"]` pattern the stage was made from, when no
    /// `[stages.NAME]` table names it.
    pub pattern: Option<String>,
    /// `ttl`: how long the stage lives after its last deployment, after
    /// which `deployer prune` removes it; `None`: until destroyed.
    pub ttl: Option<super::pattern::Ttl>,
    /// `[alarms]`: on by default for a protected stage.
    pub alarms: super::alarms::AlarmsSpec,
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
    /// Environments Lambda keeps initialized for the stage's alias
    /// (PutProvisionedConcurrencyConfig); 0: none.
    pub provisioned_concurrency: i32,
    /// Executions reserved for the function, which are also its cap
    /// (PutFunctionConcurrency); 0: none, the function shares the account's
    /// unreserved pool. (AWS's "reserve 0 to throttle the function" is not
    /// offered: a stage that answers nothing is not a deployment.)
    pub reserved_concurrency: i32,
    /// Where `provisioned-concurrency` and `reserved-concurrency` were
    /// set, for what only AWS can refuse (the account's quota).
    pub provisioned_at: Option<SettingAt>,
    pub reserved_at: Option<SettingAt>,
    /// Published versions kept, newest first, besides those never pruned
    /// (the alias's, one with provisioned concurrency); older ones are
    /// deleted after a deploy so that their images can go too.
    pub keep_versions: u32,
}

/// Where in deploy.toml a setting was written, for an error about it found
/// after the file was read (by asking AWS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingAt {
    pub file: String,
    pub line: usize,
    /// As errors name it: `[stages.prod.function] provisioned-concurrency`.
    pub key: String,
}

impl SettingAt {
    /// The setting cannot be what it is, because `message`.
    pub fn error(&self, message: impl Into<String>) -> super::ConfigError {
        super::ConfigError::Invalid {
            file: self.file.clone(),
            line: self.line,
            key: self.key.clone(),
            message: message.into(),
        }
    }
}

/// API Gateway's default integration timeout for a REST API: past it the
/// caller gets a 504 while the function runs on ("Amazon API Gateway
/// quotas": 50 ms to 29 s; more only by a quota increase for Regional and
/// private REST APIs, which may lower the account's throttle quota).
pub const API_TIMEOUT_S: i32 = 29;

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

/// The stage's repository and its settings.
///
/// Unprotected stages share the repository `{app}`, whose settings are set
/// once, in the shared `[ecr]` table (two stages with two lifecycle
/// policies would rewrite each other's). A protected stage, or one with
/// `[stages.X.ecr] repository`, has a repository of its own, which no other
/// stage's printed policy may write (so an identity that may deploy `dev`
/// cannot put an image where `prod` looks for its own); its `[stages.X.ecr]`
/// table may then set the other keys too.
#[derive(Debug, Clone, PartialEq)]
pub struct EcrSpec {
    /// `[stages.X.ecr] repository`: the stage's own repository, named.
    /// `None`: `{app}-{stage}` for a protected stage, else the shared
    /// `{app}` (`Stage::repository_name`).
    pub repository: Option<String>,
    /// Where the stage came to have a repository of its own: its
    /// `repository` key, or else its `protected` key; `None` for a stage
    /// in the shared repository.
    pub own_repository_at: Option<SettingAt>,
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
    /// `[api.domain]`: a custom domain name in front of the stage; `None`
    /// (the default): callers use the execute-api URL.
    pub domain: Option<DomainSpec>,
}

/// A custom domain name for the stage's API (`[api.domain]`): a REGIONAL
/// API Gateway domain name with a TLS 1.2 policy, mapped to the stage.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainSpec {
    /// `forecast.example.com`, lower-case.
    pub name: String,
    /// `certificate-arn`: an ACM certificate the deployer is given (and
    /// never deletes); `None`: it requests one, validated through
    /// `hosted_zone_id`.
    pub certificate_arn: Option<String>,
    /// `hosted-zone-id`: the public Route 53 zone that holds the name: the
    /// certificate's validation record and the alias record go there.
    pub hosted_zone_id: Option<String>,
    /// `base-path`: the first path segment the stage is served under;
    /// `None`: the whole domain (API Gateway's `(none)`).
    pub base_path: Option<String>,
    /// Where the table and its keys were written, for what only AWS can
    /// refuse (a certificate for another name, a zone that is not the
    /// name's parent).
    pub at: SettingAt,
    pub certificate_at: Option<SettingAt>,
    pub hosted_zone_at: Option<SettingAt>,
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
    /// Where the stage is marked protected, as refusals name it:
    /// `` `[stages.prod] protected = true` (deploy.toml:14) ``.
    pub fn protected_setting(&self) -> String {
        match &self.protected_at {
            Some(at) => format!("`{} = true` ({}:{})", at.key, at.file, at.line),
            None => format!("`[stages.{}] protected = true` (deploy.toml)", self.name),
        }
    }

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
            protected: false,
            protected_at: None,
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
                // Both cost money or cap the function: opted into per stage.
                provisioned_concurrency: 0,
                reserved_concurrency: 0,
                provisioned_at: None,
                reserved_at: None,
                keep_versions: 10,
            },
            image: ImageSpec {
                dockerfile_dir: PathBuf::from("lambda-image"),
                base_image: "scratch".into(),
                include: vec![PathBuf::from("models"), PathBuf::from("data")],
            },
            ecr: EcrSpec {
                repository: None,
                own_repository_at: None,
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
                domain: None,
            },
            smoke_test: SmokeTestSpec {
                enabled: true,
                date: "2025-10-20".into(),
                public_path: true,
            },
            pattern: None,
            ttl: None,
            alarms: super::alarms::AlarmsSpec::defaults(),
        }
    }
    // The names derived from a stage are in `crate::names`.
}
