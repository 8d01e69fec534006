"""Invoke of an image function runs the image, with Lambda's answers
(lambda_runtime, lambda_environments)."""

import base64
import concurrent.futures
import json
import re
import time

import botocore.exceptions

from .support import ACCOUNT, PATIENCE_SECONDS, POLL_SECONDS, REGION, FunctionsTest, client, environments, invoke, publish_version, require_data_plane, wait_until_active

STREAM = re.compile(r"^\d{4}/\d{2}/\d{2}/\[(\$LATEST|\d+)\][0-9a-f]{32}$")


def setUpModule() -> None:
    require_data_plane()


def tail(answer: dict) -> str:
    return base64.b64decode(answer["LogResult"]).decode()


class InvokeRunsTheImage(FunctionsTest):
    def test_the_function_sees_lambdas_environment_as_a_non_root_user_on_a_read_only_root(self) -> None:
        name = self.active_function(prefix="rt-echo", environment={"FIXTURE_VALUE": "from-config"}, memory=256, timeout=7)
        answer = invoke(name, {"mode": "echo", "n": 1}, LogType="Tail")
        self.assertEqual(answer["StatusCode"], 200)
        self.assertNotIn("FunctionError", answer)
        self.assertEqual(answer["ExecutedVersion"], "$LATEST")
        seen = json.loads(answer["Body"])
        self.assertEqual(seen["event"], {"mode": "echo", "n": 1})
        env = seen["env"]
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_NAME"], name)
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST")
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256")
        self.assertEqual(env["AWS_LAMBDA_LOG_GROUP_NAME"], f"/aws/lambda/{name}")
        self.assertRegex(env["AWS_LAMBDA_LOG_STREAM_NAME"], STREAM)
        self.assertEqual(env["FIXTURE_VALUE"], "from-config")
        self.assertTrue(env["AWS_REGION"] and env["AWS_REGION"] == env["AWS_DEFAULT_REGION"])
        runtime = seen["runtime"]
        request_id = runtime["lambda-runtime-aws-request-id"]
        self.assertRegex(request_id, r"^[0-9a-f-]{36}$")
        deadline = int(runtime["lambda-runtime-deadline-ms"]) / 1000
        self.assertTrue(time.time() < deadline <= time.time() + 7.5, deadline - time.time())
        self.assertRegex(runtime["lambda-runtime-trace-id"], r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01]$")
        self.assertTrue(runtime["lambda-runtime-invoked-function-arn"].endswith(f":function:{name}"))
        self.assertNotEqual(seen["uid"], "0")
        self.assertTrue(seen["tmp_writable"])
        self.assertFalse(seen["root_writable"])

        log = tail(answer)
        self.assertIn(f"START RequestId: {request_id} Version: $LATEST", log)
        self.assertIn(f"fixture: handling {request_id}", log)
        self.assertIn("fixture: stderr line", log)
        self.assertIn(f"END RequestId: {request_id}", log)
        report = next(line for line in log.splitlines() if line.startswith("REPORT"))
        self.assertRegex(
            report,
            rf"^REPORT RequestId: {request_id}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
            r"Memory Size: 256 MB\tMax Memory Used: [1-9]\d* MB\tInit Duration: \d+\.\d\d ms\t$",
        )
        # The init's own output comes before START, as in CloudWatch.
        self.assertLess(log.index("fixture: init"), log.index("START RequestId"))

    def test_a_warm_environment_is_reused_and_its_stream_holds_every_invocation_in_order(self) -> None:
        name = self.active_function(prefix="rt-warm")
        first = json.loads(invoke(name, {"mode": "echo"})["Body"])
        second_answer = invoke(name, {"mode": "echo"}, LogType="Tail")
        second = json.loads(second_answer["Body"])
        stream = first["env"]["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.assertEqual(second["env"]["AWS_LAMBDA_LOG_STREAM_NAME"], stream, "not the same environment")
        self.assertNotIn("Init Duration", tail(second_answer), "a warm invoke reported an init")
        self.assertEqual(len(environments(name)), 1)

        logs = client("logs")
        # Lambda's log lines arrive a moment after the answer (a loaded
        # machine's moment): asked again, as a client would, until both
        # REPORTs are there.
        deadline = time.monotonic() + PATIENCE_SECONDS
        while True:
            events = logs.get_log_events(logGroupName=f"/aws/lambda/{name}", logStreamName=stream, startFromHead=True)["events"]
            if sum(e["message"].startswith("REPORT") for e in events) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
        kinds = [e["message"].split(" ")[0] for e in events if not e["message"].startswith("fixture: init")]
        ids = [first["runtime"]["lambda-runtime-aws-request-id"], second["runtime"]["lambda-runtime-aws-request-id"]]
        self.assertEqual(
            kinds,
            ["START", "fixture:", "fixture:", "END", "REPORT"] * 2,
            [e["message"] for e in events],
        )
        for request_id, start in zip(ids, [e for e in events if e["message"].startswith("START")]):
            self.assertIn(request_id, start["message"])
        stamps = [e["timestamp"] for e in events]
        self.assertEqual(stamps, sorted(stamps))

    def test_versions_and_aliases_run_their_own_configuration(self) -> None:
        lam = client("lambda")
        name = self.active_function(prefix="rt-versions", environment={"FIXTURE_VALUE": "one"})
        self.assertEqual(publish_version(lam, name), "1")
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"FIXTURE_VALUE": "two"}})
        self.assertEqual(publish_version(lam, name), "2")

        def value(**qualifier: str) -> tuple[str, str]:
            answer = invoke(name, {"mode": "echo"}, **qualifier)
            seen = json.loads(answer["Body"])
            return seen["env"]["FIXTURE_VALUE"], answer["ExecutedVersion"]

        self.assertEqual(value(Qualifier="1"), ("one", "1"))
        self.assertEqual(value(Qualifier="live"), ("one", "1"))
        self.assertEqual(value(Qualifier="2"), ("two", "2"))
        self.assertEqual(value(), ("two", "$LATEST"))
        lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
        self.assertEqual(value(Qualifier="live"), ("two", "2"))
        # A changed $LATEST runs its new configuration once the update is done.
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"FIXTURE_VALUE": "three"}})
        wait_until_active(lam, name)
        self.assertEqual(value(), ("three", "$LATEST"))
        self.assertEqual(value(Qualifier="1"), ("one", "1"))


class LambdasErrorAnswers(FunctionsTest):
    def test_a_function_error_is_unhandled_with_the_runtimes_document(self) -> None:
        name = self.active_function(prefix="rt-error")
        answer = invoke(name, {"mode": "error"})
        self.assertEqual(answer["StatusCode"], 200)
        self.assertEqual(answer["FunctionError"], "Unhandled")
        self.assertEqual(json.loads(answer["Body"]), {"errorMessage": "fixture failed on purpose", "errorType": "FixtureError"})
        # The environment survives a reported error.
        self.assertNotIn("FunctionError", invoke(name, {"mode": "echo"}))
        self.assertEqual(len(environments(name)), 1)

    def test_an_exit_mid_invocation_is_a_runtime_exit_error_and_the_next_invoke_starts_afresh(self) -> None:
        name = self.active_function(prefix="rt-exit")
        answer = invoke(name, {"mode": "exit"}, LogType="Tail")
        self.assertEqual(answer["FunctionError"], "Unhandled")
        error = json.loads(answer["Body"])
        self.assertEqual(error["errorType"], "Runtime.ExitError")
        self.assertRegex(error["errorMessage"], r"^RequestId: [0-9a-f-]{36} Error: Runtime exited with error: exit status 7$")
        self.assertIn("Status: error\tError Type: Runtime.ExitError", tail(answer))
        again = invoke(name, {"mode": "echo"}, LogType="Tail")
        self.assertNotIn("FunctionError", again)
        self.assertIn("Init Duration", tail(again), "the next invoke did not start a new environment")

    def test_a_crash_at_init_is_reported_with_the_init_output(self) -> None:
        name = self.active_function(prefix="rt-initcrash", environment={"FIXTURE_INIT": "crash"})
        answer = invoke(name, {"mode": "echo"}, LogType="Tail")
        self.assertEqual(answer["FunctionError"], "Unhandled")
        error = json.loads(answer["Body"])
        self.assertEqual(error["errorType"], "Runtime.ExitError")
        self.assertIn("Runtime exited with error: exit status 3", error["errorMessage"])
        log = tail(answer)
        self.assertIn("fixture: init crashed on purpose", log)
        self.assertIn("INIT_REPORT Init Duration:", log)
        self.assertEqual(environments(name), [], "a failed environment was kept")

    def test_an_init_error_reported_to_the_runtime_api_is_the_answer(self) -> None:
        name = self.active_function(prefix="rt-initerror", environment={"FIXTURE_INIT": "error"})
        answer = invoke(name, {"mode": "echo"})
        self.assertEqual(answer["FunctionError"], "Unhandled")
        self.assertEqual(json.loads(answer["Body"])["errorType"], "FixtureInitError")

    def test_a_timeout_answers_sandbox_timedout_and_resets_the_environment(self) -> None:
        name = self.active_function(prefix="rt-timeout", timeout=1)
        invoke(name, {"mode": "echo"})
        started = time.monotonic()
        answer = invoke(name, {"mode": "sleep", "sleep_ms": 4000}, LogType="Tail")
        took = time.monotonic() - started
        self.assertGreaterEqual(took, 1.0)
        self.assertLess(took, 3.0, "the invoke was not cut at the function's timeout")
        self.assertEqual(answer["FunctionError"], "Unhandled")
        error = json.loads(answer["Body"])
        self.assertEqual(error["errorType"], "Sandbox.Timedout")
        self.assertRegex(error["errorMessage"], r"^RequestId: [0-9a-f-]{36} Error: Task timed out after 1\.00 seconds$")
        log = tail(answer)
        self.assertIn("Task timed out after 1.00 seconds", log)
        self.assertIn("Status: timeout", log)
        self.assertIn("Init Duration", tail(invoke(name, {"mode": "echo"}, LogType="Tail")))

    def test_memory_beyond_the_functions_size_kills_it(self) -> None:
        name = self.active_function(prefix="rt-memory", memory=128)
        answer = invoke(name, {"mode": "memory", "mb": 300})
        self.assertEqual(answer["FunctionError"], "Unhandled")
        error = json.loads(answer["Body"])
        self.assertIn(error["errorType"], ("Runtime.OutOfMemory", "Runtime.ExitError"))
        self.assertIn("signal: killed", error["errorMessage"])
        small = json.loads(invoke(name, {"mode": "memory", "mb": 20})["Body"])
        self.assertEqual(small["touched"], 20 * 1024 * 1024)

    def test_invocation_types_and_a_payload_that_is_not_json(self) -> None:
        lam = client("lambda")
        name = self.active_function(prefix="rt-types")
        self.assertEqual(lam.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"], 204)
        self.assertEqual(lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["StatusCode"], 202)
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            lam.invoke(FunctionName=name, Payload=b"not json")
        self.assertEqual(caught.exception.response["Error"]["Code"], "InvalidRequestContentException")

    def test_an_image_the_registry_does_not_hold_cannot_run(self) -> None:
        missing = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/moto-ext-missing@sha256:{'0' * 64}"
        name = self.active_function(prefix="rt-noimage", image=missing)
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            invoke(name, {})
        # Not lambda-states' 409 (the function is Active): the one for an image that cannot run.
        self.assertEqual(caught.exception.response["Error"]["Code"], "ResourceConflictException")
        self.assertIn(missing, caught.exception.response["Error"]["Message"])


class EnvironmentLifecycle(FunctionsTest):
    def test_concurrent_invokes_get_separate_environments_a_few_per_version(self) -> None:
        name = self.active_function(prefix="rt-concurrent")
        with concurrent.futures.ThreadPoolExecutor(max_workers=5) as pool:
            answers = list(pool.map(lambda _: invoke(name, {"mode": "sleep", "sleep_ms": 600}), range(5)))
        self.assertTrue(all("FunctionError" not in a for a in answers), answers)
        streams = {json.loads(a["Body"])["env"]["AWS_LAMBDA_LOG_STREAM_NAME"] for a in answers}
        self.assertGreater(len(streams), 1, "concurrent invokes shared one environment")
        self.assertLessEqual(len(streams), 3, "more than a few environments for one version")
        self.assertLessEqual(len(environments(name)), 3)

    def test_deleting_the_function_stops_its_environments(self) -> None:
        name = self.active_function(prefix="rt-delete")
        invoke(name, {"mode": "echo"})
        self.assertEqual(len(environments(name)), 1)
        client("lambda").delete_function(FunctionName=name)
        self.assertEqual(environments(name), [])

    def test_deleting_the_function_while_an_environment_starts_leaves_no_container(self) -> None:
        lam = client("lambda")
        name = self.active_function(prefix="rt-delete-starting")
        # Answered at once; the environment starts in the background.
        self.assertEqual(lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["StatusCode"], 202)
        lam.delete_function(FunctionName=name)
        # Long enough for a container made after the delete to start and exit.
        time.sleep(2)
        self.assertEqual(environments(name, exited_too=True), [])
