"""A deployed stage serves requests at /restapis/{id}/{stage}/_user_request_/
as API Gateway does (apigw_dataplane).

The REST APIs these tests make are left in place: DeleteRestApi is allowed
once per 30 seconds per account and Region (apigw-delete-rest-api), so
deleting a dozen would hold that quota for minutes, away from the
deployer's tests that run beside these on the same moto. Their names are
unique, so a rerun does not meet them."""

import json
import time
import unittest
import urllib.error
import urllib.request
from typing import Any, Callable, Optional

from .support import (
    ACCOUNT,
    REGION,
    asked_again,
    client,
    create_function,
    delete_function,
    endpoint,
    name,
    publish_version,
    require_data_plane,
    throttled,
    wait_until_active,
)


def setUpModule() -> None:
    require_data_plane()


def live_functions(environments: list[dict[str, str]], cleanup: Callable[..., None]) -> list[str]:
    """A function of the fixture image per environment, each with version 1
    published behind the alias ``live``, waited until it can be invoked;
    made side by side, so that their Pending windows pass together.
    ``cleanup`` (``addCleanup``) is given their deletion."""
    lam = client("lambda")
    functions = [create_function(prefix="dp-fn", environment=environment) for environment in environments]
    for function in functions:
        cleanup(delete_function, function)
    for function in functions:
        wait_until_active(lam, function)
    versions = [lam.publish_version(FunctionName=function)["Version"] for function in functions]
    for function, version in zip(functions, versions):
        lam.create_alias(FunctionName=function, Name="live", FunctionVersion=version)
    for function, version in zip(functions, versions):
        wait_until_active(lam, function, version)
    return functions


def call(url: str, method: str = "GET", body: Optional[bytes] = None, headers: Optional[dict[str, str]] = None) -> tuple[int, dict[str, str], bytes]:
    """One request; the status, the headers (as sent, last value wins) and the body."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def all_headers(url: str, **options: Any) -> list[tuple[str, str]]:
    request = urllib.request.Request(url, **options)
    with urllib.request.urlopen(request, timeout=60) as answer:
        return list(answer.headers.items())


class Api:
    """A REST API on the fixture function: ``/items/{id}`` (GET, POST:
    proxy to the function's alias ``live``), ``/mock`` (OPTIONS: MOCK)."""

    def __init__(self, function: str, api_key_required: bool = False, timeout_ms: Optional[int] = None):
        self.apigw = client("apigateway")
        self.lam = client("lambda")
        self.function = function
        self.id = self.apigw.create_rest_api(name=name("dp-api"), endpointConfiguration={"types": ["REGIONAL"]})["id"]
        root = next(r["id"] for r in self.apigw.get_resources(restApiId=self.id)["items"] if r["path"] == "/")
        items = self.apigw.create_resource(restApiId=self.id, parentId=root, pathPart="items")["id"]
        self.item = self.apigw.create_resource(restApiId=self.id, parentId=items, pathPart="{id}")["id"]
        function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}:live"
        uri = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
        for method in ("GET", "POST"):
            self.apigw.put_method(restApiId=self.id, resourceId=self.item, httpMethod=method, authorizationType="NONE", apiKeyRequired=api_key_required)
            extra = {"timeoutInMillis": timeout_ms} if timeout_ms else {}
            self.apigw.put_integration(restApiId=self.id, resourceId=self.item, httpMethod=method, type="AWS_PROXY", integrationHttpMethod="POST", uri=uri, **extra)
        self.mock = self.apigw.create_resource(restApiId=self.id, parentId=root, pathPart="mock")["id"]
        self.apigw.put_method(restApiId=self.id, resourceId=self.mock, httpMethod="OPTIONS", authorizationType="NONE")
        self.apigw.put_integration(restApiId=self.id, resourceId=self.mock, httpMethod="OPTIONS", type="MOCK", requestTemplates={"application/json": '{"statusCode": 204}'})
        self.apigw.put_method_response(
            restApiId=self.id,
            resourceId=self.mock,
            httpMethod="OPTIONS",
            statusCode="204",
            responseParameters={"method.response.header.Access-Control-Allow-Origin": False, "method.response.header.Access-Control-Allow-Methods": False},
        )
        self.apigw.put_integration_response(
            restApiId=self.id,
            resourceId=self.mock,
            httpMethod="OPTIONS",
            statusCode="204",
            responseParameters={
                "method.response.header.Access-Control-Allow-Origin": "'https://app.example'",
                "method.response.header.Access-Control-Allow-Methods": "'GET,POST,OPTIONS'",
                # Not declared by the method response: not sent.
                "method.response.header.X-Undeclared": "'nope'",
            },
        )
        self.deploy()

    def deploy(self) -> None:
        # CreateDeployment is allowed once per 5 seconds per account and
        # Region (apigw-create-deployment): asked again while throttled.
        deployment = asked_again(lambda: self.apigw.create_deployment(restApiId=self.id), throttled)["id"]
        try:
            self.apigw.update_stage(restApiId=self.id, stageName="test", patchOperations=[{"op": "replace", "path": "/deploymentId", "value": deployment}])
        except self.apigw.exceptions.NotFoundException:
            self.apigw.create_stage(restApiId=self.id, stageName="test", deploymentId=deployment, variables={"colour": "blue"})

    def allow(self, stage: str = "*", method: str = "*", path: str = "items/*") -> None:
        self.lam.add_permission(
            FunctionName=self.function,
            Qualifier="live",
            StatementId=name("apigw"),
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{self.id}/{stage}/{method}/{path}",
        )

    def url(self, path: str, stage: str = "test") -> str:
        return f"{endpoint()}/restapis/{self.id}/{stage}/_user_request_{path}"


class DataPlane(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        # The function of the tests that do not change it.
        (cls.name,) = live_functions([{"FIXTURE_MODE": "proxy"}], cls.addClassCleanup)
        cls.lam = client("lambda")

    def api(self, function: Optional[str] = None, **options: Any) -> Api:
        return Api(function or self.name, **options)

    def test_a_proxy_request_reaches_the_function_as_api_gateways_event(self) -> None:
        api = self.api()
        api.allow()
        status, headers, body = call(api.url("/items/42?a=1&a=2&b=x"), headers={"X-Test": "yes", "User-Agent": "dp-test"})
        self.assertEqual(status, 200, body)
        event = json.loads(body)
        self.assertEqual(event["resource"], "/items/{id}")
        self.assertEqual(event["path"], "/items/42")
        self.assertEqual(event["httpMethod"], "GET")
        self.assertEqual(event["pathParameters"], {"id": "42"})
        self.assertEqual(event["queryStringParameters"], {"a": "2", "b": "x"})
        self.assertEqual(event["multiValueQueryStringParameters"], {"a": ["1", "2"], "b": ["x"]})
        self.assertEqual(event["headers"]["X-Test"], "yes")
        self.assertEqual(event["multiValueHeaders"]["X-Test"], ["yes"])
        self.assertEqual(event["stageVariables"], {"colour": "blue"})
        self.assertIsNone(event["body"])
        self.assertFalse(event["isBase64Encoded"])
        context = event["requestContext"]
        self.assertEqual(context["stage"], "test")
        self.assertEqual(context["resourcePath"], "/items/{id}")
        self.assertEqual(context["path"], "/test/items/42")
        self.assertEqual(context["httpMethod"], "GET")
        self.assertEqual(context["apiId"], api.id)
        self.assertEqual(context["accountId"], ACCOUNT)
        self.assertEqual(context["requestId"], headers["x-amzn-RequestId"])
        self.assertEqual(context["identity"]["userAgent"], "dp-test")
        self.assertEqual(context["identity"]["sourceIp"], "127.0.0.1")
        # The function's headers, both Set-Cookie values, and nothing of
        # moto's own CORS.
        self.assertEqual(headers["X-Fixture"], "proxy")
        cookies = [v for k, v in all_headers(api.url("/items/42")) if k.lower() == "set-cookie"]
        self.assertEqual(cookies, ["a=1", "b=2"])
        self.assertFalse([k for k in headers if k.lower().startswith("access-control-")], headers)

        status, _, body = call(api.url("/items/7"), method="POST", body=b'{"date": "2025-10-20"}', headers={"Content-Type": "application/json"})
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(json.loads(body)["body"]), {"date": "2025-10-20"})

    def test_the_stage_serves_its_deployment_not_the_api_as_edited(self) -> None:
        api = self.api()
        api.allow(path="*")
        root = next(r["id"] for r in api.apigw.get_resources(restApiId=api.id)["items"] if r["path"] == "/")
        extra = api.apigw.create_resource(restApiId=api.id, parentId=root, pathPart="extra")["id"]
        api.apigw.put_method(restApiId=api.id, resourceId=extra, httpMethod="GET", authorizationType="NONE")
        uri = api.apigw.get_integration(restApiId=api.id, resourceId=api.item, httpMethod="GET")["uri"]
        api.apigw.put_integration(restApiId=api.id, resourceId=extra, httpMethod="GET", type="AWS_PROXY", integrationHttpMethod="POST", uri=uri)
        status, headers, body = call(api.url("/extra"))
        self.assertEqual((status, json.loads(body)), (403, {"message": "Missing Authentication Token"}))
        self.assertEqual(headers["x-amzn-ErrorType"], "MissingAuthenticationTokenException")
        api.deploy()
        self.assertEqual(call(api.url("/extra"))[0], 200)

    def test_unknown_paths_methods_and_stages(self) -> None:
        api = self.api()
        api.allow()
        for url, method in ((api.url("/nothing"), "GET"), (api.url("/items/1"), "DELETE"), (api.url("/items"), "GET")):
            status, _, body = call(url, method=method)
            self.assertEqual((status, json.loads(body)), (403, {"message": "Missing Authentication Token"}), url)
        status, headers, body = call(api.url("/items/1", stage="nostage"))
        self.assertEqual((status, json.loads(body)), (403, {"message": "Forbidden"}))

    def test_without_a_permission_for_the_source_arn_the_answer_is_500(self) -> None:
        # A function of its own: its alias moves.
        (function,) = live_functions([{"FIXTURE_MODE": "proxy"}], self.addCleanup)
        api = self.api(function)
        status, _, body = call(api.url("/items/1"))
        self.assertEqual((status, json.loads(body)), (500, {"message": "Internal server error"}))
        # A permission for another API, another method or another path does not do.
        api.allow(path="other/*")
        api.allow(method="POST")
        other = self.api(function)
        other.allow()
        status, headers, body = call(api.url("/items/1"))
        self.assertEqual((status, json.loads(body)), (500, {"message": "Internal server error"}))
        self.assertEqual(headers["x-amzn-ErrorType"], "InternalServerErrorException")
        api.allow(stage="test", method="GET", path="items/{id}")
        self.assertEqual(call(api.url("/items/1"))[0], 200)
        # The alias's permission moves with the alias.
        self.lam.update_function_configuration(FunctionName=function, Environment={"Variables": {"FIXTURE_MODE": "proxy", "FIXTURE_VALUE": "v2"}})
        self.assertEqual(publish_version(self.lam, function), "2")
        self.lam.update_alias(FunctionName=function, Name="live", FunctionVersion="2")
        status, _, body = call(api.url("/items/1"))
        self.assertEqual(status, 200, body)

    def test_a_malformed_proxy_response_or_a_function_error_is_502(self) -> None:
        answers = [
            '{"statusCode": 200, "body": {"not": "a string"}}',
            '{"statusCode": 200, "body": "x", "extra": 1}',
            '"just a string"',
            "[1, 2]",
        ]
        functions = live_functions([{"FIXTURE_MODE": "static", "FIXTURE_ANSWER": answer} for answer in answers], self.addCleanup)
        for function, answer in zip(functions, answers):
            api = self.api(function)
            api.allow()
            status, headers, body = call(api.url("/items/1"))
            self.assertEqual((status, json.loads(body)), (502, {"message": "Internal server error"}), answer)
        api = self.api()
        api.allow()
        status, _, body = call(api.url("/items/1?mode=error"))
        self.assertEqual((status, json.loads(body)), (502, {"message": "Internal server error"}))

    def test_an_integration_slower_than_its_timeout_is_504(self) -> None:
        api = self.api(timeout_ms=1000)
        api.allow()
        started = time.monotonic()
        status, _, body = call(api.url("/items/1?mode=proxy&sleep_ms=3000"))
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertEqual((status, json.loads(body)), (504, {"message": "Endpoint request timed out"}))

    def test_mock_answers_its_integration_response_with_the_declared_headers(self) -> None:
        api = self.api()
        status, headers, body = call(api.url("/mock"), method="OPTIONS", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
        self.assertEqual(status, 204)
        self.assertEqual(body, b"")
        self.assertEqual(headers["Access-Control-Allow-Origin"], "https://app.example")
        self.assertEqual(headers["Access-Control-Allow-Methods"], "GET,POST,OPTIONS")
        self.assertNotIn("X-Undeclared", headers)
        self.assertNotIn("Access-Control-Allow-Headers", headers)

    def test_an_api_key_is_required_valid_and_of_a_plan_for_the_stage(self) -> None:
        apigw = client("apigateway")
        api = self.api(api_key_required=True)
        api.allow()
        key = apigw.create_api_key(name=name("dp-key"), enabled=True)
        stray = apigw.create_api_key(name=name("dp-stray"), enabled=True)
        plan = apigw.create_usage_plan(name=name("dp-plan"), apiStages=[{"apiId": api.id, "stage": "test"}])
        apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
        try:
            for headers in ({}, {"x-api-key": "wrong"}, {"x-api-key": stray["value"]}):
                status, answer_headers, body = call(api.url("/items/1"), headers=headers)
                self.assertEqual((status, json.loads(body)), (403, {"message": "Forbidden"}), headers)
                self.assertEqual(answer_headers["x-amzn-ErrorType"], "ForbiddenException")
            status, _, body = call(api.url("/items/1"), headers={"x-api-key": key["value"]})
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body)["requestContext"]["identity"]["apiKeyId"], key["id"])
            # The MOCK preflight needs no key.
            self.assertEqual(call(api.url("/mock"), method="OPTIONS")[0], 204)
        finally:
            apigw.delete_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"])
            apigw.delete_usage_plan(usagePlanId=plan["id"])
            apigw.delete_api_key(apiKey=key["id"])
            apigw.delete_api_key(apiKey=stray["id"])

    def test_gateway_responses_of_the_deployment_shape_the_errors(self) -> None:
        apigw = client("apigateway")
        api = self.api()
        apigw.put_gateway_response(
            restApiId=api.id,
            responseType="DEFAULT_4XX",
            responseParameters={
                "gatewayresponse.header.Access-Control-Allow-Origin": "method.request.header.Origin",
                "gatewayresponse.header.X-Gateway": "'four'",
            },
        )
        apigw.put_gateway_response(
            restApiId=api.id,
            responseType="DEFAULT_5XX",
            statusCode="503",
            responseParameters={"gatewayresponse.header.X-Gateway": "'five'"},
            responseTemplates={"application/json": '{"error": $context.error.messageString, "local": true}'},
        )
        # Not deployed yet: the defaults.
        status, headers, _ = call(api.url("/nothing"), headers={"Origin": "https://a.example"})
        self.assertEqual(status, 403)
        self.assertNotIn("X-Gateway", headers)
        api.deploy()
        status, headers, body = call(api.url("/nothing"), headers={"Origin": "https://a.example"})
        self.assertEqual((status, json.loads(body)), (403, {"message": "Missing Authentication Token"}))
        self.assertEqual(headers["X-Gateway"], "four")
        self.assertEqual(headers["Access-Control-Allow-Origin"], "https://a.example")
        status, headers, body = call(api.url("/items/1"))  # no permission: a 5XX
        self.assertEqual((status, json.loads(body)), (503, {"error": "Internal server error", "local": True}))
        self.assertEqual(headers["X-Gateway"], "five")
