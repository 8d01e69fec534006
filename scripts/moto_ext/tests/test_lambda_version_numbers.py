"""``lambda-version-numbers``: a deleted version's number is never given
again; off with its switch, moto numbers the next version like the deleted
newest one."""

from typing import Any

from . import support
from .support import FunctionsTest, client, publish_version, wait_until_active


def publish_changed(lam: Any, function: str, memory: int) -> str:
    """A version of a changed ``$LATEST`` (an unchanged one publishes none)."""
    wait_until_active(lam, function)
    lam.update_function_configuration(FunctionName=function, MemorySize=memory)
    return publish_version(lam, function)


class VersionNumbers(FunctionsTest):
    def numbers_after_deleting_the_newest(self, url: str) -> tuple[str, list[str]]:
        lam = client("lambda", url)
        function = self.active_function(url, prefix="ext-vnum")
        self.assertEqual(publish_version(lam, function), "1")
        self.assertEqual(publish_changed(lam, function, 256), "2")
        lam.delete_function(FunctionName=function, Qualifier="2")
        third = publish_changed(lam, function, 512)
        listed = [v["Version"] for v in lam.list_versions_by_function(FunctionName=function)["Versions"]]
        return third, listed

    def test_a_deleted_versions_number_is_not_given_again(self) -> None:
        third, listed = self.numbers_after_deleting_the_newest(support.endpoint())
        self.assertEqual(third, "3")
        self.assertEqual(listed, ["$LATEST", "1", "3"])

    def test_switched_off_moto_gives_the_number_again(self) -> None:
        third, _ = self.numbers_after_deleting_the_newest(support.switched_off())
        self.assertEqual(third, "2")
