//! CloudWatch Logs: the function's log group `/aws/lambda/{function}`
//! with its retention and tags (read, diff, apply, delete), its log
//! events, oldest first and each once, for `deployer logs [--follow]`, and
//! the peak memory from Lambda's `REPORT` lines. A log group that does not
//! exist yet simply has no events.
//!
//! `up` creates the group before the function, so that the function's
//! first log line lands in a group that expires its events: Lambda itself
//! would create one that keeps them forever (and Lambda writes into an
//! existing group rather than replacing it, "Sending Lambda function logs
//! to CloudWatch Logs", Lambda Developer Guide).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client;
use serde::Serialize;

use super::errors::{aws_error, none_if};
use super::permissions::{Declared, Scope, call};
use super::retry::retry_while;
use super::{AwsError, ErrorKind, Outcome, missing_tags};
use crate::plan::{Action, Field};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("DescribeLogGroups", "logs:DescribeLogGroups", Scope::Any),
        call(
            "ListTagsForResource",
            "logs:ListTagsForResource",
            Scope::FunctionLogGroup,
        ),
        call(
            "CreateLogGroup",
            "logs:CreateLogGroup",
            Scope::FunctionLogGroup,
        ),
        call("TagResource", "logs:TagResource", Scope::FunctionLogGroup),
        call(
            "PutRetentionPolicy",
            "logs:PutRetentionPolicy",
            Scope::FunctionLogGroup,
        ),
        call(
            "FilterLogEvents",
            "logs:FilterLogEvents",
            Scope::FunctionLogGroup,
        ),
        call(
            "DeleteLogGroup",
            "logs:DeleteLogGroup",
            Scope::FunctionLogGroup,
        ),
    ],
};

/// The function's log group as the stage wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredLogGroup {
    pub name: String,
    /// Its ARN, for tagging (without the `:*` DescribeLogGroups appends).
    pub arn: String,
    /// One of the values PutRetentionPolicy accepts (checked in config).
    pub retention_days: i32,
    pub tags: BTreeMap<String, String>,
}

/// The log group as CloudWatch Logs has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualLogGroup {
    pub name: String,
    /// `None`: the events never expire.
    pub retention_days: Option<i32>,
    pub tags: BTreeMap<String, String>,
}

/// What of the log group can differ from the desired one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogGroupField {
    Retention,
    /// Missing or different tags (tags someone else added never count).
    Tags,
}

impl Field for LogGroupField {}

/// The group by name, with its retention and tags; `None` when it does
/// not exist. CloudWatch Logs may not list a group created a moment ago
/// (DescribeLogGroups is eventually consistent): the apply's create then
/// meets "already exists" and converges.
pub async fn read_log_group(
    client: &Client,
    desired: &DesiredLogGroup,
) -> Result<Option<ActualLogGroup>, AwsError> {
    let name = desired.name.as_str();
    let mut token = None;
    let group = loop {
        let page = client
            .describe_log_groups()
            .log_group_name_prefix(name)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| aws_error("DescribeLogGroups", name, e))?;
        if let Some(group) = page
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(name))
        {
            break group.clone();
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(None),
        }
    };
    let tags = client
        .list_tags_for_resource()
        .resource_arn(&desired.arn)
        .send()
        .await;
    // Deleted between the two calls: it has no tags any more.
    let tags = none_if(ErrorKind::NotFound, "ListTagsForResource", name, tags)?
        .and_then(|answer| answer.tags().cloned())
        .map(|tags| tags.into_iter().collect())
        .unwrap_or_default();
    Ok(Some(ActualLogGroup {
        name: name.to_string(),
        retention_days: group.retention_in_days(),
        tags,
    }))
}

/// What [`apply_log_group`] has to do.
pub fn diff_log_group(
    desired: &DesiredLogGroup,
    actual: Option<&ActualLogGroup>,
) -> Action<LogGroupField> {
    let Some(actual) = actual else {
        return Action::Create;
    };
    let mut fields = BTreeSet::new();
    if actual.retention_days != Some(desired.retention_days) {
        fields.insert(LogGroupField::Retention);
    }
    if missing_tags(&desired.tags, &actual.tags).next().is_some() {
        fields.insert(LogGroupField::Tags);
    }
    Action::update_if(fields)
}

/// Carries out `action` on the log group: creates it with its tags and
/// retention, makes the updates named, or deletes it. A group that exists
/// already (Lambda made it, or a listing that lagged) gets its retention
/// and tags put, which converges it without another read.
pub async fn apply_log_group(
    client: &Client,
    desired: &DesiredLogGroup,
    action: &Action<LogGroupField>,
) -> Result<Outcome, AwsError> {
    let name = desired.name.as_str();
    let (outcome, fields) = match action {
        Action::Unchanged => return Ok(Outcome::Unchanged),
        Action::Delete => {
            delete_log_group(client, name).await?;
            return Ok(Outcome::Deleted);
        }
        Action::Update(fields) => (Outcome::Updated, fields.clone()),
        Action::Create => {
            // A create racing a delete of the same group answers
            // OperationAborted (CreateLogGroup API reference): tried again.
            let created = retry_while(&[ErrorKind::Conflict], RACE_RETRY, || async {
                let created = client
                    .create_log_group()
                    .log_group_name(name)
                    .set_tags(Some(desired.tags.clone().into_iter().collect()))
                    .send()
                    .await;
                Ok(none_if(ErrorKind::AlreadyExists, "CreateLogGroup", name, created)?.is_some())
            })
            .await?;
            if created {
                (Outcome::Created, BTreeSet::from([LogGroupField::Retention]))
            } else {
                (
                    Outcome::Updated,
                    BTreeSet::from([LogGroupField::Retention, LogGroupField::Tags]),
                )
            }
        }
    };
    for field in fields {
        match field {
            LogGroupField::Retention => {
                client
                    .put_retention_policy()
                    .log_group_name(name)
                    .retention_in_days(desired.retention_days)
                    .send()
                    .await
                    .map_err(|e| aws_error("PutRetentionPolicy", name, e))?;
            }
            LogGroupField::Tags => {
                client
                    .tag_resource()
                    .resource_arn(&desired.arn)
                    .set_tags(Some(desired.tags.clone().into_iter().collect()))
                    .send()
                    .await
                    .map_err(|e| aws_error("TagResource", name, e))?;
            }
        }
    }
    Ok(outcome)
}

/// How often [`Follower`] is meant to be polled.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How long to retry a create or delete that raced another of the same group.
pub(crate) const RACE_RETRY: Duration = Duration::from_secs(30);

/// CloudWatch may ingest an event seconds after its timestamp, so each
/// poll looks back this far and drops what it already showed.
const LOOKBACK_MS: i64 = 30_000;

/// One log event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogEvent {
    pub event_id: String,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub stream: String,
    pub message: String,
}

/// One page of FilterLogEvents from `since_ms` on: the events and the
/// token of the next page, if any. A missing group is an empty last page.
pub async fn filter_page(
    client: &Client,
    group: &str,
    since_ms: i64,
    filter_pattern: Option<&str>,
    next_token: Option<String>,
) -> Result<(Vec<LogEvent>, Option<String>), AwsError> {
    let answer = client
        .filter_log_events()
        .log_group_name(group)
        .start_time(since_ms)
        .set_filter_pattern(filter_pattern.map(str::to_string))
        .set_next_token(next_token)
        .send()
        .await;
    let Some(page) = none_if(ErrorKind::NotFound, "FilterLogEvents", group, answer)? else {
        return Ok((Vec::new(), None));
    };
    let events = page
        .events()
        .iter()
        .map(|e| LogEvent {
            event_id: e.event_id().unwrap_or_default().to_string(),
            timestamp: e.timestamp().unwrap_or_default(),
            stream: e.log_stream_name().unwrap_or_default().to_string(),
            message: e.message().unwrap_or_default().to_string(),
        })
        .collect();
    Ok((events, page.next_token().map(str::to_string)))
}

/// Every event of `group` from `since_ms` on (matching `filter_pattern`,
/// CloudWatch's syntax), through all pages, oldest first.
pub async fn filter_events(
    client: &Client,
    group: &str,
    since_ms: i64,
    filter_pattern: Option<&str>,
) -> Result<Vec<LogEvent>, AwsError> {
    let mut events = Vec::new();
    let mut token = None;
    loop {
        let (page, next) =
            filter_page(client, group, since_ms, filter_pattern, token.clone()).await?;
        events.extend(page);
        // CloudWatch may answer an empty page with a token while it
        // searches on, so only a missing (or repeated) token ends it.
        match next {
            Some(next) if Some(&next) != token.as_ref() => token = Some(next),
            _ => break,
        }
    }
    sort_oldest_first(&mut events);
    Ok(events)
}

/// Pages may interleave streams; order by time, keeping CloudWatch's own
/// order (ingestion) among equal timestamps.
fn sort_oldest_first(events: &mut [LogEvent]) {
    events.sort_by_key(|e| e.timestamp);
}

/// Follows a log group: each [`Follower::poll`] returns the events not
/// returned before, oldest first. Poll it every [`POLL_INTERVAL`].
#[derive(Debug)]
pub struct Follower {
    group: String,
    filter_pattern: Option<String>,
    since_ms: i64,
    /// Event id → timestamp of what was already returned, within the
    /// look-back window (events with equal timestamps are told apart by
    /// their ids).
    seen: HashMap<String, i64>,
    newest_ms: i64,
}

impl Follower {
    pub fn new(group: &str, since_ms: i64, filter_pattern: Option<&str>) -> Follower {
        Follower {
            group: group.to_string(),
            filter_pattern: filter_pattern.map(str::to_string),
            since_ms,
            seen: HashMap::new(),
            newest_ms: since_ms,
        }
    }

    /// The events that arrived since the last poll.
    pub async fn poll(&mut self, client: &Client) -> Result<Vec<LogEvent>, AwsError> {
        let from = self.since_ms.max(self.newest_ms - LOOKBACK_MS);
        let events =
            filter_events(client, &self.group, from, self.filter_pattern.as_deref()).await?;
        Ok(self.take_new(events))
    }

    /// Keeps the events not returned before and remembers them; forgets
    /// what fell out of the look-back window.
    fn take_new(&mut self, events: Vec<LogEvent>) -> Vec<LogEvent> {
        let fresh: Vec<LogEvent> = events
            .into_iter()
            .filter(|e| !self.seen.contains_key(&e.event_id))
            .collect();
        for event in &fresh {
            self.seen.insert(event.event_id.clone(), event.timestamp);
            self.newest_ms = self.newest_ms.max(event.timestamp);
        }
        let horizon = self.newest_ms - LOOKBACK_MS;
        self.seen.retain(|_, timestamp| *timestamp >= horizon);
        fresh
    }
}

/// Hands each new event of `follower` to `on_event`, polling every
/// [`POLL_INTERVAL`], until `stop` completes (Ctrl-C, a deadline); a poll
/// under way when `stop` comes is dropped before it marks anything seen.
pub async fn follow(
    client: &Client,
    follower: &mut Follower,
    mut on_event: impl FnMut(&LogEvent),
    stop: impl Future<Output = ()>,
) -> Result<(), AwsError> {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            events = follower.poll(client) => {
                for event in events? {
                    on_event(&event);
                }
            }
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

/// What Lambda's `REPORT` line says of one invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationReport {
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The execution environment's stream: `YYYY/MM/DD/[version]id`.
    pub stream: String,
    pub max_memory_mb: Option<u32>,
    /// `Init Duration`: written only for an invocation that started a new
    /// execution environment (a cold start).
    pub init_ms: Option<f64>,
}

/// The `REPORT` lines of `group` since `since_ms`, oldest first.
pub async fn invocation_reports(
    client: &Client,
    group: &str,
    since_ms: i64,
) -> Result<Vec<InvocationReport>, AwsError> {
    // Every REPORT line has this phrase; CloudWatch matches it as a term.
    let events = filter_events(client, group, since_ms, Some("\"Max Memory Used\"")).await?;
    Ok(events
        .iter()
        .filter(|e| e.message.trim_start().starts_with("REPORT"))
        .map(|e| InvocationReport {
            timestamp: e.timestamp,
            stream: e.stream.clone(),
            max_memory_mb: report_max_memory_mb(&e.message),
            init_ms: report_init_ms(&e.message),
        })
        .collect())
}

/// The highest `Max Memory Used` (MB) in the `REPORT` lines of `group`
/// since `since_ms`; `None` when there is none.
pub async fn max_memory_used(
    client: &Client,
    group: &str,
    since_ms: i64,
) -> Result<Option<u32>, AwsError> {
    let reports = invocation_reports(client, group, since_ms).await?;
    Ok(reports.iter().filter_map(|r| r.max_memory_mb).max())
}

/// The `Init Duration: 40.10 ms` of a Lambda `REPORT` line (cold starts
/// only).
pub fn report_init_ms(line: &str) -> Option<f64> {
    report_field(line, "Init Duration:", "ms")?
        .parse()
        .ok()
        .filter(|ms: &f64| ms.is_finite() && *ms >= 0.0)
}

/// The `Max Memory Used: 23 MB` of a Lambda `REPORT RequestId: ...` line.
pub fn report_max_memory_mb(line: &str) -> Option<u32> {
    report_field(line, "Max Memory Used:", "MB")?.parse().ok()
}

/// The number after `label` in a `REPORT` line, when `unit` follows it.
fn report_field<'a>(line: &'a str, label: &str, unit: &str) -> Option<&'a str> {
    if !line.trim_start().starts_with("REPORT") {
        return None;
    }
    let after = line.split(label).nth(1)?.trim_start();
    let (number, rest) = after.split_once(char::is_whitespace)?;
    rest.trim_start().starts_with(unit).then_some(number)
}

/// Whether the log group exists (a function never invoked has none).
pub async fn log_group_exists(client: &Client, group: &str) -> Result<bool, AwsError> {
    let mut token = None;
    loop {
        let page = client
            .describe_log_groups()
            .log_group_name_prefix(group)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| aws_error("DescribeLogGroups", group, e))?;
        if page
            .log_groups()
            .iter()
            .any(|g| g.log_group_name() == Some(group))
        {
            return Ok(true);
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(false),
        }
    }
}

/// Deletes the log group; one that does not exist is already gone. A
/// delete racing a create of the same name answers OperationAborted
/// ("Multiple concurrent requests to update the same resource were in
/// conflict", DeleteLogGroup API reference): it is tried again.
pub async fn delete_log_group(client: &Client, group: &str) -> Result<(), AwsError> {
    retry_while(&[ErrorKind::Conflict], RACE_RETRY, || async {
        let deleted = client.delete_log_group().log_group_name(group).send().await;
        none_if(ErrorKind::NotFound, "DeleteLogGroup", group, deleted)?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_group_diff_names_retention_and_tags() {
        let desired = DesiredLogGroup {
            name: "/aws/lambda/app-dev".into(),
            arn: "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/app-dev".into(),
            retention_days: 30,
            tags: BTreeMap::from([("deployer:app".into(), "app".into())]),
        };
        assert_eq!(diff_log_group(&desired, None), Action::Create);
        let mut actual = ActualLogGroup {
            name: desired.name.clone(),
            retention_days: Some(30),
            tags: desired.tags.clone(),
        };
        actual.tags.insert("team".into(), "ml".into());
        assert_eq!(diff_log_group(&desired, Some(&actual)), Action::Unchanged);
        // What Lambda creates on its own: no retention, no tags.
        actual.retention_days = None;
        actual.tags.clear();
        assert_eq!(
            diff_log_group(&desired, Some(&actual)),
            Action::Update(BTreeSet::from([
                LogGroupField::Retention,
                LogGroupField::Tags
            ]))
        );
    }

    fn event(id: &str, timestamp: i64) -> LogEvent {
        LogEvent {
            event_id: id.into(),
            timestamp,
            stream: "s".into(),
            message: format!("m{id}"),
        }
    }

    #[test]
    fn report_line_gives_max_memory() {
        let line = "REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 2048 MB\tMax Memory Used: 23 MB\tInit Duration: 40.10 ms\t";
        assert_eq!(report_max_memory_mb(line), Some(23));
        assert_eq!(
            report_max_memory_mb("REPORT RequestId: x Duration: 1 ms Max Memory Used: 1024 MB"),
            Some(1024)
        );
    }

    #[test]
    fn report_line_gives_init_duration_on_a_cold_start_only() {
        let cold = "REPORT RequestId: r\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 2048 MB\tMax Memory Used: 23 MB\tInit Duration: 40.10 ms\t";
        assert_eq!(report_init_ms(cold), Some(40.10));
        let warm = "REPORT RequestId: r\tDuration: 1.00 ms\tMax Memory Used: 23 MB\t";
        assert_eq!(report_init_ms(warm), None);
        assert_eq!(report_init_ms("said Init Duration: 5 ms"), None);
        assert_eq!(report_init_ms("REPORT Init Duration: soon ms"), None);
        assert_eq!(report_init_ms("REPORT Init Duration: 5 s"), None);
    }

    #[test]
    fn other_lines_give_nothing() {
        assert_eq!(report_max_memory_mb("START RequestId: x Version: 3"), None);
        assert_eq!(report_max_memory_mb("said Max Memory Used: 5 MB"), None);
        assert_eq!(
            report_max_memory_mb("REPORT RequestId: x Max Memory Used: lots MB"),
            None
        );
        assert_eq!(
            report_max_memory_mb("REPORT RequestId: x Max Memory Used: 5 GB"),
            None
        );
        assert_eq!(
            report_max_memory_mb("REPORT RequestId: x Max Memory Used:"),
            None
        );
    }

    #[test]
    fn follower_returns_each_event_once_even_with_equal_timestamps() {
        let mut follower = Follower::new("g", 0, None);
        let first = follower.take_new(vec![event("a", 100), event("b", 100)]);
        assert_eq!(first.len(), 2);
        // The next poll starts at an overlapping time and sees them again.
        let second = follower.take_new(vec![event("a", 100), event("b", 100), event("c", 100)]);
        assert_eq!(second, vec![event("c", 100)]);
        assert_eq!(
            follower.take_new(vec![event("c", 100)]),
            Vec::<LogEvent>::new()
        );
    }

    #[test]
    fn follower_forgets_events_outside_the_window() {
        let mut follower = Follower::new("g", 0, None);
        follower.take_new(vec![event("old", 1)]);
        follower.take_new(vec![event("new", 1 + LOOKBACK_MS + 1)]);
        assert!(!follower.seen.contains_key("old"));
        assert!(follower.seen.contains_key("new"));
    }

    #[test]
    fn events_sort_by_time_keeping_order_within_a_timestamp() {
        let mut events = vec![event("b", 2), event("c", 1), event("a", 2)];
        sort_oldest_first(&mut events);
        let ids: Vec<_> = events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "a"]);
    }
}
