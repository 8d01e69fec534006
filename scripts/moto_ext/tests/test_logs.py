"""``logs-race`` and ``logs-describe-lag``: in force (on the moto with wider
windows, ``support.wide_windows``), and off with their switches."""

import time
import unittest

from . import support
from .support import Stopwatch, client, inside_window, name, refused, window


def listed(logs, group: str) -> bool:  # type: ignore[no-untyped-def]
    answer = logs.describe_log_groups(logGroupNamePrefix=group)
    return any(g["logGroupName"] == group for g in answer["logGroups"])


class Race(unittest.TestCase):
    def test_create_and_delete_of_one_name_racing_are_aborted(self) -> None:
        url = support.wide_windows()
        logs = client("logs", url)

        def delete_after_create(watch: Stopwatch) -> str:
            group = f"/moto-ext/{name('race')}"
            watch.start()
            logs.create_log_group(logGroupName=group)
            err = refused(lambda: logs.delete_log_group(logGroupName=group))
            self.assertEqual((err and err.status, err and err.code), (400, "OperationAbortedException"), err)
            self.assertEqual(err.headers.get("x-amzn-errortype"), "OperationAbortedException")
            return group

        group = inside_window(url, "logs-race", delete_after_create)
        time.sleep(window(url, "logs-race"))
        logs.delete_log_group(logGroupName=group)

        def create_after_delete(watch: Stopwatch) -> str:
            # A group of its own for each try, past its create's window.
            group = f"/moto-ext/{name('race')}"
            logs.create_log_group(logGroupName=group)
            time.sleep(window(url, "logs-race"))
            watch.start()
            logs.delete_log_group(logGroupName=group)
            err = refused(lambda: logs.create_log_group(logGroupName=group))
            self.assertEqual(err and err.code, "OperationAbortedException", err)
            return group

        group = inside_window(url, "logs-race", create_after_delete)
        time.sleep(window(url, "logs-race"))
        logs.create_log_group(logGroupName=group)

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
