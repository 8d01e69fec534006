//! The ECR repository `{app}` that every stage shares: its settings, its
//! repository policy, its lifecycle policy, the images in it and the
//! registry login.
//!
//! Images are found by tag (the content hash of their inputs) and deployed
//! by digest. The login is fetched fresh before each push and never
//! written anywhere: ECR tokens expire after 12 hours.
//!
//! Old images: a lifecycle rule selects images only by tag status, tag
//! prefix or pattern, count and age ("Lifecycle policy properties in Amazon
//! ECR"), never by whether a function still uses them, and ECR really
//! expires what a rule selects — a function version whose image is gone
//! cannot start. So the one, repository-wide lifecycle policy expires only
//! untagged images (layers of interrupted pushes; every image the deployer
//! pushes keeps its content-hash tag, which is immutable). Tagged images are
//! deleted by `up` itself ([`images_to_delete`]): beyond the newest
//! `keep-tagged`, and only those no version of any stage's function uses.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecr::Client;
use aws_sdk_ecr::types::{ImageIdentifier, ImageScanningConfiguration, ImageTagMutability, Tag};
use base64::Engine as _;
use serde::Serialize;

use super::errors::{AwsError, ErrorKind, aws_error, none_if};
use super::permissions::Declared;
use super::{Outcome, missing_tags};
use crate::plan::{Action, Field};

mod images;
mod login;
mod policies;
mod repository;

pub use images::*;
pub use login::*;
pub use policies::*;
pub use repository::*;

/// The IAM permissions of the calls in this module's files.
pub(crate) const PERMISSIONS: &[Declared] = &[
    images::PERMISSIONS,
    login::PERMISSIONS,
    policies::PERMISSIONS,
    repository::PERMISSIONS,
];

fn ecr_tags(tags: &BTreeMap<String, String>, repository: &str) -> Result<Vec<Tag>, AwsError> {
    tags.iter()
        .map(|(key, value)| {
            Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|err| AwsError::invalid_answer("TagResource", repository, err.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
