//! The ECR repository `{app}` that every stage shares: its settings, its
//! lifecycle policy, the images in it and the registry login.
//!
//! Images are found by tag (the content hash of their inputs) and deployed
//! by digest. The login is fetched fresh before each push and never
//! written anywhere: ECR tokens expire after 12 hours.

use std::collections::BTreeMap;

use aws_sdk_ecr::Client;
use aws_sdk_ecr::types::{ImageIdentifier, ImageScanningConfiguration, ImageTagMutability, Tag};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::errors::{AwsError, ErrorKind, aws_error, none_if};
use super::{Outcome, missing_tags};
use crate::config::{EcrSpec, Stage};
use crate::plan::Action;

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

/// What `ensure_repository` would do. Extra tags someone added are left
/// alone; only missing or different ones count.
pub fn diff_repository(desired: &DesiredRepository, actual: Option<&ActualRepository>) -> Action {
    let Some(actual) = actual else {
        return Action::Create;
    };
    let mut fields = Vec::new();
    if desired.scan_on_push != actual.scan_on_push {
        fields.push("scan_on_push".to_string());
    }
    if desired.immutable_tags != actual.immutable_tags {
        fields.push("immutable_tags".to_string());
    }
    if missing_tags(&desired.tags, &actual.tags).next().is_some() {
        fields.push("tags".to_string());
    }
    Action::update_if(fields)
}

/// Creates the repository or brings its settings in line; returns it.
pub async fn ensure_repository(
    client: &Client,
    desired: &DesiredRepository,
) -> Result<(Outcome, ActualRepository), AwsError> {
    let name = desired.name.as_str();
    let mut actual = read_repository(client, name).await?;
    let mut outcome = Outcome::Unchanged;
    if actual.is_none() {
        let created = client
            .create_repository()
            .repository_name(name)
            .image_tag_mutability(mutability(desired.immutable_tags))
            .image_scanning_configuration(scanning(desired.scan_on_push))
            .set_tags(Some(ecr_tags(&desired.tags, name)?))
            .send()
            .await;
        // None: a concurrent or interrupted run made it; converge on it below.
        if none_if(ErrorKind::AlreadyExists, "CreateRepository", name, created)?.is_some() {
            outcome = Outcome::Created;
        }
        actual = read_repository(client, name).await?;
    }
    let Some(mut actual) = actual else {
        return Err(AwsError::invalid_answer(
            "DescribeRepositories",
            name,
            "the repository was created but cannot be read back",
        ));
    };
    if let Action::Update { fields } = diff_repository(desired, Some(&actual)) {
        for field in &fields {
            match field.as_str() {
                "scan_on_push" => {
                    client
                        .put_image_scanning_configuration()
                        .repository_name(name)
                        .image_scanning_configuration(scanning(desired.scan_on_push))
                        .send()
                        .await
                        .map_err(|err| aws_error("PutImageScanningConfiguration", name, err))?;
                    actual.scan_on_push = desired.scan_on_push;
                }
                "immutable_tags" => {
                    client
                        .put_image_tag_mutability()
                        .repository_name(name)
                        .image_tag_mutability(mutability(desired.immutable_tags))
                        .send()
                        .await
                        .map_err(|err| aws_error("PutImageTagMutability", name, err))?;
                    actual.immutable_tags = desired.immutable_tags;
                }
                _ => {
                    let missing: BTreeMap<String, String> =
                        missing_tags(&desired.tags, &actual.tags)
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                    client
                        .tag_resource()
                        .resource_arn(&actual.arn)
                        .set_tags(Some(ecr_tags(&missing, name)?))
                        .send()
                        .await
                        .map_err(|err| aws_error("TagResource", name, err))?;
                    actual.tags.extend(missing);
                }
            }
        }
        if outcome == Outcome::Unchanged {
            outcome = Outcome::Updated;
        }
    }
    Ok((outcome, actual))
}

/// The lifecycle policy for the repository, as deterministic JSON: rule 1
/// expires untagged images (layers of interrupted pushes) after N days,
/// rule 2 keeps the last N tagged images. ECR wants a tag filter on a
/// `tagged` rule; `*` matches every tag.
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
            {
                "rulePriority": 2,
                "description": format!("Keep the last {} tagged images", spec.keep_tagged),
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": spec.keep_tagged,
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
pub fn diff_lifecycle_policy(desired: &str, actual: Option<&str>) -> Action {
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
    if same {
        Action::Unchanged
    } else {
        Action::Update {
            fields: vec!["rules".to_string()],
        }
    }
}

/// Puts the lifecycle policy only when it differs from the one in place.
pub async fn ensure_lifecycle_policy(
    client: &Client,
    repository: &str,
    policy_text: &str,
) -> Result<Outcome, AwsError> {
    let actual = read_lifecycle_policy(client, repository).await?;
    let outcome = match diff_lifecycle_policy(policy_text, actual.as_deref()) {
        Action::Unchanged => return Ok(Outcome::Unchanged),
        Action::Create => Outcome::Created,
        Action::Update { .. } => Outcome::Updated,
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
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_image_already_exists_exception()) =>
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
            Action::Update {
                fields: vec!["immutable_tags".into(), "tags".into()]
            }
        );
    }

    #[test]
    fn lifecycle_policy_has_both_rules_with_the_spec_numbers() {
        let mut spec = Stage::defaults("app", "dev", "us-east-1").ecr;
        spec.untagged_expire_days = 3;
        spec.keep_tagged = 7;
        let text = lifecycle_policy_text(&spec);
        assert_eq!(text, lifecycle_policy_text(&spec));
        let policy: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rules = policy["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0]["selection"]["tagStatus"], "untagged");
        assert_eq!(rules[0]["selection"]["countNumber"], 3);
        assert_eq!(rules[1]["selection"]["tagStatus"], "tagged");
        assert_eq!(rules[1]["selection"]["countNumber"], 7);
        assert!(rules[1]["selection"]["tagPatternList"].is_array());
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
