//! Pushing the built image to its registry (ECR) through bollard, and
//! learning the manifest digest that Lambda is then pointed at.

use std::fmt;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::PushImageOptionsBuilder;
use futures_util::StreamExt;

use super::{BuildError, BuildStep, ImageEvent, ImageRef, OnEvent, Tail};

const TAIL_LINES: usize = 30;

/// Registry credentials, e.g. from ECR's GetAuthorizationToken (user
/// `AWS`). `Debug` hides the password so it cannot end up in a log.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryCredentials {
    pub username: String,
    pub password: String,
    /// The registry host, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com`.
    pub server_address: String,
}

impl fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryCredentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field("server_address", &self.server_address)
            .finish()
    }
}

/// Pushes `image.by_tag()` and returns the image with its manifest digest.
/// Per-layer progress goes to `on_event` as [`ImageEvent::Layer`]. The
/// digest comes from the engine's closing `{tag}: digest: sha256:...`
/// message, or else from the image's RepoDigests.
///
/// Two stages that push the same content hash at once race for its tag,
/// and an immutable repository refuses the second (see
/// [`digest_of_taken_tag`]): that push carries on with the image the
/// registry holds under the tag, built from the same inputs.
pub async fn push_image(
    docker: &Docker,
    image: &ImageRef,
    credentials: &RegistryCredentials,
    on_event: OnEvent<'_>,
) -> Result<ImageRef, BuildError> {
    let options = PushImageOptionsBuilder::default().tag(&image.tag).build();
    let auth = DockerCredentials {
        username: Some(credentials.username.clone()),
        password: Some(credentials.password.clone()),
        serveraddress: Some(credentials.server_address.clone()),
        ..Default::default()
    };
    let failed = |message: String, tail: Tail| async move {
        match digest_of_taken_tag(docker, image, credentials, &message).await {
            Some(digest) => Ok(ImageRef {
                digest: Some(digest),
                ..image.clone()
            }),
            None => Err(BuildError::new(
                BuildStep::Push,
                format!("the push of {} failed: {message}", image.by_tag()),
            )
            .with_output(tail.into_lines())),
        }
    };

    let mut tail = Tail::new(TAIL_LINES);
    let mut digest = None;
    let mut stream = docker.push_image(&image.repository_uri, Some(options), Some(auth));
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return failed(error, tail).await;
            }
            Err(e) => return failed(e.to_string(), tail).await,
        };
        if let Some(message) = info.error_detail.and_then(|detail| detail.message) {
            return failed(message, tail).await;
        }
        let Some(status) = info.status else { continue };
        tail.push(&status);
        if let Some(found) = digest_in_status(&status) {
            digest = Some(found);
        }
        let (current, total) = info
            .progress_detail
            .map(|p| (p.current, p.total))
            .unwrap_or_default();
        on_event(ImageEvent::Layer {
            id: String::new(),
            status,
            current,
            total,
        });
    }
    drop(stream);

    let digest = match digest {
        Some(digest) => digest,
        None => repo_digest(docker, image).await?,
    };
    Ok(ImageRef {
        digest: Some(digest),
        ..image.clone()
    })
}

/// When a registry refused a push because its tag is taken, the digest the
/// registry holds under that tag; `None` for any other refusal (or when
/// the registry does not have the tag after all).
///
/// An immutable ECR repository refuses to overwrite a tag
/// (ImageTagAlreadyExistsException, "Preventing image tags from being
/// overwritten in Amazon ECR"); through Docker the refusal reads `tag
/// invalid: The image tag '...' already exists in the '...' repository and
/// cannot be overwritten because the repository is immutable`. The tag is a
/// content hash, so the image under it was built from the same inputs.
pub async fn digest_of_taken_tag(
    docker: &Docker,
    image: &ImageRef,
    credentials: &RegistryCredentials,
    refusal: &str,
) -> Option<String> {
    if !tag_is_taken(refusal) {
        return None;
    }
    registry_digest(docker, image, credentials).await
}

/// Whether a push's error says its tag exists and cannot be overwritten.
fn tag_is_taken(refusal: &str) -> bool {
    let refusal = refusal.to_ascii_lowercase();
    refusal.contains("imagetagalreadyexists")
        || (refusal.contains("already exists")
            && (refusal.contains("immutable") || refusal.contains("cannot be overwritten")))
}

/// The digest in the engine's last push message,
/// `h0123: digest: sha256:<64 hex> size: 528`.
fn digest_in_status(status: &str) -> Option<String> {
    let rest = status.split("digest: ").nth(1)?;
    let digest = rest.split_whitespace().next()?;
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| digest.to_string())
}

/// The digest the engine recorded for `image.repository_uri` after a push.
async fn repo_digest(docker: &Docker, image: &ImageRef) -> Result<String, BuildError> {
    let inspect = docker.inspect_image(&image.by_tag()).await.map_err(|e| {
        BuildError::new(
            BuildStep::Push,
            format!("cannot inspect {} after the push: {e}", image.by_tag()),
        )
    })?;
    let prefix = format!("{}@", image.repository_uri);
    inspect
        .repo_digests
        .unwrap_or_default()
        .iter()
        .find_map(|d| d.strip_prefix(&prefix).map(str::to_string))
        .ok_or_else(|| {
            BuildError::new(
                BuildStep::Push,
                format!(
                    "the push of {} reported no digest, and the engine has none for {}",
                    image.by_tag(),
                    image.repository_uri
                ),
            )
        })
}

/// The digest the registry serves for `image.by_tag()`, asked through the
/// engine's distribution endpoint; `None` when the registry has no such
/// tag or cannot be asked.
pub async fn registry_digest(
    docker: &Docker,
    image: &ImageRef,
    credentials: &RegistryCredentials,
) -> Option<String> {
    let auth = DockerCredentials {
        username: Some(credentials.username.clone()),
        password: Some(credentials.password.clone()),
        serveraddress: Some(credentials.server_address.clone()),
        ..Default::default()
    };
    docker
        .inspect_registry_image(&image.by_tag(), Some(auth))
        .await
        .ok()
        .and_then(|answer| answer.descriptor.digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_read_from_the_closing_message() {
        let hex = "a".repeat(64);
        assert_eq!(
            digest_in_status(&format!("h0123: digest: sha256:{hex} size: 528")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(digest_in_status("Pushing"), None);
        assert_eq!(digest_in_status("h: digest: sha256:abc size: 1"), None);
    }

    #[test]
    fn a_taken_tag_is_told_from_other_refusals() {
        assert!(tag_is_taken(
            "tag invalid: The image tag 'h0123' already exists in the 'shop' repository and cannot be overwritten because the repository is immutable."
        ));
        assert!(tag_is_taken(
            "ImageTagAlreadyExistsException: The image tag 'h0123' already exists"
        ));
        assert!(!tag_is_taken(
            "denied: requested access to the resource is denied"
        ));
        assert!(!tag_is_taken("blob upload unknown: layer already exists"));
        assert!(!tag_is_taken("connection reset by peer"));
    }

    #[test]
    fn debug_hides_the_password() {
        let credentials = RegistryCredentials {
            username: "AWS".into(),
            password: "s3cret-token".into(),
            server_address: "host".into(),
        };
        let text = format!("{credentials:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("AWS"), "{text}");
    }
}
