//! The repository: read, diff over [`RepositoryField`], created or
//! brought in line, deleted with its images.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call(
            "DescribeRepositories",
            "ecr:DescribeRepositories",
            Scope::Repository,
        ),
        call(
            "ListTagsForResource",
            "ecr:ListTagsForResource",
            Scope::Repository,
        ),
        call(
            "CreateRepository",
            "ecr:CreateRepository",
            Scope::Repository,
        ),
        call("TagResource", "ecr:TagResource", Scope::Repository),
        call(
            "PutImageScanningConfiguration",
            "ecr:PutImageScanningConfiguration",
            Scope::Repository,
        ),
        call(
            "PutImageTagMutability",
            "ecr:PutImageTagMutability",
            Scope::Repository,
        ),
        call(
            "DeleteRepository",
            "ecr:DeleteRepository",
            Scope::Repository,
        ),
    ],
};

/// The repository as the stage wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRepository {
    pub name: String,
    pub scan_on_push: bool,
    pub immutable_tags: bool,
    /// `deployer:app`, and `deployer:stage` on a stage's own repository.
    pub tags: BTreeMap<String, String>,
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

pub(super) async fn update_repository(
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

pub(super) fn mutability(immutable: bool) -> ImageTagMutability {
    if immutable {
        ImageTagMutability::Immutable
    } else {
        ImageTagMutability::Mutable
    }
}

pub(super) fn scanning(scan_on_push: bool) -> ImageScanningConfiguration {
    ImageScanningConfiguration::builder()
        .scan_on_push(scan_on_push)
        .build()
}
