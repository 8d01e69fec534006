"""``logs-read-quota``: FilterLogEvents held to 5 and GetLogEvents to 25
transactions per second per account and Region (ThrottlingException, "Rate
exceeded", HTTP 400), per Region, and not at all when switched off.
``logs-filter-page``: a FilterLogEvents page holds at most 1 MB of events.
``logs-put-limits``: a PutLogEvents batch of at most 10,000 events, 1 MB, 24 hours.

Each test reads in a Region of its own (the quota is per account and
Region) so that the other modules' tests, reading logs on the same server,
do not share its window."""

import time
import unittest
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

from . import support
from .support import Refused, client, name, refused


def reader(region: str, url: Optional[str] = None) -> tuple[Any, str, str]:
    """A logs client in ``region``, a group and a stream with one event."""
    logs = client("logs", url, region=region)
    group = f"/moto-ext/{name('quota')}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[{"timestamp": int(time.time() * 1000), "message": "hello"}])
    return logs, group, "s"


def burst(call: Callable[[], Any], times: int) -> tuple[list[Optional[Refused]], float]:
    """``times`` calls in a row: what each met, and how long they took."""
    began = time.monotonic()
    met = [refused(call) for _ in range(times)]
    return met, time.monotonic() - began


def together(call: Callable[[], Any], times: int) -> tuple[list[Optional[Refused]], float]:
    """``times`` calls from four threads at once: what they met (in no
    order), and how long they all took."""
    with ThreadPoolExecutor(4) as pool:
        began = time.monotonic()
        met = list(pool.map(lambda _: refused(call), range(times)))
    return met, time.monotonic() - began


class FilterLogEvents(unittest.TestCase):
    def test_the_sixth_call_within_a_second_is_throttled(self) -> None:
        logs, group, _ = reader("eu-west-3")
        for _ in range(3):
            time.sleep(1.0)
            met, took = burst(lambda: logs.filter_log_events(logGroupName=group), 6)
            if took < 1.0:
                break
        else:
            self.skipTest("six calls never fitted in one second on this machine")
        self.assertEqual(met[:5], [None] * 5, met)
        err = met[5]
        self.assertIsNotNone(err, "a sixth FilterLogEvents within a second was answered")
        self.assertEqual((err.status, err.code, err.message), (400, "ThrottlingException", "Rate exceeded"), err)
        time.sleep(1.0)
        self.assertIsNone(refused(lambda: logs.filter_log_events(logGroupName=group)), "still throttled a second later")

    def test_the_quota_is_per_region(self) -> None:
        here, group, _ = reader("eu-north-1")
        there, other, _ = reader("ap-south-2")
        time.sleep(1.0)
        burst(lambda: here.filter_log_events(logGroupName=group), 6)
        self.assertIsNone(refused(lambda: there.filter_log_events(logGroupName=other)))

    def test_switched_off_no_quota(self) -> None:
        logs, group, _ = reader("eu-west-3", support.switched_off())
        met, _ = burst(lambda: logs.filter_log_events(logGroupName=group), 8)
        self.assertEqual(met, [None] * 8)


class FilterLogEventsPages(unittest.TestCase):
    def big_events(self, url: Optional[str] = None) -> tuple[Any, str]:
        """A group with 12 events of 200,000 bytes: 5 fit in 1 MB."""
        logs, group, stream = reader("ca-central-1", url)
        now = int(time.time() * 1000)
        for batch in range(3):
            logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": now + batch * 4 + i, "message": f"{batch * 4 + i:02d}" + "x" * 199_998} for i in range(4)],
            )
        return logs, group

    def pages(self, logs: Any, group: str) -> list[list[str]]:
        answers: list[list[str]] = []
        token: dict[str, str] = {}
        while True:
            time.sleep(0.25)  # within the read quota
            answer = logs.filter_log_events(logGroupName=group, filterPattern="x", **token)
            answers.append([e["message"][:2] for e in answer["events"]])
            if not answer.get("nextToken"):
                return answers
            token = {"nextToken": answer["nextToken"]}

    def test_a_page_holds_at_most_one_megabyte(self) -> None:
        logs, group = self.big_events()
        pages = self.pages(logs, group)
        self.assertEqual([len(p) for p in pages], [5, 5, 2], pages)
        self.assertEqual(sum(pages, []), [f"{i:02d}" for i in range(12)])

    def test_switched_off_one_page_of_everything(self) -> None:
        logs, group = self.big_events(support.switched_off())
        self.assertEqual([len(p) for p in self.pages(logs, group)], [12])


class PutLogEventsLimits(unittest.TestCase):
    def put(self, events: list[dict[str, Any]], url: Optional[str] = None) -> Optional[Refused]:
        logs, group, stream = reader("us-west-1", url)
        return refused(lambda: logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events))

    def test_a_batch_as_aws_takes_it_and_past_each_limit(self) -> None:
        now = int(time.time() * 1000)
        # 1,048,576 bytes exactly: 4 events of 262,118 bytes plus 26 each.
        self.assertIsNone(self.put([{"timestamp": now + i, "message": "x" * 262_118} for i in range(4)]))
        for events in (
            [{"timestamp": now, "message": "x"}] * 10_001,
            [{"timestamp": now + i, "message": "x" * 262_119} for i in range(4)],
            [{"timestamp": now - 24 * 3600 * 1000 - 1, "message": "a"}, {"timestamp": now, "message": "b"}],
        ):
            err = self.put(events)
            self.assertEqual((err.status, err.code) if err else None, (400, "InvalidParameterException"), err)

    def test_switched_off_any_batch(self) -> None:
        now = int(time.time() * 1000)
        self.assertIsNone(self.put([{"timestamp": now, "message": "x"}] * 10_001, support.switched_off()))


class GetLogEvents(unittest.TestCase):
    def test_the_twenty_sixth_call_within_a_second_is_throttled(self) -> None:
        logs, group, stream = reader("sa-east-1")
        for _ in range(3):
            time.sleep(1.0)
            met, took = together(lambda: logs.get_log_events(logGroupName=group, logStreamName=stream), 26)
            if took < 1.0:
                break
        else:
            self.skipTest("26 calls never fitted in one second on this machine")
        refusals = [err for err in met if err is not None]
        self.assertEqual(len(refusals), 1, f"26 GetLogEvents within a second: {refusals}")
        err = refusals[0]
        self.assertEqual((err.status, err.code, err.message), (400, "ThrottlingException", "Rate exceeded"), err)


if __name__ == "__main__":
    unittest.main()
