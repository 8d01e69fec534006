"""``lambda-not-found`` and ``lambda-states``: in force on the endpoint
under test, and off with their switches."""

import time
import unittest

from . import support
from .support import ACCOUNT, client, name, refused, window

IMAGE = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/moto-ext-tests@sha256:{'a' * 64}"
TRUST = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'


def aged_role(url: str) -> str:
    """A role Lambda may already assume there (older than the window)."""
    iam = client("iam", url)
    arn = iam.create_role(RoleName=name("ext-role"), AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    time.sleep(support.status(url)["windows"].get("iam-role-assumable", 0))
    return arn


def create_function(url: str, role: str, tracing: str = "PassThrough") -> str:
    function = name("ext-fn")
    client("lambda", url).create_function(
        FunctionName=function,
        PackageType="Image",
        Code={"ImageUri": IMAGE},
        Role=role,
        TracingConfig={"Mode": tracing},
    )
    return function


def invoke(url: str, function: str, qualifier: str = "$LATEST") -> None:
    client("lambda", url).invoke(FunctionName=function, Qualifier=qualifier, Payload=b'{"ping": 1}')


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
        arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{missing}"
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


class LambdaStates(unittest.TestCase):
    def test_a_new_function_is_pending_and_refuses_updates_and_invokes(self) -> None:
        url = support.endpoint()
        lam = client("lambda", url)
        function = create_function(url, aged_role(url))
        config = lam.get_function_configuration(FunctionName=function)
        self.assertEqual(config["State"], "Pending")
        self.assertEqual(config.get("StateReasonCode"), "Creating")
        err = refused(lambda: lam.update_function_configuration(FunctionName=function, MemorySize=256))
        self.assertEqual((err and err.status, err and err.code), (409, "ResourceConflictException"), err)
        self.assertIn("Pending", err.message)
        for call in (lambda: lam.publish_version(FunctionName=function), lambda: invoke(url, function)):
            err = refused(call)
            self.assertEqual((err and err.status, err and err.code), (409, "ResourceConflictException"), err)

        time.sleep(window(url, "lambda-pending"))
        config = lam.get_function_configuration(FunctionName=function)
        self.assertEqual((config["State"], config["LastUpdateStatus"]), ("Active", "Successful"))
        invoke(url, function)

    def test_an_update_is_in_progress_for_a_window(self) -> None:
        url = support.endpoint()
        lam = client("lambda", url)
        function = create_function(url, aged_role(url))
        time.sleep(window(url, "lambda-pending"))

        lam.update_function_configuration(FunctionName=function, MemorySize=256)
        config = lam.get_function_configuration(FunctionName=function)
        self.assertEqual((config["State"], config["LastUpdateStatus"]), ("Active", "InProgress"))
        for call in (
            lambda: lam.update_function_code(FunctionName=function, ImageUri=IMAGE),
            lambda: lam.update_function_configuration(FunctionName=function, MemorySize=512),
            lambda: lam.publish_version(FunctionName=function),
        ):
            err = refused(call)
            self.assertEqual((err and err.status, err and err.code), (409, "ResourceConflictException"), err)
            self.assertIn("An update is in progress", err.message)
        # AWS serves invokes during an update (with the previous code).
        invoke(url, function)

        time.sleep(window(url, "lambda-update"))
        self.assertEqual(lam.get_function_configuration(FunctionName=function)["LastUpdateStatus"], "Successful")
        lam.update_function_code(FunctionName=function, ImageUri=IMAGE)
        err = refused(lambda: lam.publish_version(FunctionName=function))
        self.assertEqual(err and err.code, "ResourceConflictException", "UpdateFunctionCode left no update in progress")

    def test_a_new_version_is_pending(self) -> None:
        url = support.endpoint()
        lam = client("lambda", url)
        function = create_function(url, aged_role(url))
        time.sleep(window(url, "lambda-pending"))
        version = lam.publish_version(FunctionName=function)["Version"]
        config = lam.get_function_configuration(FunctionName=function, Qualifier=version)
        self.assertEqual(config["State"], "Pending")
        err = refused(lambda: invoke(url, function, version))
        self.assertEqual((err and err.status, err and err.code), (409, "ResourceConflictException"), err)
        # $LATEST itself is not busy.
        self.assertEqual(lam.get_function_configuration(FunctionName=function)["State"], "Active")

        time.sleep(window(url, "lambda-version-pending"))
        config = lam.get_function_configuration(FunctionName=function, Qualifier=version)
        self.assertEqual(config["State"], "Active")
        invoke(url, function, version)

    def test_updates_keep_tracing_and_architecture(self) -> None:
        url = support.endpoint()
        lam = client("lambda", url)
        iam = client("iam", url)
        role = iam.create_role(RoleName=name("ext-role"), AssumeRolePolicyDocument=TRUST)["Role"]
        iam.attach_role_policy(RoleName=role["RoleName"], PolicyArn="arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess")
        windows = support.status(url)["windows"]
        time.sleep(max(windows.get("iam-role-assumable", 0), windows.get("iam-xray", 0)))
        function = create_function(url, role["Arn"])
        time.sleep(window(url, "lambda-pending"))
        lam.update_function_code(FunctionName=function, ImageUri=IMAGE, Architectures=["arm64"])
        time.sleep(window(url, "lambda-update"))
        lam.update_function_configuration(FunctionName=function, TracingConfig={"Mode": "Active"})
        config = lam.get_function_configuration(FunctionName=function)
        self.assertEqual(config["Architectures"], ["arm64"])
        self.assertEqual(config["TracingConfig"], {"Mode": "Active"})

    def test_switched_off_everything_is_active_at_once(self) -> None:
        url = support.switched_off()
        lam = client("lambda", url)
        role = client("iam", url).create_role(RoleName=name("ext-role"), AssumeRolePolicyDocument=TRUST)
        function = create_function(url, role["Role"]["Arn"])
        self.assertEqual(lam.get_function_configuration(FunctionName=function)["State"], "Active")
        invoke(url, function)
        lam.update_function_configuration(FunctionName=function, MemorySize=256)
        self.assertEqual(lam.get_function_configuration(FunctionName=function)["LastUpdateStatus"], "Successful")
        version = lam.publish_version(FunctionName=function)["Version"]
        invoke(url, function, version)


if __name__ == "__main__":
    unittest.main()
