//! The stage's optional parts, in one place: the custom [`domain`]
//! (`[api.domain]`) and the [`alarms`] (`[alarms]`). The core of the stage
//! (`desired`, `actual`, `plan`, `apply`, `teardown`, `survey`) calls each
//! function here once and never names a part, so a new part, or a new kind
//! of one, touches this module and its own, not the core's.
//!
//! A part's kinds keep their place in `kinds!` (`crate::plan`): that order
//! is `up`'s, and it places a part's changes in the plan and its resources
//! in `status` and `destroy` among the core's (at the part's first kind).
//! `apply.rs` calls in three times, where the parts need: beside the image
//! build (the certificate, which ACM takes its time to issue), once the
//! API exists (the alarms, which watch it), and after the API's permission
//! on the alias (the domain's name, mapping and alias record).
//!
//! A new kind of a part touches `kinds!`, its adapter in `aws/` (and
//! `aws/mod.rs`, `aws/permissions.rs` for a new scope), `names.rs`, the
//! part's module and this one (its `*_KINDS`); a new part adds its module
//! and its fields and calls here. The core's matches on `Kind` send every
//! kind they do not name here (`found_at`, `teardown_rank`,
//! `PartsRemoval`): a new kind of the core must be named in them by hand.

use std::collections::BTreeMap;

use anyhow::Result;

use super::actual::Found;
use super::{alarms, domain, lock};
use crate::aws::Clients;
use crate::config::Stage;
use crate::names::Names;
use crate::plan::{Change, Kind};
use crate::ui::Ui;

/// The kinds of each part, in `kinds!`'s order: a part's changes and
/// resources are listed together, at its first kind.
const DOMAIN_KINDS: &[Kind] = &[
    Kind::AcmCertificate,
    Kind::DnsRecord,
    Kind::ApiDomainName,
    Kind::ApiBasePathMapping,
];
const ALARMS_KINDS: &[Kind] = &[Kind::SnsTopic, Kind::SnsSubscription, Kind::CloudWatchAlarm];

/// What the configuration wants of the optional parts.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredParts {
    /// `[api.domain]`: the stage's custom domain, if it has one.
    pub domain: Option<domain::DesiredDomain>,
    /// `[alarms]`: the alarms, their topic and its subscriptions.
    pub alarms: alarms::DesiredAlarms,
}

impl DesiredParts {
    pub fn new(stage: &Stage, names: &Names) -> DesiredParts {
        DesiredParts {
            domain: domain::DesiredDomain::for_stage(stage, names),
            alarms: alarms::DesiredAlarms::new(stage, names),
        }
    }

    /// The URL callers use: the custom domain's when the stage has one,
    /// else the API's own (`Names::stage_url`).
    pub fn url(&self, names: &Names, api_id: &str) -> String {
        match &self.domain {
            Some(domain) => domain.url(&names.path),
            None => names.stage_url(api_id),
        }
    }
}

/// What the configuration asks of the parts that AWS will not do as written.
pub fn warnings(stage: &Stage) -> Vec<String> {
    alarms::warning(stage).into_iter().collect()
}

/// What of the optional parts exists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActualParts {
    /// The custom domain's parts, found by the stage's tags.
    pub domain: domain::ActualDomain,
    /// The stage's alarms, their topic and its subscriptions.
    pub alarms: alarms::ActualAlarms,
}

/// Reads every part, concurrently.
pub async fn read(
    desired: &DesiredParts,
    stage_tags: &BTreeMap<String, String>,
    clients: &Clients,
) -> Result<ActualParts> {
    let (domain, alarms) = tokio::try_join!(
        domain::read(clients, desired.domain.as_ref(), stage_tags),
        alarms::read(&desired.alarms, clients),
    )?;
    Ok(ActualParts { domain, alarms })
}

/// Refuses, before a deploy changes anything, what AWS would refuse of a
/// part half-way (each check says what and where).
pub fn check(stage: &Stage, desired: &DesiredParts, actual: &ActualParts) -> Result<()> {
    alarms::check_topic_regions(stage)?;
    alarms::check_alarms_are_ours(&desired.alarms, &actual.alarms)?;
    domain::check(stage, desired.domain.as_ref(), &actual.domain)
}

/// The parts' share of the stage's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PartsPlan {
    /// The custom domain's parts (`[api.domain]`), and what of one the
    /// stage no longer wants.
    pub domain: domain::DomainPlan,
    /// `[alarms]`: the topic, its subscriptions and the alarms.
    pub alarms: alarms::AlarmsPlan,
}

/// The parts' plan; `api_id` is the stage's REST API, when it exists.
pub fn plan(desired: &DesiredParts, actual: &ActualParts, api_id: Option<&str>) -> PartsPlan {
    PartsPlan {
        domain: domain::plan(desired.domain.as_ref(), &actual.domain, api_id),
        alarms: alarms::plan(&desired.alarms, &actual.alarms),
    }
}

impl PartsPlan {
    /// Whether the public path must be checked again: the URL callers use
    /// changed (a custom domain's name, mapping or record).
    pub fn changes_public_path(&self) -> bool {
        self.domain.is_change()
    }

    /// Adds the parts' changes to the core's (`changes`, in `up`'s order):
    /// each part's together, after the core's changes of kinds before its
    /// first kind (`kinds!`'s order).
    pub fn add_changes(&self, desired: &DesiredParts, changes: &mut Vec<Change>) {
        let parts = [
            (ALARMS_KINDS[0], self.alarms.changes(&desired.alarms)),
            (
                DOMAIN_KINDS[0],
                domain::changes(desired.domain.as_ref(), &self.domain),
            ),
        ];
        for (first, part) in parts {
            let at = changes
                .iter()
                .rposition(|c| c.kind <= first)
                .map_or(0, |i| i + 1);
            changes.splice(at..at, part);
        }
    }
}

/// The parts' resources listed at `kind` (each part's all at its first
/// kind), for `status` and `destroy`: the domain's in the order a teardown
/// deletes them, the alarms' in `up`'s.
pub fn found_at(kind: Kind, desired: &DesiredParts, actual: &ActualParts) -> Vec<Found> {
    if kind == DOMAIN_KINDS[0] {
        domain::found_all(&actual.domain)
    } else if kind == ALARMS_KINDS[0] {
        actual.alarms.found(&desired.alarms)
    } else {
        Vec::new()
    }
}

/// Whether `status` tells a kind's resources apart by name: the alarms'
/// kinds have several resources each.
pub fn by_name(kind: Kind) -> bool {
    ALARMS_KINDS.contains(&kind)
}

/// Where a part's kind goes in a teardown, among the core's ranks
/// (`teardown::teardown_rank`: 0 the API's permission, 1 the REST API, ...
/// 11 the repository); `None` for a kind that is no part's.
pub fn teardown_rank(kind: Kind) -> Option<u8> {
    if DOMAIN_KINDS.contains(&kind) {
        // Before the REST API (1) its mapping points at: a mapped API
        // cannot be deleted. `domain::remove` deletes its parts in their
        // own order.
        return Some(0);
    }
    match kind {
        // The alarms first, so that none pages anyone about the stage
        // going away; the topic after the repository (11), last (it takes
        // its subscriptions).
        Kind::CloudWatchAlarm => Some(0),
        Kind::SnsSubscription => Some(12),
        Kind::SnsTopic => Some(13),
        _ => None,
    }
}

/// The parts' deletes of a teardown, one found resource at a time; each is
/// idempotent, so a run stopped anywhere is finished by the next.
#[derive(Debug, Default)]
pub struct PartsRemoval {
    /// The domain's parts all go at its first listed resource, in their
    /// own order.
    domain_removed: bool,
}

impl PartsRemoval {
    pub async fn remove(
        &mut self,
        ui: &Ui,
        clients: &Clients,
        desired: &DesiredParts,
        actual: &ActualParts,
        found: &Found,
    ) -> Result<()> {
        if DOMAIN_KINDS.contains(&found.kind) {
            if !self.domain_removed {
                domain::remove(ui, clients, &domain::everything(&actual.domain)).await?;
                self.domain_removed = true;
            }
        } else if ALARMS_KINDS.contains(&found.kind) {
            let step = ui.step(format!("{} {}", found.kind, found.name));
            let said =
                alarms::delete_found(clients, &desired.alarms, &actual.alarms, found).await?;
            step.finish(said);
        }
        Ok(())
    }
}

/// What `apply_beside_build` hands to the steps after the API: the
/// certificate's ARN (`None`: the stage has no custom domain).
#[derive(Debug, Default)]
pub struct Prepared {
    certificate_arn: Option<String>,
}

/// Beside the image build, before the API: the custom domain's
/// certificate, requested and validated (ACM takes its time to issue it).
pub async fn apply_beside_build(
    ui: &Ui,
    clients: &Clients,
    desired: &DesiredParts,
    actual: &ActualParts,
    plan: &PartsPlan,
) -> Result<Prepared> {
    let certificate_arn = domain::apply_certificate(
        ui,
        clients,
        desired.domain.as_ref(),
        &actual.domain,
        &plan.domain,
    )
    .await?;
    Ok(Prepared { certificate_arn })
}

/// Once the API exists: the alarms that watch it.
pub async fn apply_with_api(
    ui: &Ui,
    clients: &Clients,
    desired: &DesiredParts,
    actual: &ActualParts,
    plan: &PartsPlan,
) -> Result<()> {
    if plan.alarms.is_change() {
        lock::still_held().await?;
        alarms::apply(ui, clients, &desired.alarms, &actual.alarms, &plan.alarms).await?;
    }
    Ok(())
}

/// After the API's permission on the alias: the custom domain's name, its
/// mapping to the stage, the alias record, and what of one is no longer
/// wanted.
pub async fn apply_after_permission(
    ui: &Ui,
    clients: &Clients,
    desired: &DesiredParts,
    actual: &ActualParts,
    plan: &PartsPlan,
    prepared: &Prepared,
    api_id: &str,
) -> Result<()> {
    if desired.domain.is_some() || plan.domain.is_change() {
        lock::still_held().await?;
        domain::apply_domain(
            ui,
            clients,
            desired.domain.as_ref(),
            &actual.domain,
            &plan.domain,
            prepared.certificate_arn.as_deref(),
            api_id,
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::apigw;
    use crate::stage::actual::ActualStage;
    use crate::stage::desired::DesiredStage;
    use crate::stage::teardown::plan;
    use crate::stage::teardown::tests::{kinds, survey, tagged_api};

    fn kinds_of(changes: &[Change]) -> Vec<Kind> {
        changes.iter().map(|c| c.kind).collect()
    }

    #[test]
    fn the_custom_domain_goes_before_the_api_it_maps() {
        let stage = Stage::defaults("shop", "dev", "us-east-1");
        let api = tagged_api(&stage, Vec::new());
        let domain = apigw::ActualDomainName {
            name: "forecast.example.com".into(),
            regional_domain_name: "d-1".into(),
            regional_hosted_zone_id: "Z1".into(),
            certificate_arn: Some("cert".into()),
            security_policy: Some(apigw::SECURITY_POLICY.into()),
            tags: stage.tags(),
            mappings: vec![apigw::BasePathMapping {
                base_path: apigw::NO_BASE_PATH.into(),
                rest_api_id: "a1".into(),
                stage: "dev".into(),
            }],
        };
        let teardown = plan(&survey(ActualStage {
            api: Some(api),
            parts: ActualParts {
                domain: crate::stage::domain::ActualDomain {
                    domain_names: vec![domain],
                    ..Default::default()
                },
                ..Default::default()
            },
            ..ActualStage::default()
        }));
        let kinds = kinds(&teardown.remove);
        let at = |kind: Kind| kinds.iter().position(|k| *k == kind).unwrap();
        assert!(
            at(Kind::ApiBasePathMapping) < at(Kind::ApiRestApi),
            "{kinds:?}"
        );
        assert!(at(Kind::ApiDomainName) < at(Kind::ApiRestApi), "{kinds:?}");
        // Listed in the order they go: the mapping before its domain name.
        assert!(
            at(Kind::ApiBasePathMapping) < at(Kind::ApiDomainName),
            "{kinds:?}"
        );
    }

    #[test]
    fn alarms_go_first_and_the_topic_last() {
        use crate::aws::alarms::ActualAlarm;
        use crate::aws::sns::{ActualSubscription, ActualTopic};
        use crate::stage::alarms::ActualAlarms;
        let alarm = |name: &str| ActualAlarm {
            name: name.into(),
            arn: format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"),
            namespace: "AWS/Lambda".into(),
            metric: "Errors".into(),
            dimensions: Default::default(),
            statistic: None,
            threshold: 0.0,
            period_s: 60,
            evaluation_periods: 1,
            datapoints_to_alarm: 1,
            treat_missing_data: "missing".into(),
            alarm_actions: Vec::new(),
            ok_actions: Vec::new(),
            comparison: String::new(),
            description: String::new(),
            state: "OK".into(),
            reason: String::new(),
            since: None,
            tags: Default::default(),
        };
        let actual = ActualStage {
            log_group: Some(crate::aws::logs::ActualLogGroup {
                name: "/aws/lambda/shop-dev".into(),
                retention_days: Some(30),
                tags: Default::default(),
            }),
            parts: ActualParts {
                alarms: ActualAlarms {
                    topic: Some(ActualTopic {
                        arn: "arn:aws:sns:us-east-1:123456789012:shop-dev-alarms".into(),
                        tags: Default::default(),
                        subscriptions: vec![ActualSubscription {
                            protocol: "email".into(),
                            endpoint: "ops@example.com".into(),
                            arn: None,
                        }],
                    }),
                    alarms: vec![alarm("shop-dev-errors"), alarm("shop-dev-5xx-rate")],
                    foreign: Vec::new(),
                },
                ..Default::default()
            },
            ..ActualStage::default()
        };
        let teardown = plan(&survey(actual));
        let kinds = kinds(&teardown.remove);
        assert_eq!(
            kinds,
            [
                Kind::CloudWatchAlarm,
                Kind::CloudWatchAlarm,
                Kind::LogGroup,
                Kind::SnsSubscription,
                Kind::SnsTopic,
            ],
            "{teardown:?}"
        );
        assert_eq!(
            teardown.remove[3].name,
            "shop-dev-alarms/email:ops@example.com"
        );
    }

    #[test]
    fn each_part_s_kinds_are_together_in_up_s_order() {
        // `add_changes` and `found_at` place a part at its first kind.
        for part in [DOMAIN_KINDS, ALARMS_KINDS] {
            let at = Kind::ALL.iter().position(|k| *k == part[0]).unwrap();
            assert_eq!(&Kind::ALL[at..at + part.len()], part);
        }
    }

    #[test]
    fn the_parts_changes_go_where_up_makes_them() {
        let mut stage = crate::stage::domain::tests::stage(None, Some("Z1"), None);
        stage.alarms.enabled = true;
        let desired = DesiredStage::new(&stage, Names::new(&stage, "123456789012"));
        let actual = ActualStage::default();
        let changes = crate::stage::plan::plan(&desired, None, &actual)
            .changes(&desired)
            .changes;
        let mut kinds = kinds_of(&changes);
        kinds.dedup();
        let first_part = kinds.iter().position(|k| ALARMS_KINDS.contains(k)).unwrap();
        // The alarms after the API, before its permission; the domain last.
        assert_eq!(
            kinds[first_part - 1..],
            [
                Kind::ApiStage,
                Kind::CloudWatchAlarm,
                Kind::LambdaPermission,
                Kind::AcmCertificate,
                Kind::DnsRecord,
                Kind::ApiDomainName,
                Kind::ApiBasePathMapping,
                Kind::DnsRecord,
            ],
            "{kinds:?}"
        );
    }
}
