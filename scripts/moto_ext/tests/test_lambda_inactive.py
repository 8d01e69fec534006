"""``lambda-inactive`` and ``lambda-role-grant``: an idle version turns
``Inactive`` and its first invoke fails while Lambda restores it; a role
deleted and recreated under its name breaks the function's environment
until its configuration is updated.

The idle window is days by default, so the idle tests run on a moto of
their own whose ``lambda-inactive`` window is two seconds."""

import time
import unittest
from typing import Optional

from . import support
from .support import FunctionsTest, client, invoke, refused, wait_until_active

# lambda-inactive 20 s and lambda-restore 5 s, scaled by 0.1.
_IDLE: Optional[support.Server] = None


def idle_server() -> str:
    global _IDLE
    if _IDLE is None:
        _IDLE = support.Server({"LOCAL_AWS_TIME_SCALE": "0.1", "LOCAL_AWS_LAMBDA_INACTIVE_SECONDS": "20"})
    return _IDLE.wait().url


def tearDownModule() -> None:
    if _IDLE is not None:
        _IDLE.stop()


def assert_served(test: unittest.TestCase, answer: dict) -> None:
    test.assertEqual(answer["StatusCode"], 200)
    test.assertNotIn("FunctionError", answer, answer["Body"])


class LambdaInactive(FunctionsTest):
    def test_the_behaviour_is_in_force_with_a_long_idle_window(self) -> None:
        status = support.status(support.endpoint())
        self.assertIn("lambda-inactive", status["behaviours"])
        # Days, even scaled: nothing on the shared moto goes idle in a test run.
        self.assertGreater(support.window(support.endpoint(), "lambda-inactive"), 3600)

    def test_an_idle_version_is_inactive_and_its_first_invoke_restores_it(self) -> None:
        url = idle_server()
        lam = client("lambda", url)
        function = self.active_function(url)
        version = support.publish_version(lam, function)
        assert_served(self, invoke(function, {"ping": 1}, url, Qualifier=version))

        time.sleep(support.window(url, "lambda-inactive") + 0.3)
        for qualifier in (version, "$LATEST"):
            config = lam.get_function_configuration(FunctionName=function, Qualifier=qualifier)
            self.assertEqual((config["State"], config.get("StateReasonCode")), ("Inactive", "Idle"), qualifier)

        err = refused(lambda: invoke(function, {"ping": 1}, url, Qualifier=version))
        self.assertEqual((err and err.status, err and err.code), (409, "CodeArtifactUserPendingException"), err)
        config = lam.get_function_configuration(FunctionName=function, Qualifier=version)
        self.assertEqual((config["State"], config.get("StateReasonCode")), ("Pending", "Restoring"))
        # Only the version invoked is restored.
        self.assertEqual(lam.get_function_configuration(FunctionName=function)["State"], "Inactive")

        wait_until_active(lam, function, version)
        assert_served(self, invoke(function, {"ping": 1}, url, Qualifier=version))

    def test_an_update_reactivates_latest(self) -> None:
        url = idle_server()
        lam = client("lambda", url)
        function = self.active_function(url)
        time.sleep(support.window(url, "lambda-inactive") + 0.3)
        self.assertEqual(lam.get_function_configuration(FunctionName=function)["State"], "Inactive")
        lam.update_function_configuration(FunctionName=function, MemorySize=256)
        wait_until_active(lam, function)
        assert_served(self, invoke(function, {"ping": 1}, url))


class LambdaRoleGrant(FunctionsTest):
    def test_a_recreated_role_breaks_the_environment_until_an_update(self) -> None:
        url = support.endpoint()
        iam = client("iam", url)
        lam = client("lambda", url)
        role_name, role_arn = support.new_role(url)
        function = self.active_function(url, role=role_arn, environment={"GREETING": "hello"})
        version = support.publish_version(lam, function)
        assert_served(self, invoke(function, {"ping": 1}, url))

        iam.delete_role(RoleName=role_name)
        iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=support.TRUST)
        for qualifier in ("$LATEST", version):
            err = refused(lambda: invoke(function, {"ping": 1}, url, Qualifier=qualifier))
            self.assertEqual((err and err.status, err and err.code), (502, "KMSAccessDeniedException"), err)
            self.assertIn("Lambda was unable to decrypt the environment variables because KMS access was denied", err.message)

        # Updating the configuration makes a new grant, for $LATEST and the
        # versions published after; the old version stays broken.
        support.asked_again(
            lambda: lam.update_function_configuration(FunctionName=function, Role=role_arn),
            support.role_not_assumable_yet,
        )
        wait_until_active(lam, function)
        assert_served(self, invoke(function, {"ping": 1}, url))
        fresh = support.publish_version(lam, function)
        assert_served(self, invoke(function, {"ping": 1}, url, Qualifier=fresh))
        err = refused(lambda: invoke(function, {"ping": 1}, url, Qualifier=version))
        self.assertEqual(err and err.code, "KMSAccessDeniedException", err)

    def test_without_environment_variables_there_is_nothing_to_decrypt(self) -> None:
        url = support.endpoint()
        iam = client("iam", url)
        role_name, role_arn = support.new_role(url)
        function = self.active_function(url, role=role_arn)
        iam.delete_role(RoleName=role_name)
        iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=support.TRUST)
        assert_served(self, invoke(function, {"ping": 1}, url))
