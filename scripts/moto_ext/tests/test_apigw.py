"""``apigw-delete-rest-api``, ``apigw-create-deployment`` and
``apigw-update-usage-plan``: in force (on the moto with wider windows,
``support.wide_windows``), and off with their switches.

The quotas are per account and Region, so each test works in a Region of
its own that nothing else here uses; its first call waits out a window
an earlier run may have left open."""

import time
import unittest
from typing import Any, Callable

from . import support
from .support import Stopwatch, asked_again, client, inside_window, name, refused, throttled, window


def rest_api_with_a_method(apigw: Any) -> str:
    api = apigw.create_rest_api(name=name("ext-api"))["id"]
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]
    apigw.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(
        restApiId=api, resourceId=root, httpMethod="GET", type="MOCK", requestTemplates={"application/json": "{}"}
    )
    return api


class Quotas(unittest.TestCase):
    def assert_once_per_window(self, behaviour: str, calls: Callable[[], list[Callable[[], Any]]]) -> None:
        """Of three ``calls()``, the first passes (once an earlier run's
        window has closed), the second, at once, answers 429 with
        Retry-After, the third passes after the window."""
        url = support.wide_windows()

        def second_at_once(watch: Stopwatch) -> Callable[[], Any]:
            first, second, third = calls()

            def opening() -> Any:
                # Timed from the call that passes, not those still throttled.
                watch.start()
                return first()

            asked_again(opening, throttled)
            err = refused(second)
            self.assertEqual((err and err.status, err and err.code), (429, "TooManyRequestsException"), err)
            self.assertGreaterEqual(int(err.headers.get("retry-after", "0")), 1, err.headers)
            return third

        third = inside_window(url, behaviour, second_at_once)
        time.sleep(window(url, behaviour))
        third()

    def test_delete_rest_api_once_per_window(self) -> None:
        apigw = client("apigateway", support.wide_windows(), "eu-central-2")

        def calls() -> list[Callable[[], Any]]:
            apis = [apigw.create_rest_api(name=name("ext-api"))["id"] for _ in range(3)]
            return [lambda api=api: apigw.delete_rest_api(restApiId=api) for api in apis]

        self.assert_once_per_window("apigw-delete-rest-api", calls)

    def test_create_deployment_once_per_window(self) -> None:
        apigw = client("apigateway", support.wide_windows(), "ap-south-2")
        api = rest_api_with_a_method(apigw)
        self.assert_once_per_window("apigw-create-deployment", lambda: [lambda: apigw.create_deployment(restApiId=api)] * 3)

    def test_update_usage_plan_once_per_window(self) -> None:
        apigw = client("apigateway", support.wide_windows(), "me-central-1")
        plan = apigw.create_usage_plan(name=name("ext-plan"))["id"]

        def describe(text: str) -> Callable[[], Any]:
            operation = {"op": "replace", "path": "/description", "value": text}
            return lambda: apigw.update_usage_plan(usagePlanId=plan, patchOperations=[operation])

        self.assert_once_per_window("apigw-update-usage-plan", lambda: [describe(t) for t in ("one", "two", "three")])

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
