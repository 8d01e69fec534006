//! The stage's custom domain (`[api.domain]`) through the survey: what the
//! configuration wants, what AWS has (found by the stage's tags, so that a
//! stage whose table is gone still finds what to remove), the plan between
//! them, the checks `plan` and `up` make before anything changes, and the
//! apply and removal, in the order AWS needs.
//!
//! Four kinds: the `acm certificate` the deployer requests (never one it
//! is given), the `dns record`s in the hosted zone (the certificate's
//! validation CNAME and the alias A record to the regional domain name),
//! the `api domain name` (REGIONAL, TLS 1.2) and the `api base path
//! mapping` to the stage.
//!
//! `up` requests and validates the certificate beside the image build (ACM
//! takes its time), then, once the API exists, creates the domain name,
//! maps it and writes the alias record. Removal goes callers first: the
//! mapping (a mapped REST API cannot be deleted), the records, the domain
//! name (a certificate in use cannot be deleted), the certificate.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::actual::Found;
use crate::aws::{Clients, acm, apigw, route53};
use crate::config::{DomainSpec, Stage, certificate_region};
use crate::names::{self, Names, TAG_HOSTED_ZONE};
use crate::plan::{Action, Change, Kind, NoField};
use crate::ui::Ui;

/// The custom domain as the configuration wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredDomain {
    pub spec: DomainSpec,
    /// The domain name; its certificate is the given one, or unknown
    /// until `up` requests one.
    pub domain_name: apigw::DesiredDomainName,
    /// `(none)` or the base path.
    pub base_path: String,
    /// The stage's tags, which find its domain names and certificates.
    pub stage_tags: BTreeMap<String, String>,
    /// A requested certificate's tags: the stage's and its hosted zone.
    pub certificate_tags: BTreeMap<String, String>,
    /// The API stage the mapping serves.
    pub api_stage: String,
    pub api_name: String,
}

impl DesiredDomain {
    pub fn for_stage(stage: &Stage, names: &Names) -> Option<DesiredDomain> {
        let spec = stage.api.domain.clone()?;
        let mut tags = stage.tags();
        if let Some(zone) = &spec.hosted_zone_id {
            tags.insert(TAG_HOSTED_ZONE.to_string(), zone.clone());
        }
        Some(DesiredDomain {
            domain_name: apigw::DesiredDomainName {
                name: spec.name.clone(),
                arn: names.domain_name_arn(&spec.name),
                certificate_arn: spec.certificate_arn.clone(),
                tags: tags.clone(),
            },
            base_path: spec
                .base_path
                .clone()
                .unwrap_or_else(|| apigw::NO_BASE_PATH.to_string()),
            stage_tags: stage.tags(),
            certificate_tags: tags,
            api_stage: stage.name.clone(),
            api_name: stage.api_name(),
            spec,
        })
    }

    /// Whether the deployer requests the certificate (none is given).
    pub fn requests_certificate(&self) -> bool {
        self.spec.certificate_arn.is_none()
    }

    /// The URL callers use: `https://{name}/{base_path}/{path}`.
    pub fn url(&self, path: &str) -> String {
        names::domain_url(&self.spec.name, self.spec.base_path.as_deref(), path)
    }

    fn mapping_label(&self) -> String {
        format!(
            "{}/{} → {}/{}",
            self.spec.name, self.base_path, self.api_name, self.api_stage
        )
    }

    fn alias_label(&self) -> String {
        format!("{} A", route53::dotted(&self.spec.name))
    }
}

/// A record of the stage's in a hosted zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRecord {
    pub zone: String,
    pub record: route53::Record,
    /// The domain name (alias record) or certificate ARN (validation
    /// record) it belongs to.
    pub owner: String,
}

impl ZoneRecord {
    fn label(&self) -> String {
        format!("{} {}", self.record.name, self.record.kind)
    }
}

/// The custom domain as AWS has it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActualDomain {
    /// The stage's domain names (by its tags), with their mappings.
    pub domain_names: Vec<apigw::ActualDomainName>,
    /// The configured name exists without the stage's tags: someone else's.
    pub foreign: Option<apigw::ActualDomainName>,
    /// The certificates the deployer requested for the stage (by its tags).
    pub certificates: Vec<acm::ActualCertificate>,
    /// The certificate the stage is given, as ACM describes it.
    pub given: Option<acm::ActualCertificate>,
    /// The configured hosted zone, as Route 53 has it.
    pub zone: Option<route53::HostedZone>,
    /// The stage's alias and validation records that exist.
    pub records: Vec<ZoneRecord>,
}

/// Reads the stage's custom domain: `desired` is `None` when the stage has
/// no `[api.domain]` (what exists is then found by the stage's tags only).
pub async fn read(
    clients: &Clients,
    desired: Option<&DesiredDomain>,
    stage_tags: &BTreeMap<String, String>,
) -> Result<ActualDomain> {
    let named = desired.map(|d| d.spec.name.as_str());
    let (listed, requested, given, zone) = tokio::try_join!(
        apigw::find_domain_names(&clients.apigw, stage_tags, named),
        async {
            // Listing every certificate is asked only of a stage that has
            // a domain; without one, those in use are read from the
            // domain names below.
            match desired {
                Some(_) => acm::find_requested(&clients.acm, stage_tags).await,
                None => Ok(Vec::new()),
            }
        },
        async {
            match desired.and_then(|d| d.spec.certificate_arn.as_deref()) {
                Some(arn) => acm::read_certificate(&clients.acm, arn).await,
                None => Ok(None),
            }
        },
        async {
            match desired.and_then(|d| d.spec.hosted_zone_id.as_deref()) {
                Some(id) => route53::read_zone(&clients.route53, id).await,
                None => Ok(None),
            }
        },
    )?;
    let ours =
        |d: &apigw::ActualDomainName| stage_tags.iter().all(|(k, v)| d.tags.get(k) == Some(v));
    let (domain_names, others): (Vec<_>, Vec<_>) = listed.into_iter().partition(ours);
    let mut certificates = requested;
    if desired.is_none() {
        for arn in domain_names
            .iter()
            .filter_map(|d| d.certificate_arn.as_deref())
        {
            if let Some(certificate) = acm::read_certificate(&clients.acm, arn).await? {
                let requested = stage_tags
                    .iter()
                    .all(|(k, v)| certificate.tags.get(k) == Some(v));
                if requested && !certificates.iter().any(|c| c.arn == certificate.arn) {
                    certificates.push(certificate);
                }
            }
        }
    }
    let mut records = Vec::new();
    for domain in &domain_names {
        let configured = desired
            .filter(|d| d.spec.name == domain.name)
            .and_then(|d| d.spec.hosted_zone_id.clone());
        let Some(zone) = configured.or_else(|| domain.tags.get(TAG_HOSTED_ZONE).cloned()) else {
            continue;
        };
        let wanted = route53::Record::alias(&domain.name, alias_target(domain));
        if let Some(record) =
            route53::read_record(&clients.route53, &zone, &domain.name, "A").await?
        {
            // Only a record that points at the stage's domain is its own.
            if record.same_as(&wanted) {
                records.push(ZoneRecord {
                    zone,
                    record,
                    owner: domain.name.clone(),
                });
            }
        }
    }
    for certificate in &certificates {
        let (Some(zone), Some(validation)) = (
            certificate.tags.get(TAG_HOSTED_ZONE),
            certificate.validation.as_ref(),
        ) else {
            continue;
        };
        let wanted = route53::Record::cname(&validation.name, &validation.value);
        if let Some(record) =
            route53::read_record(&clients.route53, zone, &validation.name, "CNAME").await?
            && record.same_as(&wanted)
        {
            records.push(ZoneRecord {
                zone: zone.clone(),
                record,
                owner: certificate.arn.clone(),
            });
        }
    }
    Ok(ActualDomain {
        domain_names,
        foreign: others.into_iter().find(|d| Some(d.name.as_str()) == named),
        certificates,
        given,
        zone,
        records,
    })
}

fn alias_target(domain: &apigw::ActualDomainName) -> route53::Alias {
    route53::Alias {
        hosted_zone_id: domain.regional_hosted_zone_id.clone(),
        dns_name: domain.regional_domain_name.clone(),
    }
}

/// What of the domain the stage has and no longer wants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stale {
    /// (domain name, base path).
    pub mappings: Vec<(String, String)>,
    pub records: Vec<ZoneRecord>,
    pub domain_names: Vec<String>,
    /// ARNs of certificates the deployer requested.
    pub certificates: Vec<String>,
}

impl Stale {
    fn is_empty(&self) -> bool {
        self.mappings.is_empty()
            && self.records.is_empty()
            && self.domain_names.is_empty()
            && self.certificates.is_empty()
    }
}

/// The domain's part of the stage's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainPlan {
    /// `Create`: request a certificate.
    pub certificate: Action<NoField>,
    pub validation_record: Action<route53::RecordField>,
    pub domain_name: Action<apigw::DomainNameField>,
    pub mapping: Action<apigw::BasePathMappingField>,
    pub alias_record: Action<route53::RecordField>,
    /// Deleted by `up` after the rest.
    pub stale: Stale,
}

impl DomainPlan {
    pub fn is_change(&self) -> bool {
        self.certificate.is_change()
            || self.validation_record.is_change()
            || self.domain_name.is_change()
            || self.mapping.is_change()
            || self.alias_record.is_change()
            || !self.stale.is_empty()
    }
}

/// Whether ACM may still issue (or has issued) the certificate.
fn usable(certificate: &acm::ActualCertificate) -> bool {
    certificate.is_issued() || certificate.status == "PENDING_VALIDATION"
}

/// The requested certificate the stage uses: the newest usable one for
/// its name.
fn chosen_certificate<'a>(
    desired: &DesiredDomain,
    actual: &'a ActualDomain,
) -> Option<&'a acm::ActualCertificate> {
    if !desired.requests_certificate() {
        return None;
    }
    actual
        .certificates
        .iter()
        .filter(|c| c.domain_name == desired.spec.name && usable(c))
        .max_by_key(|c| c.is_issued())
}

/// Everything `actual` holds: what a destroy removes.
pub fn everything(actual: &ActualDomain) -> Stale {
    Stale {
        mappings: actual
            .domain_names
            .iter()
            .flat_map(|d| {
                d.mappings
                    .iter()
                    .map(|m| (d.name.clone(), m.base_path.clone()))
            })
            .collect(),
        records: actual.records.clone(),
        domain_names: actual.domain_names.iter().map(|d| d.name.clone()).collect(),
        certificates: actual.certificates.iter().map(|c| c.arn.clone()).collect(),
    }
}

/// Compares the configured domain with what AWS has; `api_id` is the
/// stage's REST API when it exists.
pub fn plan(
    desired: Option<&DesiredDomain>,
    actual: &ActualDomain,
    api_id: Option<&str>,
) -> DomainPlan {
    let Some(desired) = desired else {
        return DomainPlan {
            certificate: Action::Unchanged,
            validation_record: Action::Unchanged,
            domain_name: Action::Unchanged,
            mapping: Action::Unchanged,
            alias_record: Action::Unchanged,
            stale: everything(actual),
        };
    };
    let name = &desired.spec.name;
    let domain = actual.domain_names.iter().find(|d| &d.name == name);
    let certificate = chosen_certificate(desired, actual);
    let record_of = |wanted: &route53::Record| {
        actual
            .records
            .iter()
            .map(|r| &r.record)
            .find(|r| r.name == wanted.name && r.kind == wanted.kind)
    };
    // The record stays once the certificate is issued: ACM renews it
    // through the same record ("DNS validation").
    let validation_record = match (desired.requests_certificate(), certificate) {
        (false, _) => Action::Unchanged,
        (true, Some(c)) => match &c.validation {
            Some(v) => {
                let wanted = route53::Record::cname(&v.name, &v.value);
                route53::diff_record(&wanted, record_of(&wanted))
            }
            None if c.is_issued() => Action::Unchanged,
            None => Action::Create,
        },
        (true, None) => Action::Create,
    };
    let mut wanted_domain = desired.domain_name.clone();
    if let Some(c) = certificate {
        wanted_domain.certificate_arn = Some(c.arn.clone());
    }
    let mapping = match domain {
        None => Action::Create,
        Some(domain) => {
            let current = domain
                .mappings
                .iter()
                .find(|m| m.base_path == desired.base_path)
                .or_else(|| domain.mappings.first());
            apigw::diff_mapping(&desired.base_path, api_id, &desired.api_stage, current)
        }
    };
    let alias_record = match (&desired.spec.hosted_zone_id, domain) {
        (None, _) => Action::Unchanged,
        (Some(_), None) => Action::Create,
        (Some(_), Some(domain)) => {
            let wanted = route53::Record::alias(name, alias_target(domain));
            route53::diff_record(&wanted, record_of(&wanted))
        }
    };
    let zone = desired.spec.hosted_zone_id.as_deref();
    let certificates: Vec<String> = actual
        .certificates
        .iter()
        .filter(|c| certificate.is_none_or(|chosen| chosen.arn != c.arn))
        .map(|c| c.arn.clone())
        .collect();
    let stale_names: Vec<String> = actual
        .domain_names
        .iter()
        .filter(|d| &d.name != name)
        .map(|d| d.name.clone())
        .collect();
    let records = actual
        .records
        .iter()
        .filter(|r| {
            let alias = r.record.kind == "A";
            (alias && (&r.owner != name || Some(r.zone.as_str()) != zone))
                || (!alias && certificates.contains(&r.owner))
        })
        .cloned()
        .collect();
    DomainPlan {
        certificate: Action::create_if(desired.requests_certificate() && certificate.is_none()),
        validation_record,
        domain_name: apigw::diff_domain_name(&wanted_domain, domain),
        mapping,
        alias_record,
        stale: Stale {
            // A stale domain name goes with its mappings.
            mappings: Vec::new(),
            records,
            domain_names: stale_names,
            certificates,
        },
    }
}

/// The domain's changes, in the order `up` makes them, then its deletes.
pub fn changes(desired: Option<&DesiredDomain>, plan: &DomainPlan) -> Vec<Change> {
    let mut changes = Vec::new();
    if let Some(desired) = desired {
        let name = &desired.spec.name;
        if desired.requests_certificate() {
            changes.push(Change::new(Kind::AcmCertificate, name, &plan.certificate));
            changes.push(Change::new(
                Kind::DnsRecord,
                format!("validation of {name} CNAME"),
                &plan.validation_record,
            ));
        }
        changes.push(Change::new(Kind::ApiDomainName, name, &plan.domain_name));
        changes.push(Change::new(
            Kind::ApiBasePathMapping,
            desired.mapping_label(),
            &plan.mapping,
        ));
        if desired.spec.hosted_zone_id.is_some() {
            changes.push(Change::new(
                Kind::DnsRecord,
                desired.alias_label(),
                &plan.alias_record,
            ));
        }
    }
    changes.extend(stale_changes(&plan.stale));
    changes
}

fn stale_changes(stale: &Stale) -> Vec<Change> {
    let delete = Action::<NoField>::Delete;
    let mut changes = Vec::new();
    for (domain, base_path) in &stale.mappings {
        changes.push(Change::new(
            Kind::ApiBasePathMapping,
            format!("{domain}/{base_path}"),
            &delete,
        ));
    }
    for record in &stale.records {
        changes.push(Change::new(Kind::DnsRecord, record.label(), &delete));
    }
    for name in &stale.domain_names {
        changes.push(Change::new(Kind::ApiDomainName, name, &delete));
    }
    for arn in &stale.certificates {
        changes.push(Change::new(Kind::AcmCertificate, arn, &delete));
    }
    changes
}

/// What of the domain exists, for `status` and `destroy`, in the order a
/// teardown deletes it ([`remove`]): mappings, records, domain names,
/// certificates.
pub fn found_all(actual: &ActualDomain) -> Vec<Found> {
    [
        Kind::ApiBasePathMapping,
        Kind::DnsRecord,
        Kind::ApiDomainName,
        Kind::AcmCertificate,
    ]
    .into_iter()
    .flat_map(|kind| found(kind, actual))
    .collect()
}

/// What of the domain exists, of one kind.
fn found(kind: Kind, actual: &ActualDomain) -> Vec<Found> {
    let found = |name: String| Found { kind, name };
    match kind {
        Kind::AcmCertificate => actual
            .certificates
            .iter()
            .map(|c| found(format!("{} ({}, {})", c.domain_name, c.status, c.arn)))
            .collect(),
        Kind::DnsRecord => actual.records.iter().map(|r| found(r.label())).collect(),
        Kind::ApiDomainName => actual
            .domain_names
            .iter()
            .map(|d| found(format!("{} → {}", d.name, d.regional_domain_name)))
            .collect(),
        Kind::ApiBasePathMapping => actual
            .domain_names
            .iter()
            .flat_map(|d| {
                d.mappings.iter().map(move |m| Found {
                    kind,
                    name: format!("{}/{} → {}/{}", d.name, m.base_path, m.rest_api_id, m.stage),
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A domain setting AWS refuses, at its deploy.toml line.
fn refused(at: &crate::config::SettingAt, message: String) -> anyhow::Error {
    at.error(message).into()
}

/// Refuses, before anything changes, what AWS would refuse half-way: a
/// domain name of the configured name that is not the stage's, a given
/// certificate that is missing, in another region, for other names or not
/// ISSUED, and a hosted zone that is missing, private or not the name's
/// parent. Each error names the deploy.toml line at fault.
pub fn check(stage: &Stage, desired: Option<&DesiredDomain>, actual: &ActualDomain) -> Result<()> {
    let Some(desired) = desired else {
        return Ok(());
    };
    let spec = &desired.spec;
    let name = &spec.name;
    if let Some(foreign) = &actual.foreign {
        return Err(refused(
            &spec.at,
            format!(
                "API Gateway already has a domain name {name} ({}) without this stage's tags: \
                 it may serve another API, so it is left untouched and nothing was changed; \
                 delete it, or tag it with deployer:app={} and deployer:stage={} if it is this \
                 stage's",
                foreign.regional_domain_name, stage.app, stage.name
            ),
        ));
    }
    if let (Some(arn), Some(at)) = (&spec.certificate_arn, &spec.certificate_at) {
        let region = certificate_region(arn);
        if region != stage.region {
            return Err(refused(
                at,
                format!(
                    "the certificate is in {region}, the stage in {}: a REGIONAL domain name \
                     needs a certificate of its own region (\"Setting up custom domain names \
                     for REST APIs\")",
                    stage.region
                ),
            ));
        }
        let Some(certificate) = &actual.given else {
            return Err(refused(
                at,
                format!("ACM has no certificate {arn} in this account and region"),
            ));
        };
        if !certificate.covers(name) {
            return Err(refused(
                at,
                format!(
                    "the certificate is for {}, not {name}",
                    certificate.names.join(", ")
                ),
            ));
        }
        if !certificate.is_issued() {
            return Err(refused(
                at,
                format!(
                    "the certificate is {}, not ISSUED: API Gateway takes only an issued \
                     certificate{}",
                    certificate.status,
                    if certificate.status == "PENDING_VALIDATION" {
                        " (add its validation record to DNS, or leave certificate-arn out and set \
                         hosted-zone-id to have the deployer request and validate one)"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    if let (Some(id), Some(at)) = (&spec.hosted_zone_id, &spec.hosted_zone_at) {
        let Some(zone) = &actual.zone else {
            return Err(refused(
                at,
                format!("Route 53 has no hosted zone {id} in this account"),
            ));
        };
        if zone.private {
            return Err(refused(
                at,
                format!(
                    "hosted zone {id} ({}) is private: ACM validates in public DNS, and \
                     callers resolve the name there",
                    zone.name
                ),
            ));
        }
        if !(name == &zone.name || name.ends_with(&format!(".{}", zone.name))) {
            return Err(refused(
                at,
                format!(
                    "hosted zone {id} is {}, which does not hold {name}: give the zone of \
                     {name} or of one of its parents",
                    zone.name
                ),
            ));
        }
    }
    Ok(())
}

/// Before the API: the certificate the domain name needs, ISSUED. A given
/// one was checked by the survey; a requested one is requested when the
/// plan says so, its validation record written, and waited for. Returns
/// its ARN (`None`: the stage has no domain).
pub async fn apply_certificate(
    ui: &Ui,
    clients: &Clients,
    desired: Option<&DesiredDomain>,
    actual: &ActualDomain,
    plan: &DomainPlan,
) -> Result<Option<String>> {
    let Some(desired) = desired else {
        return Ok(None);
    };
    if let Some(arn) = &desired.spec.certificate_arn {
        return Ok(Some(arn.clone()));
    }
    let zone = desired.spec.hosted_zone_id.as_deref().unwrap_or_default();
    let chosen = chosen_certificate(desired, actual);
    let arn = match chosen {
        Some(c) if plan.certificate == Action::Unchanged => c.arn.clone(),
        _ => {
            let step = ui.step(Kind::AcmCertificate);
            let arn = acm::request_certificate(
                &clients.acm,
                &desired.spec.name,
                &desired.certificate_tags,
            )
            .await?;
            step.finish(format!("requested {arn}"));
            arn
        }
    };
    if plan.validation_record.is_change() || plan.certificate.is_change() {
        let step = ui.step(format!("{} validation", Kind::DnsRecord));
        let validation = acm::wait_for_validation_record(&clients.acm, &arn).await?;
        let record = route53::Record::cname(&validation.name, &validation.value);
        route53::upsert_record(&clients.route53, zone, &record).await?;
        step.finish(format!("{} CNAME in {zone}", record.name));
    }
    if chosen.is_some_and(acm::ActualCertificate::is_issued) && !plan.certificate.is_change() {
        return Ok(Some(arn));
    }
    let step = ui.step(format!("{} issued", Kind::AcmCertificate));
    acm::wait_until_issued(&clients.acm, &arn, acm::ISSUE_WAIT, &|status, waited| {
        step.message(format!("{status} for {} s", waited.as_secs()));
    })
    .await?;
    step.finish("ISSUED");
    Ok(Some(arn))
}

/// After the API: the domain name, its mapping to the stage and the alias
/// record; then what the stage no longer wants.
pub async fn apply_domain(
    ui: &Ui,
    clients: &Clients,
    desired: Option<&DesiredDomain>,
    actual: &ActualDomain,
    plan: &DomainPlan,
    certificate_arn: Option<&str>,
    api_id: &str,
) -> Result<()> {
    if let (Some(desired), Some(certificate_arn)) = (desired, certificate_arn) {
        let name = &desired.spec.name;
        let existing = actual.domain_names.iter().find(|d| &d.name == name);
        let domain = match (&plan.domain_name, existing) {
            (Action::Create, _) | (_, None) => {
                let step = ui.step(Kind::ApiDomainName);
                let created = apigw::create_domain_name(
                    &clients.apigw,
                    &desired.domain_name,
                    certificate_arn,
                )
                .await?;
                step.finish(format!("created → {}", created.regional_domain_name));
                created
            }
            (Action::Update(fields), Some(existing)) => {
                let step = ui.step(Kind::ApiDomainName);
                apigw::update_domain_name(
                    &clients.apigw,
                    &desired.domain_name,
                    certificate_arn,
                    fields,
                )
                .await?;
                step.finish("updated");
                existing.clone()
            }
            (Action::Unchanged | Action::Delete, Some(existing)) => existing.clone(),
        };
        // A domain created just now has no mappings; one read has them.
        let current = domain
            .mappings
            .iter()
            .find(|m| m.base_path == desired.base_path)
            .or_else(|| domain.mappings.first());
        let mapping = apigw::diff_mapping(
            &desired.base_path,
            Some(api_id),
            &desired.api_stage,
            current,
        );
        if mapping.is_change() {
            let step = ui.step(Kind::ApiBasePathMapping);
            let outcome = apigw::apply_mapping(
                &clients.apigw,
                name,
                &desired.base_path,
                api_id,
                &desired.api_stage,
                current,
                &mapping,
            )
            .await?;
            step.finish(format!(
                "{} {}",
                super::apply::outcome_text(outcome),
                desired.mapping_label()
            ));
        }
        if let Some(zone) = &desired.spec.hosted_zone_id {
            let wanted = route53::Record::alias(name, alias_target(&domain));
            let now = actual
                .records
                .iter()
                .map(|r| &r.record)
                .find(|r| r.name == wanted.name && r.kind == wanted.kind);
            if route53::diff_record(&wanted, now).is_change() {
                let step = ui.step(Kind::DnsRecord);
                route53::upsert_record(&clients.route53, zone, &wanted).await?;
                step.finish(format!(
                    "{} → {} in {zone}",
                    desired.alias_label(),
                    domain.regional_domain_name
                ));
            }
        }
    }
    remove(ui, clients, &plan.stale).await
}

/// Deletes `stale`, callers first: mappings, records, domain names (with
/// their mappings), certificates. Each delete is idempotent.
pub async fn remove(ui: &Ui, clients: &Clients, stale: &Stale) -> Result<()> {
    for (domain, base_path) in &stale.mappings {
        let step = ui.step(Kind::ApiBasePathMapping);
        apigw::delete_mapping(&clients.apigw, domain, base_path).await?;
        step.finish(format!("removed {domain}/{base_path}"));
    }
    for record in &stale.records {
        let step = ui.step(Kind::DnsRecord);
        route53::delete_record(&clients.route53, &record.zone, &record.record).await?;
        step.finish(format!("removed {}", record.label()));
    }
    for name in &stale.domain_names {
        let step = ui.step(Kind::ApiDomainName);
        apigw::delete_domain_name(&clients.apigw, name).await?;
        step.finish(format!("removed {name}"));
    }
    for arn in &stale.certificates {
        let step = ui.step(Kind::AcmCertificate);
        acm::delete_certificate(&clients.acm, arn).await?;
        step.finish(format!("removed {arn}"));
    }
    Ok(())
}

/// The domain as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainReport {
    pub name: String,
    /// The URL callers use through it.
    pub url: String,
    /// The regional domain name its alias record points at.
    pub target: Option<String>,
    pub base_path: String,
    pub certificate_arn: Option<String>,
    /// ACM's state of the certificate (`ISSUED`, `PENDING_VALIDATION`, ...).
    pub certificate_status: Option<String>,
    /// Whether the deployer requested the certificate (and deletes it).
    pub certificate_requested: bool,
    /// Whether the domain name exists and is mapped to the stage.
    pub mapped: bool,
}

impl std::fmt::Display for DomainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} → {} (base path {}); certificate {} {}",
            self.name,
            self.target.as_deref().unwrap_or("(no domain name)"),
            self.base_path,
            self.certificate_status.as_deref().unwrap_or("missing"),
            if self.certificate_requested {
                "(requested by the deployer)"
            } else {
                "(given)"
            }
        )
    }
}

/// The configured domain as `status` reports it; `None` without one.
pub fn report(
    desired: Option<&DesiredDomain>,
    actual: &ActualDomain,
    path: &str,
) -> Option<DomainReport> {
    let desired = desired?;
    let name = &desired.spec.name;
    let domain = actual.domain_names.iter().find(|d| &d.name == name);
    let certificate = match &desired.spec.certificate_arn {
        Some(_) => actual.given.as_ref(),
        None => domain
            .and_then(|d| d.certificate_arn.as_ref())
            .and_then(|arn| actual.certificates.iter().find(|c| &c.arn == arn))
            .or_else(|| chosen_certificate(desired, actual)),
    };
    Some(DomainReport {
        name: name.clone(),
        url: desired.url(path),
        target: domain.map(|d| d.regional_domain_name.clone()),
        base_path: desired.base_path.clone(),
        certificate_arn: certificate
            .map(|c| c.arn.clone())
            .or_else(|| desired.spec.certificate_arn.clone()),
        certificate_status: certificate.map(|c| c.status.clone()),
        certificate_requested: desired.requests_certificate(),
        mapped: domain.is_some_and(|d| d.mappings.iter().any(|m| m.base_path == desired.base_path)),
    })
}

/// How the public path check reaches `url`: on an emulator (the stage has
/// an `endpoint-url`) a custom domain's URL is called on the emulator's own
/// port with the domain in the `Host` header, as the local AWS serves
/// mapped domains; anywhere else as it is.
pub fn reach(stage: &Stage, url: &str) -> (String, Option<String>) {
    let (Some(endpoint), Some(domain)) = (&stage.endpoint_url, &stage.api.domain) else {
        return (url.to_string(), None);
    };
    let root = format!("https://{}/", domain.name);
    match url.strip_prefix(&root) {
        Some(rest) => (
            format!("{}/{rest}", endpoint.trim_end_matches('/')),
            Some(domain.name.clone()),
        ),
        None => (url.to_string(), None),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::SettingAt;

    /// A stage with `[api.domain]` for forecast.example.com.
    pub(crate) fn stage(
        certificate: Option<&str>,
        zone: Option<&str>,
        base_path: Option<&str>,
    ) -> Stage {
        let mut stage = Stage::defaults("shop", "prod", "us-east-1");
        let at = |key: &str| SettingAt {
            file: "deploy.toml".into(),
            line: 7,
            key: format!("[stages.prod.api.domain] {key}"),
        };
        stage.api.domain = Some(DomainSpec {
            name: "forecast.example.com".into(),
            certificate_arn: certificate.map(str::to_string),
            hosted_zone_id: zone.map(str::to_string),
            base_path: base_path.map(str::to_string),
            at: at("name"),
            certificate_at: certificate.map(|_| at("certificate-arn")),
            hosted_zone_at: zone.map(|_| at("hosted-zone-id")),
        });
        stage
    }

    fn desired_of(stage: &Stage) -> DesiredDomain {
        DesiredDomain::for_stage(stage, &Names::new(stage, "123456789012")).unwrap()
    }

    fn domain_name(name: &str, mappings: &[(&str, &str)]) -> apigw::ActualDomainName {
        apigw::ActualDomainName {
            name: name.into(),
            regional_domain_name: "d-1.execute-api.us-east-1.example".into(),
            regional_hosted_zone_id: "Z1UJRXOUMOOFQ8".into(),
            certificate_arn: Some("cert".into()),
            security_policy: Some(apigw::SECURITY_POLICY.into()),
            tags: Stage::defaults("shop", "prod", "us-east-1").tags(),
            mappings: mappings
                .iter()
                .map(|(base, api)| apigw::BasePathMapping {
                    base_path: base.to_string(),
                    rest_api_id: api.to_string(),
                    stage: "prod".into(),
                })
                .collect(),
        }
    }

    fn issued(arn: &str, name: &str) -> acm::ActualCertificate {
        acm::ActualCertificate {
            arn: arn.into(),
            domain_name: name.into(),
            names: vec![name.into()],
            status: "ISSUED".into(),
            failure_reason: None,
            validation: None,
            tags: BTreeMap::new(),
        }
    }

    fn kinds_and_actions(changes: &[Change]) -> Vec<(Kind, String)> {
        changes
            .iter()
            .map(|c| {
                (
                    c.kind,
                    serde_json::to_value(c).unwrap()["action"].to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn a_new_domain_with_a_zone_creates_all_five() {
        let stage = stage(None, Some("Z123"), None);
        let desired = desired_of(&stage);
        let plan = plan(Some(&desired), &ActualDomain::default(), None);
        let changes = changes(Some(&desired), &plan);
        let create = "\"create\"".to_string();
        assert_eq!(
            kinds_and_actions(&changes),
            [
                (Kind::AcmCertificate, create.clone()),
                (Kind::DnsRecord, create.clone()),
                (Kind::ApiDomainName, create.clone()),
                (Kind::ApiBasePathMapping, create.clone()),
                (Kind::DnsRecord, create),
            ]
        );
        assert_eq!(
            desired.url("predict"),
            "https://forecast.example.com/predict"
        );
        // The certificate carries the zone, so its record is found without
        // the configuration.
        assert_eq!(desired.certificate_tags[TAG_HOSTED_ZONE], "Z123");
    }

    #[test]
    fn a_given_certificate_is_never_requested_nor_deleted() {
        let arn = "arn:aws:acm:us-east-1:123456789012:certificate/given";
        let stage = stage(Some(arn), None, Some("v1"));
        let desired = desired_of(&stage);
        let plan = plan(Some(&desired), &ActualDomain::default(), Some("a1"));
        let changes = changes(Some(&desired), &plan);
        assert!(
            !changes
                .iter()
                .any(|c| matches!(c.kind, Kind::AcmCertificate | Kind::DnsRecord)),
            "{changes:?}"
        );
        assert_eq!(
            desired.url("predict"),
            "https://forecast.example.com/v1/predict"
        );
        // Removing the table: nothing of ACM's is listed (the given one is
        // not found by the stage's tags).
        let actual = ActualDomain {
            domain_names: vec![domain_name("forecast.example.com", &[("v1", "a1")])],
            ..ActualDomain::default()
        };
        let removed = super::plan(None, &actual, Some("a1"));
        assert!(removed.stale.certificates.is_empty());
        assert_eq!(removed.stale.domain_names, ["forecast.example.com"]);
    }

    #[test]
    fn a_new_base_path_moves_the_mapping_and_a_gone_table_deletes_everything() {
        let stage = stage(None, Some("Z123"), Some("v2"));
        let desired = desired_of(&stage);
        let mut domain = domain_name("forecast.example.com", &[("v1", "a1")]);
        // Tagged with its zone, as `up` creates it.
        domain
            .tags
            .insert(TAG_HOSTED_ZONE.to_string(), "Z123".to_string());
        let alias = ZoneRecord {
            zone: "Z123".into(),
            record: route53::Record::alias("forecast.example.com", alias_target(&domain)),
            owner: domain.name.clone(),
        };
        let actual = ActualDomain {
            domain_names: vec![domain],
            certificates: vec![issued("cert", "forecast.example.com")],
            records: vec![alias],
            ..ActualDomain::default()
        };
        let moved = plan(Some(&desired), &actual, Some("a1"));
        assert_eq!(
            moved.mapping,
            Action::Update([apigw::BasePathMappingField::BasePath].into())
        );
        assert_eq!(moved.certificate, Action::Unchanged);
        assert_eq!(moved.alias_record, Action::Unchanged);
        assert_eq!(moved.domain_name, Action::Unchanged);
        assert!(moved.stale.is_empty(), "{:?}", moved.stale);
        // One made before the zone was configured gets its tag, so that it
        // is found with its records once the table is gone.
        let mut untagged = actual.clone();
        untagged.domain_names[0].tags.remove(TAG_HOSTED_ZONE);
        assert_eq!(
            plan(Some(&desired), &untagged, Some("a1")).domain_name,
            Action::Update([apigw::DomainNameField::Tags].into())
        );

        let gone = plan(None, &actual, Some("a1"));
        let deletes = changes(None, &gone);
        assert_eq!(
            deletes.iter().map(|c| c.kind).collect::<Vec<_>>(),
            [
                Kind::ApiBasePathMapping,
                Kind::DnsRecord,
                Kind::ApiDomainName,
                Kind::AcmCertificate
            ]
        );
        assert!(
            deletes
                .iter()
                .all(|c| c.action == crate::plan::ChangeAction::Delete),
            "{deletes:?}"
        );
    }

    #[test]
    fn a_certificate_for_another_name_or_not_issued_names_its_line() {
        let arn = "arn:aws:acm:us-east-1:123456789012:certificate/given";
        let stage = stage(Some(arn), None, None);
        let desired = desired_of(&stage);
        let other = ActualDomain {
            given: Some(issued(arn, "other.example.com")),
            ..ActualDomain::default()
        };
        let err = check(&stage, Some(&desired), &other)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("deploy.toml:7")
                && err.contains("certificate-arn")
                && err.contains("other.example.com"),
            "{err}"
        );
        let pending = ActualDomain {
            given: Some(acm::ActualCertificate {
                status: "PENDING_VALIDATION".into(),
                ..issued(arn, "forecast.example.com")
            }),
            ..ActualDomain::default()
        };
        let err = check(&stage, Some(&desired), &pending)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not ISSUED"), "{err}");
        let fine = ActualDomain {
            given: Some(issued(arn, "*.example.com")),
            ..ActualDomain::default()
        };
        check(&stage, Some(&desired), &fine).unwrap();

        let elsewhere = stage_in("arn:aws:acm:eu-west-1:123456789012:certificate/given");
        let desired = desired_of(&elsewhere);
        let err = check(&elsewhere, Some(&desired), &fine)
            .unwrap_err()
            .to_string();
        assert!(err.contains("eu-west-1"), "{err}");
    }

    fn stage_in(arn: &str) -> Stage {
        stage(Some(arn), None, None)
    }

    #[test]
    fn a_zone_that_is_not_the_name_s_parent_names_its_line() {
        let stage = stage(None, Some("Z123"), None);
        let desired = desired_of(&stage);
        let zone = |name: &str, private: bool| ActualDomain {
            zone: Some(route53::HostedZone {
                id: "Z123".into(),
                name: name.into(),
                private,
            }),
            ..ActualDomain::default()
        };
        let err = check(&stage, Some(&desired), &zone("example.org", false))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hosted-zone-id") && err.contains("example.org"),
            "{err}"
        );
        // `notexample.com` is no parent of `forecast.example.com`'s either.
        assert!(check(&stage, Some(&desired), &zone("le.com", false)).is_err());
        assert!(check(&stage, Some(&desired), &zone("example.com", true)).is_err());
        let err = check(&stage, Some(&desired), &ActualDomain::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no hosted zone Z123"), "{err}");
        check(&stage, Some(&desired), &zone("example.com", false)).unwrap();
    }

    #[test]
    fn an_emulator_is_reached_by_the_host_header() {
        let mut stage = stage(None, Some("Z123"), Some("v1"));
        let url = "https://forecast.example.com/v1/predict";
        assert_eq!(reach(&stage, url), (url.to_string(), None));
        stage.endpoint_url = Some("http://127.0.0.1:5031/".into());
        assert_eq!(
            reach(&stage, url),
            (
                "http://127.0.0.1:5031/v1/predict".to_string(),
                Some("forecast.example.com".to_string())
            )
        );
    }

    #[test]
    fn a_domain_name_of_the_name_without_the_stage_s_tags_is_refused() {
        let stage = stage(None, Some("Z123"), None);
        let desired = desired_of(&stage);
        let actual = ActualDomain {
            foreign: Some(apigw::ActualDomainName {
                tags: BTreeMap::new(),
                ..domain_name("forecast.example.com", &[])
            }),
            ..ActualDomain::default()
        };
        let err = check(&stage, Some(&desired), &actual)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("deploy.toml:7") && err.contains("without this stage's tags"),
            "{err}"
        );
    }
}
