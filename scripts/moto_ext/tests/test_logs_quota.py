"""``logs-read-quota``: FilterLogEvents held to 5 and GetLogEvents to 25
transactions per second per account and Region (ThrottlingException, "Rate
exceeded", HTTP 400), per Region, and not at all when switched off.

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
