//! The `train` binary reproduces the shipped `models/` byte for byte from
//! `data/`: the models, their version and the metrics match the code.

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
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "train failed: {stderr}");
    assert!(stderr.contains("4 malformed rows skipped"), "{stderr}");
    for file in ["models.postcard", "manifest.json", "metrics.json"] {
        let fresh = std::fs::read(out.path().join(file)).unwrap();
        let shipped = std::fs::read(root.join("models").join(file)).unwrap();
        assert!(
            fresh == shipped,
            "{file}: retrained bytes differ from models/{file}; run `cargo run --release -p prediction --bin train`"
        );
    }
}

#[test]
fn bad_arguments_are_a_usage_error() {
    let run = Command::new(env!("CARGO_BIN_EXE_train"))
        .arg("--nope")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("usage"));
}
