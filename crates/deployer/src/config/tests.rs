//! The configuration's unit tests: layering, every validation's
//! `file:line: key` message, finding the file, and region shapes.

use super::*;
use std::time::Duration;

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
protected = true
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

    assert!(!dev.protected);

    let prod = config.stage("prod", &Overrides::default()).unwrap();
    assert!(prod.protected);
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
fn concurrency_is_set_per_stage_and_zero_is_none() {
    let root = root();
    let text = format!(
        "{APP}[function]\nreserved-concurrency = 10\n\
         [stages.dev]\n[stages.dev.function]\nreserved-concurrency = 0\n\
         [stages.prod]\n[stages.prod.function]\nprovisioned-concurrency = 10\n"
    );
    let config = parse_in(root.path(), &text).unwrap();
    let dev = config.stage("dev", &Overrides::default()).unwrap();
    // A stage's 0 takes back the shared reservation.
    assert_eq!(
        (
            dev.function.provisioned_concurrency,
            dev.function.reserved_concurrency
        ),
        (0, 0)
    );
    let prod = config.stage("prod", &Overrides::default()).unwrap();
    // Provisioned equal to reserved is allowed: "cannot exceed".
    assert_eq!(
        (
            prod.function.provisioned_concurrency,
            prod.function.reserved_concurrency
        ),
        (10, 10)
    );
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
            &format!("{APP}[stages.dev]\nprotected = \"yes\"\n"),
            "deploy.toml:5: [stages.dev] protected: invalid type: string \"yes\", expected a boolean",
        ),
        (
            &format!("{APP}[stages.dev]\ndummy-credentials = true\n"),
            "deploy.toml:5: [stages.dev] dummy-credentials: needs `endpoint-url`",
        ),
        (
            &format!("{APP}[stages.prod.function]\nprovisioned-concurrency = -1\n"),
            "deploy.toml:5: [stages.prod.function] provisioned-concurrency: must be between 0 and 2147483647 environments (0: none), got -1",
        ),
        (
            &format!("{APP}[function]\nreserved-concurrency = -5\n[stages.dev]\n"),
            "deploy.toml:5: [function] reserved-concurrency: must be between 0 and 2147483647 executions (0: none), got -5",
        ),
        // Provisioned beyond reserved: blamed on the line that set the
        // provisioned amount, in whichever layer set it.
        (
            &format!(
                "{APP}[function]\nreserved-concurrency = 2\n[stages.prod.function]\nprovisioned-concurrency = 3\n"
            ),
            "deploy.toml:7: [stages.prod.function] provisioned-concurrency: 3 is more than the stage's reserved-concurrency (2)",
        ),
        (
            &format!(
                "{APP}[function]\nprovisioned-concurrency = 4\n[stages.prod.function]\nreserved-concurrency = 1\n"
            ),
            "deploy.toml:5: [function] provisioned-concurrency: 4 is more than the stage's reserved-concurrency (1)",
        ),
        (
            &format!("{APP}[stages.prod.function]\nkeep-versions = 101\n"),
            "deploy.toml:5: [stages.prod.function] keep-versions: must be between 1 and 100 versions, got 101",
        ),
        (
            &format!("{APP}[ecr]\nkeep-tagged = 0\n[stages.dev]\n"),
            "deploy.toml:5: [ecr] keep-tagged: must be between 1 and 1000",
        ),
        // A stage in the shared repository may not set its own lifecycle.
        (
            &format!("{APP}[stages.dev]\n[stages.dev.ecr]\nkeep-tagged = 30\n"),
            "deploy.toml:5: [stages.dev.ecr]: stage `dev` shares the ECR repository `app` with the other unprotected stages",
        ),
        (
            &format!("{APP}[stages.dev.ecr]\nrepository = \"App\"\n"),
            "deploy.toml:5: [stages.dev.ecr] repository: must be an ECR repository name",
        ),
        (
            &format!("{APP}[stages.dev.ecr]\nrepository = \"a//b\"\n"),
            "deploy.toml:5: [stages.dev.ecr] repository: must be an ECR repository name",
        ),
        // A stage's own repository is its alone: not the shared one, not
        // another stage's.
        (
            &format!("{APP}[stages.dev]\n[stages.qa.ecr]\nrepository = \"app\"\n"),
            "deploy.toml:6: [stages.qa.ecr] repository: the ECR repository `app` would also be stage `dev`'s",
        ),
        (
            &format!(
                "{APP}[stages.prod]\nprotected = true\n[stages.qa.ecr]\nrepository = \"app-prod\"\n"
            ),
            "deploy.toml:7: [stages.qa.ecr] repository: the ECR repository `app-prod` would also be stage `prod`'s",
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
            &format!("{APP}[stages.dev]\n[stages.dev.function]\nmemory = 1024\nmemory = 2048\n"),
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

#[test]
fn a_protected_stage_or_a_named_repository_is_a_stage_of_its_own() {
    let root = root();
    let text = format!(
        "{APP}[ecr]\nkeep-tagged = 5\n[stages.dev]\n[stages.qa]\n[stages.prod]\nprotected = true\n\
         [stages.prod.ecr]\nkeep-tagged = 50\n[stages.eu.ecr]\nrepository = \"team/app-eu\"\n"
    );
    let config = parse_in(root.path(), &text).unwrap();
    let stage = |name: &str| config.stage(name, &Overrides::default()).unwrap();
    let (dev, qa, prod, eu) = (stage("dev"), stage("qa"), stage("prod"), stage("eu"));
    assert_eq!(
        [dev.repository_name(), qa.repository_name()],
        ["app", "app"]
    );
    assert!(!dev.owns_repository() && !qa.owns_repository());
    assert_eq!(prod.repository_name(), "app-prod");
    assert!(prod.owns_repository());
    assert_eq!(eu.repository_name(), "team/app-eu");
    assert!(eu.owns_repository() && !eu.protected);
    // Its own repository, its own lifecycle; the shared table's otherwise.
    assert_eq!(prod.ecr.keep_tagged, 50);
    assert_eq!(eu.ecr.keep_tagged, 5);
    assert_eq!(dev.ecr.keep_tagged, 5);
    let at = prod.ecr.own_repository_at.unwrap();
    assert_eq!((at.line, at.key.as_str()), (9, "[stages.prod] protected"));
}

// ---------------------------------------------------------------------------
// Stage patterns and time to live

const PREVIEWS: &str = r#"[app]
name = "app"
region = "us-east-1"

[function]
memory = 2048

[stages.dev]

[stages."pr-*"]
ttl = "7d"
function = { memory = 512 }

[stages."pr-1*"]
ttl = "12h"
"#;

#[test]
fn a_pattern_makes_the_stages_it_matches_and_an_exact_table_beats_it() {
    let root = root();
    let text = format!("{PREVIEWS}\n[stages.pr-100]\n");
    let config = parse_in(root.path(), &text).unwrap();
    let pr = config.stage("pr-7", &Overrides::default()).unwrap();
    assert_eq!(pr.name, "pr-7");
    assert_eq!(pr.function_name(), "app-pr-7");
    assert_eq!(pr.pattern.as_deref(), Some("pr-*"));
    assert_eq!(pr.function.memory_mb, 512);
    assert_eq!(pr.ttl.as_ref().map(|t| t.text.as_str()), Some("7d"));
    // The most specific pattern wins.
    let pr12 = config.stage("pr-12", &Overrides::default()).unwrap();
    assert_eq!(pr12.pattern.as_deref(), Some("pr-1*"));
    assert_eq!(pr12.function.memory_mb, 2048);
    assert_eq!(pr12.ttl.unwrap().duration, Duration::from_secs(12 * 3600));
    // An exact table always.
    let exact = config.stage("pr-100", &Overrides::default()).unwrap();
    assert_eq!((exact.pattern, exact.ttl), (None, None));
    // The pattern's own key: its settings under the pattern's name.
    let own = config.stage("pr-*", &Overrides::default()).unwrap();
    assert_eq!(own.function_name(), "app-pr-*");
    // No match: the error lists the patterns too.
    let err = config.stage("qa", &Overrides::default()).unwrap_err();
    assert!(
        err.to_string().contains("dev, pr-100, \"pr-*\", \"pr-1*\""),
        "{err}"
    );
}

#[test]
fn a_name_a_pattern_matches_must_still_be_a_stage_name() {
    let root = root();
    let config = parse_in(root.path(), PREVIEWS).unwrap();
    let err = config
        .stage("pr-12345678901234", &Overrides::default())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("--stage: `pr-12345678901234` matches the pattern `pr-1*`"),
        "{text}"
    );
    assert!(matches!(err, ConfigError::Flag { .. }));
}

#[test]
fn two_patterns_matching_a_name_equally_name_both_lines() {
    let root = root();
    let text = format!("{APP}[stages.\"pr-*\"]\n[stages.\"*r-1\"]\n");
    let config = parse_in(root.path(), &text).unwrap();
    // Only one matches: no ambiguity.
    assert!(config.stage("pr-2", &Overrides::default()).is_ok());
    let err = config
        .stage("pr-1", &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("deploy.toml:4: [stages.\"pr-*\"]: stage `pr-1` matches both")
            || err.starts_with("deploy.toml:5: [stages.\"*r-1\"]: stage `pr-1` matches both"),
        "{err}"
    );
    assert!(
        err.contains("(line 4)") || err.contains("(line 5)"),
        "{err}"
    );
}

#[test]
fn globs_match_any_run_of_characters() {
    for (glob, name, matches) in [
        ("pr-*", "pr-1", true),
        ("pr-*", "pr-", true),
        ("pr-*", "pr", false),
        ("pr-*", "xpr-1", false),
        ("*-preview", "feat-preview", true),
        ("*-preview", "feat-previewx", false),
        ("a*b*c", "abc", true),
        ("a*b*c", "axxbyyc", true),
        ("a*b*c", "acb", false),
        ("a*a", "a", false),
        ("dev", "dev", true),
        ("dev", "devx", false),
    ] {
        assert_eq!(glob_matches(glob, name), matches, "{glob} ~ {name}");
    }
}

#[test]
fn a_ttl_is_hours_or_days() {
    assert_eq!(
        Ttl::parse("7d").unwrap().duration,
        Duration::from_secs(7 * 86400)
    );
    assert_eq!(
        Ttl::parse("1h").unwrap().duration,
        Duration::from_secs(3600)
    );
    assert_eq!(Ttl::parse("365d").unwrap().text, "365d");
    for bad in [
        "",
        "7",
        "d",
        "0h",
        "7m",
        "1.5d",
        "-1d",
        "366d",
        "7 d",
        "99999999999999999999d",
    ] {
        assert!(Ttl::parse(bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn pattern_and_ttl_mistakes_name_their_line_and_key() {
    for (text, expected) in [
        (
            format!("{APP}[stages.\"pr-*\"]\nttl = \"7w\"\n"),
            "deploy.toml:5: [stages.pr-*] ttl: must be a whole number of hours or days",
        ),
        (
            format!("{APP}[stages.\"pr-*\"]\nprotected = true\n"),
            "deploy.toml:5: [stages.\"pr-*\"] protected: a stage pattern cannot be protected",
        ),
        (
            format!("{APP}[stages.prod]\nprotected = true\nttl = \"1d\"\n"),
            "deploy.toml:6: [stages.prod] ttl: a protected stage never expires",
        ),
        (
            format!("{APP}[stages.\"PR-*\"]\n"),
            "deploy.toml:4: [stages] \"PR-*\": a stage pattern is lowercase letters",
        ),
        (
            format!("{APP}[stages.\"pr-*\".ecr]\nkeep-tagged = 3\n"),
            "deploy.toml:4: [stages.\"pr-*\".ecr]: the stages of a pattern share",
        ),
    ] {
        let err = error_of(&text);
        assert!(err.starts_with(expected), "{err}\nexpected: {expected}");
    }
}

#[test]
fn a_stage_in_no_table_is_the_app_s_with_the_defaults() {
    let root = root();
    let config = parse_in(root.path(), &format!("{APP}[stages.dev]\n")).unwrap();
    let stage = config
        .untracked_stage("pr-9", &Overrides::default())
        .unwrap();
    assert_eq!((stage.app.as_str(), stage.name.as_str()), ("app", "pr-9"));
    assert_eq!(stage.region, "us-east-1");
    assert!(!stage.protected && stage.ttl.is_none());
    assert!(
        config
            .untracked_stage("Bad_Name", &Overrides::default())
            .is_err()
    );
}

#[test]
fn alarms_are_on_for_protected_stages_only_unless_asked() {
    let root = root();
    let text = format!(
        "{APP}[stages.dev]\n[stages.local]\n[stages.prod]\nprotected = true\n\
         [stages.staging]\n[stages.staging.alarms]\nenabled = true\nnotify = [\"a@b.co\"]\n"
    );
    let config = parse_in(root.path(), &text).unwrap();
    let stage = |name: &str| config.stage(name, &Overrides::default()).unwrap();
    assert!(!stage("dev").alarms.enabled);
    assert!(!stage("local").alarms.enabled);
    assert!(stage("prod").alarms.enabled);
    let staging = stage("staging");
    assert!(staging.alarms.enabled);
    assert_eq!(
        staging.alarms.notify,
        [alarms::NotifyTarget::Email("a@b.co".into())]
    );
    // The workspace's own deploy.toml: dev and local exactly as before.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let own = Config::read(&workspace.join("deploy.toml")).unwrap();
    for name in ["dev", "local"] {
        let stage = own.stage(name, &Overrides::default()).unwrap();
        assert_eq!(stage.alarms, alarms::AlarmsSpec::defaults(), "{name}");
    }
}

#[test]
fn alarm_windows_layer_shared_then_stage_then_each_alarm() {
    let root = root();
    let text = format!(
        "{APP}[alarms]\nperiod = 300\nevaluation-periods = 2\ntreat-missing-data = \"missing\"\n\
         server-error-rate = 0.1\n[alarms.latency-p99]\nperiod = 120\ndatapoints-to-alarm = 1\n\
         [stages.prod]\nprotected = true\n[stages.prod.alarms]\nerror-count = 3\n\
         [stages.prod.alarms.errors]\nevaluation-periods = 5\n"
    );
    let config = parse_in(root.path(), &text).unwrap();
    let prod = config.stage("prod", &Overrides::default()).unwrap();
    let a = &prod.alarms;
    use alarms::{AlarmId, AlarmWindow, TreatMissing};
    assert_eq!(
        a.window(AlarmId::ServerErrorRate),
        AlarmWindow {
            period_s: 300,
            evaluation_periods: 2,
            datapoints_to_alarm: 2,
            treat_missing_data: TreatMissing::Missing
        }
    );
    let latency = a.window(AlarmId::LatencyP99);
    assert_eq!((latency.period_s, latency.datapoints_to_alarm), (120, 1));
    let errors = a.window(AlarmId::Errors);
    assert_eq!(
        (errors.evaluation_periods, errors.datapoints_to_alarm),
        (5, 5)
    );
    assert_eq!(a.threshold(AlarmId::ServerErrorRate), 0.1);
    assert_eq!(a.threshold(AlarmId::Errors), 3.0);
    assert_eq!(a.threshold(AlarmId::LatencyP99), 5000.0);
}

#[test]
fn a_p99_threshold_at_the_gateway_cut_is_refused_at_its_line() {
    let text = format!("{APP}[alarms]\nlatency-p99-ms = 30000\n[stages.prod]\n");
    let err = error_of(&text);
    assert!(
        err.starts_with("deploy.toml:5: [alarms] latency-p99-ms: must be above 0 and below 29000"),
        "{err}"
    );
    let ok = format!("{APP}[alarms]\nlatency-p99-ms = 28999\n[stages.prod]\n");
    parse_in(root().path(), &ok).unwrap();
}
