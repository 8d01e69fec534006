"""Reserved concurrency limits invokes as AWS does; provisioned concurrency
is configured, allocated and initialized ahead of requests
(lambda_concurrency)."""

import base64
import json
import threading
import time
from typing import Any

from .support import (
    POLL_SECONDS,
    PATIENCE_SECONDS,
    FunctionsTest,
    Refused,
    client,
    endpoint,
    environments,
    function_spec,
    invoke,
    lambda_role,
    metric,
    name,
    publish_version,
    refused,
    require_data_plane,
    window,
)

UNPUBLISHED = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."


def setUpModule() -> None:
    require_data_plane()


def throttle_reason(call: Any) -> Refused:
    """The 429 ``call`` met, with Invoke's ``Reason`` as ``message``."""
    import botocore.exceptions

    try:
        call()
    except botocore.exceptions.ClientError as err:
        found = Refused(err)
        found.message = err.response.get("Reason", "")
        return found
    raise AssertionError("the invoke was not refused")


def settled(lam: Any, function: str, qualifier: str) -> dict[str, Any]:
    """The configuration once it is no longer IN_PROGRESS, asked as a
    client waiting for it would."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while (config := lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier=qualifier))["Status"] == "IN_PROGRESS":
        if time.monotonic() > deadline:
            raise AssertionError(f"{function}:{qualifier} never left IN_PROGRESS")
        time.sleep(POLL_SECONDS)
    return config


def cold_start(answer: dict[str, Any]) -> bool:
    """Whether the invocation's REPORT line has an Init Duration."""
    log = base64.b64decode(answer["LogResult"]).decode()
    report = next(line for line in log.splitlines() if line.startswith("REPORT RequestId"))
    return "Init Duration" in report


class ProvisionedConcurrency(FunctionsTest):
    def test_a_configuration_is_in_progress_then_ready_with_its_environments_initialized(self) -> None:
        lam = client("lambda")
        function = self.active_function(prefix="pc-fn")
        version = publish_version(lam, function)
        lam.create_alias(FunctionName=function, Name="live", FunctionVersion=version)
        allocation = window(endpoint(), "lambda-provisioned-concurrency")

        started = time.monotonic()
        put = lam.put_provisioned_concurrency_config(FunctionName=function, Qualifier="live", ProvisionedConcurrentExecutions=2)
        self.assertEqual(put["ResponseMetadata"]["HTTPStatusCode"], 202)
        self.assertEqual(
            (put["Status"], put["RequestedProvisionedConcurrentExecutions"], put["AllocatedProvisionedConcurrentExecutions"], put["AvailableProvisionedConcurrentExecutions"]),
            ("IN_PROGRESS", 2, 0, 0),
        )
        self.assertEqual(lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier="live")["Status"], "IN_PROGRESS")
        self.assertEqual(environments(function), [], "environments before the allocation")

        config = settled(lam, function, "live")
        self.assertGreaterEqual(time.monotonic() - started, allocation * 0.9, "READY before the allocation window")
        self.assertEqual(
            (config["Status"], config["AllocatedProvisionedConcurrentExecutions"], config["AvailableProvisionedConcurrentExecutions"]),
            ("READY", 2, 2),
        )
        self.assertEqual(len(environments(function)), 2, "not two environments initialized ahead")

        listed = lam.list_provisioned_concurrency_configs(FunctionName=function)["ProvisionedConcurrencyConfigs"]
        self.assertEqual([(c["FunctionArn"].split(":", 6)[-1], c["Status"]) for c in listed], [(f"{function}:live", "READY")])

        # The first request meets an initialized environment: no cold start.
        answer = invoke(function, {"mode": "echo"}, Qualifier="live", LogType="Tail")
        self.assertFalse(cold_start(answer), "the first request started an environment")
        self.assertEqual(json.loads(answer["Body"])["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"], "provisioned-concurrency")

        # The configuration follows the alias to another version.
        lam.update_function_configuration(FunctionName=function, Environment={"Variables": {"FIXTURE_VALUE": "two"}})
        second = publish_version(lam, function)
        lam.update_alias(FunctionName=function, Name="live", FunctionVersion=second)
        self.assertEqual(lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier="live")["Status"], "IN_PROGRESS")
        self.assertEqual(settled(lam, function, "live")["Status"], "READY")
        answer = invoke(function, {"mode": "echo"}, Qualifier="live", LogType="Tail")
        self.assertEqual((answer["ExecutedVersion"], json.loads(answer["Body"])["env"]["FIXTURE_VALUE"]), (second, "two"))
        self.assertFalse(cold_start(answer), "the moved alias's first request started an environment")

        self.assertEqual(lam.delete_provisioned_concurrency_config(FunctionName=function, Qualifier="live")["ResponseMetadata"]["HTTPStatusCode"], 204)
        err = refused(lambda: lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier="live"))
        self.assertEqual((err and err.status, err and err.code), (404, "ProvisionedConcurrencyConfigNotFoundException"))
        self.assertEqual(lam.list_provisioned_concurrency_configs(FunctionName=function)["ProvisionedConcurrencyConfigs"], [])

    def test_what_aws_refuses(self) -> None:
        lam = client("lambda")
        function = self.active_function(prefix="pc-refused")
        version = publish_version(lam, function)

        def put(qualifier: str, amount: int = 1, fn: str = function) -> Any:
            return refused(lambda: lam.put_provisioned_concurrency_config(FunctionName=fn, Qualifier=qualifier, ProvisionedConcurrentExecutions=amount))

        err = put("$LATEST")
        self.assertEqual((err and err.status, err and err.code, err and err.message), (400, "InvalidParameterValueException", UNPUBLISHED))
        for missing in (put("nope"), put(version, fn=name("pc-missing"))):
            self.assertEqual((missing and missing.status, missing and missing.code), (404, "ResourceNotFoundException"))
        err = refused(lambda: lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier=version))
        self.assertEqual((err and err.status, err and err.code), (404, "ProvisionedConcurrencyConfigNotFoundException"))
        err = refused(lambda: lam.delete_provisioned_concurrency_config(FunctionName=function, Qualifier=version))
        self.assertEqual((err and err.status, err and err.code), (404, "ResourceNotFoundException"))

        # Within the function's reserved concurrency, and the account's
        # 100 unreserved executions (of 1000) kept.
        lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=2)
        # The function's reservation, whichever version is asked for.
        self.assertEqual(lam.get_function(FunctionName=function, Qualifier=version)["Concurrency"], {"ReservedConcurrentExecutions": 2})
        err = put(version, 3)
        self.assertEqual((err and err.status, err and err.code), (400, "InvalidParameterValueException"))
        err = refused(lambda: lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=950))
        self.assertEqual((err and err.status, err and err.code), (400, "InvalidParameterValueException"))
        self.assertIn("below its minimum value of [100]", err.message if err else "")
        lam.delete_function_concurrency(FunctionName=function)
        err = put(version, 950)
        self.assertEqual((err and err.status, err and err.code), (400, "InvalidParameterValueException"))

        # Deleting the function deletes its configurations: a new function
        # of the same name has none.
        self.assertIsNone(put(version, 1))
        lam.delete_function(FunctionName=function)
        lam.create_function(**function_spec(function, lambda_role()))
        self.assertEqual(lam.list_provisioned_concurrency_configs(FunctionName=function)["ProvisionedConcurrencyConfigs"], [])


class ReservedConcurrency(FunctionsTest):
    def test_invokes_beyond_the_reservation_are_throttled_and_counted(self) -> None:
        lam = client("lambda")
        function = self.active_function(prefix="rc-fn")
        lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=1)
        limits = lam.get_account_settings()["AccountLimit"]
        self.assertEqual(limits["ConcurrentExecutions"], 1000)
        # Others' reservations (tests beside this one) only lower it further.
        self.assertLessEqual(limits["UnreservedConcurrentExecutions"], 999)

        running = threading.Thread(target=invoke, args=(function, {"mode": "sleep", "sleep_ms": 1500}))
        running.start()
        try:
            time.sleep(0.3)
            err = throttle_reason(lambda: invoke(function, {"mode": "echo"}))
        finally:
            running.join()
        self.assertEqual((err.status, err.code, err.message), (429, "TooManyRequestsException", "ReservedFunctionConcurrentInvocationLimitExceeded"))
        # One at a time is within the reservation.
        self.assertNotIn("FunctionError", invoke(function, {"mode": "echo"}))

        # Reserved concurrency 0 throttles every invoke.
        lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=0)
        self.assertEqual(lam.get_function(FunctionName=function)["Concurrency"], {"ReservedConcurrentExecutions": 0})
        for _ in range(2):
            self.assertEqual(throttle_reason(lambda: invoke(function, {"mode": "echo"})).status, 429)
        lam.delete_function_concurrency(FunctionName=function)
        self.assertNotIn("Concurrency", lam.get_function(FunctionName=function))
        self.assertNotIn("FunctionError", invoke(function, {"mode": "echo"}))

        dimensions = {"FunctionName": function}
        self.assertEqual(metric("AWS/Lambda", "Throttles", dimensions)["Sum"], 3)
        self.assertEqual(metric("AWS/Lambda", "Invocations", dimensions)["Sum"], 3)
