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
use sha2::{Digest as _, Sha256};

use super::errors::{AwsError, ErrorKind, aws_error, none_if};
use super::{Outcome, missing_tags};
use crate::config::{EcrSpec, Stage};
use crate::plan::{Action, Field};

/// The repository as the stage wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRepository {
    pub name: String,
    pub scan_on_push: bool,
    pub immutable_tags: bool,
    /// Only `deployer:app`: stages share the repository.
    pub tags: BTreeMap<String, String>,
}

impl DesiredRepository {
    pub fn for_stage(stage: &Stage) -> DesiredRepository {
        let tags = stage
            .tags()
            .into_iter()
            .filter(|(key, _)| key == "deployer:app")
            .collect();
        DesiredRepository {
            name: stage.repository_name(),
            scan_on_push: stage.ecr.scan_on_push,
            immutable_tags: stage.ecr.immutable_tags,
            tags,
        }
    }
}

/// What of the repository can differ from the desired one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepositoryField {
    ScanOnPush,
    ImmutableTags,
    /// Missing or different tags (tags someone else added never count).
    Tags,
}

impl Field for RepositoryField {}

/// What of the lifecycle policy can differ: its rules, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleField {
    Rules,
}

impl Field for LifecycleField {}

/// What of the repository policy can differ: the deployer's own statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepositoryPolicyField {
    LambdaPull,
}

impl Field for RepositoryPolicyField {}

/// The repository as ECR has it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActualRepository {
    pub name: String,
    pub arn: String,
    /// `<account>.dkr.ecr.<region>.amazonaws.com/<name>`.
    pub uri: String,
    pub scan_on_push: bool,
    pub immutable_tags: bool,
    pub tags: BTreeMap<String, String>,
}

/// The registry login for one push. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
    /// The registry host, without `https://`.
    pub server: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("server", &self.server)
            .finish()
    }
}

/// The repository by name; `None` when it does not exist.
pub async fn read_repository(
    client: &Client,
    name: &str,
) -> Result<Option<ActualRepository>, AwsError> {
    let answer = client
        .describe_repositories()
        .repository_names(name)
        .send()
        .await;
    let Some(answer) = none_if(ErrorKind::NotFound, "DescribeRepositories", name, answer)? else {
        return Ok(None);
    };
    let Some(repository) = answer
        .repositories()
        .iter()
        .find(|r| r.repository_name() == Some(name))
    else {
        return Ok(None);
    };
    let arn = repository.repository_arn().unwrap_or_default().to_string();
    let uri = repository.repository_uri().unwrap_or_default().to_string();
    if arn.is_empty() || uri.is_empty() {
        return Err(AwsError::invalid_answer(
            "DescribeRepositories",
            name,
            "the answer has no repository ARN or URI",
        ));
    }
    let tags = client
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .map_err(|err| aws_error("ListTagsForResource", name, err))?
        .tags()
        .iter()
        .map(|tag| (tag.key().to_string(), tag.value().to_string()))
        .collect();
    Ok(Some(ActualRepository {
        name: name.to_string(),
        arn,
        uri,
        scan_on_push: repository
            .image_scanning_configuration()
            .is_some_and(|c| c.scan_on_push()),
        immutable_tags: repository.image_tag_mutability() == Some(&ImageTagMutability::Immutable),
        tags,
    }))
}

/// What [`apply_repository`] has to do. Extra tags someone added are left
/// alone; only missing or different ones count.
pub fn diff_repository(
    desired: &DesiredRepository,
    actual: Option<&ActualRepository>,
) -> Action<RepositoryField> {
    let Some(actual) = actual else {
        return Action::Create;
    };
    let mut fields = BTreeSet::new();
    if desired.scan_on_push != actual.scan_on_push {
        fields.insert(RepositoryField::ScanOnPush);
    }
    if desired.immutable_tags != actual.immutable_tags {
        fields.insert(RepositoryField::ImmutableTags);
    }
    if missing_tags(&desired.tags, &actual.tags).next().is_some() {
        fields.insert(RepositoryField::Tags);
    }
    Action::update_if(fields)
}

/// Creates the repository or brings its settings in line (read, diff,
/// apply); returns it as it now is.
pub async fn ensure_repository(
    client: &Client,
    desired: &DesiredRepository,
) -> Result<(Outcome, ActualRepository), AwsError> {
    let name = desired.name.as_str();
    let actual = read_repository(client, name).await?;
    let action = diff_repository(desired, actual.as_ref());
    let outcome = apply_repository(client, desired, actual.as_ref(), &action).await?;
    let now = match (outcome, actual) {
        (Outcome::Unchanged, Some(actual)) => Some(actual),
        _ => read_repository(client, name).await?,
    };
    let now = now.ok_or_else(|| {
        AwsError::invalid_answer(
            "DescribeRepositories",
            name,
            "the repository was created but cannot be read back",
        )
    })?;
    Ok((outcome, now))
}

/// Carries out `action` on the repository `actual` was read as. A create
/// that finds the repository made meanwhile (a concurrent or interrupted
/// run) reads it and converges on it.
pub async fn apply_repository(
    client: &Client,
    desired: &DesiredRepository,
    actual: Option<&ActualRepository>,
    action: &Action<RepositoryField>,
) -> Result<Outcome, AwsError> {
    let name = desired.name.as_str();
    match (action, actual) {
        (Action::Unchanged, _) => Ok(Outcome::Unchanged),
        (Action::Delete, _) => {
            delete_repository(client, name).await?;
            Ok(Outcome::Deleted)
        }
        (Action::Update(fields), Some(actual)) => {
            update_repository(client, desired, actual, fields).await?;
            Ok(Outcome::Updated)
        }
        (Action::Create | Action::Update(_), _) => {
            let created = client
                .create_repository()
                .repository_name(name)
                .image_tag_mutability(mutability(desired.immutable_tags))
                .image_scanning_configuration(scanning(desired.scan_on_push))
                .set_tags(Some(ecr_tags(&desired.tags, name)?))
                .send()
                .await;
            if none_if(ErrorKind::AlreadyExists, "CreateRepository", name, created)?.is_some() {
                return Ok(Outcome::Created);
            }
            let Some(now) = read_repository(client, name).await? else {
                return Err(AwsError::invalid_answer(
                    "DescribeRepositories",
                    name,
                    "the repository exists (CreateRepository said so) but cannot be read",
                ));
            };
            // Made meanwhile: unchanged unless it differs.
            match diff_repository(desired, Some(&now)) {
                Action::Update(fields) => {
                    update_repository(client, desired, &now, &fields).await?;
                    Ok(Outcome::Updated)
                }
                _ => Ok(Outcome::Unchanged),
            }
        }
    }
}

async fn update_repository(
    client: &Client,
    desired: &DesiredRepository,
    actual: &ActualRepository,
    fields: &BTreeSet<RepositoryField>,
) -> Result<(), AwsError> {
    let name = desired.name.as_str();
    for field in fields {
        match field {
            RepositoryField::ScanOnPush => {
                client
                    .put_image_scanning_configuration()
                    .repository_name(name)
                    .image_scanning_configuration(scanning(desired.scan_on_push))
                    .send()
                    .await
                    .map_err(|err| aws_error("PutImageScanningConfiguration", name, err))?;
            }
            RepositoryField::ImmutableTags => {
                client
                    .put_image_tag_mutability()
                    .repository_name(name)
                    .image_tag_mutability(mutability(desired.immutable_tags))
                    .send()
                    .await
                    .map_err(|err| aws_error("PutImageTagMutability", name, err))?;
            }
            RepositoryField::Tags => {
                let missing: BTreeMap<String, String> = missing_tags(&desired.tags, &actual.tags)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                client
                    .tag_resource()
                    .resource_arn(&actual.arn)
                    .set_tags(Some(ecr_tags(&missing, name)?))
                    .send()
                    .await
                    .map_err(|err| aws_error("TagResource", name, err))?;
            }
        }
    }
    Ok(())
}

/// The lifecycle policy for the repository, as deterministic JSON: one rule
/// that expires untagged images (layers of interrupted pushes) after N
/// days. No rule selects tagged images: those may be in use by a function
/// version of some stage, which a lifecycle rule cannot see (see the module
/// doc); `up` deletes unused ones itself.
pub fn lifecycle_policy_text(spec: &EcrSpec) -> String {
    let policy = serde_json::json!({
        "rules": [
            {
                "rulePriority": 1,
                "description": format!("Expire untagged images after {} days", spec.untagged_expire_days),
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": spec.untagged_expire_days,
                },
                "action": { "type": "expire" },
            },
        ]
    });
    // serde_json's map is ordered by key, so the text is the same every time.
    policy.to_string()
}

/// The repository's lifecycle policy text; `None` when it has none.
pub async fn read_lifecycle_policy(
    client: &Client,
    repository: &str,
) -> Result<Option<String>, AwsError> {
    // No policy and no repository are both "not found".
    let answer = client
        .get_lifecycle_policy()
        .repository_name(repository)
        .send()
        .await;
    Ok(none_if(
        ErrorKind::NotFound,
        "GetLifecyclePolicy",
        repository,
        answer,
    )?
    .and_then(|answer| answer.lifecycle_policy_text().map(str::to_string)))
}

/// Compares the policies as JSON, since ECR may reformat the text.
pub fn diff_lifecycle_policy(desired: &str, actual: Option<&str>) -> Action<LifecycleField> {
    let Some(actual) = actual else {
        return Action::Create;
    };
    let same = match (
        serde_json::from_str::<serde_json::Value>(desired),
        serde_json::from_str::<serde_json::Value>(actual),
    ) {
        (Ok(desired), Ok(actual)) => desired == actual,
        _ => desired == actual,
    };
    Action::update_if(if same {
        BTreeSet::new()
    } else {
        BTreeSet::from([LifecycleField::Rules])
    })
}

/// Puts the lifecycle policy only when it differs from the one in place.
pub async fn ensure_lifecycle_policy(
    client: &Client,
    repository: &str,
    policy_text: &str,
) -> Result<Outcome, AwsError> {
    let actual = read_lifecycle_policy(client, repository).await?;
    let action = diff_lifecycle_policy(policy_text, actual.as_deref());
    apply_lifecycle_policy(client, repository, policy_text, &action).await
}

/// Carries out `action` on the repository's lifecycle policy: a put is
/// the whole policy, whatever the field.
pub async fn apply_lifecycle_policy(
    client: &Client,
    repository: &str,
    policy_text: &str,
    action: &Action<LifecycleField>,
) -> Result<Outcome, AwsError> {
    let outcome = match action {
        Action::Unchanged => return Ok(Outcome::Unchanged),
        Action::Create => Outcome::Created,
        Action::Update(fields) => {
            for field in fields {
                match field {
                    LifecycleField::Rules => {}
                }
            }
            Outcome::Updated
        }
        Action::Delete => {
            let deleted = client
                .delete_lifecycle_policy()
                .repository_name(repository)
                .send()
                .await;
            none_if(
                ErrorKind::NotFound,
                "DeleteLifecyclePolicy",
                repository,
                deleted,
            )?;
            return Ok(Outcome::Deleted);
        }
    };
    client
        .put_lifecycle_policy()
        .repository_name(repository)
        .lifecycle_policy_text(policy_text)
        .send()
        .await
        .map_err(|err| aws_error("PutLifecyclePolicy", repository, err))?;
    Ok(outcome)
}

/// The Sid of the deployer's statement in the repository policy; the
/// statements with other Sids are someone else's and are kept.
pub const LAMBDA_PULL_SID: &str = "deployer-lambda-pull";

/// The repository policy statement that lets Lambda pull the app's images,
/// for the app's functions only (`functions_arn`, e.g.
/// `arn:aws:lambda:eu-west-1:123456789012:function:shop-*`).
///
/// Lambda reads a container image with the repository's permissions, not
/// the caller's: the repository must allow `lambda.amazonaws.com`
/// `ecr:BatchGetImage` and `ecr:GetDownloadUrlForLayer` ("Create a Lambda
/// function using a container image", section "Amazon ECR permissions", AWS
/// Lambda Developer Guide; re:Post "lambda-ecr-image"). Lambda adds such a
/// statement itself only when the identity creating the function may set
/// repository policies; the deployer sets it, scoped by `aws:sourceArn`.
pub fn lambda_pull_statement(functions_arn: &str) -> serde_json::Value {
    serde_json::json!({
        "Sid": LAMBDA_PULL_SID,
        "Effect": "Allow",
        "Principal": { "Service": "lambda.amazonaws.com" },
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        "Condition": { "StringLike": { "aws:sourceArn": functions_arn } },
    })
}

/// The repository's policy text; `None` when it has none (or there is no
/// repository).
pub async fn read_repository_policy(
    client: &Client,
    repository: &str,
) -> Result<Option<String>, AwsError> {
    // No policy and no repository are both "not found".
    let answer = client
        .get_repository_policy()
        .repository_name(repository)
        .send()
        .await;
    Ok(none_if(
        ErrorKind::NotFound,
        "GetRepositoryPolicy",
        repository,
        answer,
    )?
    .and_then(|answer| answer.policy_text().map(str::to_string)))
}

/// The statements of a policy text, or why it cannot be read. A policy
/// may hold one statement as an object instead of a list.
fn policy_statements(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let policy: serde_json::Value =
        serde_json::from_str(text).map_err(|err| format!("the policy is not JSON: {err}"))?;
    match policy.get("Statement") {
        None => Ok(Vec::new()),
        Some(serde_json::Value::Array(list)) => Ok(list.clone()),
        Some(one @ serde_json::Value::Object(_)) => Ok(vec![one.clone()]),
        Some(_) => Err("its Statement is neither a list nor an object".to_string()),
    }
}

/// A statement as IAM reads it: a list of one string is that string, and
/// lists of strings are sets. So the policy ECR hands back compares equal
/// however it was written down.
fn normalized(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let mut items = items.clone();
            items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            items.dedup();
            match items.as_slice() {
                [one] => one.clone(),
                _ => Value::Array(items),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

fn has_sid(statement: &serde_json::Value, sid: &str) -> bool {
    statement.get("Sid").and_then(|s| s.as_str()) == Some(sid)
}

/// Whether the repository policy holds `statement` (by its Sid, compared
/// as JSON): `Create` when the policy or the statement is missing, an update
/// of `lambda_pull` when ours says something else. Other statements do
/// not count.
pub fn diff_repository_policy(
    statement: &serde_json::Value,
    actual: Option<&str>,
) -> Action<RepositoryPolicyField> {
    let sid = statement
        .get("Sid")
        .and_then(|s| s.as_str())
        .unwrap_or_default();
    let Some(text) = actual else {
        return Action::Create;
    };
    let statements = policy_statements(text).unwrap_or_default();
    match statements.iter().find(|s| has_sid(s, sid)) {
        None => Action::Create,
        Some(current) if normalized(current) == normalized(statement) => Action::Unchanged,
        Some(_) => Action::Update(BTreeSet::from([RepositoryPolicyField::LambdaPull])),
    }
}

/// `actual` with `statement` in place of any statement of the same Sid,
/// every other statement kept as it is.
pub fn merge_repository_policy(
    statement: &serde_json::Value,
    actual: Option<&str>,
) -> Result<String, String> {
    let sid = statement
        .get("Sid")
        .and_then(|s| s.as_str())
        .unwrap_or_default();
    let mut policy = match actual {
        Some(text) => serde_json::from_str::<serde_json::Value>(text)
            .map_err(|err| format!("the policy is not JSON: {err}"))?,
        None => serde_json::json!({ "Version": "2012-10-17" }),
    };
    let mut statements = match actual {
        Some(text) => policy_statements(text)?,
        None => Vec::new(),
    };
    statements.retain(|s| !has_sid(s, sid));
    statements.push(statement.clone());
    let object = policy
        .as_object_mut()
        .ok_or("the policy is not a JSON object")?;
    object
        .entry("Version")
        .or_insert_with(|| serde_json::json!("2012-10-17"));
    object.insert("Statement".into(), serde_json::Value::Array(statements));
    Ok(policy.to_string())
}

/// Puts `statement` into the repository policy when it is missing or
/// different, keeping every other statement.
///
/// SetRepositoryPolicy replaces the whole policy, so this reads, merges and
/// writes: a statement someone adds between the read and the write is lost
/// (the next `up` does not notice). Two stages write the same statement.
pub async fn ensure_repository_policy(
    client: &Client,
    repository: &str,
    statement: &serde_json::Value,
) -> Result<Outcome, AwsError> {
    let actual = read_repository_policy(client, repository).await?;
    let action = diff_repository_policy(statement, actual.as_deref());
    apply_repository_policy(client, repository, statement, actual.as_deref(), &action).await
}

/// Carries out `action` on the repository policy read as `actual`: puts
/// `statement` into it (every other statement kept), or takes it out.
pub async fn apply_repository_policy(
    client: &Client,
    repository: &str,
    statement: &serde_json::Value,
    actual: Option<&str>,
    action: &Action<RepositoryPolicyField>,
) -> Result<Outcome, AwsError> {
    let outcome = match action {
        Action::Unchanged => return Ok(Outcome::Unchanged),
        Action::Create => Outcome::Created,
        Action::Update(fields) => {
            for field in fields {
                match field {
                    // The statement is put whole, by its Sid, below.
                    RepositoryPolicyField::LambdaPull => {}
                }
            }
            Outcome::Updated
        }
        // The repository goes with its policy; nothing deletes the
        // statement alone.
        Action::Delete => return Ok(Outcome::Unchanged),
    };
    let text = merge_repository_policy(statement, actual).map_err(|message| {
        AwsError::invalid_answer(
            "GetRepositoryPolicy",
            repository,
            format!("{message}; fix or delete the repository policy, then run again"),
        )
    })?;
    client
        .set_repository_policy()
        .repository_name(repository)
        .policy_text(text)
        .send()
        .await
        .map_err(|err| aws_error("SetRepositoryPolicy", repository, err))?;
    Ok(outcome)
}

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

/// Records an image in ECR from its manifest, with the manifest's own
/// digest, and returns that digest.
///
/// Real ECR learns of an image when it is pushed, so this is a no-op
/// there (`ImageAlreadyExists` is success). The local registry is separate
/// from moto, which knows only images put through its API: the deployer
/// calls this after each push so that `find_image` sees what the registry
/// holds, under the digest the registry serves.
pub async fn register_image(
    client: &Client,
    repository: &str,
    tag: &str,
    manifest_json: &str,
    media_type: &str,
) -> Result<String, AwsError> {
    let resource = format!("{repository}:{tag}");
    let digest = manifest_digest(manifest_json);
    let answer = client
        .put_image()
        .repository_name(repository)
        .image_tag(tag)
        .image_manifest(manifest_json)
        .image_manifest_media_type(media_type)
        .image_digest(&digest)
        .send()
        .await;
    match answer {
        Ok(_) => Ok(digest),
        // Already there, or (an immutable repository) the tag is taken by
        // an image another stage pushed for the same content hash at the
        // same time ("Preventing image tags from being overwritten in
        // Amazon ECR": ImageTagAlreadyExistsException): the tag's digest
        // is the one to use.
        Err(err)
            if err.as_service_error().is_some_and(|e| {
                e.is_image_already_exists_exception() || e.is_image_tag_already_exists_exception()
            }) =>
        {
            find_image(client, repository, tag).await?.ok_or_else(|| {
                AwsError::invalid_answer(
                    "PutImage",
                    resource,
                    "ECR says the image exists but does not list it",
                )
            })
        }
        Err(err) => Err(aws_error("PutImage", resource, err)),
    }
}

/// The content digest of a manifest, as registries compute it.
pub fn manifest_digest(manifest_json: &str) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(manifest_json.as_bytes()))
    )
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

/// A fresh registry login from GetAuthorizationToken.
pub async fn registry_auth(client: &Client) -> Result<RegistryAuth, AwsError> {
    let answer = client
        .get_authorization_token()
        .send()
        .await
        .map_err(|err| aws_error("GetAuthorizationToken", "registry", err))?;
    let invalid =
        |message: &str| AwsError::invalid_answer("GetAuthorizationToken", "registry", message);
    let data = answer
        .authorization_data()
        .first()
        .ok_or_else(|| invalid("the answer has no authorization data"))?;
    let token = data
        .authorization_token()
        .ok_or_else(|| invalid("the answer has no token"))?;
    let endpoint = data
        .proxy_endpoint()
        .ok_or_else(|| invalid("the answer has no proxy endpoint"))?;
    // The token is base64 of `user:password`; the error never quotes it.
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| invalid("the token is not base64"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid("the token is not UTF-8"))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| invalid("the token is not `user:password`"))?;
    let server = endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    Ok(RegistryAuth {
        username: username.to_string(),
        password: password.to_string(),
        server,
    })
}

/// Deletes the repository and every image in it; gone already is fine.
pub async fn delete_repository(client: &Client, name: &str) -> Result<bool, AwsError> {
    let deleted = client
        .delete_repository()
        .repository_name(name)
        .force(true)
        .send()
        .await;
    Ok(none_if(ErrorKind::NotFound, "DeleteRepository", name, deleted)?.is_some())
}

fn mutability(immutable: bool) -> ImageTagMutability {
    if immutable {
        ImageTagMutability::Immutable
    } else {
        ImageTagMutability::Mutable
    }
}

fn scanning(scan_on_push: bool) -> ImageScanningConfiguration {
    ImageScanningConfiguration::builder()
        .scan_on_push(scan_on_push)
        .build()
}

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
mod tests {
    use super::*;

    fn actual(desired: &DesiredRepository) -> ActualRepository {
        ActualRepository {
            name: desired.name.clone(),
            arn: "arn:aws:ecr:us-east-1:123456789012:repository/app".into(),
            uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/app".into(),
            scan_on_push: desired.scan_on_push,
            immutable_tags: desired.immutable_tags,
            tags: desired.tags.clone(),
        }
    }

    #[test]
    fn repository_carries_only_the_app_tag() {
        let desired = DesiredRepository::for_stage(&Stage::defaults("app", "dev", "us-east-1"));
        assert_eq!(desired.name, "app");
        assert_eq!(
            desired.tags,
            BTreeMap::from([("deployer:app".to_string(), "app".to_string())])
        );
    }

    #[test]
    fn repository_diff_names_what_differs() {
        let desired = DesiredRepository::for_stage(&Stage::defaults("app", "dev", "us-east-1"));
        assert_eq!(diff_repository(&desired, None), Action::Create);
        let mut same = actual(&desired);
        same.tags.insert("owner".into(), "someone".into());
        assert_eq!(diff_repository(&desired, Some(&same)), Action::Unchanged);
        let mut other = actual(&desired);
        other.immutable_tags = !desired.immutable_tags;
        other.tags.clear();
        assert_eq!(
            diff_repository(&desired, Some(&other)),
            Action::Update(BTreeSet::from([
                RepositoryField::ImmutableTags,
                RepositoryField::Tags
            ]))
        );
    }

    #[test]
    fn the_lifecycle_policy_never_selects_a_tagged_image() {
        let mut spec = Stage::defaults("app", "dev", "us-east-1").ecr;
        spec.untagged_expire_days = 3;
        spec.keep_tagged = 7;
        let text = lifecycle_policy_text(&spec);
        assert_eq!(text, lifecycle_policy_text(&spec));
        // keep-tagged is not in it: the policy is the same for every stage.
        spec.keep_tagged = 30;
        assert_eq!(text, lifecycle_policy_text(&spec));
        let policy: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rules = policy["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0]["selection"]["tagStatus"], "untagged");
        assert_eq!(rules[0]["selection"]["countType"], "sinceImagePushed");
        assert_eq!(rules[0]["selection"]["countNumber"], 3);
    }

    fn image(digest: &str, tag: Option<&str>, pushed_at: i64) -> RepositoryImage {
        RepositoryImage {
            digest: digest.into(),
            tags: tag.map(String::from).into_iter().collect(),
            pushed_at,
        }
    }

    #[test]
    fn old_images_go_unless_a_version_uses_them() {
        let images = [
            image("sha256:old-used", Some("h1"), 100),
            image("sha256:old", Some("h2"), 200),
            image("sha256:untagged", None, 250),
            image("sha256:recent", Some("h3"), 300),
            image("sha256:newest", Some("h4"), 400),
        ];
        let in_use = BTreeSet::from(["sha256:old-used".to_string()]);
        // The two newest stay whatever uses them; of the older ones, the one
        // a version uses stays; untagged ones are the lifecycle policy's.
        assert_eq!(images_to_delete(&images, 2, &in_use), ["sha256:old"]);
        assert_eq!(
            images_to_delete(&images, 1, &in_use),
            ["sha256:recent", "sha256:old"]
        );
        assert!(images_to_delete(&images, 10, &BTreeSet::new()).is_empty());
        let everything_used: BTreeSet<String> = images.iter().map(|i| i.digest.clone()).collect();
        assert!(images_to_delete(&images, 1, &everything_used).is_empty());
    }

    const FUNCTIONS: &str = "arn:aws:lambda:us-east-1:123456789012:function:app-*";

    #[test]
    fn the_lambda_statement_is_scoped_to_the_app_functions() {
        let statement = lambda_pull_statement(FUNCTIONS);
        assert_eq!(statement["Principal"]["Service"], "lambda.amazonaws.com");
        assert_eq!(
            statement["Action"],
            serde_json::json!(["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"])
        );
        assert_eq!(
            statement["Condition"]["StringLike"]["aws:sourceArn"],
            FUNCTIONS
        );
    }

    #[test]
    fn the_repository_policy_diff_looks_at_our_statement_only() {
        let ours = lambda_pull_statement(FUNCTIONS);
        let theirs = serde_json::json!({
            "Sid": "ci-push", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:role/ci"},
            "Action": "ecr:*",
        });
        assert_eq!(diff_repository_policy(&ours, None), Action::Create);
        let only_theirs =
            serde_json::json!({"Version": "2012-10-17", "Statement": [theirs.clone()]}).to_string();
        assert_eq!(
            diff_repository_policy(&ours, Some(&only_theirs)),
            Action::Create
        );
        let both = merge_repository_policy(&ours, Some(&only_theirs)).unwrap();
        assert_eq!(
            diff_repository_policy(&ours, Some(&both)),
            Action::Unchanged
        );
        let merged: serde_json::Value = serde_json::from_str(&both).unwrap();
        assert_eq!(merged["Statement"], serde_json::json!([theirs, ours]));
        // Pretty-printed, or its lists reordered: still the same.
        let pretty = serde_json::to_string_pretty(&merged).unwrap();
        assert_eq!(
            diff_repository_policy(&ours, Some(&pretty)),
            Action::Unchanged
        );
        let mut reordered = ours.clone();
        reordered["Action"] =
            serde_json::json!(["ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]);
        reordered["Principal"]["Service"] = serde_json::json!(["lambda.amazonaws.com"]);
        let text = serde_json::json!({"Statement": [reordered]}).to_string();
        assert_eq!(
            diff_repository_policy(&ours, Some(&text)),
            Action::Unchanged
        );
        // Another app's scope under our Sid: replaced, not added twice.
        let other = lambda_pull_statement("arn:aws:lambda:us-east-1:123456789012:function:*");
        let widened = merge_repository_policy(&other, Some(&both)).unwrap();
        assert_eq!(
            diff_repository_policy(&ours, Some(&widened)),
            Action::Update(BTreeSet::from([RepositoryPolicyField::LambdaPull]))
        );
        let fixed: serde_json::Value =
            serde_json::from_str(&merge_repository_policy(&ours, Some(&widened)).unwrap()).unwrap();
        assert_eq!(fixed["Statement"].as_array().unwrap().len(), 2);
        // A policy of one statement as an object, and one that is not JSON.
        let single = serde_json::json!({"Version": "2008-10-17", "Statement": theirs}).to_string();
        let merged: serde_json::Value =
            serde_json::from_str(&merge_repository_policy(&ours, Some(&single)).unwrap()).unwrap();
        assert_eq!(merged["Version"], "2008-10-17");
        assert_eq!(merged["Statement"].as_array().unwrap().len(), 2);
        assert!(merge_repository_policy(&ours, Some("{nope")).is_err());
    }

    #[test]
    fn lifecycle_diff_ignores_formatting() {
        let text = lifecycle_policy_text(&Stage::defaults("app", "dev", "us-east-1").ecr);
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        )
        .unwrap();
        assert_eq!(diff_lifecycle_policy(&text, None), Action::Create);
        assert_eq!(
            diff_lifecycle_policy(&text, Some(&pretty)),
            Action::Unchanged
        );
        assert!(diff_lifecycle_policy(&text, Some(r#"{"rules":[]}"#)).is_change());
    }

    #[test]
    fn registry_auth_debug_hides_the_password() {
        let auth = RegistryAuth {
            username: "AWS".into(),
            password: "s3cr3t-token".into(),
            server: "registry.example".into(),
        };
        let shown = format!("{auth:?}");
        assert!(!shown.contains("s3cr3t-token"), "{shown}");
        assert!(shown.contains("registry.example"), "{shown}");
    }

    #[test]
    fn manifest_digest_is_sha256_of_the_bytes() {
        assert_eq!(
            manifest_digest(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
