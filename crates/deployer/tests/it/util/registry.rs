//! The local registry, spoken to as `docker push` does (blob uploads, then
//! the manifest), so a test can put a small image into a repository of its
//! own without building one, and ask whether the registry still holds a
//! manifest. The local ECR lists what the registry holds
//! (`scripts/moto_ext/ecr_registry.py`), so these are real pushes for ECR.

use std::process::Command;

use sha2::{Digest as _, Sha256};

use super::registry_host;

const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn url(repository: &str, rest: &str) -> String {
    format!("https://{}/v2/{repository}/{rest}", registry_host())
}

/// curl's answer: the status line's code, the headers and the body.
fn curl(args: &[&str], body: Option<&[u8]>) -> (u16, String, String) {
    let mut command = Command::new("curl");
    // The registry's certificate is self-signed; dockerd trusts it by a
    // file of its own, curl here by -k.
    command.args(["-sS", "-k", "-D", "/dev/stderr", "-o", "-"]);
    command.args(args);
    if body.is_some() {
        command.args(["--data-binary", "@-"]);
    }
    command.stdin(std::process::Stdio::piped());
    command.stdout(std::process::Stdio::piped());
    command.stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("curl runs");
    if let Some(body) = body {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(body).unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    let headers = String::from_utf8_lossy(&output.stderr).into_owned();
    let status = headers
        .lines()
        .rev()
        .find(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        headers,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Uploads a blob (a session, then its content in one PUT); returns its
/// digest.
fn upload(repository: &str, blob: &[u8]) -> String {
    let digest = sha256(blob);
    let (status, headers, body) = curl(&["-X", "POST", &url(repository, "blobs/uploads/")], None);
    assert_eq!(status, 202, "blob upload to {repository}: {headers}{body}");
    let location = headers
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("location")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Location in {headers}"));
    let separator = if location.contains('?') { '&' } else { '?' };
    let (status, headers, body) = curl(
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            &format!("{location}{separator}digest={digest}"),
        ],
        Some(blob),
    );
    assert_eq!(status, 201, "blob of {repository}: {headers}{body}");
    digest
}

/// Pushes a one-layer image whose layer holds `content` under `tag`;
/// returns the digest the registry gives it.
pub fn push_small_image(repository: &str, tag: &str, content: &str) -> String {
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": config.len(),
            "digest": upload(repository, config),
        },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": content.len(),
            "digest": upload(repository, content.as_bytes()),
        }],
    })
    .to_string();
    let (status, headers, body) = curl(
        &[
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {MANIFEST_TYPE}"),
            &url(repository, &format!("manifests/{tag}")),
        ],
        Some(manifest.as_bytes()),
    );
    assert_eq!(
        status, 201,
        "manifest of {repository}:{tag}: {headers}{body}"
    );
    sha256(manifest.as_bytes())
}

/// Whether the registry still serves the manifest `digest` of `repository`.
pub fn registry_holds(repository: &str, digest: &str) -> bool {
    let accept = format!("Accept: {MANIFEST_TYPE}");
    let (status, headers, body) = curl(
        &[
            "-I",
            "-H",
            &accept,
            &url(repository, &format!("manifests/{digest}")),
        ],
        None,
    );
    match status {
        200 => true,
        404 => false,
        _ => panic!("HEAD {repository}@{digest}: {headers}{body}"),
    }
}
