"""Lambda and API Gateway publish their metrics from the local execution,
and CloudWatch reads them per dimension combination, with percentiles
(lambda_metrics, apigw_metrics, cloudwatch_metrics), in the CBOR protocol
too (cloudwatch_cbor)."""

import concurrent.futures
import datetime
import json
import unittest

import botocore.exceptions
from botocore.parsers import ResponseParserError

from . import support
from .support import FunctionsTest, cbor_client, client, invoke, metric, name, publish_version, require_data_plane
from .test_apigw_dataplane import Api, call, live_functions


def setUpModule() -> None:
    require_data_plane()


class LambdaMetrics(FunctionsTest):
    def test_invocations_errors_duration_percentiles_and_concurrency_per_dimension(self) -> None:
        lam = client("lambda")
        name = self.active_function(prefix="mx-fn", timeout=1)
        version = publish_version(lam, name)
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)

        # Three at once (ConcurrentExecutions 3), three quick ones, a
        # function error, a timeout: eight invocations through the alias.
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            slow = list(pool.map(lambda _: invoke(name, {"mode": "sleep", "sleep_ms": 300}, Qualifier="live"), range(3)))
        quick = [invoke(name, {"mode": "echo"}, Qualifier="live") for _ in range(3)]
        failed = invoke(name, {"mode": "error"}, Qualifier="live")
        timed_out = invoke(name, {"mode": "sleep", "sleep_ms": 3000}, Qualifier="live")
        self.assertTrue(all("FunctionError" not in a for a in slow + quick), slow + quick)
        self.assertEqual((failed["FunctionError"], json.loads(timed_out["Body"])["errorType"]), ("Unhandled", "Sandbox.Timedout"))
        # And one of $LATEST, unqualified: the function's, no resource's.
        invoke(name, {"mode": "echo"})

        function = {"FunctionName": name}
        alias = {"FunctionName": name, "Resource": f"{name}:live"}
        executed = {**alias, "ExecutedVersion": version}
        for dimensions, count in ((function, 9), (alias, 8), (executed, 8)):
            with self.subTest(dimensions=dimensions):
                self.assertEqual(metric("AWS/Lambda", "Invocations", dimensions)["Sum"], count)
                self.assertEqual(metric("AWS/Lambda", "Errors", dimensions)["Sum"], 2)
                self.assertEqual(metric("AWS/Lambda", "Duration", dimensions)["SampleCount"], count)
        self.assertEqual(metric("AWS/Lambda", "Throttles", function), {}, "throttles where there were none")
        self.assertEqual(metric("AWS/Lambda", "ConcurrentExecutions", function, ["Maximum"])["Maximum"], 3)
        self.assertEqual(metric("AWS/Lambda", "Invocations", {"FunctionName": name, "Resource": f"{name}:{version}"}), {})

        # Nearest rank of the eight through the alias: p50 is the 4th
        # fastest (a quick one), p90 and p99 the slowest (the 1 s timeout, cut within a few milliseconds of it).
        duration = metric("AWS/Lambda", "Duration", alias, ["Minimum", "Maximum"], ["p50", "p90", "p99"])
        self.assertEqual(duration["Unit"], "Milliseconds")
        p50, p90, p99 = (duration["ExtendedStatistics"][p] for p in ("p50", "p90", "p99"))
        self.assertLess(p50, 300, duration)
        self.assertGreaterEqual(p90, 900, duration)
        self.assertEqual(p99, duration["Maximum"])
        self.assertLessEqual(duration["Minimum"], p50)

        # GetMetricData reads the same percentiles.
        now = datetime.datetime.now(datetime.timezone.utc)
        queries = [
            {
                "Id": f"q{i}",
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/Lambda", "MetricName": "Duration", "Dimensions": [{"Name": k, "Value": v} for k, v in alias.items()]},
                    "Period": 3600,
                    "Stat": stat,
                },
            }
            for i, stat in enumerate(("p50", "p99", "SampleCount"))
        ]
        data = client("cloudwatch").get_metric_data(MetricDataQueries=queries, StartTime=now - datetime.timedelta(minutes=10), EndTime=now + datetime.timedelta(minutes=1))
        values = {r["Id"]: r["Values"] for r in data["MetricDataResults"]}
        self.assertEqual(values, {"q0": [p50], "q1": [p99], "q2": [8.0]})

    def test_percentiles_must_be_named_as_cloudwatch_names_them(self) -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            client("cloudwatch").get_metric_statistics(
                Namespace="AWS/Lambda", MetricName="Duration", StartTime=now - datetime.timedelta(minutes=1), EndTime=now, Period=60, ExtendedStatistics=["median"]
            )
        self.assertEqual(caught.exception.response["Error"]["Code"], "InvalidParameterValue")


class ApiGatewayMetrics(FunctionsTest):
    def test_count_4xx_5xx_and_latencies_of_a_stage(self) -> None:
        (function,) = live_functions([{"FIXTURE_MODE": "proxy"}], self.addCleanup)
        api = Api(function)
        api.allow()
        api_name = client("apigateway").get_rest_api(restApiId=api.id)["name"]
        statuses = [call(api.url("/items/1"))[0] for _ in range(3)]
        statuses.append(call(api.url("/nowhere"))[0])
        statuses.append(call(api.url("/items/1?mode=error"))[0])
        self.assertEqual(statuses, [200, 200, 200, 403, 502])

        for dimensions in ({"ApiName": api_name}, {"ApiName": api_name, "Stage": "test"}):
            with self.subTest(dimensions=dimensions):
                self.assertEqual(metric("AWS/ApiGateway", "Count", dimensions)["SampleCount"], 5)
                self.assertEqual(metric("AWS/ApiGateway", "4XXError", dimensions)["Sum"], 1)
                self.assertEqual(metric("AWS/ApiGateway", "5XXError", dimensions)["Sum"], 1)
                latency = metric("AWS/ApiGateway", "Latency", dimensions, ["SampleCount", "Maximum"])
                integration = metric("AWS/ApiGateway", "IntegrationLatency", dimensions, ["SampleCount", "Maximum"])
                # The 403 never reached the function.
                self.assertEqual((latency["SampleCount"], integration["SampleCount"]), (5, 4))
                self.assertGreaterEqual(latency["Maximum"], integration["Maximum"])
        # The function counted the four the stage relayed, through its alias.
        lambda_alias = {"FunctionName": function, "Resource": f"{function}:live"}
        self.assertEqual(metric("AWS/Lambda", "Invocations", lambda_alias)["Sum"], 4)
        self.assertEqual(metric("AWS/Lambda", "Errors", lambda_alias)["Sum"], 1)
        self.assertEqual(metric("AWS/ApiGateway", "Count", {"ApiName": api_name, "Stage": "other"}), {})




class CborProtocol(unittest.TestCase):
    def test_metrics_put_and_read_in_cbor_are_what_json_reads(self) -> None:
        cbor = cbor_client()
        namespace = f"Local/{name('cbor')}"
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        cbor.put_metric_data(
            Namespace=namespace,
            MetricData=[{"MetricName": "Hits", "Value": v, "Unit": "Count", "Timestamp": now} for v in (1.0, 2.0, 4.0)],
        )
        query = {
            "MetricDataQueries": [{"Id": "hits", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "Hits"}, "Period": 60, "Stat": "Sum"}}],
            "StartTime": now - datetime.timedelta(minutes=1),
            "EndTime": now + datetime.timedelta(minutes=1),
        }
        read = cbor.get_metric_data(**query)["MetricDataResults"]
        self.assertEqual(read, client("cloudwatch").get_metric_data(**query)["MetricDataResults"])
        self.assertEqual((read[0]["Id"], read[0]["Values"]), ("hits", [7.0]), read)
        # Timestamps come back tagged, as datetimes, not numbers.
        self.assertIsInstance(read[0]["Timestamps"][0], datetime.datetime)

    def test_an_error_keeps_its_code(self) -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            cbor_client().get_metric_statistics(
                Namespace="AWS/Lambda", MetricName="Duration", StartTime=now - datetime.timedelta(minutes=1), EndTime=now, Period=60, ExtendedStatistics=["median"]
            )
        self.assertEqual(caught.exception.response["Error"]["Code"], "InvalidParameterValue")
        self.assertEqual(caught.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)

    def test_switched_off_moto_does_not_understand_cbor(self) -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        with self.assertRaises((botocore.exceptions.ClientError, ResponseParserError)):
            cbor_client(support.switched_off()).get_metric_data(
                MetricDataQueries=[{"Id": "q", "MetricStat": {"Metric": {"Namespace": "Local/x", "MetricName": "Hits"}, "Period": 60, "Stat": "Sum"}}],
                StartTime=now - datetime.timedelta(minutes=1),
                EndTime=now,
            )
