"""A published version keeps what it was published with; an alias has its
own resource policy (lambda_qualifiers)."""

import json

import botocore.exceptions

from .support import ACCOUNT, REGION, FunctionsTest, client, require_data_plane, wait_until_active


def setUpModule() -> None:
    require_data_plane()


class Qualifiers(FunctionsTest):
    def test_a_published_version_keeps_its_image_and_environment(self) -> None:
        lam = client("lambda")
        name = self.active_function(prefix="q-version", environment={"FIXTURE_VALUE": "one"})
        first_image = lam.get_function(FunctionName=name)["Code"]["ImageUri"]
        lam.publish_version(FunctionName=name)
        other = first_image.split("@")[0] + "@sha256:" + "1" * 64
        lam.update_function_code(FunctionName=name, ImageUri=other)
        wait_until_active(lam, name)
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"FIXTURE_VALUE": "two"}})
        version = lam.get_function(FunctionName=name, Qualifier="1")
        self.assertEqual(version["Code"]["ImageUri"], first_image)
        self.assertEqual(version["Configuration"]["Environment"]["Variables"], {"FIXTURE_VALUE": "one"})
        latest = lam.get_function(FunctionName=name)
        self.assertEqual(latest["Code"]["ImageUri"], other)

    def test_an_aliass_permission_stays_with_the_alias(self) -> None:
        lam = client("lambda")
        name = self.active_function(prefix="q-alias")
        lam.publish_version(FunctionName=name)
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
        source = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc/*/*/predict"
        lam.add_permission(
            FunctionName=name, Qualifier="live", StatementId="api", Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com", SourceArn=source,
        )

        def statements(**qualifier: str) -> list:
            try:
                return json.loads(lam.get_policy(FunctionName=name, **qualifier)["Policy"])["Statement"]
            except lam.exceptions.ResourceNotFoundException:
                return []

        self.assertEqual([s["Sid"] for s in statements(Qualifier="live")], ["api"])
        self.assertTrue(statements(Qualifier="live")[0]["Resource"].endswith(f":function:{name}:live"))
        self.assertEqual(statements(Qualifier="1"), [], "the alias's statement landed on its version")
        lam.update_function_configuration(FunctionName=name, MemorySize=512)
        wait_until_active(lam, name)
        lam.publish_version(FunctionName=name)
        lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
        self.assertEqual([s["Sid"] for s in statements(Qualifier="live")], ["api"])

        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            lam.add_permission(
                FunctionName=name, Qualifier="live", StatementId="api", Action="lambda:InvokeFunction",
                Principal="apigateway.amazonaws.com", SourceArn=source,
            )
        self.assertEqual(caught.exception.response["Error"]["Code"], "ResourceConflictException")
        lam.remove_permission(FunctionName=name, Qualifier="live", StatementId="api")
        self.assertEqual(statements(Qualifier="live"), [])
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            lam.remove_permission(FunctionName=name, Qualifier="live", StatementId="api")
        self.assertEqual(caught.exception.response["Error"]["Code"], "ResourceNotFoundException")
