//! `deploy.toml` → a resolved [`Stage`]: defaults, then the file's shared
//! tables, then `[stages.<name>]`, then command-line flags.
//!
//! Everything downstream (image, aws, commands) sees only [`Stage`], never
//! the file.

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
}

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

#[derive(Debug, Clone, PartialEq)]
pub struct EcrSpec {
    pub untagged_expire_days: u32,
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

#[derive(Debug, Clone, PartialEq)]
pub struct CorsSpec {
    pub allow_origins: Vec<String>,
    pub allow_headers: Vec<String>,
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
            root: PathBuf::from("."),
            function: FunctionSpec {
                package: "prediction-lambda".into(),
                binary: "bootstrap".into(),
                memory_mb: 2048,
                timeout_s: 300,
                architecture: Architecture::X86_64,
                environment: BTreeMap::new(),
                tracing: true,
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
                    allow_headers: vec!["Content-Type".into(), "X-Api-Key".into()],
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
            },
        }
    }

    /// `{app}-{stage}`: the function and the REST API.
    pub fn function_name(&self) -> String {
        format!("{}-{}", self.app, self.name)
    }

    pub fn api_name(&self) -> String {
        self.function_name()
    }

    /// `{app}-{stage}-exec`: the function's execution role.
    pub fn role_name(&self) -> String {
        format!("{}-{}-exec", self.app, self.name)
    }

    /// `{app}`: one repository shared by every stage (images are
    /// content-addressed, so stages never overwrite each other).
    pub fn repository_name(&self) -> String {
        self.app.clone()
    }

    /// The alias that API Gateway calls: named after the stage.
    pub fn alias_name(&self) -> String {
        self.name.clone()
    }

    /// `/aws/lambda/{function}`.
    pub fn log_group_name(&self) -> String {
        format!("/aws/lambda/{}", self.function_name())
    }

    /// The tags every resource of this stage carries; `status` and
    /// `destroy` find resources by them. The repository carries only
    /// `deployer:app`, since stages share it.
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("deployer:app".to_string(), self.app.clone()),
            ("deployer:stage".to_string(), self.name.clone()),
        ])
    }
}
