"""What every behaviour shares: ``/_local-aws/status`` names the
behaviours in force and their windows, and a moto reset forgets every
open window (on a private server, since a reset wipes all of moto)."""

import hashlib
import unittest
from pathlib import Path

from . import support
from .support import BEHAVIOURS, client, http, name, refused


class Status(unittest.TestCase):
    def test_the_endpoint_under_test_is_strict_with_every_behaviour(self) -> None:
        status = support.status(support.endpoint())
        self.assertTrue(status["strict"], status)
        self.assertEqual(sorted(status["behaviours"]), sorted(BEHAVIOURS))
        for window, seconds in status["windows"].items():
            self.assertGreater(seconds, 0, window)

    def test_the_code_hash_is_that_of_this_checkouts_extension(self) -> None:
        # scripts/local-cloud compares it to restart a moto running older code.
        digest = hashlib.sha256()
        for path in sorted(Path(__file__).parents[1].glob("*.py"), key=lambda p: p.name.encode()):
            digest.update(path.read_bytes())
        self.assertEqual(support.status(support.endpoint())["code"], digest.hexdigest())

    def test_each_switch_turns_its_behaviour_off(self) -> None:
        self.assertEqual(support.status(support.switched_off())["behaviours"], [])


class Reset(unittest.TestCase):
    def test_a_reset_closes_every_window(self) -> None:
        url = support.private_strict()
        apigw = client("apigateway", url)

        def create_and_delete() -> object:
            api = apigw.create_rest_api(name=name("ext-api"))["id"]
            return refused(lambda: apigw.delete_rest_api(restApiId=api))

        self.assertIsNone(create_and_delete(), "the private server's first DeleteRestApi was refused")
        err = create_and_delete()
        self.assertEqual(err and err.code, "TooManyRequestsException", "the quota's window was not open")
        # A reset reloads IAM's managed policies: seconds on a loaded machine.
        http(f"{url}/moto-api/reset", {}, timeout=support.PATIENCE_SECONDS)
        self.assertIsNone(create_and_delete(), "the window outlived moto's reset")


if __name__ == "__main__":
    unittest.main()
