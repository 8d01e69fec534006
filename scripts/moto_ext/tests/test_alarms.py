"""Alarms as CloudWatch has them, and who they notify as SNS does: an
alarm is evaluated against the metrics moto holds and publishes its state
changes to SNS (cloudwatch_alarms), which confirms HTTP subscriptions and
delivers to them with AWS's headers (sns_http); each also shown absent with
its switch off. A subscriber here is a small HTTP server on loopback."""

import concurrent.futures
import datetime
import http.server
import json
import queue
import threading
import unittest
import urllib.request
from typing import Any, Optional

from moto.cloudwatch.models import CloudWatchBackend, MetricDatum

from .. import cloudwatch_alarms
from . import support
from .support import ACCOUNT, PATIENCE_SECONDS, REGION, FunctionsTest, client, endpoint, invoke, metric, name, publish_version, refused, require_data_plane
from .test_apigw_dataplane import Api, call, live_functions
from .test_domains import issued_certificate, regional_domain
from .test_lambda_concurrency import settled


class Subscriber:
    """An HTTP endpoint on loopback that keeps what SNS POSTs to it."""

    def __init__(self, test: unittest.TestCase, status: int = 200):
        self.received: "queue.Queue[tuple[dict[str, str], dict[str, Any]]]" = queue.Queue()
        received, answer = self.received, status

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.put(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        test.addCleanup(self.server.server_close)
        test.addCleanup(self.server.shutdown)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sns"

    def next(self, timeout: float = PATIENCE_SECONDS) -> tuple[dict[str, str], dict[str, Any]]:
        return self.received.get(timeout=timeout)

    def nothing_within(self, seconds: float) -> bool:
        try:
            self.received.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


def confirmed_subscriber(test: unittest.TestCase, topic: str, url: Optional[str] = None) -> Subscriber:
    """A subscriber to ``topic``, confirmed by visiting the SubscribeURL."""
    subscriber = Subscriber(test)
    client("sns", url).subscribe(TopicArn=topic, Protocol="http", Endpoint=subscriber.url)
    _, confirmation = subscriber.next()
    with urllib.request.urlopen(confirmation["SubscribeURL"], timeout=10) as answer:
        test.assertEqual(answer.status, 200)
    return subscriber


def paging_alarm(test: unittest.TestCase, topic: str, **metric: Any) -> None:
    """An alarm on one period of ``metric`` (PutMetricAlarm's names) that
    pages ``topic`` on ALARM and on OK; no data is not breaching. Deleted
    when the test ends (the evaluator reads every alarm each tick)."""
    cloudwatch = client("cloudwatch")
    cloudwatch.put_metric_alarm(EvaluationPeriods=1, TreatMissingData="notBreaching", AlarmActions=[topic], OKActions=[topic], **metric)
    test.addCleanup(cloudwatch.delete_alarms, AlarmNames=[metric["AlarmName"]])


class Subscriptions(unittest.TestCase):
    def test_an_http_subscription_is_confirmed_before_anything_is_delivered(self) -> None:
        sns = client("sns")
        topic = sns.create_topic(Name=name("alarms"))["TopicArn"]
        subscriber = Subscriber(self)
        answer = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=subscriber.url)
        self.assertEqual(answer["SubscriptionArn"], "pending confirmation")
        headers, confirmation = subscriber.next()
        self.assertEqual(headers["x-amz-sns-message-type"], "SubscriptionConfirmation")
        self.assertEqual(headers["x-amz-sns-topic-arn"], topic)
        self.assertEqual(headers["content-type"], "text/plain; charset=UTF-8")
        self.assertEqual((confirmation["Type"], confirmation["TopicArn"]), ("SubscriptionConfirmation", topic))
        self.assertIn("Token=", confirmation["SubscribeURL"])
        (listed,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        self.assertEqual((listed["SubscriptionArn"], listed["Endpoint"], listed["Protocol"]), ("PendingConfirmation", subscriber.url, "http"))
        # Subscribing again is the same subscription, asked for with its ARN.
        pending_arn = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=subscriber.url, ReturnSubscriptionArn=True)["SubscriptionArn"]
        self.assertEqual(sns.get_subscription_attributes(SubscriptionArn=pending_arn)["Attributes"]["PendingConfirmation"], "true")

        # Not confirmed: nothing is delivered.
        sns.publish(TopicArn=topic, Message="early")
        self.assertTrue(subscriber.nothing_within(1.0), "a notification reached an unconfirmed subscription")
        err = refused(lambda: sns.confirm_subscription(TopicArn=topic, Token="0" * 128))
        self.assertEqual(err and err.code, "InvalidParameter", err)
        arn = sns.confirm_subscription(TopicArn=topic, Token=confirmation["Token"])["SubscriptionArn"]
        self.assertEqual(arn, pending_arn)
        self.assertEqual(sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"][0]["SubscriptionArn"], arn)
        self.assertEqual(sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]["PendingConfirmation"], "false")

        message_id = sns.publish(TopicArn=topic, Message="hello", Subject="greeting")["MessageId"]
        headers, notification = subscriber.next()
        self.assertEqual(
            {k: headers[k] for k in ("x-amz-sns-message-type", "x-amz-sns-message-id", "x-amz-sns-topic-arn", "x-amz-sns-subscription-arn")},
            {"x-amz-sns-message-type": "Notification", "x-amz-sns-message-id": message_id, "x-amz-sns-topic-arn": topic, "x-amz-sns-subscription-arn": arn},
        )
        self.assertEqual(headers["user-agent"], "Amazon Simple Notification Service Agent")
        self.assertEqual({k: notification[k] for k in ("Type", "MessageId", "TopicArn", "Subject", "Message")}, {"Type": "Notification", "MessageId": message_id, "TopicArn": topic, "Subject": "greeting", "Message": "hello"})
        for key in ("Timestamp", "SignatureVersion", "Signature", "SigningCertURL", "UnsubscribeURL"):
            self.assertIn(key, notification)

    def test_a_failed_delivery_is_retried(self) -> None:
        sns = client("sns")
        topic = sns.create_topic(Name=name("alarms"))["TopicArn"]
        subscriber = confirmed_subscriber(self, topic)
        failing = Subscriber(self, status=503)
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=failing.url)
        # Four attempts of the confirmation: the first and three retries.
        attempts = [failing.next(timeout=support.window(support.endpoint(), "sns-http-retry") * 3) for _ in range(4)]
        self.assertEqual({a[1]["MessageId"] for a in attempts}.__len__(), 1, "a retry is the same message")
        self.assertTrue(failing.nothing_within(support.window(support.endpoint(), "sns-http-retry") * 1.5), "more than three retries")
        self.assertTrue(subscriber.nothing_within(0.1))

    def test_an_email_subscription_stays_pending(self) -> None:
        sns = client("sns")
        topic = sns.create_topic(Name=name("alarms"))["TopicArn"]
        answer = sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
        self.assertEqual(answer["SubscriptionArn"], "pending confirmation")
        arn = sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com", ReturnSubscriptionArn=True)["SubscriptionArn"]
        self.assertEqual(sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]["PendingConfirmation"], "true")
        (listed,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        err = refused(lambda: sns.unsubscribe(SubscriptionArn=listed["SubscriptionArn"]))
        self.assertEqual(err and err.code, "InvalidParameter", err)
        sns.delete_topic(TopicArn=topic)
        self.assertEqual(refused(lambda: sns.get_subscription_attributes(SubscriptionArn=arn)).code, "NotFound")  # type: ignore[union-attr]

    def test_switched_off_subscriptions_are_confirmed_at_once_and_nothing_asks(self) -> None:
        url = support.switched_off()
        sns = client("sns", url)
        topic = sns.create_topic(Name=name("alarms"))["TopicArn"]
        subscriber = Subscriber(self)
        answer = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=subscriber.url)
        self.assertNotEqual(answer["SubscriptionArn"], "pending confirmation")
        self.assertTrue(subscriber.nothing_within(1.0), "moto asked for a confirmation")


class Alarms(unittest.TestCase):
    def test_an_alarm_notifies_alarm_while_the_metric_breaches_then_ok(self) -> None:
        sns, cloudwatch = client("sns"), client("cloudwatch")
        topic = sns.create_topic(Name=name("alarms"))["TopicArn"]
        subscriber = confirmed_subscriber(self, topic)
        namespace, alarm = f"Local/{name('alarm')}", name("errors")
        dimensions = [{"Name": "FunctionName", "Value": "forecast"}]
        paging_alarm(
            self,
            topic,
            AlarmName=alarm,
            AlarmDescription="the forecast fails",
            Namespace=namespace,
            MetricName="Errors",
            Dimensions=dimensions,
            Statistic="Sum",
            Period=30,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )
        described = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
        # Before its first evaluation (tick): no data yet, judged.
        self.assertIn(described["StateValue"], ("INSUFFICIENT_DATA", "OK"))

        # Errors on a dimension the alarm does not watch change nothing.
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "Errors", "Value": 5, "Dimensions": [{"Name": "FunctionName", "Value": "other"}]}])
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "Errors", "Value": v, "Dimensions": dimensions} for v in (2, 1)])
        states = []
        while not states or states[-1]["NewStateValue"] != "ALARM":
            headers, delivered = subscriber.next()
            self.assertEqual(headers["x-amz-sns-message-type"], "Notification")
            states.append(json.loads(delivered["Message"]))
        raised = states[-1]
        self.assertEqual(delivered["Subject"], f'ALARM: "{alarm}" in US East (N. Virginia)' if REGION == "us-east-1" else delivered["Subject"])
        self.assertEqual((raised["AlarmName"], raised["AlarmDescription"], raised["AWSAccountId"]), (alarm, "the forecast fails", ACCOUNT))
        self.assertTrue(raised["NewStateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [3.0 ("), raised["NewStateReason"])
        self.assertIn("was greater than the threshold (0.0)", raised["NewStateReason"])
        self.assertEqual(raised["AlarmArn"], f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}")
        trigger = raised["Trigger"]
        self.assertEqual(
            (trigger["MetricName"], trigger["Namespace"], trigger["Statistic"], trigger["Dimensions"], trigger["Period"], trigger["Threshold"]),
            ("Errors", namespace, "SUM", [{"value": "forecast", "name": "FunctionName"}], 30, 0.0),
        )
        self.assertEqual(cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"], "ALARM")

        # The errors stop: once the period has passed, missing data is not
        # breaching, and the alarm goes back to OK.
        _, delivered = subscriber.next()
        cleared = json.loads(delivered["Message"])
        self.assertEqual((cleared["OldStateValue"], cleared["NewStateValue"]), ("ALARM", "OK"))
        described = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
        self.assertEqual(described["StateValue"], "OK")
        self.assertEqual(json.loads(described["StateReasonData"])["version"], "1.0")
        cloudwatch.delete_alarms(AlarmNames=[alarm])
        self.assertEqual(cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"], [])

    def test_put_metric_alarm_refuses_what_cloudwatch_refuses_and_an_update_keeps_the_state(self) -> None:
        cloudwatch = client("cloudwatch")
        alarm = name("latency")
        base = {
            "AlarmName": alarm,
            "Namespace": "AWS/ApiGateway",
            "MetricName": "Latency",
            "Dimensions": [{"Name": "ApiName", "Value": name("api")}],
            "ExtendedStatistic": "p99",
            "Period": 60,
            "EvaluationPeriods": 3,
            "DatapointsToAlarm": 2,
            "Threshold": 25000,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "ignore",
        }
        elsewhere = {"AlarmActions": [f"arn:aws:sns:{'eu-west-1' if REGION != 'eu-west-1' else 'us-east-1'}:{ACCOUNT}:pager"]}
        for bad in ({"Period": 45}, {"DatapointsToAlarm": 4}, {"Statistic": "Sum"}, {"TreatMissingData": "zero"}, {"Period": 3600, "EvaluationPeriods": 25}, elsewhere):
            with self.subTest(bad=bad):
                err = refused(lambda: cloudwatch.put_metric_alarm(**{**base, **bad}))
                self.assertEqual((err and err.code, err and err.status), ("ValidationError", 400), err)
        cloudwatch.put_metric_alarm(**base)
        self.assertEqual(cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"], "INSUFFICIENT_DATA")
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="by hand")
        cloudwatch.put_metric_alarm(**{**base, "Threshold": 20000})
        described = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
        self.assertEqual((described["StateValue"], described["StateReason"], described["Threshold"]), ("ALARM", "by hand", 20000.0))
        cloudwatch.delete_alarms(AlarmNames=[alarm])

    def test_switched_off_alarms_start_ok_and_take_any_period(self) -> None:
        cloudwatch = client("cloudwatch", support.switched_off())
        alarm = name("off")
        cloudwatch.put_metric_alarm(
            AlarmName=alarm, Namespace="Local/off", MetricName="Errors", Statistic="Sum", Period=45, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold"
        )
        self.assertEqual(cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"], "OK")


class EndToEnd(FunctionsTest):
    def test_a_stage_failing_through_its_custom_domain_raises_the_alarm_and_recovers(self) -> None:
        """The issue's scenario on the real data plane: a Lambda proxy
        behind a stage mapped to a custom domain, called by its Host
        header; its 5XX answers raise an alarm on API Gateway's 5XXError,
        whose ALARM, then OK once the errors stop, reach a subscriber."""
        require_data_plane()
        (function,) = live_functions([{"FIXTURE_MODE": "proxy"}], self.addCleanup)
        api = Api(function)
        api.allow()
        arn, domain, _ = issued_certificate()
        regional_domain(domain, arn)
        apigw = client("apigateway")
        apigw.create_base_path_mapping(domainName=domain, restApiId=api.id, stage="test")
        api_name = apigw.get_rest_api(restApiId=api.id)["name"]
        self.assertEqual(call(f"{endpoint()}/items/1", headers={"Host": domain})[0], 200)

        topic = client("sns").create_topic(Name=name("pager"))["TopicArn"]
        subscriber = confirmed_subscriber(self, topic)
        alarm = name("api-5xx")
        paging_alarm(
            self,
            topic,
            AlarmName=alarm,
            Namespace="AWS/ApiGateway",
            MetricName="5XXError",
            Dimensions=[{"Name": "ApiName", "Value": api_name}, {"Name": "Stage", "Value": "test"}],
            Statistic="Average",
            Period=60,
            Threshold=0.5,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )

        def next_state() -> dict[str, Any]:
            return json.loads(subscriber.next()[1]["Message"])

        # Break it: the function fails, the stage answers 502.
        statuses = [call(f"{endpoint()}/items/1?mode=error", headers={"Host": domain})[0] for _ in range(3)]
        self.assertEqual(statuses, [502, 502, 502])
        state = next_state()
        while state["NewStateValue"] != "ALARM":
            state = next_state()
        self.assertEqual(state["Trigger"]["MetricName"], "5XXError")
        # Fix it: good requests only, until the bad ones leave the period.
        stop = threading.Event()

        def healthy_traffic() -> None:
            while not stop.is_set():
                call(f"{endpoint()}/items/1", headers={"Host": domain})
                stop.wait(0.3)

        worker = threading.Thread(target=healthy_traffic, daemon=True)
        worker.start()
        self.addCleanup(worker.join)
        self.addCleanup(stop.set)
        state = next_state()
        self.assertEqual((state["OldStateValue"], state["NewStateValue"]), ("ALARM", "OK"), state)
        self.assertIn("was not greater than or equal to the threshold (0.5)", state["NewStateReason"])


class Spillover(FunctionsTest):
    def test_invocations_beyond_provisioned_concurrency_are_counted_as_spillover(self) -> None:
        """What an alarm on spillover watches (lambda_metrics): provisioned
        environments serve first, the rest spill over to on-demand ones."""
        require_data_plane()
        lam = client("lambda")
        function = self.active_function(prefix="spill-fn")
        version = publish_version(lam, function)
        lam.create_alias(FunctionName=function, Name="live", FunctionVersion=version)
        lam.put_provisioned_concurrency_config(FunctionName=function, Qualifier="live", ProvisionedConcurrentExecutions=1)
        self.assertEqual(settled(lam, function, "live")["Status"], "READY")
        # Two at once: one on the provisioned environment, one beyond it.
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(lambda _: invoke(function, {"mode": "sleep", "sleep_ms": 1500}, Qualifier="live"), range(2)))
        self.assertTrue(all("FunctionError" not in a for a in answers), answers)
        # Then one alone: the provisioned environment is free again.
        invoke(function, {"mode": "echo"}, Qualifier="live")
        alias = {"FunctionName": function, "Resource": f"{function}:live"}
        self.assertEqual(metric("AWS/Lambda", "ProvisionedConcurrencySpilloverInvocations", alias)["Sum"], 1)
        self.assertEqual(metric("AWS/Lambda", "ProvisionedConcurrencyInvocations", alias)["Sum"], 2)
        # $LATEST has no provisioned concurrency: neither is published.
        invoke(function, {"mode": "echo"})
        self.assertEqual(metric("AWS/Lambda", "ProvisionedConcurrencySpilloverInvocations", {"FunctionName": function})["Sum"], 1)


class Evaluation(unittest.TestCase):
    """``evaluate`` itself, in this process, on a backend of its own at a
    fixed moment: M of N and each way of treating missing data."""

    NOW = datetime.datetime(2026, 12, 6, 12, 0, 0)

    def alarm_with(self, values: list[Optional[float]], treat: str, datapoints: int = 2) -> Optional[str]:
        """The state of a 2-of-3 alarm (Sum > 1, 60 s periods) whose periods,
        oldest first, held ``values`` (None: nothing)."""
        backend = CloudWatchBackend(REGION, ACCOUNT)
        backend.put_metric_alarm(
            name="a", namespace="N", metric_name="M", comparison_operator="GreaterThanThreshold", evaluation_periods=3, period=60,
            threshold=1.0, statistic="Sum", description="", dimensions=[], alarm_actions=[], datapoints_to_alarm=datapoints, treat_missing_data=treat,
        )
        for age, value in zip((150, 90, 30), values):
            if value is not None:
                backend.metric_data.append(MetricDatum("N", "M", value, [], self.NOW - datetime.timedelta(seconds=age)))
        # Another metric's and another dimension's data count for nothing.
        backend.metric_data.append(MetricDatum("N", "Other", 9.0, [], self.NOW - datetime.timedelta(seconds=30)))
        backend.metric_data.append(MetricDatum("N", "M", 9.0, [{"Name": "D", "Value": "x"}], self.NOW - datetime.timedelta(seconds=30)))
        decided = cloudwatch_alarms.evaluate(backend, backend.alarms["a"], self.NOW, scale=1)
        return decided[0] if decided else None

    def test_m_of_n(self) -> None:
        self.assertEqual(self.alarm_with([5, 0, 5], "missing"), "ALARM")
        self.assertEqual(self.alarm_with([5, 0, 0], "missing"), "OK")
        self.assertEqual(self.alarm_with([5, 0, 0], "missing", datapoints=1), "ALARM")

    def test_a_percentile(self) -> None:
        backend = CloudWatchBackend(REGION, ACCOUNT)
        backend.put_metric_alarm(
            name="p", namespace="AWS/ApiGateway", metric_name="Latency", comparison_operator="GreaterThanThreshold", evaluation_periods=1, period=60,
            threshold=25000.0, statistic=None, extended_statistic="p99", description="", dimensions=[{"Name": "ApiName", "Value": "a"}], alarm_actions=[],
        )
        alarm = backend.alarms["p"]
        for i, latency in enumerate([100.0] * 98 + [27000.0, 28000.0]):
            backend.metric_data.append(MetricDatum("AWS/ApiGateway", "Latency", latency, [{"Name": "ApiName", "Value": "a"}], self.NOW - datetime.timedelta(seconds=1 + i * 0.1)))
        decided = cloudwatch_alarms.evaluate(backend, alarm, self.NOW, scale=1)
        self.assertEqual(decided and decided[0], "ALARM", decided)
        self.assertEqual(decided and decided[2]["extendedStatistic"], "p99")
        # One slow request in a hundred is under p99's rank.
        backend.metric_data.pop()
        backend.metric_data.append(MetricDatum("AWS/ApiGateway", "Latency", 100.0, [{"Name": "ApiName", "Value": "a"}], self.NOW - datetime.timedelta(seconds=1)))
        decided = cloudwatch_alarms.evaluate(backend, alarm, self.NOW, scale=1)
        self.assertEqual(decided and decided[0], "OK", decided)

    def test_missing_data(self) -> None:
        cases = {
            ("missing", (None, None, None)): "INSUFFICIENT_DATA",
            ("ignore", (None, None, None)): None,
            ("notBreaching", (None, None, None)): "OK",
            ("breaching", (None, None, None)): "ALARM",
            ("breaching", (None, 0, 5)): "ALARM",
            ("notBreaching", (None, 5, None)): "OK",
            ("missing", (None, 5, 5)): "ALARM",
            ("missing", (None, None, 5)): "OK",
        }
        for (treat, values), state in cases.items():
            with self.subTest(treat=treat, values=values):
                self.assertEqual(self.alarm_with(list(values), treat), state)


if __name__ == "__main__":
    unittest.main()
