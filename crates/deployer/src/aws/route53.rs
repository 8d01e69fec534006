//! Route 53: the records of a custom domain in the stage's hosted zone —
//! the certificate's DNS validation CNAME and the alias A record to the
//! API's regional domain name — and the zone itself, read to check that it
//! is the name's public parent.
//!
//! What AWS answers, and what is relied on here
//! ("ChangeResourceRecordSets", Route 53 API reference):
//! - a batch is refused whole (`InvalidChangeBatch`) when a change does not
//!   fit the zone: `UPSERT` is used to create or replace, so a rerun after
//!   a crash converges; `DELETE` must name the record exactly as it is, so
//!   it is given the record as read;
//! - an alias record to an API Gateway regional domain name targets its
//!   `regionalDomainName` in its `regionalHostedZoneId` ("Routing traffic
//!   to an Amazon API Gateway API by using your domain name");
//! - a change is `PENDING` until every Route 53 name server has it, then
//!   `INSYNC` on GetChange ("generally within 60 seconds"): `up` waits for
//!   it before relying on the record.

use std::time::{Duration, Instant};

use aws_sdk_route53::Client;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord,
    ResourceRecordSet, RrType,
};

use super::errors::{aws_error, none_if};
use super::permissions::{Declared, Scope, call};
use super::{AwsError, ErrorKind};
use crate::plan::{Action, Field};
use serde::Serialize;

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
// "Actions, resources, and condition keys for Amazon Route 53" (Service
// Authorization Reference): the zone's actions on `hostedzone/{id}`,
// GetChange on `change/{id}`.
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("GetHostedZone", "route53:GetHostedZone", Scope::HostedZone),
        call(
            "ListResourceRecordSets",
            "route53:ListResourceRecordSets",
            Scope::HostedZone,
        ),
        call(
            "ChangeResourceRecordSets",
            "route53:ChangeResourceRecordSets",
            Scope::HostedZone,
        ),
        call("GetChange", "route53:GetChange", Scope::Route53Changes),
    ],
};

/// How long `up` waits for a change to reach every name server.
pub const INSYNC_WAIT: Duration = Duration::from_secs(180);
/// The validation record's TTL (what ACM's console writes).
pub const VALIDATION_TTL: i64 = 300;

/// A hosted zone: its name without the final dot, and whether it is private.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedZone {
    pub id: String,
    pub name: String,
    pub private: bool,
}

/// Where an alias record points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub hosted_zone_id: String,
    pub dns_name: String,
}

/// One record set: a name, a type, and either values with a TTL or an
/// alias target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Fully qualified, lower-case, with the final dot.
    pub name: String,
    /// `A`, `CNAME`.
    pub kind: String,
    pub ttl: Option<i64>,
    pub values: Vec<String>,
    pub alias: Option<Alias>,
}

/// What of a record can differ: what it says (its values or alias target).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordField {
    Target,
}

impl Field for RecordField {}

/// `Create` when the record is missing, `Update` when it says something
/// else: both are one UPSERT.
pub fn diff_record(desired: &Record, actual: Option<&Record>) -> Action<RecordField> {
    match actual {
        None => Action::Create,
        Some(actual) if desired.same_as(actual) => Action::Unchanged,
        Some(_) => Action::Update(std::collections::BTreeSet::from([RecordField::Target])),
    }
}

/// `name` as Route 53 answers names: lower-case, with the final dot.
pub fn dotted(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

impl Record {
    /// The CNAME that validates a certificate.
    pub fn cname(name: &str, value: &str) -> Record {
        Record {
            name: dotted(name),
            kind: "CNAME".into(),
            ttl: Some(VALIDATION_TTL),
            values: vec![value.to_string()],
            alias: None,
        }
    }

    /// The alias A record of `name` to an API Gateway regional domain name.
    pub fn alias(name: &str, target: Alias) -> Record {
        Record {
            name: dotted(name),
            kind: "A".into(),
            ttl: None,
            values: Vec::new(),
            alias: Some(target),
        }
    }

    /// Whether `other` says what this one says (names and targets compared
    /// as DNS compares them).
    pub fn same_as(&self, other: &Record) -> bool {
        let values = |r: &Record| -> Vec<String> { r.values.iter().map(|v| dotted(v)).collect() };
        let alias = |r: &Record| {
            r.alias
                .as_ref()
                .map(|a| (a.hosted_zone_id.clone(), dotted(&a.dns_name)))
        };
        dotted(&self.name) == dotted(&other.name)
            && self.kind == other.kind
            && values(self) == values(other)
            && alias(self) == alias(other)
    }

    fn to_sdk(&self) -> Result<ResourceRecordSet, String> {
        let mut set = ResourceRecordSet::builder()
            .name(&self.name)
            .r#type(RrType::from(self.kind.as_str()))
            .set_ttl(self.ttl);
        for value in &self.values {
            set = set.resource_records(
                ResourceRecord::builder()
                    .value(value)
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        if let Some(alias) = &self.alias {
            set = set.alias_target(
                AliasTarget::builder()
                    .hosted_zone_id(&alias.hosted_zone_id)
                    .dns_name(&alias.dns_name)
                    .evaluate_target_health(false)
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        set.build().map_err(|e| e.to_string())
    }
}

/// The zone `id`; `None` when Route 53 has none by that id.
pub async fn read_zone(client: &Client, id: &str) -> Result<Option<HostedZone>, AwsError> {
    let answer = client.get_hosted_zone().id(id).send().await;
    let Some(answer) = none_if(ErrorKind::NotFound, "GetHostedZone", id, answer)? else {
        return Ok(None);
    };
    Ok(answer.hosted_zone().map(|zone| HostedZone {
        id: id.to_string(),
        name: zone.name().trim_end_matches('.').to_ascii_lowercase(),
        private: zone.config().is_some_and(|c| c.private_zone()),
    }))
}

/// The record set of `name` and `kind` in the zone, if there is one.
pub async fn read_record(
    client: &Client,
    zone: &str,
    name: &str,
    kind: &str,
) -> Result<Option<Record>, AwsError> {
    let wanted = dotted(name);
    let answer = client
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(&wanted)
        .start_record_type(RrType::from(kind))
        .max_items(1)
        .send()
        .await;
    let resource = format!("{wanted} {kind} in {zone}");
    // The zone itself gone: nothing of it to read.
    let Some(answer) = none_if(
        ErrorKind::NotFound,
        "ListResourceRecordSets",
        resource,
        answer,
    )?
    else {
        return Ok(None);
    };
    // The listing starts at the name and type, or the next one after them.
    Ok(answer
        .resource_record_sets()
        .iter()
        .find(|set| dotted(set.name()) == wanted && set.r#type().as_str() == kind)
        .map(|set| Record {
            name: dotted(set.name()),
            kind: set.r#type().as_str().to_string(),
            ttl: set.ttl(),
            values: set
                .resource_records()
                .iter()
                .map(|r| r.value().to_string())
                .collect(),
            alias: set.alias_target().map(|a| Alias {
                hosted_zone_id: a.hosted_zone_id().to_string(),
                dns_name: a.dns_name().to_string(),
            }),
        }))
}

/// Creates or replaces `record` in the zone and waits until the change is
/// on every name server.
pub async fn upsert_record(client: &Client, zone: &str, record: &Record) -> Result<(), AwsError> {
    change(client, zone, ChangeAction::Upsert, record).await
}

/// Deletes `record`, given as it is in the zone (Route 53 refuses a delete
/// whose values differ); one already gone is no error.
pub async fn delete_record(client: &Client, zone: &str, record: &Record) -> Result<(), AwsError> {
    match read_record(client, zone, &record.name, &record.kind).await? {
        Some(now) => change(client, zone, ChangeAction::Delete, &now).await,
        None => Ok(()),
    }
}

async fn change(
    client: &Client,
    zone: &str,
    action: ChangeAction,
    record: &Record,
) -> Result<(), AwsError> {
    let resource = format!("{} {} in {zone}", record.name, record.kind);
    let invalid = |e: String| AwsError::invalid_answer("ChangeResourceRecordSets", &resource, e);
    let batch = ChangeBatch::builder()
        .changes(
            Change::builder()
                .action(action)
                .resource_record_set(record.to_sdk().map_err(invalid)?)
                .build()
                .map_err(|e| invalid(e.to_string()))?,
        )
        .build()
        .map_err(|e| invalid(e.to_string()))?;
    let answer = client
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| aws_error("ChangeResourceRecordSets", resource.clone(), e))?;
    let Some(info) = answer.change_info() else {
        return Ok(());
    };
    wait_insync(client, info.id()).await
}

/// Waits until the change `id` is `INSYNC`.
async fn wait_insync(client: &Client, id: &str) -> Result<(), AwsError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let answer = client
            .get_change()
            .id(id)
            .send()
            .await
            .map_err(|e| aws_error("GetChange", id, e))?;
        if answer
            .change_info()
            .is_none_or(|info| *info.status() == ChangeStatus::Insync)
        {
            return Ok(());
        }
        if started.elapsed() + delay > INSYNC_WAIT {
            return Err(AwsError::invalid_answer(
                "GetChange",
                id,
                format!(
                    "still PENDING after {} s; run `up` again to keep waiting",
                    started.elapsed().as_secs()
                ),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_compare_as_dns_does() {
        let a = Record::cname("_x.Forecast.example.com", "_y.acm-validations.aws.");
        let b = Record::cname("_x.forecast.example.com.", "_y.acm-validations.aws");
        assert!(a.same_as(&b));
        let alias = |name: &str| Alias {
            hosted_zone_id: "Z1".into(),
            dns_name: name.into(),
        };
        let one = Record::alias(
            "f.example.com",
            alias("d-1.execute-api.us-east-1.amazonaws.com"),
        );
        let two = Record::alias(
            "f.example.com",
            alias("d-2.execute-api.us-east-1.amazonaws.com"),
        );
        assert!(!one.same_as(&two));
        assert!(!one.same_as(&a));
    }
}
