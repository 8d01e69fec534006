//! Pushing the built image to its registry (ECR) through bollard, and
//! learning the manifest digest that Lambda is then pointed at.

use std::fmt;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{PushImageOptionsBuilder, TagImageOptionsBuilder};
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
/// An immutable repository refuses a push whose tag is taken (see
/// [`digest_of_taken_tag`]). The tag is a content hash that anyone with the
/// source can compute, and anyone who may push to the repository may have
/// pushed other content under it first: the image under a taken tag is
/// adopted only when this engine pushed it (a rerun, or two stages of
/// one machine that built the same hash). Otherwise the image is pushed
/// under a tag of its own, `{tag}-{image id}` ([`own_tag`]), so that what
/// the stage deploys is always what it built.
pub async fn push_image(
    docker: &Docker,
    image: &ImageRef,
    credentials: &RegistryCredentials,
    on_event: OnEvent<'_>,
) -> Result<ImageRef, BuildError> {
    let refusal = match push_tag(docker, image, credentials, on_event).await? {
        Ok(pushed) => return Ok(pushed),
        Err(refusal) => refusal,
    };
    let Some(taken) = digest_of_taken_tag(docker, image, credentials, &refusal.message).await
    else {
        return Err(refusal.into_error(image));
    };
    if pushed_by_this_engine(docker, image, &taken).await {
        return Ok(with_digest(image, taken));
    }
    // Someone else's image under the content hash: ours goes beside it.
    let own = own_tag(docker, image).await?;
    let refusal = match push_tag(docker, &own, credentials, on_event).await? {
        Ok(pushed) => return Ok(pushed),
        Err(refusal) => refusal,
    };
    match digest_of_taken_tag(docker, &own, credentials, &refusal.message).await {
        Some(digest) if pushed_by_this_engine(docker, &own, &digest).await => {
            Ok(with_digest(&own, digest))
        }
        Some(_) => Err(BuildError::new(
            BuildStep::Push,
            format!(
                "{} and {} both hold an image this machine did not push: refusing to deploy \
                 what this run cannot verify as its own (someone who may push to the \
                 repository put them there; delete them, then run `up` again)",
                image.by_tag(),
                own.by_tag()
            ),
        )),
        None => Err(refusal.into_error(&own)),
    }
}

/// `image` with the manifest digest it has in the registry.
fn with_digest(image: &ImageRef, digest: String) -> ImageRef {
    ImageRef {
        digest: Some(digest),
        ..image.clone()
    }
}

/// A push the registry refused: its message and the engine's last lines.
struct Refusal {
    message: String,
    tail: Tail,
}

impl Refusal {
    fn into_error(self, image: &ImageRef) -> BuildError {
        BuildError::new(
            BuildStep::Push,
            format!("the push of {} failed: {}", image.by_tag(), self.message),
        )
        .with_output(self.tail.into_lines())
    }
}

/// One push of `image.by_tag()`: the image with its digest, or the
/// registry's refusal.
async fn push_tag(
    docker: &Docker,
    image: &ImageRef,
    credentials: &RegistryCredentials,
    on_event: OnEvent<'_>,
) -> Result<Result<ImageRef, Refusal>, BuildError> {
    let options = PushImageOptionsBuilder::default().tag(&image.tag).build();
    let auth = DockerCredentials {
        username: Some(credentials.username.clone()),
        password: Some(credentials.password.clone()),
        serveraddress: Some(credentials.server_address.clone()),
        ..Default::default()
    };
    let mut tail = Tail::new(TAIL_LINES);
    let mut digest = None;
    let mut stream = docker.push_image(&image.repository_uri, Some(options), Some(auth));
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Ok(Err(Refusal {
                    message: error,
                    tail,
                }));
            }
            Err(e) => {
                return Ok(Err(Refusal {
                    message: e.to_string(),
                    tail,
                }));
            }
        };
        if let Some(message) = info.error_detail.and_then(|detail| detail.message) {
            return Ok(Err(Refusal { message, tail }));
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
    Ok(Ok(with_digest(image, digest)))
}

/// Whether this engine pushed (or pulled) the manifest `digest` of the
/// local image `image.by_tag()`: the engine records in the image's
/// RepoDigests every manifest it pushed for it, and an image of other
/// content has another image id, so another's push never shows here.
pub async fn pushed_by_this_engine(docker: &Docker, image: &ImageRef, digest: &str) -> bool {
    let wanted = format!("{}@{digest}", image.repository_uri);
    docker
        .inspect_image(&image.by_tag())
        .await
        .ok()
        .and_then(|inspect| inspect.repo_digests)
        .is_some_and(|digests| digests.contains(&wanted))
}

/// The local image tagged again as `{tag}-{image id}` (its first 12 hex
/// digits): a tag no one can have taken before this image was built, and
/// the same one when the same engine rebuilds the same image, so a rerun
/// finds and adopts its own earlier push.
async fn own_tag(docker: &Docker, image: &ImageRef) -> Result<ImageRef, BuildError> {
    let cannot = |e: String| {
        BuildError::new(
            BuildStep::Push,
            format!(
                "cannot tag {} again for a push of its own: {e}",
                image.by_tag()
            ),
        )
    };
    let id = docker
        .inspect_image(&image.by_tag())
        .await
        .map_err(|e| cannot(e.to_string()))?
        .id
        .unwrap_or_default();
    let own = ImageRef::new(&image.repository_uri, &tag_with_id(&image.tag, &id));
    let options = TagImageOptionsBuilder::default()
        .repo(&own.repository_uri)
        .tag(&own.tag)
        .build();
    docker
        .tag_image(&image.by_tag(), Some(options))
        .await
        .map_err(|e| cannot(e.to_string()))?;
    Ok(own)
}

/// `{tag}-{the first 12 hex digits of the image id}`.
fn tag_with_id(tag: &str, image_id: &str) -> String {
    let hex = image_id.strip_prefix("sha256:").unwrap_or(image_id);
    format!("{tag}-{}", hex.get(..12).unwrap_or(hex))
}

/// When a registry refused a push because its tag is taken, the digest the
/// registry holds under that tag; `None` for any other refusal (or when
/// the registry does not have the tag after all).
///
/// An immutable ECR repository refuses to overwrite a tag
/// (ImageTagAlreadyExistsException, "Preventing image tags from being
/// overwritten in Amazon ECR"); through Docker the refusal reads `tag
/// invalid: The image tag '...' already exists in the '...' repository and
/// cannot be overwritten because the repository is immutable`. Who pushed
/// it is unknown: [`push_image`] adopts it only when this engine did.
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
    fn an_own_tag_is_the_content_hash_and_the_image_id() {
        let id = format!("sha256:{}", "0123456789ab".repeat(5));
        assert_eq!(
            tag_with_id("h0123456789abcdef0123", &id),
            "h0123456789abcdef0123-0123456789ab"
        );
        // ECR's tag limit is 300 characters; this is 34.
        assert!(tag_with_id(&format!("h{}", "a".repeat(20)), &id).len() <= 34);
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
