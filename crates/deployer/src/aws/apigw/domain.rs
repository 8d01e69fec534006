//! The stage's custom domain name: a REGIONAL API Gateway domain name with
//! a TLS 1.2 security policy and the stage's tags (found by them: a stage
//! whose `[api.domain]` is gone still finds its domain to delete), and the
//! base path mapping that serves the stage under it.
//!
//! What AWS answers, and what is relied on here ("Setting up custom domain
//! names for REST APIs", API Gateway Developer Guide; CreateDomainName,
//! CreateBasePathMapping API references):
//! - a regional domain name takes an ACM certificate of its own Region,
//!   ISSUED, covering the name; it answers `regionalDomainName` and
//!   `regionalHostedZoneId`, the alias record's target;
//! - a name that exists: `BadRequestException` ("already exists"): the
//!   create then reads it back and adopts it only with the stage's tags;
//! - no base path is `(none)`, one mapping per base path; a REST API a
//!   mapping points at cannot be deleted (DeleteRestApi answers
//!   `BadRequestException`): the mapping is deleted first;
//! - DeleteDomainName takes its mappings with it.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};
use aws_sdk_apigateway::types::SecurityPolicy;

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
// API Gateway authorizes by HTTP method on the path ("Control access for
// managing an API"): `/domainnames`, `/domainnames/{name}`,
// `/domainnames/{name}/basepathmappings[/{path}]`.
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("GetDomainNames", "apigateway:GET", Scope::ApiCollections),
        call(
            "CreateDomainName",
            "apigateway:POST",
            Scope::DomainNameCreation,
        ),
        call("UpdateDomainName", "apigateway:PATCH", Scope::DomainName),
        call("DeleteDomainName", "apigateway:DELETE", Scope::DomainName),
        call("GetBasePathMappings", "apigateway:GET", Scope::DomainName),
        call(
            "CreateBasePathMapping",
            "apigateway:POST",
            Scope::DomainName,
        ),
        call(
            "UpdateBasePathMapping",
            "apigateway:PATCH",
            Scope::DomainName,
        ),
        call(
            "DeleteBasePathMapping",
            "apigateway:DELETE",
            Scope::DomainName,
        ),
        // `/tags/{arn}` is authorized on the tagged resource's own tags:
        // the stage's, which the domain name carries from its creation.
        call("TagResource", "apigateway:PUT", Scope::ApiOwned),
    ],
};

/// What a base path mapping without a base path is called.
pub const NO_BASE_PATH: &str = "(none)";
/// The security policy of the domain: TLS 1.2 (CDK's and SAM's choice
/// for a new domain; TLS 1.0 is API Gateway's default).
pub const SECURITY_POLICY: &str = "TLS_1_2";

/// The domain name as the stage wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredDomainName {
    pub name: String,
    /// Its ARN, for tagging (`Names::domain_name_arn`).
    pub arn: String,
    /// The certificate's ARN: the given one, or the one `up` requested
    /// (unknown to a plan made before the request).
    pub certificate_arn: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// A domain name as API Gateway has it, with its mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualDomainName {
    pub name: String,
    /// `d-xxx.execute-api.{region}.amazonaws.com`: the alias target.
    pub regional_domain_name: String,
    pub regional_hosted_zone_id: String,
    pub certificate_arn: Option<String>,
    pub security_policy: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub mappings: Vec<BasePathMapping>,
}

/// One base path mapping: `(none)` or a path, to an API's stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasePathMapping {
    pub base_path: String,
    pub rest_api_id: String,
    pub stage: String,
}

/// What of a domain name `up` can change in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainNameField {
    Certificate,
    SecurityPolicy,
    /// A desired tag missing (the hosted zone's, when one is added later).
    Tags,
}

impl Field for DomainNameField {}

/// What of a base path mapping can differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BasePathMappingField {
    BasePath,
    /// The REST API or stage it serves.
    Target,
}

impl Field for BasePathMappingField {}

/// The domain names that carry every tag of `tags` (the stage's), and the
/// one called `named` whatever its tags, by name.
pub async fn find_domain_names(
    client: &Client,
    tags: &BTreeMap<String, String>,
    named: Option<&str>,
) -> Result<Vec<ActualDomainName>, AwsError> {
    let mut found = Vec::new();
    let mut position = None;
    loop {
        let page = client
            .get_domain_names()
            .set_position(position.take())
            .limit(500)
            .send()
            .await
            .map_err(|e| aws_error("GetDomainNames", "domain names", e))?;
        for item in page.items() {
            let Some(name) = item.domain_name() else {
                continue;
            };
            if !has_tags(item.tags(), tags) && named != Some(name) {
                continue;
            }
            found.push(ActualDomainName {
                name: name.to_string(),
                regional_domain_name: item.regional_domain_name().unwrap_or_default().to_string(),
                regional_hosted_zone_id: item
                    .regional_hosted_zone_id()
                    .unwrap_or_default()
                    .to_string(),
                certificate_arn: item.regional_certificate_arn().map(str::to_string),
                security_policy: item.security_policy().map(|p| p.as_str().to_string()),
                tags: to_btree(item.tags()),
                mappings: read_mappings(client, name).await?,
            });
        }
        match page.position() {
            Some(next) if !next.is_empty() => position = Some(next.to_string()),
            _ => break,
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

async fn read_mappings(client: &Client, domain: &str) -> Result<Vec<BasePathMapping>, AwsError> {
    let answer = client
        .get_base_path_mappings()
        .domain_name(domain)
        .limit(500)
        .send()
        .await;
    let Some(answer) = none_if(ErrorKind::NotFound, "GetBasePathMappings", domain, answer)? else {
        return Ok(Vec::new());
    };
    Ok(answer
        .items()
        .iter()
        .map(|m| BasePathMapping {
            base_path: m.base_path().unwrap_or(NO_BASE_PATH).to_string(),
            rest_api_id: m.rest_api_id().unwrap_or_default().to_string(),
            stage: m.stage().unwrap_or_default().to_string(),
        })
        .collect())
}

/// `Create` when missing; `Update` with the certificate when another one
/// is known to be wanted, and the security policy when it is not TLS 1.2.
pub fn diff_domain_name(
    desired: &DesiredDomainName,
    actual: Option<&ActualDomainName>,
) -> Action<DomainNameField> {
    let Some(actual) = actual else {
        return Action::Create;
    };
    let mut fields = BTreeSet::new();
    if desired.certificate_arn.is_some() && desired.certificate_arn != actual.certificate_arn {
        fields.insert(DomainNameField::Certificate);
    }
    if actual.security_policy.as_deref() != Some(SECURITY_POLICY) {
        fields.insert(DomainNameField::SecurityPolicy);
    }
    if missing_tags(&desired.tags, &actual.tags).next().is_some() {
        fields.insert(DomainNameField::Tags);
    }
    Action::update_if(fields)
}

/// The mapping of `base_path` to the API `api_id`'s stage: created, moved
/// from another base path, or pointed at another API or stage.
pub fn diff_mapping(
    base_path: &str,
    api_id: Option<&str>,
    stage: &str,
    actual: Option<&BasePathMapping>,
) -> Action<BasePathMappingField> {
    let Some(actual) = actual else {
        return Action::Create;
    };
    let mut fields = BTreeSet::new();
    if actual.base_path != base_path {
        fields.insert(BasePathMappingField::BasePath);
    }
    if api_id.is_none_or(|id| id != actual.rest_api_id) || actual.stage != stage {
        fields.insert(BasePathMappingField::Target);
    }
    Action::update_if(fields)
}

/// Creates the domain name (or, after a race, adopts the one with the
/// stage's tags); returns it as API Gateway has it.
pub async fn create_domain_name(
    client: &Client,
    desired: &DesiredDomainName,
    certificate_arn: &str,
) -> Result<ActualDomainName, AwsError> {
    let name = desired.name.as_str();
    let created = client
        .create_domain_name()
        .domain_name(name)
        .regional_certificate_arn(certificate_arn)
        .endpoint_configuration(
            EndpointConfiguration::builder()
                .types(EndpointType::Regional)
                .build(),
        )
        .security_policy(SecurityPolicy::from(SECURITY_POLICY))
        .set_tags(Some(desired.tags.clone().into_iter().collect()))
        .send()
        .await;
    if let Err(err) = created {
        let err = aws_error("CreateDomainName", name, err);
        // Another run made it: ours only by its tags.
        let ours = find_domain_names(client, &desired.tags, None).await?;
        return ours.into_iter().find(|d| d.name == name).ok_or(err);
    }
    find_domain_names(client, &desired.tags, None)
        .await?
        .into_iter()
        .find(|d| d.name == name)
        .ok_or_else(|| {
            AwsError::invalid_answer(
                "GetDomainNames",
                name,
                "the domain name just created is not listed",
            )
        })
}

/// Carries out an update of the domain name's `fields`: its tags by
/// TagResource, the rest in one UpdateDomainName.
pub async fn update_domain_name(
    client: &Client,
    desired: &DesiredDomainName,
    certificate_arn: &str,
    fields: &BTreeSet<DomainNameField>,
) -> Result<(), AwsError> {
    let name = desired.name.as_str();
    let mut operations = Vec::new();
    for field in fields {
        match field {
            DomainNameField::Certificate => operations.push(patch(
                Op::Replace,
                "/regionalCertificateArn",
                certificate_arn,
            )),
            DomainNameField::SecurityPolicy => {
                operations.push(patch(Op::Replace, "/securityPolicy", SECURITY_POLICY));
            }
            DomainNameField::Tags => tag(client, &desired.arn, &desired.tags).await?,
        }
    }
    if operations.is_empty() {
        return Ok(());
    }
    client
        .update_domain_name()
        .domain_name(name)
        .set_patch_operations(Some(operations))
        .send()
        .await
        .map_err(|e| aws_error("UpdateDomainName", name, e))?;
    Ok(())
}

/// Deletes the domain name (with its mappings); one already gone is no
/// error.
pub async fn delete_domain_name(client: &Client, name: &str) -> Result<(), AwsError> {
    retry_while(&[ErrorKind::Throttled], QUOTA_RETRY, || async {
        delete_ignoring_missing(
            client.delete_domain_name().domain_name(name).send().await,
            "DeleteDomainName",
            name,
        )
    })
    .await
}

/// Puts the mapping of `base_path` to the stage `stage` of `api_id`, as
/// the plan's `action` says: created, or updated from `actual` (moved to
/// the base path, pointed at the API's stage).
pub async fn apply_mapping(
    client: &Client,
    domain: &str,
    base_path: &str,
    api_id: &str,
    stage: &str,
    actual: Option<&BasePathMapping>,
    action: &Action<BasePathMappingField>,
) -> Result<Outcome, AwsError> {
    let resource = format!("{domain}/{base_path}");
    match (action, actual) {
        (Action::Unchanged, _) => Ok(Outcome::Unchanged),
        (Action::Delete, Some(actual)) => {
            delete_mapping(client, domain, &actual.base_path).await?;
            Ok(Outcome::Deleted)
        }
        (Action::Delete, None) => Ok(Outcome::Unchanged),
        (Action::Create, _) | (Action::Update(_), None) => {
            let mut request = client
                .create_base_path_mapping()
                .domain_name(domain)
                .rest_api_id(api_id)
                .stage(stage);
            if base_path != NO_BASE_PATH {
                request = request.base_path(base_path);
            }
            request
                .send()
                .await
                .map_err(|e| aws_error("CreateBasePathMapping", resource, e))?;
            Ok(Outcome::Created)
        }
        (Action::Update(fields), Some(actual)) => {
            let mut operations = Vec::new();
            for field in fields {
                match field {
                    BasePathMappingField::BasePath => operations.push(("/basePath", base_path)),
                    BasePathMappingField::Target => {
                        operations.push(("/restapiId", api_id));
                        operations.push(("/stage", stage));
                    }
                }
            }
            client
                .update_base_path_mapping()
                .domain_name(domain)
                .base_path(&actual.base_path)
                .set_patch_operations(Some(
                    operations
                        .into_iter()
                        .map(|(path, value)| {
                            PatchOperation::builder()
                                .op(Op::Replace)
                                .path(path)
                                .value(value)
                                .build()
                        })
                        .collect(),
                ))
                .send()
                .await
                .map_err(|e| aws_error("UpdateBasePathMapping", resource, e))?;
            Ok(Outcome::Updated)
        }
    }
}

/// Deletes the mapping of `base_path`; one already gone is no error.
pub async fn delete_mapping(
    client: &Client,
    domain: &str,
    base_path: &str,
) -> Result<(), AwsError> {
    delete_ignoring_missing(
        client
            .delete_base_path_mapping()
            .domain_name(domain)
            .base_path(base_path)
            .send()
            .await,
        "DeleteBasePathMapping",
        &format!("{domain}/{base_path}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(base_path: &str, api: &str) -> BasePathMapping {
        BasePathMapping {
            base_path: base_path.into(),
            rest_api_id: api.into(),
            stage: "prod".into(),
        }
    }

    #[test]
    fn a_mapping_moves_to_a_new_base_path_or_api() {
        assert_eq!(diff_mapping("v1", Some("a1"), "prod", None), Action::Create);
        let now = mapping("v1", "a1");
        assert_eq!(
            diff_mapping("v1", Some("a1"), "prod", Some(&now)),
            Action::Unchanged
        );
        assert_eq!(
            diff_mapping("v2", Some("a1"), "prod", Some(&now)),
            Action::Update(BTreeSet::from([BasePathMappingField::BasePath]))
        );
        // A REST API not made yet: the mapping must follow the new one.
        assert_eq!(
            diff_mapping("v1", None, "prod", Some(&now)),
            Action::Update(BTreeSet::from([BasePathMappingField::Target]))
        );
    }

    #[test]
    fn a_domain_name_is_updated_to_tls_1_2_and_a_new_certificate() {
        let desired = DesiredDomainName {
            name: "f.example.com".into(),
            arn: "arn".into(),
            certificate_arn: Some("cert-2".into()),
            tags: BTreeMap::new(),
        };
        let actual = ActualDomainName {
            name: "f.example.com".into(),
            regional_domain_name: "d-1".into(),
            regional_hosted_zone_id: "Z".into(),
            certificate_arn: Some("cert-1".into()),
            security_policy: Some("TLS_1_0".into()),
            tags: BTreeMap::new(),
            mappings: Vec::new(),
        };
        assert_eq!(
            diff_domain_name(&desired, Some(&actual)),
            Action::Update(BTreeSet::from([
                DomainNameField::Certificate,
                DomainNameField::SecurityPolicy
            ]))
        );
        // A certificate not requested yet is no reason to update.
        let unknown = DesiredDomainName {
            certificate_arn: None,
            ..desired
        };
        let current = ActualDomainName {
            security_policy: Some(SECURITY_POLICY.into()),
            ..actual
        };
        assert_eq!(
            diff_domain_name(&unknown, Some(&current)),
            Action::Unchanged
        );
    }
}
