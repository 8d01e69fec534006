"""``ecr-scan-default``: a scanning configuration without ``scanOnPush``
turns scanning off, as the member's default says; off with its switch,
moto keeps the old value."""

import unittest

from . import support
from .support import client, name


def scan_on_push(ecr, repository: str) -> bool:  # type: ignore[no-untyped-def]
    found = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]
    return bool(found["imageScanningConfiguration"].get("scanOnPush", False))


class ScanDefault(unittest.TestCase):
    def scanned_then_emptied(self, url: str) -> bool:
        ecr = client("ecr", url)
        repository = name("ext-scan")
        ecr.create_repository(repositoryName=repository, imageScanningConfiguration={"scanOnPush": True})
        try:
            self.assertTrue(scan_on_push(ecr, repository))
            # What the Rust SDK sends for `scan_on_push(false)`.
            ecr.put_image_scanning_configuration(repositoryName=repository, imageScanningConfiguration={})
            return scan_on_push(ecr, repository)
        finally:
            ecr.delete_repository(repositoryName=repository, force=True)

    def test_an_empty_configuration_turns_scanning_off(self) -> None:
        self.assertFalse(self.scanned_then_emptied(support.endpoint()))

    def test_switched_off_moto_keeps_scanning_on(self) -> None:
        self.assertTrue(self.scanned_then_emptied(support.switched_off()))


if __name__ == "__main__":
    unittest.main()
