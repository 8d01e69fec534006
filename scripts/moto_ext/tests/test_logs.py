"""``logs-race``, ``logs-describe-lag`` and ``logs-deleted-tags``: in force (on the moto with wider
windows, ``support.wide_windows``), and off with their switches. ``logs-race``
refuses only requests in flight together, never a client asking in sequence."""

import threading
import time
import unittest
from typing import Optional

from . import support
from .support import WINDOW_TRIES, Stopwatch, client, inside_window, name, refused, window


def listed(logs, group: str) -> bool:  # type: ignore[no-untyped-def]
    answer = logs.describe_log_groups(logGroupNamePrefix=group)
    return any(g["logGroupName"] == group for g in answer["logGroups"])


class Race(unittest.TestCase):
    def test_create_and_delete_of_one_name_at_once_one_is_aborted(self) -> None:
        url = support.wide_windows()
        logs = client("logs", url)
        # Requests sent together may still reach moto one after the other
        # on a loaded machine: a pair that did not overlap is sent again.
        for _ in range(WINDOW_TRIES * 4):
            group = f"/moto-ext/{name('race')}"
            logs.create_log_group(logGroupName=group)
            start = threading.Barrier(2)
            errors: dict[str, Optional[support.Refused]] = {}

            def send(op: str, call) -> None:  # type: ignore[no-untyped-def]
                start.wait()
                errors[op] = refused(call)

            pair = [
                threading.Thread(target=send, args=("delete", lambda: logs.delete_log_group(logGroupName=group))),
                threading.Thread(target=send, args=("create", lambda: logs.create_log_group(logGroupName=group))),
            ]
            for thread in pair:
                thread.start()
            for thread in pair:
                thread.join()
            codes = sorted(err.code for err in errors.values() if err is not None)
            aborted = codes.count("OperationAbortedException")
            self.assertLessEqual(aborted, 1, f"both concurrent requests were refused: {errors}")
            for err in errors.values():
                if err is not None and err.code == "OperationAbortedException":
                    self.assertEqual(err.status, 400, err)
                    self.assertEqual(err.headers.get("x-amzn-errortype"), "OperationAbortedException")
            refused(lambda: logs.delete_log_group(logGroupName=group))
            if aborted == 1:
                return
        self.fail("no concurrent create and delete of one name was ever refused")

    def test_one_after_the_other_they_never_race(self) -> None:
        # AWS documents OperationAborted for concurrent requests only: a
        # client that waits for each answer is never refused, however soon
        # it asks again.
        logs = client("logs", support.wide_windows())
        group = f"/moto-ext/{name('race')}"
        for _ in range(3):
            logs.create_log_group(logGroupName=group)
            logs.delete_log_group(logGroupName=group)

    def test_switched_off_they_do_not_race(self) -> None:
        logs = client("logs", support.switched_off())
        group = f"/moto-ext/{name('race')}"
        logs.create_log_group(logGroupName=group)
        logs.delete_log_group(logGroupName=group)
        logs.create_log_group(logGroupName=group)


class DescribeLag(unittest.TestCase):
    def test_a_new_group_is_not_listed_at_first(self) -> None:
        url = support.wide_windows()
        logs = client("logs", url)

        def listed_at_once(watch: Stopwatch) -> str:
            group = f"/moto-ext/{name('lag')}"
            watch.start()
            logs.create_log_group(logGroupName=group)
            self.assertFalse(listed(logs, group), "a group created just now is listed")
            return group

        group = inside_window(url, "logs-describe-lag", listed_at_once)
        time.sleep(window(url, "logs-describe-lag"))
        self.assertTrue(listed(logs, group), "the group is still not listed after the window")

    def test_switched_off_it_is_listed_at_once(self) -> None:
        logs = client("logs", support.switched_off())
        group = f"/moto-ext/{name('lag')}"
        logs.create_log_group(logGroupName=group)
        self.assertTrue(listed(logs, group))


class DeletedTags(unittest.TestCase):
    def test_a_deleted_group_has_no_tags_and_a_new_one_only_its_own(self) -> None:
        logs = client("logs", support.endpoint())
        group = f"/moto-ext/{name('tags')}"
        arn = f"arn:aws:logs:{support.REGION}:{support.ACCOUNT}:log-group:{group}"
        logs.create_log_group(logGroupName=group, tags={"holder": "a", "only-a": "1"})
        self.assertEqual(logs.list_tags_for_resource(resourceArn=arn)["tags"], {"holder": "a", "only-a": "1"})
        logs.delete_log_group(logGroupName=group)
        for call in (
            lambda: logs.list_tags_for_resource(resourceArn=arn),
            lambda: logs.tag_resource(resourceArn=arn, tags={"x": "y"}),
        ):
            err = refused(call)
            self.assertIsNotNone(err)
            assert err is not None
            self.assertEqual(err.code, "ResourceNotFoundException", err)
        logs.create_log_group(logGroupName=group, tags={"holder": "b"})
        self.assertEqual(logs.list_tags_for_resource(resourceArn=arn)["tags"], {"holder": "b"})
        logs.delete_log_group(logGroupName=group)

    def test_switched_off_the_tags_outlive_the_group(self) -> None:
        logs = client("logs", support.switched_off())
        group = f"/moto-ext/{name('tags')}"
        arn = f"arn:aws:logs:{support.REGION}:{support.ACCOUNT}:log-group:{group}"
        logs.create_log_group(logGroupName=group, tags={"holder": "a"})
        logs.delete_log_group(logGroupName=group)
        self.assertEqual(logs.list_tags_for_resource(resourceArn=arn)["tags"], {"holder": "a"})


class EventTimes(unittest.TestCase):
    """What the stage lock relies on (crates/deployer/src/aws/lock.rs): an
    event stamped by a clock an hour off either way is accepted, and its
    ``ingestionTime`` is the service's clock, not the event's. AWS refuses
    only events more than 2 hours in the future or 14 days in the past, and
    says so in ``rejectedLogEventsInfo``, not with an error (PutLogEvents,
    https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html).
    moto does the same by itself: this pins it."""

    def test_an_hour_either_way_is_accepted_and_stamped_with_the_service_time(self) -> None:
        logs = client("logs", support.endpoint())
        group = f"/moto-ext/{name('times')}"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        hour = 3600 * 1000
        for skew in (-hour, hour):
            before = int(time.time() * 1000)
            answer = logs.put_log_events(
                logGroupName=group,
                logStreamName="s",
                logEvents=[{"timestamp": before + skew, "message": "alive"}],
            )
            after = int(time.time() * 1000)
            self.assertNotIn("rejectedLogEventsInfo", answer, answer)
            events = logs.get_log_events(logGroupName=group, logStreamName="s")["events"]
            mine = [e for e in events if e["timestamp"] == before + skew]
            self.assertEqual(len(mine), 1, events)
            self.assertTrue(before - 1000 <= mine[0]["ingestionTime"] <= after + 1000, (mine, before, after))
        logs.delete_log_group(logGroupName=group)

    def test_more_than_two_hours_ahead_or_fourteen_days_behind_is_rejected(self) -> None:
        logs = client("logs", support.endpoint())
        group = f"/moto-ext/{name('times')}"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        now = int(time.time() * 1000)
        ahead = logs.put_log_events(
            logGroupName=group,
            logStreamName="s",
            logEvents=[{"timestamp": now + 3 * 3600 * 1000, "message": "x"}],
        )
        self.assertEqual(ahead.get("rejectedLogEventsInfo", {}).get("tooNewLogEventStartIndex"), 0, ahead)
        behind = logs.put_log_events(
            logGroupName=group,
            logStreamName="s",
            logEvents=[{"timestamp": now - 15 * 24 * 3600 * 1000, "message": "x"}],
        )
        self.assertEqual(behind.get("rejectedLogEventsInfo", {}).get("tooOldLogEventEndIndex"), 0, behind)
        logs.delete_log_group(logGroupName=group)


if __name__ == "__main__":
    unittest.main()
