//! `aws::logs` against moto: events put with the SDK come out of
//! `filter_events` once each and oldest first, a `Follower` sees an event
//! put after it started, `REPORT` lines give the peak memory (a Logs
//! Insights query), and a missing
//! group is no events. The stage lock, a log group too, against the strict
//! local AWS: a release and a take at the same moment (a delete and a
//! create of one name in flight together: OperationAborted) end with the
//! lock taken, its holder knows its ARN before DescribeLogGroups lists it,
//! and a waiter asks again calmly, not in a busy loop, while a new lock is
//! not listed yet.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use deployer::aws::lock::{self, Holder, LockEvents};
use deployer::aws::logs::{self, Follower, Insights};
use deployer::config::Stage;
use deployer::names::Names;

use crate::util;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn client() -> Client {
    util::require_local_cloud();
    Client::new(&util::sdk_config().await)
}

async fn create_group(client: &Client, prefix: &str, streams: &[&str]) -> String {
    let group = format!("/aws/lambda/{}", util::unique_name(prefix));
    client
        .create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    for stream in streams {
        client
            .create_log_stream()
            .log_group_name(&group)
            .log_stream_name(*stream)
            .send()
            .await
            .unwrap();
    }
    group
}

async fn put(client: &Client, group: &str, stream: &str, events: &[(i64, &str)]) {
    let mut request = client
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream);
    for (timestamp, message) in events {
        request = request.log_events(
            InputLogEvent::builder()
                .timestamp(*timestamp)
                .message(*message)
                .build()
                .unwrap(),
        );
    }
    request.send().await.unwrap();
}

#[tokio::test]
async fn filter_events_returns_each_event_once_oldest_first() {
    let client = client().await;
    let group = create_group(&client, "logs-filter", &["a", "b"]).await;
    let t = now_ms() - 10_000;
    // Two streams, interleaved in time, and two events sharing a timestamp.
    put(
        &client,
        &group,
        "a",
        &[(t, "first"), (t + 20, "third"), (t + 20, "fourth")],
    )
    .await;
    put(
        &client,
        &group,
        "b",
        &[(t + 10, "second"), (t + 30, "fifth")],
    )
    .await;

    let events = logs::filter_events(&client, &group, t - 1, None)
        .await
        .unwrap();
    let messages: Vec<_> = events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["first", "second", "third", "fourth", "fifth"]);
    let mut ids: Vec<_> = events.iter().map(|e| e.event_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "event ids are not unique: {events:?}");

    let later = logs::filter_events(&client, &group, t + 15, None)
        .await
        .unwrap();
    let messages: Vec<_> = later.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["third", "fourth", "fifth"]);

    let filtered = logs::filter_events(&client, &group, t - 1, Some("fourth"))
        .await
        .unwrap();
    let messages: Vec<_> = filtered.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["fourth"]);
    logs::delete_log_group(&client, &group).await.unwrap();
}

/// FilterLogEvents' quota (5 a second) is per account and Region, and the
/// other tests read logs in the default Region: a follower timed there is
/// throttled by them, as a colleague's reads would throttle it on AWS
/// ("CloudWatch Logs quotas"), and its timing says nothing. This Region is
/// its own.
const FOLLOW_REGION: &str = "eu-west-3";

#[tokio::test]
async fn follow_sees_an_event_put_after_it_started_once() {
    util::require_local_cloud();
    let client = Client::new(&util::sdk_config_in(FOLLOW_REGION).await);
    let group = create_group(&client, "logs-follow", &["s"]).await;
    let start = now_ms() - 5_000;
    put(&client, &group, "s", &[(start + 1, "before")]).await;

    let mut follower = Follower::new(&group, start, None);
    let first = follower.poll(&client).await.unwrap();
    assert_eq!(
        first.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
        ["before"]
    );

    // Put while the follower is idle, then follow until "after" shows up,
    // for at most 30 s.
    let writer = client.clone();
    let writer_group = group.clone();
    let put_later = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        put(&writer, &writer_group, "s", &[(now_ms(), "after")]).await;
        Instant::now()
    });
    let (arrived, arrival) = tokio::sync::oneshot::channel::<()>();
    let mut arrived = Some(arrived);
    let mut seen = Vec::new();
    let mut shown_at = None;
    let stop = async {
        let _ = tokio::time::timeout(Duration::from_secs(30), arrival).await;
    };
    logs::follow(
        &client,
        &mut follower,
        |event| {
            seen.push(event.message.clone());
            if event.message == "after" {
                shown_at = Some(Instant::now());
                arrived.take().map(|tx| tx.send(()));
            }
        },
        stop,
    )
    .await
    .unwrap();
    let put_at = put_later.await.unwrap();
    assert_eq!(seen, ["after"], "followed events within 30 s");
    // An idle follower asks at least every IDLE_GAP_MAX (its pauses are
    // unit-tested in aws::logs); the slack is a poll's own time on a busy
    // machine.
    let late = shown_at
        .expect("\"after\" was seen")
        .saturating_duration_since(put_at);
    assert!(
        late <= logs::IDLE_GAP_MAX + Duration::from_secs(3),
        "shown {late:?} after it was put"
    );

    // Polling again returns nothing already shown.
    assert_eq!(follower.poll(&client).await.unwrap(), Vec::new());
    logs::delete_log_group(&client, &group).await.unwrap();
}

#[tokio::test]
async fn max_memory_used_reads_report_lines() {
    let client = client().await;
    let group = create_group(&client, "logs-report", &["s"]).await;
    // Whole seconds: Logs Insights' time range is in seconds.
    let t = (now_ms() - 10_000) / 1000 * 1000;
    put(
        &client,
        &group,
        "s",
        &[
            (t, "START RequestId: 1 Version: 1"),
            (t + 1000, "REPORT RequestId: 1\tDuration: 10.00 ms\tBilled Duration: 10 ms\tMemory Size: 2048 MB\tMax Memory Used: 41 MB\t"),
            (t + 2000, "REPORT RequestId: 2\tDuration: 9.00 ms\tBilled Duration: 9 ms\tMemory Size: 2048 MB\tMax Memory Used: 57 MB\t"),
            (t + 3000, "REPORT RequestId: 3\tDuration: 8.00 ms\tBilled Duration: 8 ms\tMemory Size: 2048 MB\tMax Memory Used: 44 MB\t"),
        ],
    )
    .await;
    assert_eq!(
        logs::max_memory_used(&client, &group, t).await.unwrap(),
        Insights::Answered(Some(57))
    );
    assert_eq!(
        logs::max_memory_used(&client, &group, t + 3000)
            .await
            .unwrap(),
        Insights::Answered(Some(44))
    );
    logs::delete_log_group(&client, &group).await.unwrap();
}

#[tokio::test]
async fn a_missing_group_has_no_events_and_deletes_twice() {
    let client = client().await;
    let group = create_group(&client, "logs-missing", &[]).await;
    logs::delete_log_group(&client, &group).await.unwrap();
    logs::delete_log_group(&client, &group).await.unwrap();
    assert_eq!(
        logs::filter_events(&client, &group, 0, None).await.unwrap(),
        Vec::new()
    );
    assert_eq!(
        logs::max_memory_used(&client, &group, 0).await.unwrap(),
        Insights::Answered(None)
    );
    let mut follower = Follower::new(&group, 0, None);
    assert_eq!(follower.poll(&client).await.unwrap(), Vec::new());
}

/// A lock group of a stage no one else uses, and its ARN.
fn new_lock(prefix: &str) -> (String, String) {
    let stage = Stage::defaults(&util::unique_name(prefix), "dev", &util::region());
    let group = stage.lock_group_name();
    let arn = Names::new(&stage, util::ACCOUNT).log_group_arn(&group);
    (group, arn)
}

/// The tags of the lock group `arn`: who holds it.
async fn lock_tags(client: &Client, arn: &str) -> HashMap<String, String> {
    let answer = client
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    answer.tags().cloned().unwrap_or_default()
}

struct Quiet;

/// Takes the lock for this process, as `up` would.
async fn take(client: &Client, group: &str, arn: &str, wait: Duration) -> lock::StageLock {
    lock::acquire(
        client,
        group,
        arn,
        "dev",
        &Holder::this_process(),
        wait,
        &Quiet,
    )
    .await
    .unwrap()
}

impl LockEvents for Quiet {
    fn waiting(&self, _: &Holder) {}
    fn breaking(&self, _: &Holder, _: &str) {}
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_released_and_taken_at_the_same_moment_ends_with_the_taker() {
    util::require_strict_local_aws();
    let client = client().await;
    let (group, arn) = new_lock("lock-race");
    let wait = Duration::from_secs(5);
    // Taken and released in sequence, the lock never races.
    let first = take(&client, &group, &arn, wait).await;
    first.release().await.unwrap();
    let held = take(&client, &group, &arn, wait).await;
    // A release and another run's take sent together: the delete and the
    // create of one name are in flight at once, and AWS refuses one of
    // them with OperationAborted, which each side asks again.
    let next = Holder {
        pid: 4242,
        ..Holder::this_process()
    };
    let (released, taken) = tokio::join!(
        held.release(),
        lock::acquire(&client, &group, &arn, "dev", &next, wait, &Quiet)
    );
    released.unwrap();
    let taken = taken.unwrap();
    assert_eq!(
        lock_tags(&client, taken.arn()).await.get("deployer:pid"),
        Some(&"4242".to_string()),
        "the lock is not the taker's"
    );
    taken.release().await.unwrap();
}

#[tokio::test]
async fn the_holder_knows_its_lock_before_it_is_listed() {
    util::require_strict_local_aws();
    let client = client().await;
    let (group, arn) = new_lock("lock-arn");
    let taken = take(&client, &group, &arn, Duration::from_secs(5)).await;
    // The holder reads its lock by this ARN (its release checks the token
    // there); a new group may not be listed by DescribeLogGroups yet, so
    // the ARN must not come from there.
    assert_eq!(taken.arn(), arn);
    let tags = lock_tags(&client, taken.arn()).await;
    assert_eq!(
        tags.get("deployer:pid"),
        Some(&std::process::id().to_string())
    );
    assert!(tags.contains_key("deployer:token"), "{tags:?}");
    assert!(taken.release().await.unwrap(), "released a lock not ours");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiter_asks_again_calmly_while_a_new_lock_is_not_listed() {
    util::require_strict_local_aws();
    let client = client().await;
    let (group, arn) = new_lock("lock-calm");
    let upstream = util::endpoint_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let proxy = util::proxy::FaultProxy::start(&upstream, 0.0, 1);
    let config = aws_sdk_cloudwatchlogs::config::Builder::from(&util::sdk_config().await)
        .endpoint_url(proxy.url())
        .build();
    let counted = Client::from_conf(config);

    // Another deployer takes the lock just now: it exists, but is not
    // listed yet.
    let holder = HashMap::from([
        ("deployer:host".to_string(), "another-host".to_string()),
        ("deployer:pid".to_string(), "4242".to_string()),
    ]);
    client
        .create_log_group()
        .log_group_name(&group)
        .set_tags(Some(holder))
        .send()
        .await
        .unwrap();
    let err = lock::acquire(
        &counted,
        &group,
        &arn,
        "dev",
        &Holder::this_process(),
        Duration::from_secs(1),
        &Quiet,
    )
    .await
    .unwrap_err();
    assert!(
        err.downcast_ref::<lock::LockHeld>().is_some(),
        "not a held lock: {err:#}"
    );
    let requests = proxy.counts.requests.load(Ordering::Relaxed);
    eprintln!("waiter requests: {requests}");
    assert!(
        requests <= 15,
        "{requests} requests in about 3 s of waiting: a busy loop"
    );
    logs::delete_log_group(&client, &group).await.unwrap();
}
