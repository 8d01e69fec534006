//! Whatever the text, the parser answers with a config or an error, never a
//! panic (line numbers and key lookup index into the text by spans).

use std::path::Path;

use deployer::config::Config;
use proptest::prelude::*;

/// Lines that look like deploy.toml, mixed with noise, so that the
/// generated documents reach past the syntax check into validation.
fn toml_line() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "name",
        "region",
        "memory",
        "timeout",
        "architecture",
        "auth",
        "methods",
        "path",
        "date",
        "keep-tagged",
        "rate-limit",
        "burst-limit",
        "endpoint-url",
        "include",
        "dockerfile-dir",
        "enabled",
        "tracing",
        "x",
    ]);
    let values = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "[a-z0-9_ -]{0,12}".prop_map(|s| format!("{s:?}")),
        Just("true".to_string()),
        Just("[\"GET\", \"POST\"]".to_string()),
        Just("{ a = 1 }".to_string()),
        Just("2025-10-20".to_string()),
    ];
    let headers = prop::sample::select(vec![
        "[app]",
        "[function]",
        "[image]",
        "[ecr]",
        "[api]",
        "[api.cors]",
        "[api.throttling]",
        "[smoke-test]",
        "[stages.dev]",
        "[stages.prod.function]",
        "[stages.x.api.throttling]",
        "[[app]]",
        "[stages.Bad]",
    ]);
    prop_oneof![
        (keys, values).prop_map(|(k, v)| format!("{k} = {v}")),
        headers.prop_map(str::to_string),
        ".{0,20}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = Config::parse(&text, "deploy.toml", Path::new("."));
    }

    #[test]
    fn arbitrary_documents_never_panic(lines in prop::collection::vec(toml_line(), 0..24)) {
        let text = format!("[app]\nname = \"app\"\nregion = \"us-east-1\"\n{}", lines.join("\n"));
        if let Err(err) = Config::parse(&text, "deploy.toml", Path::new(".")) {
            let message = err.to_string();
            prop_assert!(message.starts_with("deploy.toml"), "{}", message);
        }
    }
}
