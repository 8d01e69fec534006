//! The stage lock: two `deployer up` of one stage never apply at once, on
//! one machine or across CI runners, because the lock lives in AWS.
//!
//! The lock is a CloudWatch Logs log group `/deployer/locks/{app}-{stage}`:
//! CreateLogGroup is an atomic create-if-absent (it fails with
//! ResourceAlreadyExistsException while someone holds the lock), and its
//! tags, set in the same call, say who holds it (host, pid, command, since
//! when). Releasing is deleting it. While held, a heartbeat tag is renewed
//! every minute, so a long run is never mistaken for a dead one.
//!
//! A lock is stale, and broken with a warning, when its holder ran on this
//! host and its process is gone (a SIGKILLed or crashed run), or when its
//! heartbeat is older than [`STALE_AFTER`] (a holder on another machine
//! that died). Breaking goes through a second, one-shot log group named
//! after the stale lock's creation time, so that of several waiters only
//! one breaks a given stale lock, and it re-checks the creation time
//! before deleting, so it never deletes a lock taken since.
//!
//! CloudWatch Logs answers CreateLogGroup and DeleteLogGroup racing on one
//! name with OperationAbortedException ("Multiple concurrent requests to
//! update the same resource were in conflict", API reference): that is
//! "try again", retried here. A group just created may not be listed by
//! DescribeLogGroups yet, so the holder never needs to find its own lock
//! there: its ARN is built from the account, region and name.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client;
use chrono::{DateTime, SecondsFormat, Utc};

use super::errors::aws_error;
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
        call("TagResource", "logs:TagResource", Scope::LockLogGroup),
        call("DeleteLogGroup", "logs:DeleteLogGroup", Scope::LockLogGroup),
    ],
};

/// How long a second run waits for the lock before it gives up.
pub const WAIT: Duration = Duration::from_secs(60);
/// How often a waiting run asks again.
pub const POLL: Duration = Duration::from_secs(2);
/// A holder whose heartbeat is older than this is taken for dead.
pub const STALE_AFTER: Duration = Duration::from_secs(15 * 60);
/// Breaking a stale lock takes a few calls; a break marker this old
/// belongs to a breaker that died, and is itself broken.
const BREAK_STALE_AFTER: Duration = Duration::from_secs(30);
/// How often the holder renews its heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(60);
/// How soon to look again at a lock that exists but is not listed yet.
const UNLISTED_RECHECK: Duration = Duration::from_millis(500);

const TAG_HOST: &str = "deployer:host";
const TAG_PID: &str = "deployer:pid";
const TAG_COMMAND: &str = "deployer:command";
const TAG_SINCE: &str = "deployer:since";
const TAG_HEARTBEAT: &str = "deployer:heartbeat";

/// The log group that is the lock of one stage of one app (the same
/// `{app}-{stage}` that names the function it guards).
pub fn lock_group(app: &str, stage: &str) -> String {
    format!("/deployer/locks/{app}-{stage}")
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub command: String,
    pub since: DateTime<Utc>,
    pub heartbeat: DateTime<Utc>,
    /// The log group's creation time (ms since the epoch): tells one
    /// taking of the lock from the next. 0 for a holder not yet created.
    pub created_ms: i64,
}

impl Holder {
    /// This process, as a holder from now on.
    pub fn this_process() -> Holder {
        let now = Utc::now();
        Holder {
            host: this_host(),
            pid: std::process::id(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            since: now,
            heartbeat: now,
            created_ms: 0,
        }
    }

    fn tags(&self) -> HashMap<String, String> {
        HashMap::from([
            (TAG_HOST.to_string(), tag_value(&self.host)),
            (TAG_PID.to_string(), self.pid.to_string()),
            (TAG_COMMAND.to_string(), tag_value(&self.command)),
            (TAG_SINCE.to_string(), timestamp(self.since)),
            (TAG_HEARTBEAT.to_string(), timestamp(self.heartbeat)),
        ])
    }

    /// The holder a lock's tags describe. Missing or unreadable tags (a
    /// lock made by hand) leave the creation time as the only clue.
    fn from_tags(tags: &HashMap<String, String>, created_ms: i64) -> Holder {
        let created = DateTime::from_timestamp_millis(created_ms).unwrap_or_default();
        let time = |key: &str| {
            tags.get(key)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let since = time(TAG_SINCE).unwrap_or(created);
        Holder {
            host: tags.get(TAG_HOST).cloned().unwrap_or_else(|| "?".into()),
            pid: tags.get(TAG_PID).and_then(|p| p.parse().ok()).unwrap_or(0),
            command: tags.get(TAG_COMMAND).cloned().unwrap_or_default(),
            since,
            heartbeat: time(TAG_HEARTBEAT).unwrap_or(since),
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
}

/// Why a lock is stale, or `None` when its holder may still be running:
/// its process on this host is gone, or it gave no heartbeat for
/// `bound` ([`STALE_AFTER`] for the stage lock). Pure: `pid_alive` says
/// whether a process of this host is running.
pub fn staleness(
    holder: &Holder,
    this_host: &str,
    now: DateTime<Utc>,
    bound: Duration,
    pid_alive: impl Fn(u32) -> bool,
) -> Option<String> {
    if holder.host == this_host && holder.pid != 0 && !pid_alive(holder.pid) {
        return Some(format!(
            "its process {} on this host ({this_host}) is gone",
            holder.pid
        ));
    }
    let quiet = now.signed_duration_since(holder.heartbeat);
    let limit = chrono::Duration::from_std(bound).unwrap_or(chrono::Duration::MAX);
    (quiet > limit).then(|| {
        format!(
            "it has shown no sign of life for {} s (more than {} s)",
            quiet.num_seconds(),
            bound.as_secs()
        )
    })
}

/// The stage is locked by another run, which did not finish in time.
#[derive(Debug, thiserror::Error)]
#[error(
    "the stage is locked by another deployer ({holder}, running `{command}`); \
     gave up after waiting {waited} s. Run again when it has finished. If that run \
     is dead, the lock is broken automatically ({stale} min after its last heartbeat, \
     or at once from its own host); to break it now, delete the log group {group}"
)]
pub struct LockHeld {
    pub group: String,
    pub holder: String,
    pub command: String,
    pub waited: u64,
    pub stale: u64,
}

/// A held lock. Call [`StageLock::release`]; a lock dropped without it
/// (a crash) stays until broken as stale.
#[derive(Debug)]
pub struct StageLock {
    client: Client,
    group: String,
    arn: String,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// What waiting for the lock looks like to the caller.
pub trait LockEvents {
    /// The lock is held by `holder`; we wait and ask again.
    fn waiting(&self, holder: &Holder);
    /// A stale lock of `holder` is being broken, because `why`.
    fn breaking(&self, holder: &Holder, why: &str);
}

/// Takes the lock `group` (whose ARN is `arn`, see `Names::log_group_arn`) for
/// `me`, waiting up to `wait` for a live holder and breaking a stale one.
pub async fn acquire(
    client: &Client,
    group: &str,
    arn: &str,
    me: &Holder,
    wait: Duration,
    events: &dyn LockEvents,
) -> Result<StageLock, anyhow::Error> {
    let started = tokio::time::Instant::now();
    loop {
        // The tags say when the lock was taken, not when the wait began.
        let now = Utc::now();
        let me = Holder {
            since: now,
            heartbeat: now,
            ..me.clone()
        };
        if create(client, group, &me).await? {
            return Ok(StageLock {
                client: client.clone(),
                group: group.to_string(),
                arn: arn.to_string(),
                heartbeat: tokio::spawn(beat(client.clone(), arn.to_string())),
            });
        }
        // Released since the create, or taken so recently that it is not
        // listed yet: look again soon, not at once.
        let Some((_, holder)) = read(client, group).await? else {
            if started.elapsed() >= wait {
                return Err(LockHeld {
                    group: group.to_string(),
                    holder: "another deployer (not listed yet)".into(),
                    command: "?".into(),
                    waited: started.elapsed().as_secs(),
                    stale: STALE_AFTER.as_secs() / 60,
                }
                .into());
            }
            tokio::time::sleep(UNLISTED_RECHECK).await;
            continue;
        };
        if let Some(why) = staleness(&holder, &me.host, Utc::now(), STALE_AFTER, pid_alive)
            && break_stale(client, group, &holder, &me.host).await?
        {
            events.breaking(&holder, &why);
            continue;
        }
        if started.elapsed() >= wait {
            return Err(LockHeld {
                group: group.to_string(),
                holder: holder.describe(),
                command: holder.command.clone(),
                waited: started.elapsed().as_secs(),
                stale: STALE_AFTER.as_secs() / 60,
            }
            .into());
        }
        events.waiting(&holder);
        tokio::time::sleep(POLL).await;
    }
}

impl StageLock {
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The lock group's ARN, which the heartbeat tags.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// Deletes the lock, and any break marker left below it. One already
    /// gone (broken as stale by another run) is not an error here: that
    /// run has said so.
    pub async fn release(self) -> Result<(), AwsError> {
        self.heartbeat.abort();
        // A breaker killed between deleting a stale lock and deleting its
        // marker leaves the marker, and nothing else ever looks at it (the
        // next run finds the lock free). While we hold the lock every
        // marker is of an earlier taking, so it is ours to delete; a
        // breaker still at work finds its marker gone, which it accepts.
        let markers = delete_markers(&self.client, &self.group).await;
        delete(&self.client, &self.group).await.and(markers)
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

/// The lock group's ARN and holder, `None` when nobody holds it.
async fn read(client: &Client, group: &str) -> Result<Option<(String, Holder)>, AwsError> {
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
    Ok(Some((arn, Holder::from_tags(&tags, created_ms))))
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
/// left by a breaker that died is deleted, and the caller tries again.
async fn break_stale(
    client: &Client,
    group: &str,
    holder: &Holder,
    this_host: &str,
) -> Result<bool, AwsError> {
    let marker = format!("{group}/break-{}", holder.created_ms);
    let breaker = Holder::this_process();
    if !create(client, &marker, &breaker).await? {
        let dead_breaker = read(client, &marker).await?.is_some_and(|(_, other)| {
            staleness(&other, this_host, Utc::now(), BREAK_STALE_AFTER, pid_alive).is_some()
        });
        if dead_breaker {
            delete(client, &marker).await?;
        }
        return Ok(false);
    }
    let still_stale = read(client, group)
        .await
        .map(|now| now.is_none_or(|(_, h)| h.created_ms == holder.created_ms));
    let deleted = match still_stale {
        Ok(true) => delete(client, group).await,
        Ok(false) => Ok(()),
        Err(e) => Err(e),
    };
    delete(client, &marker).await?;
    deleted.map(|()| true)
}

/// Renews the heartbeat tag until aborted. A failed renewal is not fatal:
/// the next one may succeed, and the lock only goes stale after
/// [`STALE_AFTER`] without any.
async fn beat(client: Client, arn: String) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        let _ = client
            .tag_resource()
            .resource_arn(&arn)
            .tags(TAG_HEARTBEAT, timestamp(Utc::now()))
            .send()
            .await;
    }
}

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(host: &str, pid: u32, minutes_ago: i64) -> Holder {
        let at = Utc::now() - chrono::Duration::minutes(minutes_ago);
        Holder {
            host: host.into(),
            pid,
            command: "deployer up --stage dev".into(),
            since: at,
            heartbeat: at,
            created_ms: at.timestamp_millis(),
        }
    }

    #[test]
    fn a_dead_process_on_this_host_is_stale() {
        let h = holder("ci-1", 4242, 1);
        let why = staleness(&h, "ci-1", Utc::now(), STALE_AFTER, |_| false).expect("stale");
        assert!(why.contains("4242") && why.contains("gone"), "{why}");
        assert_eq!(
            staleness(&h, "ci-1", Utc::now(), STALE_AFTER, |_| true),
            None
        );
    }

    #[test]
    fn a_process_on_another_host_is_never_judged_by_its_pid() {
        let h = holder("ci-2", 4242, 1);
        assert_eq!(
            staleness(&h, "ci-1", Utc::now(), STALE_AFTER, |_| false),
            None
        );
    }

    #[test]
    fn a_silent_holder_goes_stale_after_the_bound_and_a_heartbeat_keeps_it_live() {
        let mut h = holder("ci-2", 4242, 16);
        let why = staleness(&h, "ci-1", Utc::now(), STALE_AFTER, |_| true).expect("stale");
        assert!(why.contains("960 s"), "{why}");
        h.heartbeat = Utc::now() - chrono::Duration::minutes(1);
        assert_eq!(
            staleness(&h, "ci-1", Utc::now(), STALE_AFTER, |_| true),
            None
        );
        let fourteen = holder("ci-2", 4242, 14);
        assert_eq!(
            staleness(&fourteen, "ci-1", Utc::now(), STALE_AFTER, |_| true),
            None
        );
    }

    #[test]
    fn a_break_marker_goes_stale_much_sooner_than_a_lock() {
        let marker = holder("ci-2", 4242, 1);
        assert!(staleness(&marker, "ci-1", Utc::now(), BREAK_STALE_AFTER, |_| true).is_some());
        assert_eq!(
            staleness(&marker, "ci-1", Utc::now(), STALE_AFTER, |_| true),
            None
        );
    }

    #[test]
    fn tags_round_trip_and_missing_tags_fall_back_to_the_creation_time() {
        let h = holder("ci-1", 7, 3);
        let tags = h.tags();
        let back = Holder::from_tags(&tags, h.created_ms);
        assert_eq!(back.host, h.host);
        assert_eq!(back.pid, h.pid);
        assert_eq!(back.command, h.command);
        assert_eq!(back.since.timestamp_millis(), h.since.timestamp_millis());
        let bare = Holder::from_tags(&HashMap::new(), h.created_ms);
        assert_eq!(bare.pid, 0);
        assert_eq!(bare.heartbeat.timestamp_millis(), h.created_ms);
        // pid 0 (unknown) is never "dead on this host".
        assert_eq!(
            staleness(&bare, "?", Utc::now(), STALE_AFTER, |_| false),
            None
        );
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
    fn this_process_is_alive_and_has_a_host() {
        assert!(pid_alive(std::process::id()));
        assert!(!this_host().is_empty());
    }
}
