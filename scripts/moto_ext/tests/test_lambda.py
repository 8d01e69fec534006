"""``lambda-not-found`` and ``lambda-states``: in force (the states' windows
on the moto with wider ones, ``support.wide_windows``), and off with their
switches.

The functions are the fixture image, so that an invoke the states let
through is really served (``lambda-run-images``) and one they refuse is
refused before anything runs."""

import time
import unittest

from . import support
from .support import ACCOUNT, REGION, FunctionsTest, Stopwatch, client, inside_window, invoke, name, refused, wait_until_active, window


def assert_served(test: unittest.TestCase, answer: dict) -> None:
    test.assertEqual(answer["StatusCode"], 200)
    test.assertNotIn("FunctionError", answer, answer["Body"])


def assert_conflict(test: unittest.TestCase, err: object, text: str) -> None:
    """409 ResourceConflictException whose message says ``text``."""
    test.assertEqual((err and err.status, err and err.code), (409, "ResourceConflictException"), err)
    test.assertIn(text, err.message)


class LambdaNotFound(unittest.TestCase):
    def test_list_versions_of_a_missing_function_is_404(self) -> None:
        missing = name("ext-missing")
        lam = client("lambda", support.endpoint())
        err = refused(lambda: lam.list_versions_by_function(FunctionName=missing))
        self.assertIsNotNone(err, "ListVersionsByFunction of a missing function succeeded")
        self.assertEqual((err.status, err.code), (404, "ResourceNotFoundException"), err)
        self.assertEqual(err.headers.get("x-amzn-errortype"), "ResourceNotFoundException")
        self.assertIn(missing, err.message)

    def test_the_other_reads_of_a_missing_function_are_404_too(self) -> None:
        missing = name("ext-missing")
        lam = client("lambda", support.endpoint())
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{missing}"
        for operation, call in [
            ("ListAliases", lambda: lam.list_aliases(FunctionName=missing)),
            ("GetAlias", lambda: lam.get_alias(FunctionName=missing, Name="live")),
            ("GetPolicy", lambda: lam.get_policy(FunctionName=missing)),
            ("ListTags", lambda: lam.list_tags(Resource=arn)),
            ("GetFunctionConfiguration", lambda: lam.get_function_configuration(FunctionName=missing, Qualifier="1")),
        ]:
            err = refused(call)
            self.assertIsNotNone(err, f"{operation} of a missing function succeeded")
            self.assertEqual((err.status, err.code), (404, "ResourceNotFoundException"), f"{operation}: {err}")

    def test_switched_off_it_is_an_empty_list(self) -> None:
        lam = client("lambda", support.switched_off())
        answer = lam.list_versions_by_function(FunctionName=name("ext-missing"))
        self.assertEqual(answer["Versions"], [])


class LambdaStates(FunctionsTest):
    def test_a_new_function_is_pending_and_refuses_updates_and_invokes(self) -> None:
        url = support.wide_windows()
        lam = client("lambda", url)

        def pending_at_once(watch: Stopwatch) -> str:
            function = name("ext-fn")
            spec = support.function_spec(function, support.lambda_role(url))

            def create() -> None:
                # Timed from the create that succeeds, not from those
                # refused while Lambda could not assume the role yet.
                watch.start()
                lam.create_function(**spec)

            support.asked_again(create, support.role_not_assumable_yet)
            self.addCleanup(support.delete_function, function, url)
            config = lam.get_function_configuration(FunctionName=function)
            self.assertEqual(config["State"], "Pending")
            self.assertEqual(config.get("StateReasonCode"), "Creating")
            err = refused(lambda: lam.update_function_configuration(FunctionName=function, MemorySize=256))
            assert_conflict(self, err, "Pending")
            assert_conflict(self, refused(lambda: lam.publish_version(FunctionName=function)), "Pending")
            assert_conflict(self, refused(lambda: invoke(function, {"ping": 1}, url)), "Pending")
            return function

        function = inside_window(url, "lambda-pending", pending_at_once)
        time.sleep(window(url, "lambda-pending"))
        config = lam.get_function_configuration(FunctionName=function)
        self.assertEqual((config["State"], config["LastUpdateStatus"]), ("Active", "Successful"))
        assert_served(self, invoke(function, {"ping": 1}, url))

    def test_an_update_is_in_progress_for_a_window(self) -> None:
        url = support.wide_windows()
        lam = client("lambda", url)
        function = self.active_function(url)
        image = support.fixture_image()

        def in_progress_at_once(watch: Stopwatch) -> None:
            wait_until_active(lam, function)
            watch.start()
            lam.update_function_configuration(FunctionName=function, MemorySize=256)
            config = lam.get_function_configuration(FunctionName=function)
            self.assertEqual((config["State"], config["LastUpdateStatus"]), ("Active", "InProgress"))
            for call in (
                lambda: lam.update_function_code(FunctionName=function, ImageUri=image),
                lambda: lam.update_function_configuration(FunctionName=function, MemorySize=512),
                lambda: lam.publish_version(FunctionName=function),
            ):
                assert_conflict(self, refused(call), "An update is in progress")

        inside_window(url, "lambda-update", in_progress_at_once)
        # AWS serves invokes during an update. Not timed: starting the
        # environment takes longer than the scaled window, and lambda-states
        # refuses invokes only while Pending.
        assert_served(self, invoke(function, {"ping": 1}, url))

        time.sleep(window(url, "lambda-update"))
        self.assertEqual(lam.get_function_configuration(FunctionName=function)["LastUpdateStatus"], "Successful")

        def code_update_in_progress(watch: Stopwatch) -> None:
            wait_until_active(lam, function)
            watch.start()
            lam.update_function_code(FunctionName=function, ImageUri=image)
            err = refused(lambda: lam.publish_version(FunctionName=function))
            self.assertEqual(err and err.code, "ResourceConflictException", "UpdateFunctionCode left no update in progress")

        inside_window(url, "lambda-update", code_update_in_progress)

    def test_a_new_version_is_pending(self) -> None:
        url = support.wide_windows()
        lam = client("lambda", url)
        function = self.active_function(url)

        def pending_at_once(watch: Stopwatch) -> str:
            if lam.list_versions_by_function(FunctionName=function)["Versions"][1:]:
                # A try again: a new version needs a changed $LATEST.
                lam.update_function_configuration(FunctionName=function, Description=name("try"))
                wait_until_active(lam, function)
            watch.start()
            version = lam.publish_version(FunctionName=function)["Version"]
            config = lam.get_function_configuration(FunctionName=function, Qualifier=version)
            self.assertEqual(config["State"], "Pending")
            assert_conflict(self, refused(lambda: invoke(function, {"ping": 1}, url, Qualifier=version)), "Pending")
            # $LATEST itself is not busy.
            self.assertEqual(lam.get_function_configuration(FunctionName=function)["State"], "Active")
            return version

        version = inside_window(url, "lambda-version-pending", pending_at_once)
        time.sleep(window(url, "lambda-version-pending"))
        config = lam.get_function_configuration(FunctionName=function, Qualifier=version)
        self.assertEqual(config["State"], "Active")
        answer = invoke(function, {"ping": 1}, url, Qualifier=version)
        assert_served(self, answer)
        self.assertEqual(answer["ExecutedVersion"], version)

    def test_updates_keep_tracing_and_architecture(self) -> None:
        url = support.endpoint()
        lam = client("lambda", url)
        iam = client("iam", url)
        role, arn = support.new_role(url)
        iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess")
        function = self.active_function(url, role=arn)
        lam.update_function_code(FunctionName=function, ImageUri=support.fixture_image(), Architectures=["arm64"])
        wait_until_active(lam, function)
        # The role has the X-Ray policy: a refusal can only be IAM not
        # having propagated it yet (iam-xray).
        support.asked_again(
            lambda: lam.update_function_configuration(FunctionName=function, TracingConfig={"Mode": "Active"}),
            lambda err: "PutTraceSegments" in err.message,
        )
        config = lam.get_function_configuration(FunctionName=function)
        self.assertEqual(config["Architectures"], ["arm64"])
        self.assertEqual(config["TracingConfig"], {"Mode": "Active"})

    def test_switched_off_everything_is_active_at_once(self) -> None:
        url = support.switched_off()
        lam = client("lambda", url)
        function = self.new_function(url)
        self.assertEqual(lam.get_function_configuration(FunctionName=function)["State"], "Active")
        invoke(function, {"ping": 1}, url)
        lam.update_function_configuration(FunctionName=function, MemorySize=256)
        self.assertEqual(lam.get_function_configuration(FunctionName=function)["LastUpdateStatus"], "Successful")
        version = lam.publish_version(FunctionName=function)["Version"]
        invoke(function, {"ping": 1}, url, Qualifier=version)


if __name__ == "__main__":
    unittest.main()
