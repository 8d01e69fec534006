"""Custom domains as AWS has them: ACM issues a DNS-validated certificate
once its record is in a hosted zone (acm_validation), API Gateway takes
only an issued certificate of its Region and serves a mapped domain by its
Host header (apigw_domains), Route 53 checks record changes and alias
targets (route53_records); each also shown absent with its switch off.

Like the data plane's tests, the REST APIs made here are left in place
(DeleteRestApi's quota); their names, zones and domains are unique."""

import json
import time
import unittest
import uuid
from typing import Any, Optional

from . import support
from .support import PATIENCE_SECONDS, POLL_SECONDS, REGION, asked_again, client, endpoint, name, refused, throttled, window
from .test_apigw_dataplane import Api, call, live_functions

# "Amazon API Gateway endpoints and quotas": us-east-1's regional zone.
REGIONAL_ZONES = {"us-east-1": "Z1UJRXOUMOOFQ8"}


def new_zone(url: Optional[str] = None) -> tuple[str, str]:
    """A hosted zone of a unique name: its ID and name (no trailing dot)."""
    zone_name = f"{uuid.uuid4().hex[:10]}.example.com"
    zone = client("route53", url).create_hosted_zone(Name=zone_name, CallerReference=name("ref"))["HostedZone"]
    return zone["Id"].split("/")[-1], zone_name


def validation_option(arn: str, key: str, url: Optional[str] = None) -> dict[str, Any]:
    """The certificate's first domain validation option once it has
    ``key``: DescribeCertificate answers it only seconds after the request,
    so a client asks again (as the deployer must)."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        option = client("acm", url).describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"][0]
        if key in option:
            return option
        if time.monotonic() > deadline:
            raise AssertionError(f"{arn} never had {key}: {option}")
        time.sleep(POLL_SECONDS)


def certificate(domain: str, url: Optional[str] = None) -> tuple[str, dict[str, str]]:
    """A DNS-validated certificate requested for ``domain``: its ARN and
    the validation record ACM asks for."""
    arn = client("acm", url).request_certificate(DomainName=domain, ValidationMethod="DNS")["CertificateArn"]
    return arn, validation_option(arn, "ResourceRecord", url)["ResourceRecord"]


def upsert(zone_id: str, record: dict[str, Any], url: Optional[str] = None) -> None:
    client("route53", url).change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {"Name": record["Name"], "Type": record["Type"], "TTL": 300, "ResourceRecords": [{"Value": record["Value"]}]}}]},
    )


def status_of(arn: str, url: Optional[str] = None) -> str:
    return client("acm", url).describe_certificate(CertificateArn=arn)["Certificate"]["Status"]


def wait_issued(arn: str, url: Optional[str] = None) -> float:
    """Polls DescribeCertificate (as the SDKs' certificate_validated waiter
    does) until ISSUED; the seconds it took."""
    started = time.monotonic()
    while status_of(arn, url) != "ISSUED":
        if time.monotonic() - started > PATIENCE_SECONDS:
            raise AssertionError(f"{arn} was never issued")
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started


def issued_certificate(domain_suffix: str = "forecast") -> tuple[str, str, str]:
    """An issued certificate for ``{suffix}.{zone}``: its ARN, the domain,
    the zone's ID."""
    zone_id, zone_name = new_zone()
    domain = f"{domain_suffix}.{zone_name}"
    arn, record = certificate(domain)
    upsert(zone_id, record)
    wait_issued(arn)
    return arn, domain, zone_id


def regional_domain(domain: str, arn: str, url: Optional[str] = None) -> dict[str, Any]:
    return client("apigateway", url).create_domain_name(domainName=domain, regionalCertificateArn=arn, endpointConfiguration={"types": ["REGIONAL"]})


def mock_api(body: str) -> str:
    """A REST API whose ``GET /predict`` answers 200 ``body`` (MOCK),
    deployed to the stage ``prod``; its ID."""
    apigw = client("apigateway")
    api = apigw.create_rest_api(name=name("dom-api"), endpointConfiguration={"types": ["REGIONAL"]})["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
    predict = apigw.create_resource(restApiId=api, parentId=root, pathPart="predict")["id"]
    apigw.put_method(restApiId=api, resourceId=predict, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(restApiId=api, resourceId=predict, httpMethod="GET", type="MOCK", requestTemplates={"application/json": '{"statusCode": 200}'})
    apigw.put_method_response(restApiId=api, resourceId=predict, httpMethod="GET", statusCode="200")
    apigw.put_integration_response(restApiId=api, resourceId=predict, httpMethod="GET", statusCode="200", responseTemplates={"application/json": body})
    deployment = asked_again(lambda: apigw.create_deployment(restApiId=api), throttled)["id"]
    apigw.create_stage(restApiId=api, stageName="prod", deploymentId=deployment)
    return api


class Certificates(unittest.TestCase):
    def test_a_certificate_is_issued_once_its_own_validation_record_is_in_a_hosted_zone(self) -> None:
        zone_id, zone_name = new_zone()
        arn, record = certificate(f"forecast.{zone_name}")
        other_arn, other_record = certificate(f"forecast.{zone_name}")
        described = client("acm").describe_certificate(CertificateArn=arn)["Certificate"]
        self.assertEqual(described["Status"], "PENDING_VALIDATION")
        self.assertEqual(described["DomainValidationOptions"][0]["ValidationStatus"], "PENDING_VALIDATION")
        self.assertNotIn("IssuedAt", described)
        self.assertRegex(record["Name"], rf"^_[0-9a-f]{{32}}\.forecast\.{zone_name}\.$")
        self.assertRegex(record["Value"], r"^_[0-9a-f]{32}\.[a-z]{10}\.acm-validations\.aws\.$")
        self.assertEqual(record["Type"], "CNAME")
        self.assertNotEqual(record, other_record, "two certificates asked for the same record")

        # Nothing in public DNS (the record only in a private zone of the
        # name): still pending after the validation window.
        vpc = client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        private = client("route53").create_hosted_zone(
            Name=zone_name, CallerReference=name("ref"), HostedZoneConfig={"PrivateZone": True, "Comment": ""}, VPC={"VPCRegion": REGION, "VPCId": vpc}
        )["HostedZone"]["Id"].split("/")[-1]
        upsert(private, record)
        # Read once (ACM would start its wait on seeing the record), then
        # again after the window.
        self.assertEqual(status_of(arn), "PENDING_VALIDATION")
        time.sleep(window(endpoint(), "acm-dns-validation") * 1.5)
        self.assertEqual(status_of(arn), "PENDING_VALIDATION")
        # Another certificate's record does not validate this one.
        upsert(zone_id, other_record)
        upsert(zone_id, record)
        took = wait_issued(arn)
        self.assertGreaterEqual(took, window(endpoint(), "acm-dns-validation") * 0.5, "issued without ACM's delay")
        described = client("acm").describe_certificate(CertificateArn=arn)["Certificate"]
        self.assertEqual(described["DomainValidationOptions"][0]["ValidationStatus"], "SUCCESS")
        self.assertIn("IssuedAt", described)

    def test_the_validation_record_is_there_only_seconds_after_the_request(self) -> None:
        # Wide windows: the tests run beside a compile on 2 cores, where two
        # ACM calls took 0.6 s, longer than the 0.5 s window at the tests' scale.
        url = support.wide_windows()
        acm = client("acm", url)
        _, zone_name = new_zone(url)

        def scenario(watch: support.Stopwatch) -> str:
            watch.start()
            arn = acm.request_certificate(DomainName=f"early.{zone_name}", ValidationMethod="DNS")["CertificateArn"]
            (option,) = acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"]
            self.assertEqual(option["ValidationMethod"], "DNS")
            self.assertNotIn("ResourceRecord", option)
            return arn

        arn = support.inside_window(url, "acm-record-delay", scenario)
        self.assertIn("ResourceRecord", validation_option(arn, "ResourceRecord", url))

    def test_without_a_validation_method_a_certificate_waits_for_mail_nobody_reads(self) -> None:
        _, zone_name = new_zone()
        acm = client("acm")
        arn = acm.request_certificate(DomainName=f"mail.{zone_name}")["CertificateArn"]
        option = validation_option(arn, "ValidationEmails")
        self.assertEqual(option["ValidationMethod"], "EMAIL")
        self.assertNotIn("ResourceRecord", option)
        self.assertIn(f"admin@mail.{zone_name}", option["ValidationEmails"])
        time.sleep(window(endpoint(), "acm-dns-validation") * 1.5)
        self.assertEqual(status_of(arn), "PENDING_VALIDATION")

    def test_switched_off_every_certificate_asks_for_the_same_record_and_dns_does_not_matter(self) -> None:
        url = support.switched_off()
        _, zone_name = new_zone(url)
        _, record = certificate(f"a.{zone_name}", url)
        _, other = certificate(f"a.{zone_name}", url)
        self.assertEqual(record, other)


class DomainNames(unittest.TestCase):
    def test_a_regional_domain_name_takes_only_an_issued_certificate_of_its_region(self) -> None:
        zone_id, zone_name = new_zone()
        domain = f"api.{zone_name}"
        arn, record = certificate(domain)
        apigw = client("apigateway")
        err = refused(lambda: regional_domain(domain, arn))
        self.assertEqual((err and err.code, err and err.status), ("BadRequestException", 400), err)
        self.assertIn("PENDING_VALIDATION", err.message if err else "")
        missing = arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
        err = refused(lambda: regional_domain(domain, missing))
        self.assertEqual(err and err.code, "BadRequestException", err)
        elsewhere = arn.replace(f":{REGION}:", ":eu-west-3:")
        err = refused(lambda: regional_domain(domain, elsewhere))
        self.assertIn("Certificate must be in", err.message if err else "", err)
        err = refused(lambda: apigw.create_domain_name(domainName=domain, endpointConfiguration={"types": ["REGIONAL"]}))
        self.assertEqual(err and err.code, "BadRequestException", err)
        self.assertEqual(apigw.get_domain_names()["items"] and [d for d in apigw.get_domain_names()["items"] if d["domainName"] == domain], [])

        upsert(zone_id, record)
        wait_issued(arn)
        created = regional_domain(domain, arn)
        self.assertRegex(created["regionalDomainName"], rf"^d-[a-z0-9]+\.execute-api\.{REGION}\.amazonaws\.com$")
        if REGION in REGIONAL_ZONES:
            self.assertEqual(created["regionalHostedZoneId"], REGIONAL_ZONES[REGION])
        self.assertNotIn("distributionDomainName", created)
        err = refused(lambda: regional_domain(domain, arn))
        self.assertEqual((err and err.code, err and err.message), ("BadRequestException", "The domain name you provided already exists."))

        # The certificate is in use by the domain name.
        acm = client("acm")
        err = refused(lambda: acm.delete_certificate(CertificateArn=arn))
        self.assertEqual(err and err.code, "ResourceInUseException", err)
        in_use = acm.describe_certificate(CertificateArn=arn)["Certificate"]["InUseBy"]
        self.assertEqual(in_use, [f"arn:aws:apigateway:{REGION}::/domainnames/{domain}"])
        apigw.delete_domain_name(domainName=domain)
        acm.delete_certificate(CertificateArn=arn)
        self.assertEqual(refused(lambda: acm.describe_certificate(CertificateArn=arn)).code, "ResourceNotFoundException")  # type: ignore[union-attr]

    def test_switched_off_a_pending_certificate_makes_a_domain_and_can_be_deleted_in_use(self) -> None:
        url = support.switched_off()
        _, zone_name = new_zone(url)
        domain = f"api.{zone_name}"
        arn, _ = certificate(domain, url)
        regional_domain(domain, arn, url)
        self.assertIsNone(refused(lambda: client("acm", url).delete_certificate(CertificateArn=arn)))


class Mappings(unittest.TestCase):
    def test_a_mapped_domain_serves_its_stage_by_the_host_header(self) -> None:
        arn, domain, _ = issued_certificate()
        apigw = client("apigateway")
        api = mock_api('{"forecast": "sunny"}')
        regional_domain(domain, arn)
        self.assertEqual(apigw.get_base_path_mappings(domainName=domain).get("items", []), [])
        # Mapped to nothing yet: API Gateway has no mapping to serve.
        self.assertEqual(call(f"{endpoint()}/predict", headers={"Host": domain})[:3:2], (403, b'{"message":"Forbidden"}'))
        apigw.create_base_path_mapping(domainName=domain, restApiId=api, stage="prod")
        err = refused(lambda: apigw.create_base_path_mapping(domainName=domain, restApiId=api, stage="prod"))
        self.assertEqual(err and err.code, "ConflictException", err)
        self.assertEqual([m["basePath"] for m in apigw.get_base_path_mappings(domainName=domain)["items"]], ["(none)"])

        status, headers, body = call(f"{endpoint()}/predict?date=2026-12-06", headers={"Host": domain})
        self.assertEqual((status, body), (200, b'{"forecast": "sunny"}'), headers)
        self.assertIn("x-amzn-RequestId", headers)
        status, _, body = call(f"{endpoint()}/nowhere", headers={"Host": domain})
        self.assertEqual((status, body), (403, b'{"message":"Missing Authentication Token"}'))

        # A base path is the first segment; other paths have no mapping.
        other_arn, other_domain, _ = issued_certificate("v")
        regional_domain(other_domain, other_arn)
        apigw.create_base_path_mapping(domainName=other_domain, restApiId=api, stage="prod", basePath="v1")
        self.assertEqual(call(f"{endpoint()}/v1/predict", headers={"Host": other_domain})[0], 200)
        status, _, body = call(f"{endpoint()}/predict", headers={"Host": other_domain})
        self.assertEqual((status, body), (403, b'{"message":"Forbidden"}'))
        # (none) is alone or not at all.
        err = refused(lambda: apigw.create_base_path_mapping(domainName=other_domain, restApiId=api, stage="prod"))
        self.assertEqual((err and err.code, err and err.message), ("ConflictException", "Only one base path mapping is allowed if the base path is empty."))
        err = refused(lambda: apigw.create_base_path_mapping(domainName=domain, restApiId=api, stage="prod", basePath="v2"))
        self.assertEqual(err and err.code, "ConflictException", err)

        # A mapped API cannot be deleted (asked again while the quota holds).
        err = refused(lambda: asked_again(lambda: apigw.delete_rest_api(restApiId=api), throttled))
        self.assertEqual(err and err.code, "BadRequestException", err)
        self.assertIn("Please remove all base path mappings", err.message if err else "")

        # Deleting the domain name deletes its mappings: nothing serves it,
        # and the name made again starts with none.
        apigw.delete_domain_name(domainName=domain)
        self.assertNotEqual(call(f"{endpoint()}/predict", headers={"Host": domain})[0], 200)
        regional_domain(domain, arn)
        self.assertEqual(apigw.get_base_path_mappings(domainName=domain).get("items", []), [])

    def test_the_proxy_event_has_the_path_as_requested_on_the_domain(self) -> None:
        """API Gateway passes the base path on in the event's path: a
        function routing on it sees ``/v1/...`` through the domain."""
        support.require_data_plane()
        (function,) = live_functions([{"FIXTURE_MODE": "proxy"}], self.addCleanup)
        api = Api(function)
        api.allow()
        arn, domain, _ = issued_certificate("base")
        regional_domain(domain, arn)
        client("apigateway").create_base_path_mapping(domainName=domain, restApiId=api.id, stage="test", basePath="v1")
        status, _, body = call(f"{endpoint()}/v1/items/7?x=1", headers={"Host": domain})
        self.assertEqual(status, 200, body)
        event = json.loads(body)
        self.assertEqual((event["path"], event["requestContext"]["path"]), ("/v1/items/7", "/v1/items/7"))
        self.assertEqual((event["resource"], event["pathParameters"], event["requestContext"]["domainName"]), ("/items/{id}", {"id": "7"}, domain))
        # By the execute-api path, as before: no base path, the stage's.
        event = json.loads(call(api.url("/items/7"))[2])
        self.assertEqual((event["path"], event["requestContext"]["path"]), ("/items/7", "/test/items/7"))

    def test_switched_off_the_host_header_is_not_served(self) -> None:
        url = support.switched_off()
        apigw = client("apigateway", url)
        api = apigw.create_rest_api(name=name("dom-api"))["id"]
        _, zone_name = new_zone(url)
        domain = f"api.{zone_name}"
        apigw.create_domain_name(domainName=domain, regionalCertificateArn="arn:aws:acm:us-east-1:123456789012:certificate/x", endpointConfiguration={"types": ["REGIONAL"]})
        # moto fails GetBasePathMappings of a domain without mappings.
        self.assertEqual(refused(lambda: apigw.get_base_path_mappings(domainName=domain)).status, 500)  # type: ignore[union-attr]
        apigw.create_base_path_mapping(domainName=domain, restApiId=api)
        self.assertNotEqual(call(f"{url}/predict", headers={"Host": domain})[0], 200)


class Records(unittest.TestCase):
    def test_alias_records_must_target_a_regional_domain_name_in_its_zone(self) -> None:
        arn, domain, zone_id = issued_certificate()
        created = regional_domain(domain, arn)
        route53 = client("route53")

        def alias(action: str, target: str, zone: str) -> Any:
            return refused(
                lambda: route53.change_resource_record_sets(
                    HostedZoneId=zone_id,
                    ChangeBatch={"Changes": [{"Action": action, "ResourceRecordSet": {"Name": domain, "Type": "A", "AliasTarget": {"DNSName": target, "HostedZoneId": zone, "EvaluateTargetHealth": False}}}]},
                )
            )

        target, target_zone = created["regionalDomainName"], created["regionalHostedZoneId"]
        err = alias("CREATE", target, "Z2FDTNDATAQYW2")
        self.assertEqual(err and err.code, "InvalidChangeBatch", err)
        self.assertIn("does not lie within the target zone", err.message if err else "")
        err = alias("CREATE", f"d-nothere000.execute-api.{REGION}.amazonaws.com", target_zone)
        self.assertIn("but that target was not found", err.message if err else "", err)
        self.assertIsNone(alias("CREATE", target, target_zone))
        err = alias("CREATE", target, target_zone)
        self.assertIn("but it already exists", err.message if err else "", err)

        def records() -> list[dict[str, Any]]:
            found = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
            return [r for r in found if r["Type"] == "A"]

        self.assertEqual([r["AliasTarget"]["DNSName"].rstrip(".") for r in records()], [target])
        # DELETE names the record as it is, or fails and deletes nothing.
        mismatch = refused(
            lambda: route53.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": {"Name": domain, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}}]},
            )
        )
        self.assertIn("do not match the current values", mismatch.message if mismatch else "", mismatch)
        self.assertEqual(len(records()), 1)
        self.assertIsNone(alias("DELETE", target, target_zone))
        self.assertEqual(records(), [])
        err = alias("DELETE", target, target_zone)
        self.assertIn("but it was not found", err.message if err else "", err)

    def test_a_change_is_pending_until_it_has_propagated(self) -> None:
        zone_id, zone_name = new_zone()
        route53 = client("route53")
        change = {"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {"Name": f"p.{zone_name}", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.7"}]}}]}

        def scenario(watch: support.Stopwatch) -> str:
            watch.start()
            info = route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=change)["ChangeInfo"]
            self.assertEqual(info["Status"], "PENDING")
            self.assertEqual(route53.get_change(Id=info["Id"])["ChangeInfo"]["Status"], "PENDING")
            return str(info["Id"])

        first = support.inside_window(endpoint(), "route53-propagation", scenario)
        second = route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=change)["ChangeInfo"]["Id"]
        self.assertNotEqual(first, second, "two batches, one change")
        # The SDKs' waiter, as a client that needs the record live uses it.
        route53.get_waiter("resource_record_sets_changed").wait(Id=first, WaiterConfig={"Delay": POLL_SECONDS, "MaxAttempts": int(PATIENCE_SECONDS / POLL_SECONDS)})
        self.assertEqual(route53.get_change(Id=first)["ChangeInfo"]["Status"], "INSYNC")

    def test_switched_off_any_alias_target_is_taken(self) -> None:
        url = support.switched_off()
        zone_id, zone_name = new_zone(url)
        client("route53", url).change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {"Name": f"x.{zone_name}", "Type": "A", "AliasTarget": {"DNSName": f"d-nothere000.execute-api.{REGION}.amazonaws.com", "HostedZoneId": "Z2FDTNDATAQYW2", "EvaluateTargetHealth": False}}}]},
        )


if __name__ == "__main__":
    unittest.main()


class RecordValues(unittest.TestCase):
    def test_values_are_xml_text_as_route53_answers_them(self) -> None:
        zone_id, zone_name = new_zone()
        value = "_0123.abcdefghij.acm-validations.aws."
        upsert(zone_id, {"Name": f"_x.{zone_name}.", "Type": "CNAME", "Value": value})
        route53 = client("route53")
        bodies: list[str] = []
        route53.meta.events.register(
            "after-call.route53.ListResourceRecordSets",
            lambda http_response, **_: bodies.append(http_response.content.decode()),
        )
        route53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=f"_x.{zone_name}.", StartRecordType="CNAME", MaxItems="1")
        # The raw answer, as the Rust SDK's XML reader gets it: no CDATA
        # (which it reads as an empty value), the value as text.
        self.assertNotIn("CDATA", bodies[0])
        self.assertIn(f"<Value>{value}</Value>", bodies[0])


class DomainTags(unittest.TestCase):
    def test_a_domain_name_is_tagged_and_untagged_by_its_arn(self) -> None:
        arn, domain, _ = issued_certificate()
        regional_domain(domain, arn)
        apigw = client("apigateway")
        resource = f"arn:aws:apigateway:{REGION}::/domainnames/{domain}"
        apigw.tag_resource(resourceArn=resource, tags={"deployer:hosted-zone": "Z1"})
        self.assertEqual(apigw.get_domain_name(domainName=domain).get("tags"), {"deployer:hosted-zone": "Z1"})
        listed = [d for d in apigw.get_domain_names()["items"] if d["domainName"] == domain]
        self.assertEqual(listed[0].get("tags"), {"deployer:hosted-zone": "Z1"})
        apigw.untag_resource(resourceArn=resource, tagKeys=["deployer:hosted-zone"])
        self.assertFalse(apigw.get_domain_name(domainName=domain).get("tags"))
        missing = refused(lambda: apigw.tag_resource(resourceArn=f"arn:aws:apigateway:{REGION}::/domainnames/no.{domain}", tags={"a": "b"}))
        self.assertEqual(missing and missing.code, "NotFoundException", missing)
