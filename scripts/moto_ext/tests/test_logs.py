"""``logs-race`` and ``logs-describe-lag``: in force (on the moto with wider
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


if __name__ == "__main__":
    unittest.main()
