//! The repository's own deploy.toml resolves for each of its stages.
//!
//! It is read from a copy placed beside empty `lambda-image/`, `models/`
//! and `data/` directories, so the test checks the file itself and not
//! whether the build inputs (written elsewhere) are in this checkout.

use std::path::Path;

use deployer::config::{Architecture, Config, Overrides};

#[test]
fn the_repo_deploy_toml_resolves_dev_prod_and_local() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy.toml");
    let text = std::fs::read_to_string(&repo).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for sub in ["lambda-image", "models", "data"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let config = Config::parse(&text, "deploy.toml", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.stage_names(), ["dev", "local", "prod"]);

    let none = Overrides::default();
    let dev = config.stage("dev", &none).unwrap();
    let prod = config.stage("prod", &none).unwrap();
    let local = config.stage("local", &none).unwrap();

    assert_eq!(dev.app, "pde-predict");
    assert_eq!(prod.function_name(), "pde-predict-prod");
    assert_eq!(prod.function.memory_mb, 2048);
    assert_eq!(prod.function.timeout_s, 300);
    assert_eq!(prod.function.architecture, Architecture::X86_64);
    assert!(prod.function.tracing);
    assert!(prod.smoke_test.enabled);
    assert_eq!(prod.endpoint_url, None);

    assert_eq!(local.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
    assert_eq!(local.region, "us-east-1");
    assert!(
        local.smoke_test.enabled && local.smoke_test.public_path,
        "the local AWS runs the image and serves the URL: both checks are on"
    );
    assert!(prod.smoke_test.public_path);
    // Every stage shares one repository and nothing else.
    assert_eq!(dev.repository_name(), local.repository_name());
    assert_ne!(dev.role_name(), prod.role_name());
}
