//! CloudWatch Logs: the function's log group `/aws/lambda/{function}`
//! with its retention and tags (read, diff, apply, delete), its log
//! events, oldest first and each once, for `deployer logs [--follow]`
//! (within a share of the account's FilterLogEvents quota), and Logs
//! Insights queries over it: the service aggregates Lambda's `REPORT`
//! lines (peak memory, cold starts), so reading them costs the same for a
//! quiet function as for a busy one. A log group that does not exist yet
//! simply has no events.
//!
//! `up` creates the group before the function, so that the function's
//! first log line lands in a group that expires its events: Lambda itself
//! would create one that keeps them forever (and Lambda writes into an
//! existing group rather than replacing it, "Sending Lambda function logs
//! to CloudWatch Logs", Lambda Developer Guide).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::types::QueryStatus;
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
        // StartQuery is authorized on the log group it reads; GetQueryResults
        // and StopQuery name only a query id and have no resource type
        // ("Actions, resources, and condition keys for Amazon CloudWatch
        // Logs", Service Authorization Reference).
        call("StartQuery", "logs:StartQuery", Scope::FunctionLogGroup),
        call("GetQueryResults", "logs:GetQueryResults", Scope::Any),
        call("StopQuery", "logs:StopQuery", Scope::Any),
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

/// The least time between two FilterLogEvents calls of one follower
/// (pages of one poll included): the account has 5 a second for every
/// caller in the Region together ("CloudWatch Logs quotas", CloudWatch
/// Logs User Guide), so a follower takes at most a fifth of it and leaves
/// the rest to colleagues.
pub const CALL_GAP: Duration = Duration::from_secs(1);

/// An idle follower (its last poll found nothing) asks half as often each
/// time, down to once per this: a third of the calls, and a line still
/// shows within a few seconds of its arrival.
pub const IDLE_GAP_MAX: Duration = Duration::from_secs(3);

/// A throttled follower backs off from [`CALL_GAP`], doubling up to this,
/// each pause jittered so that followers throttled together do not come
/// back together.
pub const THROTTLED_GAP_MAX: Duration = Duration::from_secs(8);

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
    read_pages(
        client,
        group,
        since_ms,
        filter_pattern,
        &mut Pacer::new(Duration::ZERO),
    )
    .await
}

/// Keeps FilterLogEvents calls at least `gap` apart.
#[derive(Debug)]
struct Pacer {
    gap: Duration,
    last_call: Option<tokio::time::Instant>,
}

impl Pacer {
    fn new(gap: Duration) -> Pacer {
        Pacer {
            gap,
            last_call: None,
        }
    }

    /// Waits until the next call may go, and counts it as gone.
    async fn wait(&mut self) {
        if let Some(last) = self.last_call {
            tokio::time::sleep_until(last + self.gap).await;
        }
        self.last_call = Some(tokio::time::Instant::now());
    }
}

/// All pages of FilterLogEvents from `since_ms` on, each call paced by
/// `pacer`, oldest first.
async fn read_pages(
    client: &Client,
    group: &str,
    since_ms: i64,
    filter_pattern: Option<&str>,
    pacer: &mut Pacer,
) -> Result<Vec<LogEvent>, AwsError> {
    let mut events = Vec::new();
    let mut token = None;
    loop {
        pacer.wait().await;
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
/// returned before, oldest first, its calls at least [`CALL_GAP`] apart;
/// [`follow`] polls it as often as that, less when idle or throttled.
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
    pacer: Pacer,
    /// The pause after the next poll that finds nothing.
    idle_gap: Duration,
    /// Throttled polls in a row.
    throttled: u32,
}

impl Follower {
    pub fn new(group: &str, since_ms: i64, filter_pattern: Option<&str>) -> Follower {
        Follower {
            group: group.to_string(),
            filter_pattern: filter_pattern.map(str::to_string),
            since_ms,
            seen: HashMap::new(),
            newest_ms: since_ms,
            pacer: Pacer::new(CALL_GAP),
            idle_gap: CALL_GAP,
            throttled: 0,
        }
    }

    /// The events that arrived since the last poll. A poll that fails
    /// (throttled on its second page) marks nothing seen, so the next one
    /// reads the same events again and returns each once.
    pub async fn poll(&mut self, client: &Client) -> Result<Vec<LogEvent>, AwsError> {
        // Resumes a little before the newest event shown: CloudWatch may
        // ingest an event after others of a later timestamp.
        let from = self.since_ms.max(self.newest_ms - LOOKBACK_MS);
        let group = self.group.clone();
        let pattern = self.filter_pattern.clone();
        let events = read_pages(client, &group, from, pattern.as_deref(), &mut self.pacer).await?;
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

    /// The pause after a poll that found `found` new events: [`CALL_GAP`]
    /// while events come, doubling while none do, up to [`IDLE_GAP_MAX`].
    fn pause_after(&mut self, found: usize) -> Duration {
        self.throttled = 0;
        if found > 0 {
            self.idle_gap = CALL_GAP;
            return CALL_GAP;
        }
        let pause = self.idle_gap;
        self.idle_gap = (self.idle_gap * 2).min(IDLE_GAP_MAX);
        pause
    }

    /// The pause after a throttled poll: doubling from [`CALL_GAP`] up to
    /// [`THROTTLED_GAP_MAX`], each between half of it and all of it.
    fn pause_after_throttling(&mut self) -> Duration {
        let doublings = self.throttled.min(8);
        self.throttled = self.throttled.saturating_add(1);
        let gap = (CALL_GAP * 2u32.pow(doublings)).min(THROTTLED_GAP_MAX);
        gap.mul_f64(0.5 + random_fraction() / 2.0)
    }
}

/// A number in [0, 1), different on each call: std's hasher keys are
/// random per process and change per `RandomState`, which is all the
/// randomness a back-off's jitter needs.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (random % 1_000_000) as f64 / 1_000_000.0
}

/// Hands each new event of `follower` to `on_event` until `stop` completes
/// (Ctrl-C, a deadline), polling once a second while events come, less
/// often while none do, and backing off while the account's
/// FilterLogEvents quota is spent (ThrottlingException): a throttled poll
/// is tried again, neither losing nor repeating an event. A poll under way
/// when `stop` comes is dropped before it marks anything seen.
pub async fn follow(
    client: &Client,
    follower: &mut Follower,
    mut on_event: impl FnMut(&LogEvent),
    stop: impl Future<Output = ()>,
) -> Result<(), AwsError> {
    tokio::pin!(stop);
    loop {
        let pause = tokio::select! {
            _ = &mut stop => return Ok(()),
            answer = follower.poll(client) => match answer {
                Ok(events) => {
                    for event in &events {
                        on_event(event);
                    }
                    follower.pause_after(events.len())
                }
                Err(err) if err.kind == ErrorKind::Throttled => follower.pause_after_throttling(),
                Err(err) => return Err(err),
            }
        };
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// What a Logs Insights query gave: its answer, or why Insights could not
/// give one (the caller's permission, the account's quota of concurrent
/// queries, a query that failed or did not finish in time). Callers show
/// the reason and carry on: what Insights computes (the memory advice,
/// cold starts) is an addition to their report, not its point.
#[derive(Debug, Clone, PartialEq)]
pub enum Insights<T> {
    Answered(T),
    Unavailable(String),
}

/// One row of a query's results: field name → value, as the service
/// writes it (a string, numbers included).
pub type QueryRow = HashMap<String, String>;

/// One Logs Insights query of one log group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsightsQuery {
    pub query: String,
    /// Epoch seconds, both ends included (StartQuery API reference).
    pub start_s: i64,
    pub end_s: i64,
    /// At most this many rows.
    pub limit: i32,
}

/// How long a query may take before it is stopped and called unavailable.
/// Aggregates over a day of a busy function take seconds on AWS; a query
/// still running after this is not worth a command's wait.
pub const QUERY_WAIT: Duration = Duration::from_secs(30);

/// The pauses between GetQueryResults calls: quick for a small group, then
/// twice a second. Steps that kept doubling read a query that finished at
/// 0.9 s only at 1.5 s; two calls a second leave room in
/// GetQueryResults's own account quota.
const QUERY_POLLS_MS: [u64; 3] = [100, 200, 300];
const QUERY_POLL_MAX: Duration = Duration::from_millis(500);

/// What a query's status means to its waiter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum QueryState {
    Waiting,
    Done,
    Ended(String),
}

/// Scheduled and Running queries (and a status this SDK does not know)
/// are waited for; Failed, Timeout and Cancelled ones will not answer
/// (GetQueryResults API reference, `status`).
fn query_state(status: Option<&QueryStatus>) -> QueryState {
    match status {
        Some(QueryStatus::Complete) => QueryState::Done,
        Some(QueryStatus::Failed) => QueryState::Ended("the query failed".into()),
        Some(QueryStatus::Timeout) => QueryState::Ended("the query timed out".into()),
        Some(QueryStatus::Cancelled) => QueryState::Ended("the query was cancelled".into()),
        _ => QueryState::Waiting,
    }
}

/// Runs `query` over `group` with CloudWatch Logs Insights and waits for
/// its rows, for at most [`QUERY_WAIT`] (then stops it). A group that
/// does not exist has no rows. Denied access and the quotas (too many
/// concurrent queries, throttling) make Insights unavailable rather than
/// the command fail; anything else (a malformed query is a bug here) is an
/// error.
pub async fn insights_query(
    client: &Client,
    group: &str,
    query: &InsightsQuery,
) -> Result<Insights<Vec<QueryRow>>, AwsError> {
    let started = client
        .start_query()
        .log_group_name(group)
        .query_string(&query.query)
        .start_time(query.start_s)
        .end_time(query.end_s)
        .limit(query.limit)
        .send()
        .await;
    let started = match none_if(ErrorKind::NotFound, "StartQuery", group, started) {
        Ok(Some(started)) => started,
        Ok(None) => return Ok(Insights::Answered(Vec::new())),
        Err(err) => return unavailable_or(err),
    };
    let Some(id) = started.query_id().map(str::to_string) else {
        return Err(AwsError::invalid_answer(
            "StartQuery",
            group,
            "no queryId in the answer",
        ));
    };
    let deadline = tokio::time::Instant::now() + QUERY_WAIT;
    let mut polls = QUERY_POLLS_MS.iter().map(|ms| Duration::from_millis(*ms));
    loop {
        let pause = polls.next().unwrap_or(QUERY_POLL_MAX);
        if tokio::time::Instant::now() + pause > deadline {
            // Its answer is of no use any more: free the account's slot.
            let _ = client.stop_query().query_id(&id).send().await;
            return Ok(Insights::Unavailable(format!(
                "the Logs Insights query did not finish within {} s",
                QUERY_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(pause).await;
        let answer = client.get_query_results().query_id(&id).send().await;
        let answer = match answer.map_err(|e| aws_error("GetQueryResults", group, e)) {
            Ok(answer) => answer,
            Err(err) => return unavailable_or(err),
        };
        match query_state(answer.status()) {
            QueryState::Waiting => continue,
            QueryState::Ended(why) => return Ok(Insights::Unavailable(why)),
            QueryState::Done => {}
        }
        let rows = answer
            .results()
            .iter()
            .map(|row| {
                row.iter()
                    .filter_map(|f| Some((f.field()?.to_string(), f.value()?.to_string())))
                    .collect()
            })
            .collect();
        return Ok(Insights::Answered(rows));
    }
}

/// Insights is unavailable to a caller denied it or over a quota; other
/// errors stay errors.
fn unavailable_or<T>(err: AwsError) -> Result<Insights<T>, AwsError> {
    match err.kind {
        ErrorKind::AccessDenied | ErrorKind::Throttled => Ok(Insights::Unavailable(format!(
            "CloudWatch Logs Insights is unavailable ({}: {})",
            err.operation, err.message
        ))),
        _ => Err(err),
    }
}

/// A number as Insights writes it (`23000000`, `2.3E7`, `40.1`); an empty
/// or absent field is none.
pub fn query_number(row: &QueryRow, field: &str) -> Option<f64> {
    row.get(field)?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// Bytes per MB in Insights' `@maxMemoryUsed` and `@memorySize`: the
/// Lambda Operator Guide's "Useful Insights queries" turn them into the
/// `REPORT` line's MB by dividing by 1000 twice.
pub const BYTES_PER_MB: f64 = 1_000_000.0;

/// A byte count of `@maxMemoryUsed` as the `REPORT` line's whole MB.
pub fn megabytes(bytes: f64) -> Option<u32> {
    let mb = (bytes / BYTES_PER_MB).round();
    (mb >= 0.0 && mb <= f64::from(u32::MAX)).then_some(mb as u32)
}

/// The peak memory query: the highest `Max Memory Used` of the `REPORT`
/// lines (Lambda's discovered fields `@type`, `@maxMemoryUsed`, "Supported
/// logs and discovered fields", CloudWatch Logs User Guide) and how many
/// there are.
pub const PEAK_MEMORY_QUERY: &str =
    "filter @type = \"REPORT\" | stats max(@maxMemoryUsed) as maxMemoryUsed, count(*) as reports";

/// The highest `Max Memory Used` (MB) in the `REPORT` lines of `group`
/// from `since_ms` (to the second) up to now; `None` when there is none.
/// The service computes it (Logs Insights), so its cost does not grow
/// with the function's traffic.
pub async fn max_memory_used(
    client: &Client,
    group: &str,
    since_ms: i64,
) -> Result<Insights<Option<u32>>, AwsError> {
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default();
    let query = InsightsQuery {
        query: PEAK_MEMORY_QUERY.to_string(),
        start_s: since_ms.div_euclid(1000),
        end_s: now_s,
        limit: 10,
    };
    Ok(match insights_query(client, group, &query).await? {
        Insights::Answered(rows) => Insights::Answered(peak_memory(&rows)),
        Insights::Unavailable(why) => Insights::Unavailable(why),
    })
}

/// The peak of [`PEAK_MEMORY_QUERY`]'s answer: none without rows, with no
/// report counted or without a maximum.
fn peak_memory(rows: &[QueryRow]) -> Option<u32> {
    let row = rows.first()?;
    if query_number(row, "reports") == Some(0.0) {
        return None;
    }
    megabytes(query_number(row, "maxMemoryUsed")?)
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
    fn an_idle_follower_asks_less_often_and_a_busy_one_once_a_second() {
        let mut follower = Follower::new("g", 0, None);
        let idle: Vec<Duration> = (0..4).map(|_| follower.pause_after(0)).collect();
        assert_eq!(
            idle,
            [CALL_GAP, CALL_GAP * 2, IDLE_GAP_MAX, IDLE_GAP_MAX],
            "{idle:?}"
        );
        assert_eq!(follower.pause_after(3), CALL_GAP);
        assert_eq!(follower.pause_after(0), CALL_GAP);
    }

    #[test]
    fn a_throttled_follower_backs_off_with_jitter_and_recovers() {
        let mut follower = Follower::new("g", 0, None);
        let pauses: Vec<Duration> = (0..6).map(|_| follower.pause_after_throttling()).collect();
        for (n, pause) in pauses.iter().enumerate() {
            let gap = (CALL_GAP * 2u32.pow(n as u32)).min(THROTTLED_GAP_MAX);
            assert!(
                gap / 2 <= *pause && *pause <= gap,
                "{n}: {pause:?} of {gap:?}"
            );
        }
        let mut twins = Follower::new("g", 0, None);
        let spread: Vec<Duration> = (0..5)
            .map(|_| {
                twins.throttled = 3;
                twins.pause_after_throttling()
            })
            .collect();
        assert!(
            spread.windows(2).any(|w| w[0] != w[1]),
            "no jitter: {spread:?}"
        );
        // An answer ends the back-off.
        assert_eq!(follower.pause_after(1), CALL_GAP);
        assert!(follower.pause_after_throttling() <= CALL_GAP);
    }

    #[tokio::test]
    async fn calls_of_one_follower_are_a_gap_apart() {
        let gap = Duration::from_millis(40);
        let mut pacer = Pacer::new(gap);
        let started = tokio::time::Instant::now();
        for _ in 0..3 {
            pacer.wait().await;
        }
        assert!(started.elapsed() >= gap * 2, "{:?}", started.elapsed());
    }

    #[test]
    fn a_query_is_waited_for_until_it_ends() {
        assert_eq!(
            query_state(Some(&QueryStatus::Scheduled)),
            QueryState::Waiting
        );
        assert_eq!(
            query_state(Some(&QueryStatus::Running)),
            QueryState::Waiting
        );
        assert_eq!(query_state(None), QueryState::Waiting);
        assert_eq!(query_state(Some(&QueryStatus::Complete)), QueryState::Done);
        for ended in [
            QueryStatus::Failed,
            QueryStatus::Timeout,
            QueryStatus::Cancelled,
        ] {
            assert!(matches!(query_state(Some(&ended)), QueryState::Ended(_)));
        }
    }

    #[test]
    fn denied_or_over_quota_insights_is_unavailable_other_errors_stay() {
        let error = |kind| AwsError {
            operation: "StartQuery",
            resource: "g".into(),
            message: "no".into(),
            kind,
        };
        for kind in [ErrorKind::AccessDenied, ErrorKind::Throttled] {
            let answer = unavailable_or::<()>(error(kind)).unwrap();
            assert_eq!(
                answer,
                Insights::Unavailable(
                    "CloudWatch Logs Insights is unavailable (StartQuery: no)".into()
                )
            );
        }
        assert!(unavailable_or::<()>(error(ErrorKind::Other)).is_err());
        assert!(unavailable_or::<()>(error(ErrorKind::Credentials)).is_err());
    }

    #[test]
    fn the_peak_is_in_megabytes_and_none_without_reports() {
        let row = |fields: &[(&str, &str)]| -> QueryRow {
            fields
                .iter()
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            peak_memory(&[row(&[("maxMemoryUsed", "57000000"), ("reports", "3")])]),
            Some(57)
        );
        assert_eq!(
            peak_memory(&[row(&[("maxMemoryUsed", "2.3E7"), ("reports", "1")])]),
            Some(23)
        );
        assert_eq!(peak_memory(&[]), None);
        assert_eq!(peak_memory(&[row(&[("reports", "0")])]), None);
        assert_eq!(
            peak_memory(&[row(&[("maxMemoryUsed", ""), ("reports", "2")])]),
            None
        );
    }

    #[test]
    fn events_sort_by_time_keeping_order_within_a_timestamp() {
        let mut events = vec![event("b", 2), event("c", 1), event("a", 2)];
        sort_oldest_first(&mut events);
        let ids: Vec<_> = events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "a"]);
    }
}
