//! SNS: the stage's own alarm topic (read, create with its tags, tag,
//! delete) and its subscriptions (list, subscribe, unsubscribe). A topic
//! the configuration names by ARN is never touched here.
//!
//! What this relies on (SNS API reference): CreateTopic is idempotent for
//! a name with the same attributes and tags, answering the existing ARN;
//! GetTopicAttributes of a missing topic is `NotFound`. Subscribe of an
//! endpoint already subscribed answers that subscription; an http(s) or
//! e-mail subscription stays pending until its owner confirms it, and a
//! listing shows it as `PendingConfirmation`, with no ARN a client could
//! unsubscribe ("Unsubscribe": an ARN must have at least 6 elements) — it
//! goes with its topic, or SNS drops it after three days unconfirmed.
//! DeleteTopic deletes the topic's subscriptions with it and is idempotent.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_sns::Client;
use aws_sdk_sns::types::Tag;
use serde::Serialize;

use super::errors::{aws_error, none_if};
use super::permissions::{Declared, Scope, call};
use super::{AwsError, ErrorKind, Outcome, missing_tags};
use crate::plan::{Action, Field};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`):
/// on the topic's ARN; Unsubscribe names a subscription, which has no
/// resource type of its own ("Actions, resources, and condition keys for
/// Amazon SNS", Service Authorization Reference), so it takes `*`.
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call(
            "GetTopicAttributes",
            "sns:GetTopicAttributes",
            Scope::AlarmTopic,
        ),
        call(
            "ListTagsForResource",
            "sns:ListTagsForResource",
            Scope::AlarmTopic,
        ),
        call(
            "ListSubscriptionsByTopic",
            "sns:ListSubscriptionsByTopic",
            Scope::AlarmTopic,
        ),
        call("CreateTopic", "sns:CreateTopic", Scope::AlarmTopic),
        call("TagResource", "sns:TagResource", Scope::AlarmTopic),
        call("Subscribe", "sns:Subscribe", Scope::AlarmTopic),
        call("Unsubscribe", "sns:Unsubscribe", Scope::Any),
        call("DeleteTopic", "sns:DeleteTopic", Scope::AlarmTopic),
    ],
};

/// The stage's topic as it wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTopic {
    pub name: String,
    pub arn: String,
    pub tags: BTreeMap<String, String>,
}

/// The topic as SNS has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualTopic {
    pub arn: String,
    pub tags: BTreeMap<String, String>,
    pub subscriptions: Vec<ActualSubscription>,
}

/// One subscription of the topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualSubscription {
    pub protocol: String,
    pub endpoint: String,
    /// `None` while it waits for its owner's confirmation.
    pub arn: Option<String>,
}

impl ActualSubscription {
    pub fn pending(&self) -> bool {
        self.arn.is_none()
    }
}

/// What of the topic can differ: only its tags (its name is its ARN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicField {
    Tags,
}

impl Field for TopicField {}

/// The topic `arn` with its tags and subscriptions; `None` when it does
/// not exist.
pub async fn read_topic(client: &Client, arn: &str) -> Result<Option<ActualTopic>, AwsError> {
    let found = client.get_topic_attributes().topic_arn(arn).send().await;
    if none_if(ErrorKind::NotFound, "GetTopicAttributes", arn, found)?.is_none() {
        return Ok(None);
    }
    let tags = client
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await;
    let tags = none_if(ErrorKind::NotFound, "ListTagsForResource", arn, tags)?
        .map(|answer| {
            answer
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut subscriptions = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_subscriptions_by_topic()
            .topic_arn(arn)
            .set_next_token(token.take())
            .send()
            .await;
        let Some(page) = none_if(ErrorKind::NotFound, "ListSubscriptionsByTopic", arn, page)?
        else {
            break;
        };
        for s in page.subscriptions() {
            let sub_arn = s.subscription_arn().unwrap_or_default();
            subscriptions.push(ActualSubscription {
                protocol: s.protocol().unwrap_or_default().to_string(),
                endpoint: s.endpoint().unwrap_or_default().to_string(),
                // `PendingConfirmation` (or `Deleted`) is no ARN.
                arn: crate::names::is_arn(sub_arn).then(|| sub_arn.to_string()),
            });
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    Ok(Some(ActualTopic {
        arn: arn.to_string(),
        tags,
        subscriptions,
    }))
}

/// What [`apply_topic`] has to do.
pub fn diff_topic(desired: &DesiredTopic, actual: Option<&ActualTopic>) -> Action<TopicField> {
    match actual {
        None => Action::Create,
        Some(actual) => Action::update_if(
            missing_tags(&desired.tags, &actual.tags)
                .next()
                .map(|_| TopicField::Tags)
                .into_iter()
                .collect::<BTreeSet<_>>(),
        ),
    }
}

fn tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, AwsError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| AwsError {
                    operation: "TagResource",
                    resource: k.clone(),
                    message: e.to_string(),
                    kind: ErrorKind::Other,
                })
        })
        .collect()
}

/// Carries out `action` on the topic: creates it with its tags, puts
/// missing tags, or deletes it (with its subscriptions).
pub async fn apply_topic(
    client: &Client,
    desired: &DesiredTopic,
    action: &Action<TopicField>,
) -> Result<Outcome, AwsError> {
    match action {
        Action::Unchanged => Ok(Outcome::Unchanged),
        Action::Delete => {
            delete_topic(client, &desired.arn).await?;
            Ok(Outcome::Deleted)
        }
        Action::Create => {
            client
                .create_topic()
                .name(&desired.name)
                .set_tags(Some(tags(&desired.tags)?))
                .send()
                .await
                .map_err(|e| aws_error("CreateTopic", &desired.name, e))?;
            Ok(Outcome::Created)
        }
        Action::Update(_) => {
            client
                .tag_resource()
                .resource_arn(&desired.arn)
                .set_tags(Some(tags(&desired.tags)?))
                .send()
                .await
                .map_err(|e| aws_error("TagResource", &desired.arn, e))?;
            Ok(Outcome::Updated)
        }
    }
}

/// Subscribes `endpoint` over `protocol` to the topic (SNS answers the
/// existing subscription for one already there).
pub async fn subscribe(
    client: &Client,
    topic: &str,
    protocol: &str,
    endpoint: &str,
) -> Result<(), AwsError> {
    client
        .subscribe()
        .topic_arn(topic)
        .protocol(protocol)
        .endpoint(endpoint)
        .send()
        .await
        .map_err(|e| aws_error("Subscribe", endpoint, e))?;
    Ok(())
}

/// Removes a confirmed subscription; one already gone counts as removed.
pub async fn unsubscribe(client: &Client, arn: &str) -> Result<(), AwsError> {
    let done = client.unsubscribe().subscription_arn(arn).send().await;
    none_if(ErrorKind::NotFound, "Unsubscribe", arn, done)?;
    Ok(())
}

/// Deletes the topic and its subscriptions; a missing topic counts as
/// deleted.
pub async fn delete_topic(client: &Client, arn: &str) -> Result<(), AwsError> {
    let done = client.delete_topic().topic_arn(arn).send().await;
    none_if(ErrorKind::NotFound, "DeleteTopic", arn, done)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_tags_update_the_topic() {
        let desired = DesiredTopic {
            name: "shop-prod-alarms".into(),
            arn: "arn:aws:sns:us-east-1:123456789012:shop-prod-alarms".into(),
            tags: BTreeMap::from([("deployer:app".into(), "shop".into())]),
        };
        let mut actual = ActualTopic {
            arn: desired.arn.clone(),
            tags: desired.tags.clone(),
            subscriptions: Vec::new(),
        };
        assert_eq!(diff_topic(&desired, Some(&actual)), Action::Unchanged);
        actual.tags.insert("team".into(), "ops".into());
        assert_eq!(diff_topic(&desired, Some(&actual)), Action::Unchanged);
        actual.tags.clear();
        assert_eq!(
            diff_topic(&desired, Some(&actual)),
            Action::Update(BTreeSet::from([TopicField::Tags]))
        );
        assert_eq!(diff_topic(&desired, None), Action::Create);
    }
}
