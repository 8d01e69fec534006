"""``apigw-delete-rest-api``, ``apigw-create-deployment`` and
``apigw-update-usage-plan``: in force on the endpoint under test, and off
with their switches.

The quotas are per account and Region, so each test works in a Region of
its own that nothing else here uses; its first call waits out a window
an earlier run may have left open."""

import time
import unittest
from typing import Any

from . import support
from .support import client, eventually, name, refused, window


def rest_api_with_a_method(apigw: Any) -> str:
    api = apigw.create_rest_api(name=name("ext-api"))["id"]
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]
    apigw.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(
        restApiId=api, resourceId=root, httpMethod="GET", type="MOCK", requestTemplates={"application/json": "{}"}
    )
    return api


class Quotas(unittest.TestCase):
    def assert_throttled(self, call: Any) -> None:
        err = refused(call)
        self.assertEqual((err and err.status, err and err.code), (429, "TooManyRequestsException"), err)
        self.assertGreaterEqual(int(err.headers.get("retry-after", "0")), 1, err.headers)

    def test_delete_rest_api_once_per_window(self) -> None:
        url, region = support.endpoint(), "eu-central-2"
        apigw = client("apigateway", url, region)
        first, second = (apigw.create_rest_api(name=name("ext-api"))["id"] for _ in range(2))
        seconds = window(url, "apigw-delete-rest-api")
        eventually(lambda: apigw.delete_rest_api(restApiId=first), seconds + 1)
        self.assert_throttled(lambda: apigw.delete_rest_api(restApiId=second))
        time.sleep(seconds)
        apigw.delete_rest_api(restApiId=second)

    def test_create_deployment_once_per_window(self) -> None:
        url, region = support.endpoint(), "ap-south-2"
        apigw = client("apigateway", url, region)
        api = rest_api_with_a_method(apigw)
        seconds = window(url, "apigw-create-deployment")
        eventually(lambda: apigw.create_deployment(restApiId=api), seconds + 1)
        self.assert_throttled(lambda: apigw.create_deployment(restApiId=api))
        time.sleep(seconds)
        apigw.create_deployment(restApiId=api)

    def test_update_usage_plan_once_per_window(self) -> None:
        url, region = support.endpoint(), "me-central-1"
        apigw = client("apigateway", url, region)
        plan = apigw.create_usage_plan(name=name("ext-plan"))["id"]

        def describe(text: str) -> Any:
            operation = {"op": "replace", "path": "/description", "value": text}
            return apigw.update_usage_plan(usagePlanId=plan, patchOperations=[operation])

        seconds = window(url, "apigw-update-usage-plan")
        eventually(lambda: describe("one"), seconds + 1)
        self.assert_throttled(lambda: describe("two"))
        time.sleep(seconds)
        describe("three")

    def test_switched_off_there_are_no_quotas(self) -> None:
        apigw = client("apigateway", support.switched_off(), "eu-central-2")
        for _ in range(2):
            apigw.delete_rest_api(restApiId=apigw.create_rest_api(name=name("ext-api"))["id"])
        api = rest_api_with_a_method(apigw)
        apigw.create_deployment(restApiId=api)
        apigw.create_deployment(restApiId=api)
        plan = apigw.create_usage_plan(name=name("ext-plan"))["id"]
        for text in ("one", "two"):
            apigw.update_usage_plan(
                usagePlanId=plan, patchOperations=[{"op": "replace", "path": "/description", "value": text}]
            )


if __name__ == "__main__":
    unittest.main()
