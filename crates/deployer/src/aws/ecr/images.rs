//! The images in the repository: found by tag, listed, the old ones
//! chosen and deleted. ECR learns of an image when it is pushed to the
//! registry (locally too: `scripts/moto_ext/ecr_registry.py`), so nothing
//! here records one.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("DescribeImages", "ecr:DescribeImages", Scope::Repository),
        call(
            "BatchDeleteImage",
            "ecr:BatchDeleteImage",
            Scope::Repository,
        ),
    ],
};

/// The digest (`sha256:...`) of the image tagged `tag`; `None` when ECR
/// has no such image (or no such repository).
pub async fn find_image(
    client: &Client,
    repository: &str,
    tag: &str,
) -> Result<Option<String>, AwsError> {
    let resource = format!("{repository}:{tag}");
    let answer = client
        .describe_images()
        .repository_name(repository)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await;
    // No image and no repository are both "not found".
    let Some(answer) = none_if(ErrorKind::NotFound, "DescribeImages", resource, answer)? else {
        return Ok(None);
    };
    Ok(answer
        .image_details()
        .iter()
        .find(|image| image.image_tags().iter().any(|t| t == tag))
        .and_then(|image| image.image_digest())
        .map(str::to_string))
}

/// An image of the repository, as DescribeImages lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryImage {
    pub digest: String,
    pub tags: Vec<String>,
    /// Seconds since the epoch.
    pub pushed_at: i64,
}

/// Every image in the repository; none when there is no repository.
pub async fn list_images(
    client: &Client,
    repository: &str,
) -> Result<Vec<RepositoryImage>, AwsError> {
    let answer: Result<Vec<_>, _> = client
        .describe_images()
        .repository_name(repository)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await;
    let Some(details) = none_if(ErrorKind::NotFound, "DescribeImages", repository, answer)? else {
        return Ok(Vec::new());
    };
    Ok(details
        .iter()
        .filter_map(|image| {
            Some(RepositoryImage {
                digest: image.image_digest()?.to_string(),
                tags: image.image_tags().to_vec(),
                pushed_at: image.image_pushed_at().map(|t| t.secs()).unwrap_or(0),
            })
        })
        .collect())
}

/// The digests of the tagged images to delete: all but the `keep` newest
/// (by push time), and of those only the ones no function uses (`in_use`,
/// digests). Untagged images are the lifecycle policy's.
pub fn images_to_delete(
    images: &[RepositoryImage],
    keep: u32,
    in_use: &BTreeSet<String>,
) -> Vec<String> {
    let mut tagged: Vec<&RepositoryImage> = images.iter().filter(|i| !i.tags.is_empty()).collect();
    // Newest first; the digest breaks ties so the choice is stable.
    tagged.sort_by(|a, b| b.pushed_at.cmp(&a.pushed_at).then(a.digest.cmp(&b.digest)));
    tagged
        .into_iter()
        .skip(usize::try_from(keep).unwrap_or(usize::MAX))
        .filter(|image| !in_use.contains(&image.digest))
        .map(|image| image.digest.clone())
        .collect()
}

/// Deletes the images with these digests (BatchDeleteImage takes at most
/// 100 at a time); an image already gone is fine. Returns how many went.
pub async fn delete_images(
    client: &Client,
    repository: &str,
    digests: &[String],
) -> Result<usize, AwsError> {
    let mut deleted = 0;
    for chunk in digests.chunks(100) {
        let answer = client
            .batch_delete_image()
            .repository_name(repository)
            .set_image_ids(Some(
                chunk
                    .iter()
                    .map(|digest| ImageIdentifier::builder().image_digest(digest).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|err| aws_error("BatchDeleteImage", repository, err))?;
        // Failures are per image; one already gone is what we wanted.
        if let Some(failure) = answer.failures().iter().find(|f| {
            f.failure_code() != Some(&aws_sdk_ecr::types::ImageFailureCode::ImageNotFound)
        }) {
            return Err(AwsError::invalid_answer(
                "BatchDeleteImage",
                repository,
                format!(
                    "{}: {}",
                    failure
                        .failure_code()
                        .map(|c| c.as_str())
                        .unwrap_or("failed"),
                    failure.failure_reason().unwrap_or("no reason given")
                ),
            ));
        }
        deleted += answer.image_ids().len();
    }
    Ok(deleted)
}

/// `<repository uri>@<digest>`: how Lambda is pointed at an image, since
/// a tag's digest is pinned only when the function is updated.
pub fn image_uri_by_digest(repository_uri: &str, digest: &str) -> String {
    format!("{repository_uri}@{digest}")
}

/// The repository's URI, from ECR (the account and registry host come
/// from there, not from guesses).
pub async fn repository_uri(client: &Client, repository: &str) -> Result<String, AwsError> {
    read_repository(client, repository)
        .await?
        .map(|r| r.uri)
        .ok_or_else(|| AwsError {
            operation: "DescribeRepositories",
            resource: repository.to_string(),
            message: "the repository does not exist; run `deployer up` first".to_string(),
            kind: ErrorKind::NotFound,
        })
}
