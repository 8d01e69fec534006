//! The stage lock: two `deployer up` of one stage never apply at once, on
//! one machine or across CI runners, because the lock lives in AWS.
//!
//! The lock is a CloudWatch Logs log group `/deployer/locks/{app}-{stage}`:
//! CreateLogGroup is an atomic create-if-absent (it fails with
//! ResourceAlreadyExistsException while someone holds the lock), and its
//! tags, set in the same call, say who holds it (host, pid, machine,
//! command, a token unique to this taking, and the staleness bound the
//! holder keeps to). Releasing is deleting it.
//!
//! Liveness is judged by time CloudWatch keeps, never by a machine's
//! clock (a CI runner's clock may be off by an hour). The holder writes a
//! heartbeat event into its own stream `holder-{token}` of the lock group;
//! CloudWatch stamps each event with its `ingestionTime` (GetLogEvents,
//! OutputLogEvent: "The time the event was ingested"). A waiter writes a
//! probe event into a stream of its own and reads its `ingestionTime`
//! back: that is "now" on the same clock, and the holder is stale when
//! its last heartbeat (or the group's `creationTime`, before the first)
//! is older than the holder's bound by that clock. `lastIngestionTime` of
//! DescribeLogStreams would be one call, but AWS says it "updates on an
//! eventual consistency basis ... in less than an hour" (LogStream data
//! type), so the events themselves are read. The events' own `timestamp`
//! is the writer's clock: PutLogEvents refuses events more than 2 hours in
//! the future or 14 days in the past (PutLogEvents API reference, and
//! `rejectedLogEventsInfo`), which a ±1 h skew stays inside, and nothing
//! here reads it.
//!
//! A heartbeat written into `holder-{token}` is also the holder's proof
//! that the lock is still its own: a lock broken (by a waiter, or by
//! `deployer unlock`) and taken again has no such stream, and the write
//! fails with ResourceNotFoundException. The holder stops writing once
//! its last confirmed heartbeat is older than half its bound on its own
//! monotonic clock (its lease), so a waiter, who needs the whole bound of
//! silence by CloudWatch's clock, never breaks a lock whose holder may
//! still write.
//!
//! A holder on this very machine and pid namespace (same boot id, same
//! pid namespace, recorded in the tags) whose process is gone is stale at
//! once; a same host name alone proves nothing (containers share names,
//! and pids collide across namespaces).
//!
//! Breaking goes through a second, one-shot log group named after the
//! stale lock's creation time, so that of several waiters only one
//! breaks a given stale lock, and it re-checks the creation time before
//! deleting, so it never deletes a lock taken since. CloudWatch Logs
//! answers CreateLogGroup and DeleteLogGroup racing on one name with
//! OperationAbortedException ("Multiple concurrent requests to update the
//! same resource were in conflict", API reference): that is "try again",
//! retried here. A group just created may not be listed by
//! DescribeLogGroups yet, so the holder never needs to find its own lock
//! there: it knows its ARN and reads its tags by ARN.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::errors::aws_error;
use super::held::Held;
pub use super::held::{HELD, LockLost, still_held};
use super::logs::RACE_RETRY;
use super::permissions::{Declared, Scope, call};
use super::retry::retry_while;
use super::{AwsError, ErrorKind};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
// Releasing the lock deletes its group through `logs::delete_log_group`.
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("DescribeLogGroups", "logs:DescribeLogGroups", Scope::Any),
        call("CreateLogGroup", "logs:CreateLogGroup", Scope::LockLogGroup),
        call(
            "ListTagsForResource",
            "logs:ListTagsForResource",
            Scope::LockLogGroup,
        ),
        call("DeleteLogGroup", "logs:DeleteLogGroup", Scope::LockLogGroup),
        call(
            "CreateLogStream",
            "logs:CreateLogStream",
            Scope::LockLogGroup,
        ),
        call("PutLogEvents", "logs:PutLogEvents", Scope::LockLogGroup),
        call("GetLogEvents", "logs:GetLogEvents", Scope::LockLogGroup),
    ],
};

/// How long a second run waits for the lock before it gives up.
pub const WAIT: Duration = Duration::from_secs(60);
/// How often a waiting run asks again.
pub const POLL: Duration = Duration::from_secs(2);
/// A holder silent for this long (by CloudWatch's clock) is taken for
/// dead, unless it declared another bound (`DEPLOYER_LOCK_STALE_AFTER`).
pub const STALE_AFTER: Duration = Duration::from_secs(15 * 60);
/// The shortest bound a holder may declare: it beats four times per
/// bound, and each beat is a round trip.
pub const MIN_STALE_AFTER: Duration = Duration::from_secs(4);
/// Breaking a stale lock takes a few calls; a break marker this old
/// belongs to a breaker that died, and is itself broken.
const BREAK_STALE_AFTER: Duration = Duration::from_secs(30);
/// The longest pause between two heartbeats (shorter bounds beat at a
/// quarter of the bound).
const HEARTBEAT: Duration = Duration::from_secs(60);
/// How soon to look again at a lock that exists but is not listed yet.
const UNLISTED_RECHECK: Duration = Duration::from_millis(500);
/// How soon a heartbeat that failed (not for the lock being gone) is
/// tried again.
const BEAT_RETRY: Duration = Duration::from_millis(250);
/// How many heartbeats a waiter reads back: the newest by the holder's
/// timestamps, among which the newest by ingestion time is taken.
const HEARTBEATS_READ: i32 = 10;

const TAG_HOST: &str = "deployer:host";
const TAG_PID: &str = "deployer:pid";
const TAG_MACHINE: &str = "deployer:machine";
const TAG_TOKEN: &str = "deployer:token";
const TAG_COMMAND: &str = "deployer:command";
const TAG_SINCE: &str = "deployer:since";
const TAG_STALE_AFTER: &str = "deployer:stale-after-seconds";

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// This machine's boot id and pid namespace (`{boot}/{pidns}`): the
    /// pid means something only to an observer with the same. Empty
    /// where unknown.
    pub machine: String,
    /// Unique to one taking of the lock; names the holder's heartbeat
    /// stream.
    pub token: String,
    pub command: String,
    /// When it took the lock, by its own clock (shown, never compared).
    pub since: DateTime<Utc>,
    /// The silence after which others may take it for dead.
    pub stale_after: Duration,
    /// The log group's creation time (ms since the epoch, CloudWatch's
    /// clock): tells one taking of the lock from the next. 0 for a holder
    /// not yet created.
    pub created_ms: i64,
}

impl Holder {
    /// This process, as a holder from now on, keeping to [`STALE_AFTER`]
    /// (set `stale_after` for another bound).
    pub fn this_process() -> Holder {
        let now = Utc::now();
        let pid = std::process::id();
        Holder {
            host: this_host(),
            pid,
            machine: this_machine(),
            token: format!("{}-{pid}", now.timestamp_nanos_opt().unwrap_or_default()),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            since: now,
            stale_after: STALE_AFTER,
            created_ms: 0,
        }
    }

    fn tags(&self) -> HashMap<String, String> {
        HashMap::from([
            (TAG_HOST.to_string(), tag_value(&self.host)),
            (TAG_PID.to_string(), self.pid.to_string()),
            (TAG_MACHINE.to_string(), tag_value(&self.machine)),
            (TAG_TOKEN.to_string(), tag_value(&self.token)),
            (TAG_COMMAND.to_string(), tag_value(&self.command)),
            (TAG_SINCE.to_string(), timestamp(self.since)),
            (
                TAG_STALE_AFTER.to_string(),
                self.stale_after.as_secs().to_string(),
            ),
        ])
    }

    /// The holder a lock's tags describe. Missing or unreadable tags (a
    /// lock made by hand, or by an older deployer) leave the creation
    /// time and the observer's own bound (`default_stale`).
    fn from_tags(
        tags: &HashMap<String, String>,
        created_ms: i64,
        default_stale: Duration,
    ) -> Holder {
        let created = DateTime::from_timestamp_millis(created_ms).unwrap_or_default();
        let since = tags
            .get(TAG_SINCE)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(created);
        let stale_after = tags
            .get(TAG_STALE_AFTER)
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(default_stale);
        let text = |key: &str| tags.get(key).cloned().unwrap_or_default();
        Holder {
            host: tags.get(TAG_HOST).cloned().unwrap_or_else(|| "?".into()),
            pid: tags.get(TAG_PID).and_then(|p| p.parse().ok()).unwrap_or(0),
            machine: text(TAG_MACHINE),
            token: text(TAG_TOKEN),
            command: text(TAG_COMMAND),
            since,
            stale_after,
            created_ms,
        }
    }

    /// `host/pid since time`, as the waiting line and the error say it.
    pub fn describe(&self) -> String {
        format!(
            "{}/{} since {}",
            self.host,
            self.pid,
            self.since.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }

    /// Its heartbeat stream in the lock group.
    fn stream(&self) -> String {
        format!("holder-{}", self.token)
    }

    /// The longest it goes without a confirmed heartbeat before it stops
    /// writing: half its bound, so that a waiter (who needs the whole
    /// bound of silence) never breaks a lock whose holder may write.
    pub fn lease(&self) -> Duration {
        self.stale_after / 2
    }

    /// How often it writes a heartbeat: four times per bound, at most
    /// once a minute.
    fn heartbeat_every(&self) -> Duration {
        (self.stale_after / 4).min(HEARTBEAT)
    }
}

/// What a waiter knows of a holder's signs of life, all by CloudWatch's
/// clock (ms since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// The ingestion time of its newest heartbeat, or the lock's creation
    /// time before any.
    pub last_sign_ms: i64,
    /// The ingestion time of the waiter's own probe: "now".
    pub now_ms: i64,
}

/// Why a lock is stale, or `None` when its holder may still be running:
/// its process on this very machine and pid namespace is gone, or it
/// gave no sign of life for its bound by CloudWatch's clock. Pure:
/// `pid_alive` says whether a process of this machine is running, and
/// `liveness` is `None` when the service time could not be read (then
/// only the pid can tell).
pub fn staleness(
    holder: &Holder,
    this_machine: &str,
    liveness: Option<Liveness>,
    pid_alive: impl Fn(u32) -> bool,
) -> Option<String> {
    if !holder.machine.is_empty()
        && holder.machine == this_machine
        && holder.pid != 0
        && !pid_alive(holder.pid)
    {
        return Some(format!(
            "its process {} on this machine ({}) is gone",
            holder.pid, holder.host
        ));
    }
    let liveness = liveness?;
    let quiet =
        Duration::from_millis(u64::try_from(liveness.now_ms - liveness.last_sign_ms).unwrap_or(0));
    (quiet > holder.stale_after).then(|| {
        format!(
            "it has shown no sign of life for {} s by CloudWatch's clock (more than its {} s)",
            quiet.as_secs(),
            holder.stale_after.as_secs()
        )
    })
}

/// The stage is locked by another run, which did not finish in time.
#[derive(Debug, thiserror::Error)]
#[error(
    "the stage is locked by another deployer ({holder}, running `{command}`); \
     gave up after waiting {waited} s. Run again when it has finished. If that run \
     is dead, the lock is broken automatically ({stale} s after its last heartbeat, \
     or at once from its own machine); to break it now, run `deployer unlock --stage {stage}` \
     (it deletes the log group {group})"
)]
pub struct LockHeld {
    pub stage: String,
    pub group: String,
    pub holder: String,
    pub command: String,
    pub waited: u64,
    pub stale: u64,
}

/// The holder's side of a held lock: its last confirmed heartbeat, or
/// why it lost the lock. Shared by the heartbeat task and the checks.
#[derive(Debug)]
struct Lease {
    confirmed: Instant,
    lost: Option<String>,
    /// The last heartbeat's error, when it failed for a reason that does
    /// not prove the lock lost (throttling, a 5xx after the SDK's
    /// retries): the lease decides then.
    last_error: Option<String>,
}

/// A held lock. Call [`StageLock::release`]; a lock dropped without it
/// (a crash) stays until broken as stale.
#[derive(Debug)]
pub struct StageLock {
    guard: Arc<LockGuard>,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// What the work under a lock consults before each write: whether the
/// lock is still ours. Cloneable into the work (`Arc`).
#[derive(Debug)]
pub struct LockGuard {
    client: Client,
    group: String,
    arn: String,
    holder: Holder,
    lease: Mutex<Lease>,
    changed: Notify,
}

/// What waiting for the lock looks like to the caller.
pub trait LockEvents {
    /// The lock is held by `holder`; we wait and ask again.
    fn waiting(&self, holder: &Holder);
    /// A stale lock of `holder` is being broken, because `why`.
    fn breaking(&self, holder: &Holder, why: &str);
}

/// Takes the lock `group` (whose ARN is `arn`, see `Names::log_group_arn`)
/// of `stage` for `me`, waiting up to `wait` for a live holder and
/// breaking a stale one.
pub async fn acquire(
    client: &Client,
    group: &str,
    arn: &str,
    stage: &str,
    me: &Holder,
    wait: Duration,
    events: &dyn LockEvents,
) -> Result<StageLock, anyhow::Error> {
    let started = Instant::now();
    let machine = this_machine();
    let mut prober = Prober::new(client, &me.token);
    loop {
        // The tags say when the lock was taken, not when the wait began.
        let me = Holder {
            since: Utc::now(),
            ..me.clone()
        };
        let sent = Instant::now();
        if create(client, group, &me).await? {
            return start_holding(client, group, arn, me, sent).await;
        }
        // Released since the create, or taken so recently that it is not
        // listed yet: look again soon, not at once.
        let Some(holder) = read(client, group, me.stale_after).await? else {
            if started.elapsed() >= wait {
                return Err(LockHeld {
                    stage: stage.to_string(),
                    group: group.to_string(),
                    holder: "another deployer (not listed yet)".into(),
                    command: "?".into(),
                    waited: started.elapsed().as_secs(),
                    stale: me.stale_after.as_secs(),
                }
                .into());
            }
            tokio::time::sleep(UNLISTED_RECHECK).await;
            continue;
        };
        let liveness = liveness(client, group, &holder, &mut prober).await?;
        if let Some(why) = staleness(&holder, &machine, liveness, pid_alive)
            && break_stale(client, group, &holder, &machine, &mut prober).await?
        {
            events.breaking(&holder, &why);
            continue;
        }
        if started.elapsed() >= wait {
            return Err(LockHeld {
                stage: stage.to_string(),
                group: group.to_string(),
                holder: holder.describe(),
                command: holder.command.clone(),
                waited: started.elapsed().as_secs(),
                stale: holder.stale_after.as_secs(),
            }
            .into());
        }
        events.waiting(&holder);
        tokio::time::sleep(POLL).await;
    }
}

/// The lock group is ours: its heartbeat stream, the first heartbeat, and
/// the task that keeps beating. Should the stream or the first beat fail,
/// the group is given back (the run has written nothing yet).
async fn start_holding(
    client: &Client,
    group: &str,
    arn: &str,
    me: Holder,
    sent: Instant,
) -> Result<StageLock, anyhow::Error> {
    let guard = Arc::new(LockGuard {
        client: client.clone(),
        group: group.to_string(),
        arn: arn.to_string(),
        holder: me,
        // Until the first heartbeat, the lease runs from the create.
        lease: Mutex::new(Lease {
            confirmed: sent,
            lost: None,
            last_error: None,
        }),
        changed: Notify::new(),
    });
    let first = async {
        create_stream(client, group, &guard.holder.stream()).await?;
        guard.beat().await
    };
    if let Err(e) = first.await {
        let _ = delete(client, group).await;
        return Err(e.into());
    }
    Ok(StageLock {
        heartbeat: tokio::spawn(beat(guard.clone())),
        guard,
    })
}

impl StageLock {
    pub fn group(&self) -> &str {
        &self.guard.group
    }

    /// The lock group's ARN.
    pub fn arn(&self) -> &str {
        &self.guard.arn
    }

    /// The check the work under this lock consults before each write.
    pub fn guard(&self) -> Arc<LockGuard> {
        self.guard.clone()
    }

    /// Stops the heartbeat and deletes the lock if it is still ours (see
    /// [`LockGuard::release`]).
    pub async fn release(self) -> Result<bool, AwsError> {
        self.heartbeat.abort();
        self.guard.release().await
    }
}

impl LockGuard {
    /// Whether the lock is ours by what this process knows, without
    /// asking AWS: no heartbeat has failed, and the last one confirmed is
    /// within the lease.
    pub fn check(&self) -> Result<(), LockLost> {
        let lease = self.lease.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(why) = &lease.lost {
            return Err(self.lost(why.clone()));
        }
        let quiet = lease.confirmed.elapsed();
        if quiet >= self.holder.lease() {
            let last = lease
                .last_error
                .as_ref()
                .map(|e| format!(" (the last heartbeat failed: {e})"))
                .unwrap_or_default();
            return Err(self.lost(format!(
                "no heartbeat confirmed for {} s{last}, and another run may take a lock silent for {} s",
                quiet.as_secs(),
                self.holder.stale_after.as_secs()
            )));
        }
        Ok(())
    }

    /// [`check`](Self::check), then a heartbeat now: the lock is ours at
    /// this moment by AWS's answer, and the lease starts again.
    /// A heartbeat that fails for another reason than the lock being gone
    /// is tried again until the lease runs out.
    pub async fn verify(&self) -> Result<(), LockLost> {
        loop {
            self.check()?;
            match self.beat().await {
                Ok(()) => return self.check(),
                Err(e) if e.is_not_found() => return self.check(),
                Err(_) => tokio::time::sleep(BEAT_RETRY).await,
            }
        }
    }

    /// The lock group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The holder's staleness bound.
    pub fn stale_after(&self) -> Duration {
        self.holder.stale_after
    }

    /// Resolves when the lock is lost: a heartbeat found it gone, or none
    /// was confirmed for the lease.
    pub async fn lost_at_last(&self) -> LockLost {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Err(lost) = self.check() {
                return lost;
            }
            let deadline = {
                let lease = self.lease.lock().unwrap_or_else(|p| p.into_inner());
                lease.confirmed + self.holder.lease()
            };
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    fn lost(&self, why: String) -> LockLost {
        LockLost {
            group: self.group.clone(),
            why,
        }
    }

    /// One heartbeat event into our stream. It lands only while the lock
    /// group of our taking exists (a retaken lock has no stream of ours),
    /// so success proves the lock ours when it was written, and "not
    /// found" proves it lost. Any other failure (throttling, a 5xx after
    /// the SDK's own retries) proves nothing: the lease runs on, and the
    /// holder stops when it ends without a confirmed heartbeat.
    async fn beat(&self) -> Result<(), AwsError> {
        let sent = Instant::now();
        let put = put_event(&self.client, &self.group, &self.holder.stream()).await;
        let mut lease = self.lease.lock().unwrap_or_else(|p| p.into_inner());
        match &put {
            Ok(()) if lease.lost.is_none() => {
                lease.confirmed = lease.confirmed.max(sent);
                lease.last_error = None;
            }
            Ok(()) => {}
            Err(e) if e.is_not_found() => {
                lease.lost = Some("it was broken: our heartbeat stream is gone".into())
            }
            Err(e) => lease.last_error = Some(e.to_string()),
        }
        drop(lease);
        self.changed.notify_waiters();
        put
    }

    /// Deletes the lock, and any break marker left below it, if it is
    /// still ours. `Ok(false)`: it was not ours any more (broken, maybe
    /// taken again), and is left alone.
    ///
    /// The race that remains: CloudWatch Logs has no conditional delete,
    /// so between reading the token and DeleteLogGroup (one round trip)
    /// another run could break and retake the lock, and this delete would
    /// remove its lock. That needs our lock to have gone stale or been
    /// unlocked by hand in that very moment; a run that lost its lease
    /// earlier finds the token changed and deletes nothing.
    pub async fn release(&self) -> Result<bool, AwsError> {
        if !self.still_ours().await? {
            return Ok(false);
        }
        // A breaker killed between deleting a stale lock and deleting its
        // marker leaves the marker, and nothing else ever looks at it (the
        // next run finds the lock free). While we hold the lock every
        // marker is of an earlier taking, so it is ours to delete; a
        // breaker still at work finds its marker gone, which it accepts.
        let markers = delete_markers(&self.client, &self.group).await;
        delete(&self.client, &self.group).await.and(markers)?;
        Ok(true)
    }

    /// Whether the lock group is still the one we created: its token tag
    /// is ours (read by ARN, which a just-created group answers before
    /// DescribeLogGroups lists it).
    async fn still_ours(&self) -> Result<bool, AwsError> {
        let tags = match self
            .client
            .list_tags_for_resource()
            .resource_arn(&self.arn)
            .send()
            .await
        {
            Ok(answer) => answer.tags().cloned().unwrap_or_default(),
            Err(e) => {
                let e = aws_error("ListTagsForResource", &self.arn, e);
                if e.is_not_found() {
                    return Ok(false);
                }
                return Err(e);
            }
        };
        Ok(tags.get(TAG_TOKEN) == Some(&tag_value(&self.holder.token)))
    }
}

/// Renews the heartbeat until aborted or until the lock is lost (the work
/// then stops: see [`LockGuard::lost_at_last`]).
async fn beat(guard: Arc<LockGuard>) {
    loop {
        tokio::time::sleep(guard.holder.heartbeat_every()).await;
        // A failed beat is tried again soon, while the lease lasts.
        while guard.beat().await.is_err() && guard.check().is_ok() {
            tokio::time::sleep(BEAT_RETRY).await;
        }
        if guard.check().is_err() {
            return;
        }
    }
}

/// The holder of the lock `group`, `None` when nobody holds it (or so
/// says DescribeLogGroups, which lists a new group a little late).
pub async fn holder(
    client: &Client,
    group: &str,
    default_stale: Duration,
) -> Result<Option<Holder>, AwsError> {
    read(client, group, default_stale).await
}

/// Deletes the lock `holder` holds, if it still holds it (the same
/// creation time), for `deployer unlock`. `false`: the lock was released
/// or taken again meanwhile, and is left alone.
pub async fn unlock(client: &Client, group: &str, holder: &Holder) -> Result<bool, AwsError> {
    let now = read(client, group, holder.stale_after).await?;
    match now {
        Some(h) if h.created_ms == holder.created_ms => {
            delete(client, group).await?;
            delete_markers(client, group).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Creates the lock group with `me`'s tags. `false`: it exists already.
/// A create racing a delete of the same name (a release) is tried again.
async fn create(client: &Client, group: &str, me: &Holder) -> Result<bool, AwsError> {
    retry_while(&[ErrorKind::Conflict], RACE_RETRY, || async {
        let answer = client
            .create_log_group()
            .log_group_name(group)
            .set_tags(Some(me.tags()))
            .send()
            .await;
        match answer {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = aws_error("CreateLogGroup", group, e);
                if e.kind == ErrorKind::AlreadyExists {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    })
    .await
}

/// Creates a stream in `group`; one that exists already is fine.
async fn create_stream(client: &Client, group: &str, stream: &str) -> Result<(), AwsError> {
    match client
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = aws_error("CreateLogStream", format!("{group}:{stream}"), e);
            if e.kind == ErrorKind::AlreadyExists {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

/// One event into `stream` of `group`. Its timestamp is this machine's
/// clock, which only has to be within PutLogEvents' window (2 h ahead,
/// 14 days behind); nothing compares it. An event refused for its time is
/// reported by AWS in `rejectedLogEventsInfo`, not as an error, so that
/// is checked too.
async fn put_event(client: &Client, group: &str, stream: &str) -> Result<(), AwsError> {
    let resource = format!("{group}:{stream}");
    let event = InputLogEvent::builder()
        .timestamp(Utc::now().timestamp_millis())
        .message("alive")
        .build()
        .map_err(|e| AwsError::invalid_answer("PutLogEvents", &resource, e.to_string()))?;
    let answer = client
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .log_events(event)
        .send()
        .await
        .map_err(|e| aws_error("PutLogEvents", &resource, e))?;
    if let Some(rejected) = answer.rejected_log_events_info().filter(|r| {
        r.too_new_log_event_start_index().is_some()
            || r.too_old_log_event_end_index().is_some()
            || r.expired_log_event_end_index().is_some()
    }) {
        return Err(AwsError::invalid_answer(
            "PutLogEvents",
            &resource,
            format!(
                "CloudWatch refused the event for its timestamp ({rejected:?}): this machine's clock is off by more than PutLogEvents accepts"
            ),
        ));
    }
    Ok(())
}

/// The newest ingestion time among the newest events of `stream`;
/// `None` when it has none or does not exist.
async fn last_ingestion(
    client: &Client,
    group: &str,
    stream: &str,
) -> Result<Option<i64>, AwsError> {
    let answer = client
        .get_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .start_from_head(false)
        .limit(HEARTBEATS_READ)
        .send()
        .await;
    match answer {
        Ok(answer) => Ok(answer
            .events()
            .iter()
            .filter_map(|e| e.ingestion_time())
            .max()),
        Err(e) => {
            let e = aws_error("GetLogEvents", format!("{group}:{stream}"), e);
            if e.is_not_found() { Ok(None) } else { Err(e) }
        }
    }
}

/// A waiter's clock reading from CloudWatch: it writes a probe event into
/// a stream of its own in a log group and reads back its ingestion time.
struct Prober<'a> {
    client: &'a Client,
    stream: String,
    /// The groups where the stream exists already.
    made: Vec<String>,
}

impl<'a> Prober<'a> {
    fn new(client: &'a Client, token: &str) -> Prober<'a> {
        Prober {
            client,
            stream: format!("probe-{token}"),
            made: Vec::new(),
        }
    }

    /// CloudWatch's "now" (ms), read in `group`; `None` when the group is
    /// gone or the probe is not readable yet.
    async fn now_ms(&mut self, group: &str) -> Result<Option<i64>, AwsError> {
        if !self.made.iter().any(|g| g == group) {
            match create_stream(self.client, group, &self.stream).await {
                Ok(()) => self.made.push(group.to_string()),
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        match put_event(self.client, group, &self.stream).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {
                self.made.retain(|g| g != group);
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        last_ingestion(self.client, group, &self.stream).await
    }
}

/// The holder's signs of life and "now", by CloudWatch's clock; `None`
/// when the lock went away meanwhile.
async fn liveness(
    client: &Client,
    group: &str,
    holder: &Holder,
    prober: &mut Prober<'_>,
) -> Result<Option<Liveness>, AwsError> {
    let beat = if holder.token.is_empty() {
        None
    } else {
        last_ingestion(client, group, &holder.stream()).await?
    };
    let Some(now_ms) = prober.now_ms(group).await? else {
        return Ok(None);
    };
    Ok(Some(Liveness {
        last_sign_ms: beat.unwrap_or(holder.created_ms).max(holder.created_ms),
        now_ms,
    }))
}

/// The lock group's holder, `None` when nobody holds it.
async fn read(
    client: &Client,
    group: &str,
    default_stale: Duration,
) -> Result<Option<Holder>, AwsError> {
    let answer = client
        .describe_log_groups()
        .log_group_name_prefix(group)
        .send()
        .await
        .map_err(|e| aws_error("DescribeLogGroups", group, e))?;
    // The prefix also matches the break markers below the lock.
    let Some(found) = answer
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(group))
    else {
        return Ok(None);
    };
    let created_ms = found.creation_time().unwrap_or(0);
    let arn = found
        .log_group_arn()
        .map(str::to_string)
        .or_else(|| found.arn().map(|a| a.trim_end_matches(":*").to_string()))
        .ok_or_else(|| {
            AwsError::invalid_answer("DescribeLogGroups", group, "the log group has no ARN")
        })?;
    let tags = match client
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
    {
        Ok(answer) => answer.tags().cloned().unwrap_or_default(),
        Err(e) => {
            let e = aws_error("ListTagsForResource", &arn, e);
            if e.is_not_found() {
                return Ok(None);
            }
            return Err(e);
        }
    };
    Ok(Some(Holder::from_tags(&tags, created_ms, default_stale)))
}

async fn delete(client: &Client, group: &str) -> Result<(), AwsError> {
    super::logs::delete_log_group(client, group).await
}

/// Deletes every break marker below the lock `group`.
async fn delete_markers(client: &Client, group: &str) -> Result<(), AwsError> {
    let prefix = format!("{group}/break-");
    let answer = client
        .describe_log_groups()
        .log_group_name_prefix(&prefix)
        .send()
        .await
        .map_err(|e| aws_error("DescribeLogGroups", &prefix, e))?;
    for marker in answer
        .log_groups()
        .iter()
        .filter_map(|g| g.log_group_name())
    {
        delete(client, marker).await?;
    }
    Ok(())
}

/// Deletes the stale lock `holder` took, if this run is the one to break
/// it (it created the one-shot marker for that taking) and the lock is
/// still that taking. `false` when another run is breaking it. A marker
/// left by a breaker that died (older than [`BREAK_STALE_AFTER`] by
/// CloudWatch's clock) is deleted, and the caller tries again.
async fn break_stale(
    client: &Client,
    group: &str,
    holder: &Holder,
    this_machine: &str,
    prober: &mut Prober<'_>,
) -> Result<bool, AwsError> {
    let marker = format!("{group}/break-{}", holder.created_ms);
    let breaker = Holder {
        stale_after: BREAK_STALE_AFTER,
        ..Holder::this_process()
    };
    if !create(client, &marker, &breaker).await? {
        if let Some(other) = read(client, &marker, BREAK_STALE_AFTER).await? {
            let now = prober.now_ms(&marker).await?.map(|now_ms| Liveness {
                last_sign_ms: other.created_ms,
                now_ms,
            });
            if staleness(&other, this_machine, now, pid_alive).is_some() {
                delete(client, &marker).await?;
            }
        }
        return Ok(false);
    }
    let still_stale = read(client, group, holder.stale_after)
        .await
        .map(|now| now.is_none_or(|h| h.created_ms == holder.created_ms));
    let deleted = match still_stale {
        Ok(true) => delete(client, group).await,
        Ok(false) => Ok(()),
        Err(e) => Err(e),
    };
    delete(client, &marker).await?;
    deleted.map(|()| true)
}

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// This machine and pid namespace: the kernel's boot id (a new one at
/// every boot, different on every machine) and the pid namespace's inode.
/// Two processes with the same are on one kernel and see the same pids.
/// Empty where either cannot be read (then no pid is ever trusted).
pub fn this_machine() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|b| b.trim().to_string())
        .unwrap_or_default();
    // `pid:[4026531836]`
    let pidns = std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("pid:[")
                .and_then(|n| n.strip_suffix(']'))
                .map(str::to_string)
        })
        .unwrap_or_default();
    if boot.is_empty() || pidns.is_empty() {
        String::new()
    } else {
        format!("{boot}/{pidns}")
    }
}

/// A tag value CloudWatch accepts: letters, digits, spaces and
/// `_.:/=+-@`, at most 256 characters; anything else becomes `_`.
fn tag_value(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect()
}

/// This machine's name, as the holder's host.
pub fn this_host() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at
        // most that many bytes.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let name = String::from_utf8_lossy(&buf[..end]).into_owned();
            if !name.is_empty() {
                return name;
            }
        }
    }
    std::env::var("HOSTNAME")
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .unwrap_or_else(|_| "unknown-host".into())
}

/// Whether a process of this host is running. Where that cannot be told,
/// it is taken as running (the lock then goes stale by age only).
pub fn pid_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        // SAFETY: signal 0 only checks that the process exists and may be
        // signalled; nothing is sent.
        let rc = unsafe { libc::kill(pid, 0) };
        // EPERM: it exists but belongs to another user.
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

impl Held for LockGuard {
    fn verify(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), LockLost>> + Send + '_>>
    {
        Box::pin(LockGuard::verify(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MACHINE: &str = "boot-1/4026531836";

    fn holder(machine: &str, pid: u32) -> Holder {
        Holder {
            host: "ci-1".into(),
            pid,
            machine: machine.into(),
            token: "1-2".into(),
            command: "deployer up --stage dev".into(),
            since: Utc::now(),
            stale_after: STALE_AFTER,
            created_ms: 1_000,
        }
    }

    fn quiet_for(seconds: i64) -> Option<Liveness> {
        Some(Liveness {
            last_sign_ms: 1_000_000,
            now_ms: 1_000_000 + seconds * 1000,
        })
    }

    #[test]
    fn a_dead_process_on_this_machine_and_pid_namespace_is_stale() {
        let h = holder(MACHINE, 4242);
        let why = staleness(&h, MACHINE, quiet_for(1), |_| false).expect("stale");
        assert!(why.contains("4242") && why.contains("gone"), "{why}");
        assert_eq!(staleness(&h, MACHINE, quiet_for(1), |_| true), None);
    }

    #[test]
    fn a_pid_is_never_judged_on_another_machine_or_pid_namespace_or_unknown_one() {
        for (theirs, ours) in [
            ("boot-2/4026531836", MACHINE),
            ("boot-1/4026532000", MACHINE),
            ("", MACHINE),
            ("", ""),
        ] {
            let h = holder(theirs, 4242);
            assert_eq!(
                staleness(&h, ours, quiet_for(1), |_| false),
                None,
                "{theirs} vs {ours}"
            );
        }
    }

    #[test]
    fn a_silent_holder_goes_stale_after_its_own_bound_by_the_service_clock() {
        let mut h = holder("", 4242);
        let why = staleness(&h, MACHINE, quiet_for(16 * 60), |_| true).expect("stale");
        assert!(why.contains("960 s") && why.contains("900 s"), "{why}");
        assert_eq!(staleness(&h, MACHINE, quiet_for(14 * 60), |_| true), None);
        h.stale_after = Duration::from_secs(5);
        assert!(staleness(&h, MACHINE, quiet_for(6), |_| true).is_some());
        assert_eq!(staleness(&h, MACHINE, quiet_for(4), |_| true), None);
        // Without a reading of the service's clock, only the pid can tell.
        assert_eq!(staleness(&h, MACHINE, None, |_| true), None);
    }

    #[test]
    fn the_lease_ends_well_before_others_may_break_the_lock() {
        let mut h = holder("", 1);
        for seconds in [4, 10, 60, 900, 3600] {
            h.stale_after = Duration::from_secs(seconds);
            assert!(h.lease() + h.heartbeat_every() < h.stale_after, "{seconds}");
            assert!(h.heartbeat_every() * 2 <= h.lease(), "{seconds}");
        }
    }

    #[test]
    fn tags_round_trip_and_missing_tags_fall_back_to_the_creation_time() {
        let mut h = holder(MACHINE, 7);
        h.stale_after = Duration::from_secs(42);
        let tags = h.tags();
        let back = Holder::from_tags(&tags, h.created_ms, STALE_AFTER);
        assert_eq!(back.host, h.host);
        assert_eq!(back.pid, h.pid);
        assert_eq!(back.machine, h.machine);
        assert_eq!(back.token, h.token);
        assert_eq!(back.command, h.command);
        assert_eq!(back.stale_after, Duration::from_secs(42));
        assert_eq!(back.since.timestamp_millis(), h.since.timestamp_millis());
        let bare = Holder::from_tags(&HashMap::new(), h.created_ms, STALE_AFTER);
        assert_eq!(bare.pid, 0);
        assert_eq!(bare.stale_after, STALE_AFTER);
        assert_eq!(bare.since.timestamp_millis(), h.created_ms);
        // pid 0 (unknown) is never "dead on this machine".
        assert_eq!(staleness(&bare, "", quiet_for(1), |_| false), None);
    }

    #[test]
    fn tag_values_keep_only_what_cloudwatch_accepts() {
        assert_eq!(
            tag_value("deployer up --stage 'dev' #1"),
            "deployer up --stage _dev_ _1"
        );
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
    }

    #[test]
    fn this_process_is_alive_and_has_a_host_and_a_machine() {
        assert!(pid_alive(std::process::id()));
        assert!(!this_host().is_empty());
        let machine = this_machine();
        assert!(machine.contains('/'), "{machine}");
        assert_eq!(tag_value(&machine), machine);
    }
}
