//! The `train` binary reproduces the shipped `models/` from `data/`: the
//! models and their version byte for byte, and `metrics.json`'s figures for
//! the shipped seed. It runs `train --seeds 1`, the shipped seed alone: the
//! other nine seeds' runs take minutes in a debug build, so their figures
//! (`over_seeds`) are recomputed by `bench/forecast-seeds`, which compares
//! the whole directory byte for byte.

use std::process::Command;

#[test]
fn training_again_gives_the_shipped_models() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_train"))
        .arg("--data")
        .arg(root.join("data"))
        .arg("--out")
        .arg(out.path())
        .args(["--seeds", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "train failed: {stderr}");
    assert!(stderr.contains("4 malformed rows skipped"), "{stderr}");
    for file in ["models.postcard", "manifest.json"] {
        let fresh = std::fs::read(out.path().join(file)).unwrap();
        let shipped = std::fs::read(root.join("models").join(file)).unwrap();
        assert!(
            fresh == shipped,
            "{file}: retrained bytes differ from models/{file}; run `cargo run --release -p prediction --bin train`"
        );
    }
    let metrics = |dir: &std::path::Path| -> serde_json::Value {
        let text = std::fs::read_to_string(dir.join("metrics.json")).unwrap();
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let seeds = value
            .as_object_mut()
            .and_then(|m| m.remove("over_seeds"))
            .unwrap();
        assert!(seeds["seeds"].is_array());
        value
    };
    assert!(
        metrics(out.path()) == metrics(&root.join("models")),
        "metrics.json: the shipped seed's figures differ; run `cargo run --release -p prediction --bin train`"
    );
}

#[test]
fn bad_arguments_are_a_usage_error() {
    for args in [&["--nope"][..], &["--seeds", "0"], &["--seeds", "ten"]] {
        let run = Command::new(env!("CARGO_BIN_EXE_train"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&run.stderr).contains("usage"));
    }
}
