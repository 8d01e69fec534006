//! CloudWatch metric alarms: the stage's alarms by name (read with their
//! state and tags, diff, put, delete).
//!
//! What this relies on (PutMetricAlarm, DescribeAlarms, DeleteAlarms API
//! references; "Using Amazon CloudWatch alarms"): PutMetricAlarm creates
//! the alarm or replaces its whole definition, and an update keeps the
//! alarm's state ("When you update an existing alarm, its state is left
//! unchanged"), so a threshold change is an update, never a re-create; its
//! `Tags` apply only when it creates ("If you are using this operation to
//! update an existing alarm, any tags you specify in this parameter are
//! ignored"), so missing tags are put with TagResource. A new alarm starts
//! `INSUFFICIENT_DATA`. DescribeAlarms of names that do not exist answers
//! an empty list; DeleteAlarms deletes the names that exist ("If you
//! specify any incorrect alarm names, the alarms you specify with correct
//! names are still deleted") and may answer `ResourceNotFound`, which
//! counts as done.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, Statistic, Tag};
use futures_util::future::try_join_all;
use serde::Serialize;

use super::errors::{aws_error, none_if};
use super::permissions::{Declared, Scope, call};
use super::{AwsError, ErrorKind, Outcome, missing_tags};
use crate::plan::{Action, Field};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`):
/// each on the alarm's ARN ("Actions, resources, and condition keys for
/// Amazon CloudWatch", Service Authorization Reference: resource type
/// `alarm` for PutMetricAlarm, DescribeAlarms, DeleteAlarms, TagResource
/// and ListTagsForResource).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call(
            "DescribeAlarms",
            "cloudwatch:DescribeAlarms",
            Scope::StageAlarms,
        ),
        call(
            "ListTagsForResource",
            "cloudwatch:ListTagsForResource",
            Scope::StageAlarms,
        ),
        call(
            "PutMetricAlarm",
            "cloudwatch:PutMetricAlarm",
            Scope::StageAlarms,
        ),
        call("TagResource", "cloudwatch:TagResource", Scope::StageAlarms),
        call(
            "DeleteAlarms",
            "cloudwatch:DeleteAlarms",
            Scope::StageAlarms,
        ),
    ],
};

/// How a metric is summarized per period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmStatistic {
    Sum,
    Average,
    /// A percentile, as CloudWatch spells it (`p99`).
    Percentile(String),
}

/// One alarm as the stage wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredAlarm {
    pub name: String,
    pub arn: String,
    pub description: String,
    pub namespace: String,
    pub metric: String,
    pub dimensions: BTreeMap<String, String>,
    pub statistic: AlarmStatistic,
    /// Above this, the period breaches (`GreaterThanThreshold`).
    pub threshold: f64,
    pub period_s: i32,
    pub evaluation_periods: i32,
    pub datapoints_to_alarm: i32,
    pub treat_missing_data: String,
    /// Topic ARNs told on ALARM and again on OK (a page when it breaks,
    /// and when it recovers).
    pub actions: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// An alarm as CloudWatch has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActualAlarm {
    pub name: String,
    pub arn: String,
    #[serde(skip)]
    pub namespace: String,
    #[serde(skip)]
    pub metric: String,
    #[serde(skip)]
    pub dimensions: BTreeMap<String, String>,
    #[serde(skip)]
    pub statistic: Option<AlarmStatistic>,
    pub threshold: f64,
    pub period_s: i32,
    pub evaluation_periods: i32,
    pub datapoints_to_alarm: i32,
    pub treat_missing_data: String,
    #[serde(skip)]
    pub alarm_actions: Vec<String>,
    #[serde(skip)]
    pub ok_actions: Vec<String>,
    #[serde(skip)]
    pub comparison: String,
    #[serde(skip)]
    pub description: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub reason: String,
    /// When the state last changed (ISO 8601).
    pub since: Option<String>,
    #[serde(skip)]
    pub tags: BTreeMap<String, String>,
}

/// What of an alarm can differ from the desired one; each is carried by
/// one PutMetricAlarm, except the tags (TagResource).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmField {
    /// Namespace, metric, dimensions or statistic: what is watched.
    Metric,
    Threshold,
    Period,
    EvaluationPeriods,
    DatapointsToAlarm,
    TreatMissingData,
    /// The topics told on ALARM and OK.
    Actions,
    Description,
    Tags,
}

impl Field for AlarmField {}

/// The alarms of `names` that exist, with their state and tags.
pub async fn read_alarms(client: &Client, names: &[String]) -> Result<Vec<ActualAlarm>, AwsError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let answer = client
        .describe_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .send()
        .await
        .map_err(|e| aws_error("DescribeAlarms", names.join(", "), e))?;
    let found: Vec<&MetricAlarm> = answer
        .metric_alarms()
        .iter()
        .filter(|a| a.alarm_name().is_some() && a.alarm_arn().is_some())
        .collect();
    // Each alarm's tags, read side by side.
    let tags = try_join_all(found.iter().map(|alarm| alarm_tags(client, alarm))).await?;
    Ok(found
        .into_iter()
        .zip(tags)
        .map(|(alarm, tags)| actual_alarm(alarm, tags))
        .collect())
}

/// The tags of an alarm DescribeAlarms listed; none when it was deleted
/// between the two calls.
async fn alarm_tags(
    client: &Client,
    alarm: &MetricAlarm,
) -> Result<BTreeMap<String, String>, AwsError> {
    let name = alarm.alarm_name().unwrap_or_default();
    let arn = alarm.alarm_arn().unwrap_or_default();
    let tags = client
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await;
    Ok(
        none_if(ErrorKind::NotFound, "ListTagsForResource", name, tags)?
            .map(|answer| {
                answer
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

fn actual_alarm(alarm: &MetricAlarm, tags: BTreeMap<String, String>) -> ActualAlarm {
    let statistic = match (alarm.statistic(), alarm.extended_statistic()) {
        (_, Some(p)) => Some(AlarmStatistic::Percentile(p.to_string())),
        (Some(Statistic::Sum), None) => Some(AlarmStatistic::Sum),
        (Some(Statistic::Average), None) => Some(AlarmStatistic::Average),
        _ => None,
    };
    ActualAlarm {
        name: alarm.alarm_name().unwrap_or_default().to_string(),
        arn: alarm.alarm_arn().unwrap_or_default().to_string(),
        namespace: alarm.namespace().unwrap_or_default().to_string(),
        metric: alarm.metric_name().unwrap_or_default().to_string(),
        dimensions: alarm
            .dimensions()
            .iter()
            .filter_map(|d| Some((d.name()?.to_string(), d.value()?.to_string())))
            .collect(),
        statistic,
        threshold: alarm.threshold().unwrap_or_default(),
        period_s: alarm.period().unwrap_or_default(),
        evaluation_periods: alarm.evaluation_periods().unwrap_or_default(),
        datapoints_to_alarm: alarm
            .datapoints_to_alarm()
            .or(alarm.evaluation_periods())
            .unwrap_or_default(),
        treat_missing_data: alarm.treat_missing_data().unwrap_or("missing").to_string(),
        alarm_actions: alarm.alarm_actions().to_vec(),
        ok_actions: alarm.ok_actions().to_vec(),
        comparison: alarm
            .comparison_operator()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        description: alarm.alarm_description().unwrap_or_default().to_string(),
        state: alarm
            .state_value()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "INSUFFICIENT_DATA".into()),
        reason: alarm.state_reason().unwrap_or_default().to_string(),
        since: alarm.state_updated_timestamp().map(|t| t.to_string()),
        tags,
    }
}

/// What [`apply_alarm`] has to do.
pub fn diff_alarm(desired: &DesiredAlarm, actual: Option<&ActualAlarm>) -> Action<AlarmField> {
    let Some(actual) = actual else {
        return Action::Create;
    };
    let sorted = |v: &[String]| v.iter().cloned().collect::<BTreeSet<String>>();
    let wanted_actions = sorted(&desired.actions);
    let mut fields = BTreeSet::new();
    if actual.namespace != desired.namespace
        || actual.metric != desired.metric
        || actual.dimensions != desired.dimensions
        || actual.statistic.as_ref() != Some(&desired.statistic)
        || actual.comparison != ComparisonOperator::GreaterThanThreshold.as_str()
    {
        fields.insert(AlarmField::Metric);
    }
    if actual.threshold != desired.threshold {
        fields.insert(AlarmField::Threshold);
    }
    if actual.period_s != desired.period_s {
        fields.insert(AlarmField::Period);
    }
    if actual.evaluation_periods != desired.evaluation_periods {
        fields.insert(AlarmField::EvaluationPeriods);
    }
    if actual.datapoints_to_alarm != desired.datapoints_to_alarm {
        fields.insert(AlarmField::DatapointsToAlarm);
    }
    if actual.treat_missing_data != desired.treat_missing_data {
        fields.insert(AlarmField::TreatMissingData);
    }
    if sorted(&actual.alarm_actions) != wanted_actions
        || sorted(&actual.ok_actions) != wanted_actions
    {
        fields.insert(AlarmField::Actions);
    }
    if actual.description != desired.description {
        fields.insert(AlarmField::Description);
    }
    if missing_tags(&desired.tags, &actual.tags).next().is_some() {
        fields.insert(AlarmField::Tags);
    }
    Action::update_if(fields)
}

/// Carries out `action` on one alarm: puts its whole definition (a create
/// or an update of any field but the tags), puts missing tags, or deletes it.
pub async fn apply_alarm(
    client: &Client,
    desired: &DesiredAlarm,
    action: &Action<AlarmField>,
) -> Result<Outcome, AwsError> {
    let (outcome, put, tag) = match action {
        Action::Unchanged => return Ok(Outcome::Unchanged),
        Action::Delete => {
            delete_alarms(client, std::slice::from_ref(&desired.name)).await?;
            return Ok(Outcome::Deleted);
        }
        Action::Create => (Outcome::Created, true, false),
        Action::Update(fields) => {
            let mut put = false;
            let mut tag = false;
            for field in fields {
                match field {
                    AlarmField::Metric
                    | AlarmField::Threshold
                    | AlarmField::Period
                    | AlarmField::EvaluationPeriods
                    | AlarmField::DatapointsToAlarm
                    | AlarmField::TreatMissingData
                    | AlarmField::Actions
                    | AlarmField::Description => put = true,
                    AlarmField::Tags => tag = true,
                }
            }
            (Outcome::Updated, put, tag)
        }
    };
    if put {
        put_alarm(client, desired).await?;
    }
    if tag {
        client
            .tag_resource()
            .resource_arn(&desired.arn)
            .set_tags(Some(tags(&desired.tags)))
            .send()
            .await
            .map_err(|e| aws_error("TagResource", &desired.name, e))?;
    }
    Ok(outcome)
}

fn tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

async fn put_alarm(client: &Client, desired: &DesiredAlarm) -> Result<(), AwsError> {
    let mut put = client
        .put_metric_alarm()
        .alarm_name(&desired.name)
        .alarm_description(&desired.description)
        .actions_enabled(true)
        .set_alarm_actions(Some(desired.actions.clone()))
        .set_ok_actions(Some(desired.actions.clone()))
        .namespace(&desired.namespace)
        .metric_name(&desired.metric)
        .set_dimensions(Some(
            desired
                .dimensions
                .iter()
                .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                .collect(),
        ))
        .period(desired.period_s)
        .evaluation_periods(desired.evaluation_periods)
        .datapoints_to_alarm(desired.datapoints_to_alarm)
        .threshold(desired.threshold)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .treat_missing_data(&desired.treat_missing_data)
        .set_tags(Some(tags(&desired.tags)));
    put = match &desired.statistic {
        AlarmStatistic::Sum => put.statistic(Statistic::Sum),
        AlarmStatistic::Average => put.statistic(Statistic::Average),
        AlarmStatistic::Percentile(p) => put.extended_statistic(p),
    };
    put.send()
        .await
        .map_err(|e| aws_error("PutMetricAlarm", &desired.name, e))?;
    Ok(())
}

/// Deletes the alarms `names`; those already gone count as deleted.
pub async fn delete_alarms(client: &Client, names: &[String]) -> Result<(), AwsError> {
    if names.is_empty() {
        return Ok(());
    }
    let deleted = client
        .delete_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .send()
        .await;
    none_if(
        ErrorKind::NotFound,
        "DeleteAlarms",
        names.join(", "),
        deleted,
    )?;
    Ok(())
}

#[cfg(test)]
impl DesiredAlarm {
    /// The alarm as CloudWatch has it right after PutMetricAlarm made it.
    pub(crate) fn as_put(&self) -> ActualAlarm {
        ActualAlarm {
            name: self.name.clone(),
            arn: self.arn.clone(),
            namespace: self.namespace.clone(),
            metric: self.metric.clone(),
            dimensions: self.dimensions.clone(),
            statistic: Some(self.statistic.clone()),
            threshold: self.threshold,
            period_s: self.period_s,
            evaluation_periods: self.evaluation_periods,
            datapoints_to_alarm: self.datapoints_to_alarm,
            treat_missing_data: self.treat_missing_data.clone(),
            alarm_actions: self.actions.clone(),
            ok_actions: self.actions.clone(),
            comparison: "GreaterThanThreshold".into(),
            description: self.description.clone(),
            state: "OK".into(),
            reason: String::new(),
            since: None,
            tags: self.tags.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> DesiredAlarm {
        DesiredAlarm {
            name: "shop-prod-errors".into(),
            arn: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:shop-prod-errors".into(),
            description: "d".into(),
            namespace: "AWS/Lambda".into(),
            metric: "Errors".into(),
            dimensions: BTreeMap::from([("FunctionName".into(), "shop-prod".into())]),
            statistic: AlarmStatistic::Sum,
            threshold: 0.0,
            period_s: 60,
            evaluation_periods: 3,
            datapoints_to_alarm: 3,
            treat_missing_data: "notBreaching".into(),
            actions: vec!["arn:aws:sns:us-east-1:123456789012:t".into()],
            tags: BTreeMap::from([("deployer:app".into(), "shop".into())]),
        }
    }

    #[test]
    fn a_threshold_change_is_an_update_of_that_field_only() {
        let wanted = desired();
        let mut actual = wanted.as_put();
        assert_eq!(diff_alarm(&wanted, Some(&actual)), Action::Unchanged);
        actual.threshold = 5.0;
        assert_eq!(
            diff_alarm(&wanted, Some(&actual)),
            Action::Update(BTreeSet::from([AlarmField::Threshold]))
        );
        assert_eq!(diff_alarm(&wanted, None), Action::Create);
    }

    #[test]
    fn each_difference_names_its_field() {
        let wanted = desired();
        let mut actual = wanted.as_put();
        actual.ok_actions.clear();
        actual.period_s = 300;
        actual.treat_missing_data = "missing".into();
        actual
            .dimensions
            .insert("Resource".into(), "shop-prod:prod".into());
        actual.tags.clear();
        assert_eq!(
            diff_alarm(&wanted, Some(&actual)),
            Action::Update(BTreeSet::from([
                AlarmField::Metric,
                AlarmField::Period,
                AlarmField::TreatMissingData,
                AlarmField::Actions,
                AlarmField::Tags,
            ]))
        );
    }
}
