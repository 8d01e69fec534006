//! ACM: the certificate of a custom domain name. A certificate the stage
//! is given (`certificate-arn`) is only read: its names and its state are
//! checked before anything changes. One the deployer requests (the stage
//! has a hosted zone and no certificate) is validated by DNS, tagged with
//! the stage's tags (its only proof of being ours: ACM picks its ARN) and
//! deleted with the domain.
//!
//! What AWS answers, and what is relied on here:
//! - RequestCertificate with `ValidationMethod=DNS` (the API's default is
//!   e-mail, "RequestCertificate" API reference) and the stage's tags in
//!   the same call, so a run killed right after the request finds its
//!   certificate by them. No `IdempotencyToken`: within its hour ACM would
//!   answer a deleted certificate's ARN again to a `destroy` and `up`.
//! - DescribeCertificate lists the validation CNAME only "several seconds"
//!   after the request (its API reference): it is polled for.
//! - The certificate becomes ISSUED once the record is in public DNS, in a
//!   time ACM does not bound ("DNS validation", ACM User Guide): `up` waits
//!   for [`ISSUE_WAIT`] with progress, as the SDKs' `certificate_validated`
//!   waiter does; `FAILED` and `VALIDATION_TIMED_OUT` end the wait at once.
//! - DeleteCertificate of a certificate a domain name uses answers
//!   `ResourceInUseException` (its API reference): the domain name is
//!   deleted first.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_acm::Client;
use aws_sdk_acm::types::{CertificateStatus, Tag, ValidationMethod};

use super::errors::{aws_error, none_if};
use super::permissions::{Declared, Scope, call, implied};
use super::{AwsError, ErrorKind};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
// "Actions, resources, and condition keys for AWS Certificate Manager"
// (Service Authorization Reference): RequestCertificate and
// ListCertificates have no resource type; RequestCertificate takes
// `aws:RequestTag`/`aws:TagKeys`, and tagging on request also needs
// AddTagsToCertificate; the `certificate` resource type takes
// `aws:ResourceTag`.
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call(
            "RequestCertificate",
            "acm:RequestCertificate",
            Scope::CertificateRequest,
        ),
        implied("acm:AddTagsToCertificate", Scope::CertificateRequest),
        call(
            "ListCertificates",
            "acm:ListCertificates",
            Scope::CertificateList,
        ),
        call(
            "DescribeCertificate",
            "acm:DescribeCertificate",
            Scope::Certificates,
        ),
        call(
            "ListTagsForCertificate",
            "acm:ListTagsForCertificate",
            Scope::Certificates,
        ),
        call(
            "DeleteCertificate",
            "acm:DeleteCertificate",
            Scope::CertificatesOwned,
        ),
    ],
};

/// How long `up` waits for a requested certificate to be issued once its
/// validation record is in the zone. ACM gives no bound; in practice it
/// takes a few minutes.
pub const ISSUE_WAIT: Duration = Duration::from_secs(30 * 60);
/// How long the validation record may take to show after the request.
const RECORD_WAIT: Duration = Duration::from_secs(120);

/// The CNAME ACM asks for to validate one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationRecord {
    /// `_x.forecast.example.com.`
    pub name: String,
    /// `_y.acm-validations.aws.`
    pub value: String,
}

/// A certificate as ACM describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualCertificate {
    pub arn: String,
    pub domain_name: String,
    /// Every name it is valid for (the domain name and its alternatives).
    pub names: Vec<String>,
    /// `PENDING_VALIDATION`, `ISSUED`, `FAILED`, ...
    pub status: String,
    pub failure_reason: Option<String>,
    /// The validation CNAME of `domain_name`, once ACM lists it.
    pub validation: Option<ValidationRecord>,
    pub tags: BTreeMap<String, String>,
}

impl ActualCertificate {
    pub fn is_issued(&self) -> bool {
        self.status == CertificateStatus::Issued.as_str()
    }

    /// Whether it is valid for `name`: named exactly, or by a wildcard
    /// one level up (`*.example.com` covers `forecast.example.com`, not
    /// `a.forecast.example.com`).
    pub fn covers(&self, name: &str) -> bool {
        self.names.iter().any(|covered| {
            let covered = covered.to_ascii_lowercase();
            covered == name
                || covered
                    .strip_prefix("*.")
                    .is_some_and(|parent| name.split_once('.').is_some_and(|(_, up)| up == parent))
        })
    }
}

/// The certificate `arn`, with its tags; `None` when ACM has none by that ARN.
pub async fn read_certificate(
    client: &Client,
    arn: &str,
) -> Result<Option<ActualCertificate>, AwsError> {
    let answer = client
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await;
    let Some(answer) = none_if(ErrorKind::NotFound, "DescribeCertificate", arn, answer)? else {
        return Ok(None);
    };
    let Some(detail) = answer.certificate() else {
        return Ok(None);
    };
    let domain_name = detail.domain_name().unwrap_or_default().to_string();
    let mut names: Vec<String> = detail.subject_alternative_names().to_vec();
    if !names.contains(&domain_name) {
        names.insert(0, domain_name.clone());
    }
    let validation = detail
        .domain_validation_options()
        .iter()
        .find(|option| option.domain_name() == domain_name)
        .and_then(|option| option.resource_record())
        .map(|record| ValidationRecord {
            name: record.name().to_string(),
            value: record.value().to_string(),
        });
    let tags = client
        .list_tags_for_certificate()
        .certificate_arn(arn)
        .send()
        .await;
    let tags = none_if(ErrorKind::NotFound, "ListTagsForCertificate", arn, tags)?
        .map(|answer| {
            answer
                .tags()
                .iter()
                .map(|tag| {
                    (
                        tag.key().to_string(),
                        tag.value().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(ActualCertificate {
        arn: arn.to_string(),
        domain_name,
        names,
        status: detail
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        failure_reason: detail.failure_reason().map(|r| r.as_str().to_string()),
        validation,
        tags,
    }))
}

/// The certificates of the region that carry every tag of `tags`, whatever
/// their state: those the deployer requested for the stage.
pub async fn find_requested(
    client: &Client,
    tags: &BTreeMap<String, String>,
) -> Result<Vec<ActualCertificate>, AwsError> {
    let mut arns = Vec::new();
    let mut token = None;
    loop {
        // Without a status filter ListCertificates answers only some states;
        // a pending or failed request of ours must be found too.
        let page = client
            .list_certificates()
            .set_certificate_statuses(Some(vec![
                CertificateStatus::PendingValidation,
                CertificateStatus::Issued,
                CertificateStatus::Inactive,
                CertificateStatus::Expired,
                CertificateStatus::ValidationTimedOut,
                CertificateStatus::Revoked,
                CertificateStatus::Failed,
            ]))
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| aws_error("ListCertificates", "certificates", e))?;
        arns.extend(
            page.certificate_summary_list()
                .iter()
                .filter_map(|c| c.certificate_arn().map(str::to_string)),
        );
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    let mut found = Vec::new();
    for arn in arns {
        if let Some(certificate) = read_certificate(client, &arn).await?
            && tags.iter().all(|(k, v)| certificate.tags.get(k) == Some(v))
        {
            found.push(certificate);
        }
    }
    Ok(found)
}

/// Requests a DNS-validated certificate for `domain` with `tags`; returns
/// its ARN.
pub async fn request_certificate(
    client: &Client,
    domain: &str,
    tags: &BTreeMap<String, String>,
) -> Result<String, AwsError> {
    let tags = tags
        .iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AwsError::invalid_answer("RequestCertificate", domain, e.to_string()))?;
    let answer = client
        .request_certificate()
        .domain_name(domain)
        .validation_method(ValidationMethod::Dns)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| aws_error("RequestCertificate", domain, e))?;
    answer
        .certificate_arn()
        .map(str::to_string)
        .ok_or_else(|| AwsError::invalid_answer("RequestCertificate", domain, "no CertificateArn"))
}

/// Waits until ACM lists the validation record of `arn`.
pub async fn wait_for_validation_record(
    client: &Client,
    arn: &str,
) -> Result<ValidationRecord, AwsError> {
    let started = Instant::now();
    loop {
        let certificate = read_certificate(client, arn).await?.ok_or_else(|| {
            AwsError::invalid_answer("DescribeCertificate", arn, "the certificate is gone")
        })?;
        if let Some(record) = certificate.validation {
            return Ok(record);
        }
        if started.elapsed() > RECORD_WAIT {
            return Err(AwsError::invalid_answer(
                "DescribeCertificate",
                arn,
                format!(
                    "ACM listed no DNS validation record within {} s of the request",
                    RECORD_WAIT.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits, for at most `wait`, until `arn` is ISSUED; `progress` hears the
/// state and the time waited on each poll. A state ACM does not leave
/// (`FAILED`, `VALIDATION_TIMED_OUT`, ...) ends the wait with its reason.
pub async fn wait_until_issued(
    client: &Client,
    arn: &str,
    wait: Duration,
    progress: &dyn Fn(&str, Duration),
) -> Result<(), AwsError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let certificate = read_certificate(client, arn).await?.ok_or_else(|| {
            AwsError::invalid_answer("DescribeCertificate", arn, "the certificate is gone")
        })?;
        if certificate.is_issued() {
            return Ok(());
        }
        if certificate.status != CertificateStatus::PendingValidation.as_str() {
            return Err(AwsError::invalid_answer(
                "DescribeCertificate",
                arn,
                format!(
                    "the certificate is {}{}, not ISSUED: ACM will not issue it; delete it and \
                     run `up` again to request another",
                    certificate.status,
                    certificate
                        .failure_reason
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ),
            ));
        }
        progress(&certificate.status, started.elapsed());
        if started.elapsed() + delay > wait {
            return Err(AwsError::invalid_answer(
                "DescribeCertificate",
                arn,
                format!(
                    "still {} after {} s: ACM has not seen the validation record in public DNS \
                     (is the hosted zone the one the domain's registrar delegates to?); run \
                     `up` again to keep waiting",
                    certificate.status,
                    started.elapsed().as_secs()
                ),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// Deletes the certificate; one already gone is no error.
pub async fn delete_certificate(client: &Client, arn: &str) -> Result<(), AwsError> {
    let answer = client
        .delete_certificate()
        .certificate_arn(arn)
        .send()
        .await;
    none_if(ErrorKind::NotFound, "DeleteCertificate", arn, answer)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(names: &[&str]) -> ActualCertificate {
        ActualCertificate {
            arn: "a".into(),
            domain_name: names[0].into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            status: "ISSUED".into(),
            failure_reason: None,
            validation: None,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn a_certificate_covers_its_names_and_one_level_of_wildcard() {
        let exact = certificate(&["forecast.example.com"]);
        assert!(exact.covers("forecast.example.com"));
        assert!(!exact.covers("other.example.com"));
        let wildcard = certificate(&["*.example.com"]);
        assert!(wildcard.covers("forecast.example.com"));
        assert!(!wildcard.covers("a.forecast.example.com"));
        assert!(!wildcard.covers("example.com"));
    }
}
