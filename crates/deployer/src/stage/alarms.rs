//! The stage's alarms through the typed inventory: what `[alarms]` wants
//! (the alarms, the stage's own topic and its subscriptions), what AWS
//! has, the plan between them, its apply, and what `status` and `destroy`
//! find. One of the stage's optional [`super::parts`], through which the
//! core (`desired`, `actual`, `plan`, `apply`, `teardown`) calls in.
//!
//! The alarms (named `{app}-{stage}-{id}`, see `config::alarms::AlarmId`):
//! API Gateway's `5XXError` (Average: the share of requests answered 5XX)
//! and `Latency` (p99) on the REST API's stage (dimensions `ApiName`,
//! `Stage`), and Lambda's `Errors`, `Throttles` and, with provisioned
//! concurrency, `ProvisionedConcurrencySpilloverInvocations` (Sum) on the
//! stage's alias (dimensions `FunctionName`, `Resource` = `function:alias`:
//! "Types of metrics for Lambda functions", the Resource dimension is a
//! version or alias — so the smoke test's direct invocations of a new
//! version never page anyone, only callers' traffic does). Each alarm
//! tells every topic of `notify` on ALARM and again on OK.

use std::collections::BTreeMap;

use anyhow::Result;

use super::actual::Found;
use crate::aws::alarms::{self as cw, ActualAlarm, AlarmField, AlarmStatistic, DesiredAlarm};
use crate::aws::sns::{self, ActualSubscription, ActualTopic, DesiredTopic, TopicField};
use crate::aws::{AwsError, Clients, Outcome};
use crate::config::Stage;
use crate::config::alarms::AlarmId;
use crate::names::Names;
use crate::plan::{Action, Change, FieldChange, Kind, NoField};
use crate::ui::Ui;

/// What `[alarms]` wants of the stage.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredAlarms {
    /// The stage's own topic, when `notify` has an address or a URL.
    pub topic: Option<DesiredTopic>,
    /// Its subscriptions: (protocol, endpoint).
    pub subscriptions: Vec<(String, String)>,
    pub alarms: Vec<DesiredAlarm>,
    /// Every alarm name the stage can have, wanted or not: read, so that
    /// one no longer wanted is found and removed.
    pub all_names: Vec<String>,
    /// The own topic's name and ARN, wanted or not (to find one to remove).
    pub topic_name: String,
    pub topic_arn: String,
    pub tags: BTreeMap<String, String>,
}

impl DesiredAlarms {
    pub fn new(stage: &Stage, names: &Names) -> DesiredAlarms {
        let spec = &stage.alarms;
        let tags = stage.tags();
        let topic_arn = names.alarm_topic_arn();
        let topic = spec.wants_own_topic().then(|| DesiredTopic {
            name: stage.alarm_topic_name(),
            arn: topic_arn.clone(),
            tags: tags.clone(),
        });
        let subscriptions = if topic.is_some() {
            spec.notify
                .iter()
                .filter_map(|t| t.subscription())
                .map(|(protocol, endpoint)| (protocol.to_string(), endpoint.to_string()))
                .collect()
        } else {
            Vec::new()
        };
        let mut actions: Vec<String> = spec.given_topics().iter().map(|t| t.to_string()).collect();
        if topic.is_some() {
            actions.push(topic_arn.clone());
        }
        let api = BTreeMap::from([
            ("ApiName".to_string(), stage.api_name()),
            ("Stage".to_string(), stage.name.clone()),
        ]);
        let alias = BTreeMap::from([
            ("FunctionName".to_string(), stage.function_name()),
            (
                "Resource".to_string(),
                format!("{}:{}", stage.function_name(), stage.alias_name()),
            ),
        ]);
        let alarms = if spec.enabled {
            AlarmId::ALL
                .into_iter()
                .filter(|id| {
                    *id != AlarmId::Spillover || stage.function.provisioned_concurrency > 0
                })
                .map(|id| {
                    let (namespace, metric, dimensions, statistic, what) = match id {
                        AlarmId::ServerErrorRate => (
                            "AWS/ApiGateway",
                            "5XXError",
                            &api,
                            AlarmStatistic::Average,
                            "share of requests answered 5XX ([alarms] server-error-rate)",
                        ),
                        AlarmId::LatencyP99 => (
                            "AWS/ApiGateway",
                            "Latency",
                            &api,
                            AlarmStatistic::Percentile("p99".into()),
                            "p99 latency in ms ([alarms] latency-p99-ms)",
                        ),
                        AlarmId::Errors => (
                            "AWS/Lambda",
                            "Errors",
                            &alias,
                            AlarmStatistic::Sum,
                            "function errors per period ([alarms] error-count)",
                        ),
                        AlarmId::Throttles => (
                            "AWS/Lambda",
                            "Throttles",
                            &alias,
                            AlarmStatistic::Sum,
                            "throttled invocations per period ([alarms] throttle-count)",
                        ),
                        AlarmId::Spillover => (
                            "AWS/Lambda",
                            "ProvisionedConcurrencySpilloverInvocations",
                            &alias,
                            AlarmStatistic::Sum,
                            "invocations beyond provisioned concurrency per period \
                             ([alarms] spillover-count)",
                        ),
                    };
                    let window = spec.window(id);
                    let name = stage.alarm_name(id);
                    DesiredAlarm {
                        arn: names.alarm_arn(&name),
                        description: format!(
                            "{} of stage {} of {}: {what}; made by deployer",
                            metric, stage.name, stage.app
                        ),
                        name,
                        namespace: namespace.to_string(),
                        metric: metric.to_string(),
                        dimensions: dimensions.clone(),
                        statistic,
                        threshold: spec.threshold(id),
                        period_s: window.period_s,
                        evaluation_periods: window.evaluation_periods,
                        datapoints_to_alarm: window.datapoints_to_alarm,
                        treat_missing_data: window.treat_missing_data.as_str().to_string(),
                        actions: actions.clone(),
                        tags: tags.clone(),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        DesiredAlarms {
            topic,
            subscriptions,
            alarms,
            all_names: AlarmId::ALL
                .iter()
                .map(|id| stage.alarm_name(*id))
                .collect(),
            topic_name: stage.alarm_topic_name(),
            topic_arn,
            tags,
        }
    }

    fn ours(&self, tags: &BTreeMap<String, String>) -> bool {
        self.tags.iter().all(|(k, v)| tags.get(k) == Some(v))
    }

    /// A subscription as output names it: `topic/protocol:endpoint`.
    pub fn subscription_label(&self, protocol: &str, endpoint: &str) -> String {
        format!("{}/{protocol}:{endpoint}", self.topic_name)
    }
}

/// A warning for `plan` and `up` (`desired::warnings`), when alarms are
/// on but tell no one.
pub fn warning(stage: &Stage) -> Option<String> {
    let spec = &stage.alarms;
    (spec.enabled && spec.notify.is_empty()).then(|| {
        "[alarms] is on but `notify` is empty: the alarms change state and tell no one; add \
         a topic ARN, an e-mail address or an https:// URL to [alarms] notify"
            .to_string()
    })
}

/// Refuses, before anything changes, a `notify` topic in another Region
/// than the stage's: deploy.toml checks it against the file's region, but
/// `--region` may move the stage, and PutMetricAlarm would refuse it half
/// way through `up` (an alarm notifies only its own Region's topics).
pub fn check_topic_regions(stage: &Stage) -> Result<()> {
    for topic in stage.alarms.given_topics() {
        let region = crate::names::sns_topic_region(topic).unwrap_or_default();
        if stage.alarms.enabled && region != stage.region {
            return Err(crate::exit::Failure::tag(
                crate::exit::ExitStatus::Usage,
                anyhow::anyhow!(
                    "[alarms] notify: topic {topic} is in {region}, but the stage runs in {} \
                     (--region): a CloudWatch alarm notifies only topics in its own Region",
                    stage.region
                ),
            ));
        }
    }
    Ok(())
}

/// What AWS has of the stage's alarms: those of its names that carry its
/// tags, and its own topic when it carries them (a topic or alarm of that
/// name but not the stage's tags is someone else's, and left alone).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActualAlarms {
    pub topic: Option<ActualTopic>,
    pub alarms: Vec<ActualAlarm>,
    /// The ARNs of those with the stage's names but not its tags.
    pub foreign: Vec<String>,
}

/// Reads every alarm name the stage can have and its own topic.
pub async fn read(desired: &DesiredAlarms, clients: &Clients) -> Result<ActualAlarms> {
    let (alarms, topic) = tokio::try_join!(
        cw::read_alarms(&clients.cloudwatch, &desired.all_names),
        sns::read_topic(&clients.sns, &desired.topic_arn),
    )?;
    let foreign = topic
        .iter()
        .filter(|t| !desired.ours(&t.tags))
        .map(|t| t.arn.clone())
        .chain(
            alarms
                .iter()
                .filter(|a| !desired.ours(&a.tags))
                .map(|a| a.arn.clone()),
        )
        .collect();
    Ok(ActualAlarms {
        topic: topic.filter(|t| desired.ours(&t.tags)),
        alarms: alarms
            .into_iter()
            .filter(|a| desired.ours(&a.tags))
            .collect(),
        foreign,
    })
}

/// Refuses, before anything changes, to put an alarm or make a topic over
/// one that has the stage's name but not its tags: it may be another
/// team's (PutMetricAlarm would replace its definition, Subscribe add to its
/// audience). The error says how to make it the stage's.
pub fn check_alarms_are_ours(desired: &DesiredAlarms, actual: &ActualAlarms) -> Result<()> {
    let wanted = |arn: &String| {
        desired.alarms.iter().any(|a| &a.arn == arn)
            || desired.topic.as_ref().is_some_and(|t| &t.arn == arn)
    };
    let Some(arn) = actual.foreign.iter().find(|arn| wanted(arn)) else {
        return Ok(());
    };
    let tags: Vec<String> = desired
        .tags
        .iter()
        .map(|(k, v)| format!("Key={k},Value={v}"))
        .collect();
    let service = if arn.contains(":sns:") {
        "sns"
    } else {
        "cloudwatch"
    };
    Err(crate::exit::Failure::tag(
        crate::exit::ExitStatus::Usage,
        anyhow::anyhow!(
            "{arn} has the stage's name but not its tags: it may belong to someone else, so \
             it is left untouched and nothing was changed. If it is this stage's, tag it and \
             run again: aws {service} tag-resource --resource-arn {arn} --tags {}; otherwise \
             delete or rename it",
            tags.join(" ")
        ),
    ))
}

/// The stage's alarms and their states, for `metrics` (which surveys
/// nothing else): every name the stage can have, those with its tags.
pub async fn states(stage: &Stage, clients: &Clients) -> Result<Vec<ActualAlarm>, AwsError> {
    let names: Vec<String> = AlarmId::ALL
        .iter()
        .map(|id| stage.alarm_name(*id))
        .collect();
    let tags = stage.tags();
    Ok(cw::read_alarms(&clients.cloudwatch, &names)
        .await?
        .into_iter()
        .filter(|a| tags.iter().all(|(k, v)| a.tags.get(k) == Some(v)))
        .collect())
}

impl ActualAlarms {
    /// What exists, in `up`'s order, for `status` and `destroy`.
    pub fn found(&self, desired: &DesiredAlarms) -> Vec<Found> {
        let mut found = Vec::new();
        if let Some(topic) = &self.topic {
            found.push(Found {
                kind: Kind::SnsTopic,
                name: desired.topic_name.clone(),
            });
            for s in &topic.subscriptions {
                found.push(Found {
                    kind: Kind::SnsSubscription,
                    name: desired.subscription_label(&s.protocol, &s.endpoint),
                });
            }
        }
        for alarm in &self.alarms {
            found.push(Found {
                kind: Kind::CloudWatchAlarm,
                name: alarm.name.clone(),
            });
        }
        found
    }
}

/// The alarms' part of the stage's plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmsPlan {
    pub topic: Option<Action<TopicField>>,
    /// (protocol, endpoint, action): `Create` for a new endpoint, `Delete`
    /// for one no longer in `notify`.
    pub subscriptions: Vec<(String, String, Action<NoField>)>,
    pub alarms: Vec<AlarmChange>,
}

/// One alarm's part of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmChange {
    pub name: String,
    /// `None` for an alarm to delete.
    pub wanted: Option<DesiredAlarm>,
    pub action: Action<AlarmField>,
    /// The updated fields' old and new values.
    pub values: Vec<FieldChange>,
}

impl AlarmsPlan {
    pub fn is_change(&self) -> bool {
        self.topic.as_ref().is_some_and(Action::is_change)
            || self.subscriptions.iter().any(|(_, _, a)| a.is_change())
            || self.alarms.iter().any(|a| a.action.is_change())
    }
}

/// Desired vs actual. Changes nothing.
pub fn plan(desired: &DesiredAlarms, actual: &ActualAlarms) -> AlarmsPlan {
    let topic = match (&desired.topic, &actual.topic) {
        (Some(wanted), actual) => Some(sns::diff_topic(wanted, actual.as_ref())),
        (None, Some(_)) => Some(Action::Delete),
        (None, None) => None,
    };
    let existing: &[ActualSubscription] = actual
        .topic
        .as_ref()
        .map_or(&[], |t| t.subscriptions.as_slice());
    let mut subscriptions: Vec<(String, String, Action<NoField>)> = desired
        .subscriptions
        .iter()
        .map(|(protocol, endpoint)| {
            let there = existing
                .iter()
                .any(|s| &s.protocol == protocol && &s.endpoint == endpoint);
            (
                protocol.clone(),
                endpoint.clone(),
                Action::create_if(!there),
            )
        })
        .collect();
    for s in existing {
        let wanted = desired
            .subscriptions
            .iter()
            .any(|(p, e)| p == &s.protocol && e == &s.endpoint);
        if !wanted {
            subscriptions.push((s.protocol.clone(), s.endpoint.clone(), Action::Delete));
        }
    }
    let mut alarms = Vec::new();
    for name in &desired.all_names {
        let wanted = desired.alarms.iter().find(|a| &a.name == name);
        let found = actual.alarms.iter().find(|a| &a.name == name);
        let (action, values) = match (wanted, found) {
            (Some(wanted), found) => {
                let action = cw::diff_alarm(wanted, found);
                let values = found
                    .map(|f| alarm_values(wanted, f, &action))
                    .unwrap_or_default();
                (action, values)
            }
            (None, Some(_)) => (Action::Delete, Vec::new()),
            (None, None) => continue,
        };
        alarms.push(AlarmChange {
            name: name.clone(),
            wanted: wanted.cloned(),
            action,
            values,
        });
    }
    AlarmsPlan {
        topic,
        subscriptions,
        alarms,
    }
}

/// The old and new value of each updated field of an alarm.
fn alarm_values(
    wanted: &DesiredAlarm,
    actual: &ActualAlarm,
    action: &Action<AlarmField>,
) -> Vec<FieldChange> {
    let Action::Update(fields) = action else {
        return Vec::new();
    };
    let join = |v: &[String]| v.join(", ");
    fields
        .iter()
        .map(|field| match field {
            AlarmField::Metric => FieldChange::new(
                *field,
                Some(format!("{}/{}", actual.namespace, actual.metric)),
                Some(format!("{}/{}", wanted.namespace, wanted.metric)),
            ),
            AlarmField::Threshold => {
                FieldChange::new(*field, Some(actual.threshold), Some(wanted.threshold))
            }
            AlarmField::Period => FieldChange::new(
                *field,
                Some(format!("{} s", actual.period_s)),
                Some(format!("{} s", wanted.period_s)),
            ),
            AlarmField::EvaluationPeriods => FieldChange::new(
                *field,
                Some(actual.evaluation_periods),
                Some(wanted.evaluation_periods),
            ),
            AlarmField::DatapointsToAlarm => FieldChange::new(
                *field,
                Some(actual.datapoints_to_alarm),
                Some(wanted.datapoints_to_alarm),
            ),
            AlarmField::TreatMissingData => FieldChange::new(
                *field,
                Some(&actual.treat_missing_data),
                Some(&wanted.treat_missing_data),
            ),
            AlarmField::Actions => FieldChange::new(
                *field,
                Some(join(&actual.alarm_actions)),
                Some(join(&wanted.actions)),
            ),
            AlarmField::Description => {
                FieldChange::new(*field, Some(&actual.description), Some(&wanted.description))
            }
            AlarmField::Tags => FieldChange::new(*field, None::<String>, Some("the stage's tags")),
        })
        .collect()
}

impl AlarmsPlan {
    /// The changes, in `up`'s order: topic, subscriptions, alarms.
    pub fn changes(&self, desired: &DesiredAlarms) -> Vec<Change> {
        let mut changes = Vec::new();
        if let Some(topic) = &self.topic {
            changes.push(Change::new(Kind::SnsTopic, &desired.topic_name, topic));
        }
        for (protocol, endpoint, action) in &self.subscriptions {
            changes.push(Change::new(
                Kind::SnsSubscription,
                desired.subscription_label(protocol, endpoint),
                action,
            ));
        }
        for alarm in &self.alarms {
            changes.push(
                Change::new(Kind::CloudWatchAlarm, &alarm.name, &alarm.action)
                    .with_values(alarm.values.clone()),
            );
        }
        changes
    }
}

fn outcome_text(outcome: Outcome) -> &'static str {
    super::apply::outcome_text(outcome)
}

/// Carries out `plan`: the topic and its new subscriptions before the
/// alarms that point at it; removals the other way round (alarms, then
/// subscriptions, then the topic), so nothing points at what is gone.
pub async fn apply(
    ui: &Ui,
    clients: &Clients,
    desired: &DesiredAlarms,
    actual: &ActualAlarms,
    plan: &AlarmsPlan,
) -> Result<()> {
    if !plan.is_change() {
        return Ok(());
    }
    if let (Some(wanted), Some(action)) = (&desired.topic, &plan.topic)
        && action.is_change()
    {
        let step = ui.step(format!("{} {}", Kind::SnsTopic, wanted.name));
        let outcome = sns::apply_topic(&clients.sns, wanted, action).await?;
        step.finish(outcome_text(outcome));
    }
    for (protocol, endpoint, action) in &plan.subscriptions {
        if *action == Action::Create {
            let label = desired.subscription_label(protocol, endpoint);
            let step = ui.step(format!("{} {label}", Kind::SnsSubscription));
            sns::subscribe(&clients.sns, &desired.topic_arn, protocol, endpoint).await?;
            step.finish(if protocol == "email" {
                "created, pending until the address confirms it (SNS mails a link)"
            } else {
                "created, pending until the endpoint confirms it (SNS posts a SubscribeURL)"
            });
        }
    }
    for AlarmChange {
        name,
        wanted,
        action,
        ..
    } in &plan.alarms
    {
        if !action.is_change() {
            continue;
        }
        let step = ui.step(format!("{} {name}", Kind::CloudWatchAlarm));
        let outcome = match wanted {
            Some(wanted) => cw::apply_alarm(&clients.cloudwatch, wanted, action).await?,
            None => {
                cw::delete_alarms(&clients.cloudwatch, std::slice::from_ref(name)).await?;
                Outcome::Deleted
            }
        };
        step.finish(outcome_text(outcome));
    }
    let topic_goes = plan.topic == Some(Action::Delete);
    for (protocol, endpoint, action) in &plan.subscriptions {
        if *action == Action::Delete && !topic_goes {
            let label = desired.subscription_label(protocol, endpoint);
            let step = ui.step(format!("{} {label}", Kind::SnsSubscription));
            step.finish(unsubscribe(clients, actual, protocol, endpoint).await?);
        }
    }
    if topic_goes {
        let step = ui.step(format!("{} {}", Kind::SnsTopic, desired.topic_name));
        sns::delete_topic(&clients.sns, &desired.topic_arn).await?;
        step.finish("deleted with its subscriptions");
    }
    Ok(())
}

/// Removes the subscription of `protocol:endpoint`; what is said of it.
async fn unsubscribe(
    clients: &Clients,
    actual: &ActualAlarms,
    protocol: &str,
    endpoint: &str,
) -> Result<&'static str> {
    let arn = actual
        .topic
        .iter()
        .flat_map(|t| &t.subscriptions)
        .find(|s| s.protocol == protocol && s.endpoint == endpoint)
        .and_then(|s| s.arn.clone());
    Ok(match arn {
        Some(arn) => {
            sns::unsubscribe(&clients.sns, &arn).await?;
            "deleted"
        }
        // SNS gives no ARN to unsubscribe before confirmation.
        None => "left pending: SNS deletes an unconfirmed subscription after three days",
    })
}

/// Deletes one resource `destroy` found (`found`, from [`ActualAlarms::found`]).
pub async fn delete_found(
    clients: &Clients,
    desired: &DesiredAlarms,
    actual: &ActualAlarms,
    found: &Found,
) -> Result<&'static str> {
    match found.kind {
        Kind::CloudWatchAlarm => {
            cw::delete_alarms(&clients.cloudwatch, std::slice::from_ref(&found.name)).await?;
            Ok("removed")
        }
        Kind::SnsSubscription => {
            let Some(topic) = &actual.topic else {
                return Ok("gone");
            };
            let subscription = topic
                .subscriptions
                .iter()
                .find(|s| desired.subscription_label(&s.protocol, &s.endpoint) == found.name);
            match subscription {
                Some(s) => unsubscribe(clients, actual, &s.protocol, &s.endpoint)
                    .await
                    .map(|said| {
                        if said == "deleted" {
                            "removed"
                        } else {
                            "goes with the topic"
                        }
                    }),
                None => Ok("gone"),
            }
        }
        Kind::SnsTopic => {
            sns::delete_topic(&clients.sns, &desired.topic_arn).await?;
            Ok("removed with its subscriptions")
        }
        _ => Ok("not an alarm resource"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::alarms::NotifyTarget;

    fn stage(enabled: bool) -> Stage {
        let mut stage = Stage::defaults("shop", "prod", "us-east-1");
        stage.alarms.enabled = enabled;
        stage
    }

    fn desired(stage: &Stage) -> DesiredAlarms {
        DesiredAlarms::new(stage, &Names::new(stage, "123456789012"))
    }

    #[test]
    fn a_topic_left_behind_by_region_is_a_usage_error() {
        let mut s = stage(true);
        s.alarms.notify = vec![NotifyTarget::Topic(
            "arn:aws:sns:us-east-1:123456789012:ops".into(),
        )];
        assert!(check_topic_regions(&s).is_ok());
        s.region = "eu-west-1".into();
        let err = check_topic_regions(&s).unwrap_err();
        assert!(
            err.to_string().contains("only topics in its own Region"),
            "{err}"
        );
        assert_eq!(crate::exit::classify(&err), crate::exit::ExitStatus::Usage);
    }

    #[test]
    fn disabled_alarms_plan_nothing_and_show_nothing() {
        let s = stage(false);
        let d = desired(&s);
        assert!(d.alarms.is_empty() && d.topic.is_none());
        let plan = plan(&d, &ActualAlarms::default());
        assert!(plan.changes(&d).is_empty());
    }

    #[test]
    fn a_protected_stage_gets_four_alarms_and_spillover_with_provisioned_concurrency() {
        let mut s = stage(true);
        let names: Vec<String> = desired(&s).alarms.into_iter().map(|a| a.name).collect();
        assert_eq!(
            names,
            [
                "shop-prod-5xx-rate",
                "shop-prod-latency-p99",
                "shop-prod-errors",
                "shop-prod-throttles"
            ]
        );
        s.function.provisioned_concurrency = 1;
        let d = desired(&s);
        let spill = d
            .alarms
            .iter()
            .find(|a| a.name == "shop-prod-spillover")
            .unwrap();
        assert_eq!(spill.dimensions["Resource"], "shop-prod:prod");
        let rate = &d.alarms[0];
        assert_eq!((rate.metric.as_str(), rate.threshold), ("5XXError", 0.05));
        assert_eq!(rate.dimensions["ApiName"], "shop-prod");
        assert_eq!(rate.dimensions["Stage"], "prod");
        // No one to tell: a warning, no topic.
        assert!(warning(&s).is_some() && d.topic.is_none());
        s.alarms.notify = vec![NotifyTarget::Email("a@b.co".into())];
        assert!(warning(&s).is_none());
    }

    #[test]
    fn a_threshold_change_is_an_update_with_its_values_and_turning_off_deletes() {
        let mut s = stage(true);
        s.alarms.notify = vec![
            NotifyTarget::Topic("arn:aws:sns:us-east-1:123456789012:ops".into()),
            NotifyTarget::Email("ops@example.com".into()),
        ];
        let d = desired(&s);
        let topic = d.topic.clone().unwrap();
        let actual = ActualAlarms {
            topic: Some(ActualTopic {
                arn: topic.arn.clone(),
                tags: topic.tags.clone(),
                subscriptions: vec![ActualSubscription {
                    protocol: "email".into(),
                    endpoint: "ops@example.com".into(),
                    arn: None,
                }],
            }),
            alarms: d.alarms.iter().map(DesiredAlarm::as_put).collect(),
            foreign: Vec::new(),
        };
        assert!(!plan(&d, &actual).is_change());
        // Both topics are told, on ALARM and on OK.
        assert_eq!(
            d.alarms[0].actions,
            [
                "arn:aws:sns:us-east-1:123456789012:ops",
                "arn:aws:sns:us-east-1:123456789012:shop-prod-alarms"
            ]
        );

        s.alarms.server_error_rate = 0.1;
        let d2 = desired(&s);
        let p = plan(&d2, &actual);
        let changes = p.changes(&d2);
        let rate = changes
            .iter()
            .find(|c| c.name == "shop-prod-5xx-rate")
            .unwrap();
        let json = serde_json::to_value(rate).unwrap();
        assert_eq!(json["action"], "update");
        assert_eq!(json["fields"], serde_json::json!(["threshold"]));
        assert_eq!(
            json["values"],
            serde_json::json!([{"field": "threshold", "old": "0.05", "new": "0.1"}])
        );

        // Off: every alarm, the subscription and the own topic go; the
        // given topic is never named.
        s.alarms.enabled = false;
        let d3 = desired(&s);
        let p = plan(&d3, &actual);
        let changes = p.changes(&d3);
        assert!(
            changes
                .iter()
                .all(|c| c.action == crate::plan::ChangeAction::Delete)
        );
        assert_eq!(changes.len(), 1 + 1 + 4, "{changes:?}");
        assert!(!changes.iter().any(|c| c.name.contains("123456789012:ops")));
    }

    #[test]
    fn an_alarm_of_the_stage_s_name_without_its_tags_stops_up() {
        let s = stage(true);
        let d = desired(&s);
        let theirs = ActualAlarms {
            foreign: vec![d.alarms[1].arn.clone()],
            ..ActualAlarms::default()
        };
        let err = check_alarms_are_ours(&d, &theirs).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("shop-prod-latency-p99") && text.contains("aws cloudwatch tag-resource"),
            "{text}"
        );
        assert_eq!(crate::exit::classify(&err), crate::exit::ExitStatus::Usage);
        // Not wanted (alarms off): left alone, no refusal.
        let off = desired(&stage(false));
        assert!(check_alarms_are_ours(&off, &theirs).is_ok());
    }

    #[test]
    fn someone_else_s_alarm_of_that_name_is_not_the_stage_s() {
        let s = stage(true);
        let d = desired(&s);
        let mut theirs = d.alarms[0].as_put();
        theirs.tags.clear();
        assert!(!d.ours(&theirs.tags));
        assert!(d.ours(&d.alarms[0].as_put().tags));
    }
}
