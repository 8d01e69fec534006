//! The image pipeline against the local AWS: compile the workspace's
//! function statically, build its image from the real context with the
//! real Dockerfile, push it to the registry at the ECR host with
//! credentials from (moto's) ECR GetAuthorizationToken, and check what the
//! registry serves.
//!
//! Needs `scripts/local-cloud up` and its environment
//! (`eval "$(scripts/local-cloud env)"`); fails, never skips, without it.
//! Run with `--nocapture` to see the timings.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use bollard::Docker;
use deployer::config::Stage;
use deployer::image::{
    BuildStep, ImageEvent, ImageRef, Recipe, RegistryCredentials, build_context, build_image,
    compile, connect_docker, content_hash, digest_of_taken_tag, push_image,
};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::util;

/// Docker through the deployer's own connection, once the local AWS answers.
async fn local_docker() -> Docker {
    util::require_local_cloud();
    match connect_docker().await {
        Ok(docker) => docker,
        Err(e) => panic!("{e}\n(start the local AWS with `scripts/local-cloud up`)"),
    }
}

/// The SDK in us-east-1, the one region the local registry serves.
async fn ecr_config() -> aws_config::SdkConfig {
    util::sdk_config_in("us-east-1").await
}

/// The workspace's stage, with `models/` and `data/` made up in `dir`:
/// the function, the Dockerfile and the hashing are the real ones.
fn stage_with_inputs(dir: &Path, nonce: &str) -> Stage {
    let models = dir.join("models");
    let data = dir.join("data");
    std::fs::create_dir_all(models.join("nested")).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(models.join("nested/model.bin"), format!("weights {nonce}")).unwrap();
    std::fs::write(data.join("weather.csv"), "date,temp\n2025-10-20,12.5\n").unwrap();
    let mut stage = Stage::defaults("dimage", "test", "us-east-1");
    stage.root = util::workspace_root().canonicalize().unwrap();
    stage.image.include = vec![models, data];
    stage
}

/// Repository URI and push credentials from ECR, as the deployer will get
/// them (moto answers `AWS:<password>` for the local registry's host).
async fn repository_and_credentials(
    config: &aws_config::SdkConfig,
    name: &str,
) -> (String, RegistryCredentials) {
    let created = aws_sdk_ecr::Client::new(config)
        .create_repository()
        .repository_name(name)
        .send()
        .await
        .unwrap();
    let uri = created
        .repository()
        .and_then(|r| r.repository_uri())
        .unwrap()
        .to_string();
    let docker = util::registry_credentials(config).await;
    let server_address = docker
        .serveraddress
        .unwrap()
        .trim_start_matches("https://")
        .to_string();
    assert!(
        uri.starts_with(&server_address),
        "{uri} is not on {server_address}"
    );
    (
        uri,
        RegistryCredentials {
            username: docker.username.unwrap(),
            password: docker.password.unwrap(),
            server_address,
        },
    )
}

/// The digest the registry itself serves for `repository:tag`.
fn registry_digest(host: &str, repository: &str, tag: &str) -> String {
    let url = format!("https://{host}/v2/{repository}/manifests/{tag}");
    let output = std::process::Command::new("curl")
        .args(["-sS", "-k", "-I", "-H"])
        .arg("Accept: application/vnd.docker.distribution.manifest.v2+json")
        .arg(&url)
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&output.stdout);
    headers
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("docker-content-digest")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Docker-Content-Digest from {url}:\n{headers}"))
}

/// Every regular file in the image's layers: path → (mode, sha256).
async fn image_files(docker: &Docker, name: &str) -> BTreeMap<String, (u32, String)> {
    let mut saved = Vec::new();
    let mut stream = docker.export_image(name);
    while let Some(chunk) = stream.next().await {
        saved.extend_from_slice(&chunk.unwrap());
    }
    let mut members = BTreeMap::new();
    for entry in tar::Archive::new(saved.as_slice()).entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        members.insert(path, content);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
    let mut files = BTreeMap::new();
    for layer in manifest[0]["Layers"].as_array().unwrap() {
        let layer = &members[layer.as_str().unwrap()];
        for entry in tar::Archive::new(layer.as_slice()).entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mode = entry.header().mode().unwrap();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            files.insert(path, (mode, hex::encode(Sha256::digest(&content))));
        }
    }
    files
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[tokio::test]
async fn compile_build_push_and_the_registry_serves_the_same_digest() {
    let docker = local_docker().await;
    let config = ecr_config().await;
    let ecr = aws_sdk_ecr::Client::new(&config);
    let inputs = tempfile::tempdir().unwrap();
    let repository = util::unique_name("dimage");
    let stage = stage_with_inputs(inputs.path(), &repository);

    let started = Instant::now();
    let recipe = Recipe::for_stage(&stage).unwrap();
    let hash = content_hash(&stage, &recipe).unwrap();
    let hash_time = started.elapsed();

    let compile_lines = Mutex::new(0usize);
    let started = Instant::now();
    let binary = compile(&stage, &recipe, &|event| {
        assert!(matches!(event, ImageEvent::Compile(_)), "{event:?}");
        *compile_lines.lock().unwrap() += 1;
    })
    .await
    .unwrap();
    let compile_time = started.elapsed();
    // Kept under the hash of its sources, in the lambda target directory.
    let key = recipe.binary_hash();
    assert!(
        binary.starts_with(deployer::image::compile::target_dir(&stage))
            && binary.ends_with(format!("{}/bootstrap", key.hex())),
        "{}",
        binary.display()
    );
    assert!(
        *compile_lines.lock().unwrap() > 0,
        "cargo's output was not streamed"
    );
    // Static: a FROM scratch image has no dynamic loader.
    let file = std::process::Command::new("file")
        .arg(&binary)
        .output()
        .unwrap();
    let file = String::from_utf8_lossy(&file.stdout);
    assert!(
        file.contains("statically linked") || file.contains("static-pie"),
        "{file}"
    );

    let context = build_context(&stage, &binary).unwrap();
    let (repository_uri, credentials) = repository_and_credentials(&config, &repository).await;
    let image = ImageRef::new(&repository_uri, &hash.tag());

    let build_log = Mutex::new(Vec::new());
    let started = Instant::now();
    build_image(&docker, &stage, context, &image, &|event| match event {
        ImageEvent::BuildLog(line) => build_log.lock().unwrap().push(line),
        other => panic!("unexpected event while building: {other:?}"),
    })
    .await
    .unwrap();
    let build_time = started.elapsed();
    let build_log = build_log.into_inner().unwrap();
    assert!(
        build_log.iter().any(|l| l.contains("COPY bootstrap")),
        "{build_log:#?}"
    );

    let layer_events = Mutex::new(0usize);
    let started = Instant::now();
    let pushed = push_image(&docker, &image, &credentials, &|event| match event {
        ImageEvent::Layer { .. } => *layer_events.lock().unwrap() += 1,
        other => panic!("unexpected event while pushing: {other:?}"),
    })
    .await
    .unwrap();
    let push_time = started.elapsed();
    assert!(*layer_events.lock().unwrap() > 0, "no push progress");

    let digest = pushed.digest.clone().unwrap();
    assert_eq!(
        digest,
        registry_digest(&credentials.server_address, &repository, &image.tag),
        "the digest returned is not the one the registry serves"
    );

    // A second stage pushing the same content hash at once meets the tag
    // taken: an immutable ECR repository refuses the push in these words,
    // and the push carries on with the digest the registry holds.
    let refusal = format!(
        "tag invalid: The image tag '{}' already exists in the '{repository}' repository \
         and cannot be overwritten because the repository is immutable.",
        image.tag
    );
    assert_eq!(
        digest_of_taken_tag(&docker, &image, &credentials, &refusal).await,
        Some(digest.clone())
    );
    assert_eq!(
        digest_of_taken_tag(&docker, &image, &credentials, "connection reset by peer").await,
        None,
        "another failure is not a taken tag"
    );
    let never_pushed = ImageRef::new(&repository_uri, "hnever-pushed");
    assert_eq!(
        digest_of_taken_tag(&docker, &never_pushed, &credentials, &refusal).await,
        None,
        "a tag the registry does not hold is not taken"
    );

    let inspect = docker.inspect_image(&image.by_tag()).await.unwrap();
    let repo_digests = inspect.repo_digests.clone().unwrap_or_default();
    assert!(
        repo_digests.contains(&deployer::aws::ecr::image_uri_by_digest(
            &repository_uri,
            &digest
        )),
        "{repo_digests:?}"
    );

    // The image holds the binary, the models and the data, and nothing else.
    let files = image_files(&docker, &image.by_tag()).await;
    let expected = [
        ("bootstrap", 0o755, sha256_file(&binary)),
        (
            "models/nested/model.bin",
            0o644,
            sha256_file(&inputs.path().join("models/nested/model.bin")),
        ),
        (
            "data/weather.csv",
            0o644,
            sha256_file(&inputs.path().join("data/weather.csv")),
        ),
    ];
    assert_eq!(files.len(), expected.len(), "{files:#?}");
    for (suffix, mode, sha) in expected {
        let found = files.iter().find(|(path, _)| path.ends_with(suffix));
        let Some((path, (found_mode, found_sha))) = found else {
            panic!("{suffix} is not in the image: {files:#?}")
        };
        assert_eq!((*found_mode & 0o777, found_sha), (mode, &sha), "{path}");
    }

    let size = inspect.size.unwrap_or_default();
    eprintln!(
        "image timings: hash {hash_time:.2?}, compile {compile_time:.2?}, build {build_time:.2?}, \
         push {push_time:.2?}; image size {size} bytes ({:.1} MB); binary {} bytes",
        size as f64 / 1e6,
        std::fs::metadata(&binary).unwrap().len()
    );

    let _ = docker
        .remove_image(
            &image.by_tag(),
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
    let _ = ecr
        .delete_repository()
        .repository_name(&repository)
        .force(true)
        .send()
        .await;
}

#[tokio::test]
async fn a_failing_dockerfile_returns_its_log() {
    let docker = local_docker().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("lambda-image")).unwrap();
    std::fs::write(
        root.join("lambda-image/Dockerfile"),
        "ARG BASE_IMAGE=scratch\nFROM ${BASE_IMAGE}\nCOPY bootstrap /bootstrap\nCOPY no-such-file-marker /x\n",
    )
    .unwrap();
    std::fs::write(root.join("bootstrap"), "not really a binary").unwrap();
    let mut stage = Stage::defaults("dimage", "test", "us-east-1");
    stage.root = root.to_path_buf();
    stage.image.include = Vec::new();
    let context = build_context(&stage, &root.join("bootstrap")).unwrap();
    let image = ImageRef::new("dimage-failing", &util::unique_name("t"));

    let streamed = Mutex::new(Vec::new());
    let error = build_image(&docker, &stage, context, &image, &|event| {
        if let ImageEvent::BuildLog(line) = event {
            streamed.lock().unwrap().push(line);
        }
    })
    .await
    .unwrap_err();
    assert_eq!(error.step, BuildStep::Build);
    let text = error.to_string();
    eprintln!("the failing build's error:\n{text}");
    assert!(text.contains("no-such-file-marker"), "{text}");
    // The log before the failure is in the error too: the steps that ran.
    assert!(text.contains("COPY bootstrap /bootstrap"), "{text}");
    assert!(
        !streamed.lock().unwrap().is_empty(),
        "the build log was not streamed"
    );
}
