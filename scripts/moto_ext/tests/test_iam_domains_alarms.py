"""IAM for the custom domain's and the alarms' calls (iam_targets,
iam_auth): each is authorized on the resource AWS authorizes it on, and a
denial is answered in the service's own error, offline and on a moto of
ours that enforces IAM, signed as a user whose policy names narrow
resources."""

import json
import unittest
from typing import Any
from unittest import mock

import boto3
import botocore.config

from .. import iam_targets
from . import support
from .support import ACCOUNT, REGION, Server, name, refused
from .test_iam_auth import allow, policy


def target(action: str, method: str, path: str, body: Any = b"", data: Any = None) -> list[str]:
    text = json.dumps(body) if isinstance(body, dict) else body
    return iam_targets.target(iam_targets.Request(action, method, path, text, REGION, ACCOUNT, data))[0]


class Targets(unittest.TestCase):
    def test_certificates_zones_topics_and_alarms(self) -> None:
        cert = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/1234"
        self.assertEqual(target("acm:DescribeCertificate", "POST", "/", {"CertificateArn": cert}), [cert])
        self.assertEqual(target("acm:RequestCertificate", "POST", "/", {"DomainName": "a.example.com"}), ["*"])
        self.assertEqual(target("route53:ChangeResourceRecordSets", "POST", "/2013-04-01/hostedzone/Z123/rrset/"), ["arn:aws:route53:::hostedzone/Z123"])
        self.assertEqual(target("route53:GetChange", "GET", "/2013-04-01/change/C9"), ["arn:aws:route53:::change/C9"])
        self.assertEqual(target("route53:ListHostedZones", "GET", "/2013-04-01/hostedzone"), ["*"])
        topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:pager"
        self.assertEqual(target("sns:CreateTopic", "POST", "/", "Action=CreateTopic&Name=pager"), [topic])
        self.assertEqual(target("sns:Subscribe", "POST", "/", f"Action=Subscribe&TopicArn={topic}&Protocol=email"), [topic])
        self.assertEqual(target("sns:Unsubscribe", "POST", "/", f"Action=Unsubscribe&SubscriptionArn={topic}:1"), ["*"])
        alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:"
        self.assertEqual(target("cloudwatch:PutMetricAlarm", "POST", "/", {"AlarmName": "a5xx"}), [alarm + "a5xx"])
        self.assertEqual(target("cloudwatch:DeleteAlarms", "POST", "/", "Action=DeleteAlarms&AlarmNames.member.1=x&AlarmNames.member.2=y"), [alarm + "x", alarm + "y"])
        self.assertEqual(target("cloudwatch:DescribeAlarms", "POST", "/", {}), [alarm + "*"])
        # CBOR, as the Rust SDK sends it: a map of one text key.
        cbor = bytes([0xA1, 0x69]) + b"AlarmName" + bytes([0x64]) + b"a5xx"
        self.assertEqual(target("cloudwatch:PutMetricAlarm", "POST", "/service/GraniteServiceVersion20100801/operation/PutMetricAlarm", cbor), [alarm + "a5xx"])


class Enforced(unittest.TestCase):
    """On a moto that enforces IAM: a user allowed only its own topic,
    zone, alarms and certificates."""

    server: Server
    user: boto3.Session

    @classmethod
    def setUpClass(cls) -> None:
        cls.app = name("shop")
        cls.server = Server({"INITIAL_NO_AUTH_ACTION_COUNT": "4", "LOCAL_AWS_TIME_SCALE": "0.1"}).wait()
        bootstrap = boto3.client("iam", endpoint_url=cls.server.url, region_name=REGION, aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        narrow = policy(
            allow(["sns:CreateTopic", "sns:Subscribe"], f"arn:aws:sns:{REGION}:{ACCOUNT}:{cls.app}-*"),
            allow(["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms"], f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{cls.app}-*"),
            allow(["acm:RequestCertificate", "route53:CreateHostedZone"], "*"),
            # A certificate's ARN is ACM's: scoped by the tag the user gives it.
            allow(["acm:DescribeCertificate", "acm:DeleteCertificate"], "*", {"StringEquals": {"aws:ResourceTag/deployer:app": cls.app}}),
        )
        bootstrap.create_user(UserName="user")
        key = bootstrap.create_access_key(UserName="user")["AccessKey"]
        bootstrap.put_user_policy(UserName="user", PolicyName="p", PolicyDocument=json.dumps(narrow))
        cls.user = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGION)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def client(self, service: str) -> Any:
        return self.user.client(service, endpoint_url=self.server.url, config=botocore.config.Config(retries={"total_max_attempts": 1}))

    def denied(self, call: Any, code: str, status: int, action: str, resource: str) -> None:
        err = refused(call)
        self.assertIsNotNone(err, f"{action} on {resource} was allowed")
        assert err is not None
        self.assertEqual((err.code, err.status), (code, status), err)
        self.assertIn(f"{action} on resource: {resource}", err.message)

    def test_each_call_on_its_own_resource_in_its_services_error(self) -> None:
        sns = self.client("sns")
        topic = sns.create_topic(Name=f"{self.app}-pager")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
        self.denied(lambda: sns.create_topic(Name="elsewhere"), "AuthorizationError", 403, "sns:CreateTopic", f"arn:aws:sns:{REGION}:{ACCOUNT}:elsewhere")

        metric = {"Namespace": "AWS/Lambda", "MetricName": "Errors", "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1, "Threshold": 0, "ComparisonOperator": "GreaterThanThreshold"}
        cloudwatch = self.client("cloudwatch")
        cloudwatch.put_metric_alarm(AlarmName=f"{self.app}-errors", **metric)
        alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:other-errors"
        self.denied(lambda: cloudwatch.put_metric_alarm(AlarmName="other-errors", **metric), "AccessDeniedException", 400, "cloudwatch:PutMetricAlarm", alarm)
        # The Rust SDK speaks CBOR: the same decision.
        # Made as support.cbor_client makes its own (botocore's protocol
        # preference is global), with this user's keys.
        with support._clients_lock, mock.patch("botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", ("smithy-rpc-v2-cbor",)):
            cbor = self.client("cloudwatch")
        self.assertEqual(cbor.meta.service_model.resolved_protocol, "smithy-rpc-v2-cbor")
        cbor.put_metric_alarm(AlarmName=f"{self.app}-throttles", **metric)
        self.denied(lambda: cbor.put_metric_alarm(AlarmName="other-errors", **metric), "AccessDeniedException", 400, "cloudwatch:PutMetricAlarm", alarm)

        acm = self.client("acm")
        arn = acm.request_certificate(DomainName=f"{self.app}.example.com", ValidationMethod="DNS")["CertificateArn"]
        self.denied(lambda: acm.describe_certificate(CertificateArn=arn), "AccessDeniedException", 400, "acm:DescribeCertificate", arn)
        tagged = acm.request_certificate(DomainName=f"{self.app}.example.com", ValidationMethod="DNS", Tags=[{"Key": "deployer:app", "Value": self.app}])["CertificateArn"]
        acm.describe_certificate(CertificateArn=tagged)
        acm.delete_certificate(CertificateArn=tagged)

        route53 = self.client("route53")
        zone = route53.create_hosted_zone(Name=f"{self.app}.example.com", CallerReference=name("ref"))["HostedZone"]["Id"].split("/")[-1]
        change = {"Changes": [{"Action": "CREATE", "ResourceRecordSet": {"Name": f"x.{self.app}.example.com", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}}]}
        self.denied(
            lambda: route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=change),
            "AccessDenied",
            403,
            "route53:ChangeResourceRecordSets",
            f"arn:aws:route53:::hostedzone/{zone}",
        )


if __name__ == "__main__":
    unittest.main()
