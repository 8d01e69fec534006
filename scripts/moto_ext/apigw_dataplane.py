"""API Gateway's data plane for REST APIs, on moto server, over loopback.

moto server has no route for a stage's URL (its data plane exists only as a
``responses`` mock in moto's in-process mode, and knows no ``AWS_PROXY`` or
``MOCK``). This module serves a deployed stage at LocalStack's path form,
which needs no DNS:

    http://127.0.0.1:<port>/restapis/{api_id}/{stage}/_user_request_/{path}

as API Gateway serves ``https://{api_id}.execute-api.{region}.amazonaws.com/{stage}/{path}``:

- The stage serves its *deployment*: "Deploy REST APIs in API Gateway" — a
  change to the API is not live until a new deployment; so every
  ``CreateDeployment`` takes a snapshot of the resources, methods,
  integrations and gateway responses (moto keeps none), and the stage's
  current deployment answers. API keys, usage plans, stage variables and
  Lambda permissions are read live, as API Gateway does.
- A path or method the deployment has no resource for: 403
  ``{"message":"Missing Authentication Token"}`` ("Gateway response types":
  MISSING_AUTHENTICATION_TOKEN); an unknown stage (or API): 403
  ``{"message":"Forbidden"}``.
- ``apiKeyRequired``: 403 ``{"message":"Forbidden"}`` (INVALID_API_KEY)
  unless ``x-api-key`` is an enabled key of a usage plan that covers the
  stage ("Choose an API key source", "Usage plans and API keys").
- ``AWS_PROXY`` to Lambda ("Set up Lambda proxy integrations in API
  Gateway"): the version 1.0 input event, the function named by the
  integration URI invoked (its qualifier included), its output returned.
  Output that is not a JSON object of ``statusCode``, ``headers``,
  ``multiValueHeaders``, ``body``, ``isBase64Encoded`` (a function error
  included) gives 502 ``{"message": "Internal server error"}``.
- Lambda's resource policy is enforced ("Control access to a REST API with
  IAM permissions", "Resource-based policies for Lambda"): no statement
  allowing ``apigateway.amazonaws.com`` to ``lambda:InvokeFunction`` whose
  source ARN matches ``arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{resource path}``
  gives 500 ``{"message": "Internal server error"}`` (API_CONFIGURATION_ERROR).
- The integration timeout (``timeoutInMillis``, 29 s by default, "Amazon
  API Gateway quotas"): 504 ``{"message": "Endpoint request timed out"}``
  (INTEGRATION_TIMEOUT).
- ``MOCK``: the request template's ``statusCode`` selects the integration
  response (the one whose ``selectionPattern`` matches it, else the default
  one); its ``responseParameters`` with static (quoted) values become the
  answer's headers when the method response declares them, its
  ``application/json`` template (static text) the body.
- Gateway responses ("Set up gateway responses to customize error
  responses"): the deployment's response of the error's type, else its
  ``DEFAULT_4XX``/``DEFAULT_5XX``, sets the status, the headers (static
  values, or ``method.request.header|querystring|path.*``) and the body
  template (``$context.error.messageString``); every gateway answer carries
  ``x-amzn-ErrorType``.

moto server wraps its own answers with permissive CORS headers; these
answers carry only what API Gateway sends (the function's headers,
``x-amzn-RequestId``, ``x-amz-apigw-id``, ``X-Amzn-Trace-Id``).

Not done: authorizers, request validation, throttling and quotas, VTL in
templates, ``HTTP``/``AWS`` integrations, binary media types, canaries.

Every request a stage served (gateway answers included) is told to
``OBSERVERS`` as a ``Served`` (``apigw_metrics`` publishes it to CloudWatch).

Switch: ``LOCAL_AWS_STRICT_APIGW_DATAPLANE=0`` (then the path falls through
to moto, as before).
"""

import base64
import copy
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

from moto.apigateway.models import RestAPI, apigateway_backends
from werkzeug.wrappers import Request

from . import lambda_qualifiers, observers, patching, routes, settings

NAME = "apigw-dataplane"
PATTERN = re.compile(r"^/restapis/(?P<api>[^/]+)/(?P<stage>[^/]+)/_user_request_(?P<path>/.*)?$")

# Set by apigw_domains on a request that came by a custom domain name: the
# path as requested there, base path included, which API Gateway passes on
# as the proxy event's ``path`` and ``requestContext.path``.
REQUESTED_PATH = "moto_ext.requested_path"
# The attribute of a moto Deployment holding what it deployed.
_SNAPSHOT = "_moto_ext_snapshot"
# "Amazon API Gateway quotas": the default (and, for REST APIs, regional
# maximum without a quota increase) integration timeout.
DEFAULT_TIMEOUT_MS = 29000
PROXY_KEYS = {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}

# "Gateway response types": type -> (default status, x-amzn-ErrorType).
RESPONSE_TYPES: dict[str, tuple[Optional[int], str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "MissingAuthenticationTokenException"),
    "INVALID_API_KEY": (403, "ForbiddenException"),
    "ACCESS_DENIED": (403, "AccessDeniedException"),
    "API_CONFIGURATION_ERROR": (500, "InternalServerErrorException"),
    "INTEGRATION_FAILURE": (504, "InternalServerErrorException"),
    "INTEGRATION_TIMEOUT": (504, "InternalServerErrorException"),
    "DEFAULT_4XX": (None, "ForbiddenException"),
    "DEFAULT_5XX": (None, "InternalServerErrorException"),
}


@dataclass(frozen=True)
class Served:
    """One request a stage of an existing REST API answered."""

    account_id: str
    region: str
    api_name: str
    stage: str
    status: int
    # When the request arrived (epoch seconds).
    received: float
    latency_ms: float
    # The integration's part, when one was called (a Lambda proxy).
    integration_latency_ms: Optional[float]


OBSERVERS: observers.Observers[Served] = observers.Observers("apigw")


class GatewayError(Exception):
    """An answer API Gateway makes itself (a gateway response)."""

    def __init__(self, response_type: str, message: str, status: Optional[int] = None, error_type: Optional[str] = None):
        super().__init__(message)
        default_status, default_error_type = RESPONSE_TYPES[response_type]
        self.response_type = response_type
        self.message = message
        self.status = status or default_status or 500
        self.error_type = error_type or default_error_type


# ---------------------------------------------------------------- snapshots


def snapshot(api: RestAPI) -> dict[str, Any]:
    """What a deployment of ``api`` serves, as plain data."""
    resources = []
    for resource in api.resources.values():
        resources.append(
            {
                "id": resource.id,
                "path": resource.get_path(),
                "methods": {name: copy.deepcopy(method.to_json()) for name, method in resource.resource_methods.items()},
            }
        )
    return {
        "resources": resources,
        "gateway_responses": {t: copy.deepcopy(r.to_json()) for t, r in api.gateway_responses.items()},
        "api_key_source": api.api_key_source or "HEADER",
    }


def _find_api(api_id: str) -> Optional[tuple[Any, RestAPI]]:
    for account_backends in list(apigateway_backends.values()):
        for backend in list(account_backends.values()):
            api = backend.apis.get(api_id)
            if api is not None:
                return backend, api
    return None


# ---------------------------------------------------------------- routing


def _match(template: str, path: str) -> Optional[tuple[int, dict[str, str]]]:
    """How specifically ``template`` (``/a/{b}/{c+}``) matches ``path``: the
    number of literal parts, and the path parameters."""
    want = [p for p in template.split("/") if p]
    have = [p for p in path.split("/") if p]
    params: dict[str, str] = {}
    literal = 0
    for i, part in enumerate(want):
        if part.startswith("{") and part.endswith("+}"):
            if i >= len(have):
                return None
            params[part[1:-2]] = "/".join(have[i:])
            return literal, params
        if i >= len(have):
            return None
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = have[i]
        elif part != have[i]:
            return None
        else:
            literal += 1
    if len(want) != len(have):
        return None
    return literal, params


def _route(deployed: dict[str, Any], path: str, method: str) -> tuple[dict[str, Any], str, dict[str, Any], dict[str, str]]:
    best: Optional[tuple[int, dict[str, Any], dict[str, str]]] = None
    for resource in deployed["resources"]:
        matched = _match(resource["path"], path)
        if matched is not None and (best is None or matched[0] > best[0]):
            best = (matched[0], resource, matched[1])
    if best is None:
        raise GatewayError("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
    _, resource, params = best
    methods = resource["methods"]
    chosen = methods.get(method) or methods.get("ANY")
    if chosen is None:
        raise GatewayError("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
    return resource, method if method in methods else "ANY", chosen, params


# ---------------------------------------------------------------- API keys


def _check_api_key(backend: Any, api: RestAPI, stage: str, request: Request, identity: dict[str, Any]) -> None:
    value = request.headers.get("x-api-key")
    if not value:
        raise GatewayError("INVALID_API_KEY", "Forbidden")
    for plan in list(backend.usage_plans.values()):
        stages = plan.api_stages or []
        if not any(s.get("apiId") == api.id and s.get("stage") == stage for s in stages):
            continue
        for plan_key in list(backend.usage_plan_keys.get(plan.id, {}).values()):
            key = backend.keys.get(plan_key.id)
            if key is not None and key.value == value and key.enabled:
                identity["apiKey"] = value
                identity["apiKeyId"] = key.id
                return
    raise GatewayError("INVALID_API_KEY", "Forbidden")


# ---------------------------------------------------------------- Lambda permission


def _arn_like(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


def _values(x: Any) -> list[Any]:
    return x if isinstance(x, list) else [x]


def _statement_applies(statement: dict[str, Any], source_arn: str, account: str) -> bool:
    principal = statement.get("Principal")
    if principal != "*" and not (
        isinstance(principal, dict)
        and ("apigateway.amazonaws.com" in _values(principal.get("Service", [])) or "*" in _values(principal.get("AWS", [])))
    ):
        return False
    actions = _values(statement.get("Action", []))
    if not any(a in ("lambda:InvokeFunction", "lambda:*", "*") for a in actions):
        return False
    for operator, conditions in (statement.get("Condition") or {}).items():
        for key, expected in conditions.items():
            if key.lower() == "aws:sourcearn":
                actual = source_arn
            elif key.lower() == "aws:sourceaccount":
                actual = account
            else:
                return False
            patterns = [str(e) for e in _values(expected)]
            if operator in ("ArnLike", "StringLike"):
                if not any(_arn_like(p, actual) for p in patterns):
                    return False
            elif operator in ("ArnEquals", "StringEquals"):
                if actual not in patterns:
                    return False
            else:
                return False
    return True


def _permitted(lambda_backend: Any, name: str, qualifier: Optional[str], source_arn: str, account: str) -> bool:
    try:
        policy = lambda_qualifiers.policy_for(lambda_backend, name, qualifier)
    except Exception:
        return False
    statements = list(policy.statements)
    applies = [s for s in statements if _statement_applies(s, source_arn, account)]
    if any(s.get("Effect", "Allow") == "Deny" for s in applies):
        return False
    return any(s.get("Effect", "Allow") == "Allow" for s in applies)


# ---------------------------------------------------------------- AWS_PROXY


def _function_of(uri: str) -> Optional[tuple[str, str, str, Optional[str]]]:
    """(region, account, name, qualifier) of a Lambda integration URI."""
    found = re.search(r":lambda:path/2015-03-31/functions/(arn:[^/]+)/invocations$", uri or "")
    if not found:
        return None
    parts = found.group(1).split(":")
    # arn:aws:lambda:{region}:{account}:function:{name}[:{qualifier}]
    if len(parts) < 7 or parts[2] != "lambda" or parts[5] != "function":
        return None
    return parts[3], parts[4], parts[6], parts[7] if len(parts) > 7 else None


def _multi(items: Iterable[tuple[str, str]]) -> tuple[Optional[dict[str, str]], Optional[dict[str, list[str]]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in items:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return (single or None), (multi or None)


def _proxy_event(request: Request, context: dict[str, Any], resource: dict[str, Any], path: str, params: dict[str, str], stage_variables: dict[str, str]) -> dict[str, Any]:
    header_items = [(k, v) for k, v in request.headers.items() if k.lower() not in ("content-length", "connection")]
    headers, multi_headers = _multi(header_items)
    query, multi_query = _multi(request.args.items(multi=True))
    raw = request.get_data(cache=True)
    body: Optional[str]
    encoded = False
    try:
        body = raw.decode("utf-8") if raw else None
    except UnicodeDecodeError:
        body, encoded = base64.b64encode(raw).decode("ascii"), True
    return {
        "resource": resource["path"],
        "path": path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": params or None,
        "stageVariables": stage_variables or None,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": encoded,
    }


def _invoke_lambda(region: str, account: str, name: str, qualifier: Optional[str], event: dict[str, Any], timeout_ms: int) -> tuple[bytes, Optional[str]]:
    from werkzeug.datastructures import Headers

    from moto.awslambda.utils import get_backend

    backend = get_backend(account, region)
    result: dict[str, Any] = {}

    def call() -> None:
        response_headers: dict[str, str] = {}
        try:
            payload = backend.invoke(name, qualifier, json.dumps(event), Headers({"X-Amz-Invocation-Type": "RequestResponse"}), response_headers)
            result["payload"] = payload if isinstance(payload, bytes) else str(payload or "").encode()
            result["error"] = response_headers.get("x-amz-function-error")
        except Exception as error:
            result["exception"] = error

    worker = threading.Thread(target=call, name="apigw integration", daemon=True)
    worker.start()
    worker.join(timeout_ms / 1000)
    if worker.is_alive():
        raise GatewayError("INTEGRATION_TIMEOUT", "Endpoint request timed out")
    if "exception" in result:
        error = result["exception"]
        if getattr(error, "code", 500) in (403, 404):
            raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error")
        raise GatewayError("DEFAULT_5XX", "Internal server error", status=502)
    return result["payload"], result.get("error")


def _proxy_answer(payload: bytes, function_error: Optional[str]) -> tuple[int, list[tuple[str, str]], bytes]:
    """The HTTP answer of a proxy response; 502 when it is malformed."""
    malformed = GatewayError("DEFAULT_5XX", "Internal server error", status=502)
    if function_error:
        raise malformed
    try:
        answer = json.loads(payload or b"null")
    except ValueError:
        raise malformed
    if not isinstance(answer, dict) or not set(answer) <= PROXY_KEYS:
        raise malformed
    try:
        status = int(answer.get("statusCode") or 200)
    except (TypeError, ValueError):
        raise malformed
    body = answer.get("body")
    headers = answer.get("headers") or {}
    multi = answer.get("multiValueHeaders") or {}
    if not isinstance(headers, dict) or not isinstance(multi, dict) or not isinstance(body, (str, type(None))):
        raise malformed
    if any(not isinstance(v, list) for v in multi.values()):
        raise malformed

    def text(value: Any) -> str:
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    out: list[tuple[str, str]] = []
    multi_lower = {k.lower() for k in multi}
    for name, value in headers.items():
        if name.lower() not in multi_lower:
            out.append((name, text(value)))
    for name, values in multi.items():
        out.extend((name, text(v)) for v in values)
        single = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
        if single is not None:
            out.append((name, text(single)))
    raw = (body or "").encode("utf-8")
    if answer.get("isBase64Encoded") and body:
        try:
            raw = base64.b64decode(body)
        except ValueError:
            raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error")
    return status, out, raw


# ---------------------------------------------------------------- MOCK


def _mock_answer(method: dict[str, Any], integration: dict[str, Any], request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
    templates = integration.get("requestTemplates") or {}
    content_type = (request.mimetype or "application/json").lower()
    template = templates.get(content_type, templates.get("application/json"))
    status = "200"
    if template:
        try:
            status = str(int(json.loads(template)["statusCode"]))
        except (ValueError, KeyError, TypeError):
            found = re.search(r'"statusCode"\s*:\s*(\d+)', template)
            if found:
                status = found.group(1)
    responses = integration.get("integrationResponses") or {}
    chosen = None
    for response in responses.values():
        pattern = response.get("selectionPattern")
        if pattern and re.fullmatch(pattern, status):
            chosen = response
            break
    if chosen is None:
        chosen = next((r for r in responses.values() if not r.get("selectionPattern")), None)
    if chosen is None:
        raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error")
    code = str(chosen.get("statusCode"))
    method_response = (method.get("methodResponses") or {}).get(code)
    if method_response is None:
        raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error")
    declared = method_response.get("responseParameters") or {}
    headers: list[tuple[str, str]] = []
    for target, source in (chosen.get("responseParameters") or {}).items():
        if not target.startswith("method.response.header.") or target not in declared:
            continue
        if isinstance(source, str) and len(source) >= 2 and source[0] == source[-1] == "'":
            headers.append((target[len("method.response.header.") :], source[1:-1]))
    body = ((chosen.get("responseTemplates") or {}).get("application/json") or "").encode("utf-8")
    return int(code), headers, body


# ---------------------------------------------------------------- gateway responses


def _gateway_answer(deployed: Optional[dict[str, Any]], error: GatewayError, request: Request, params: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    configured = (deployed or {}).get("gateway_responses", {})
    response = configured.get(error.response_type)
    status = error.status
    if response is None:
        fallback = "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"
        response = configured.get(fallback)
    headers: list[tuple[str, str]] = [("Content-Type", "application/json"), ("x-amzn-ErrorType", error.error_type)]
    template = '{"message":$context.error.messageString}'
    if response is not None:
        if response.get("statusCode"):
            status = int(response["statusCode"])
        for target, source in (response.get("responseParameters") or {}).items():
            if not target.startswith("gatewayresponse.header."):
                continue
            value = _parameter_value(source, request, params)
            if value is not None:
                headers.append((target[len("gatewayresponse.header.") :], value))
        template = (response.get("responseTemplates") or {}).get("application/json") or template
    body = template.replace("$context.error.messageString", json.dumps(error.message)).replace("$context.error.message", error.message)
    return status, headers, body.encode("utf-8")


def _parameter_value(source: str, request: Request, params: dict[str, str]) -> Optional[str]:
    if len(source) >= 2 and source[0] == source[-1] == "'":
        return source[1:-1]
    for prefix, lookup in (
        ("method.request.header.", lambda n: request.headers.get(n)),
        ("method.request.querystring.", lambda n: request.args.get(n)),
        ("method.request.path.", params.get),
    ):
        if source.startswith(prefix):
            return lookup(source[len(prefix) :])
    return None


# ---------------------------------------------------------------- the route


def _serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    received = time.time()
    request = Request(environ)
    found = PATTERN.match(environ.get("PATH_INFO", ""))
    assert found is not None
    api_id, stage_name = found.group("api"), found.group("stage")
    path = found.group("path") or "/"
    request_id = str(uuid.uuid4())
    trace = request.headers.get("X-Amzn-Trace-Id") or f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    deployed: Optional[dict[str, Any]] = None
    params: dict[str, str] = {}
    served: Optional[RestAPI] = None
    integration_ms: Optional[float] = None
    try:
        located = _find_api(api_id)
        stage = located[1].stages.get(stage_name) if located else None
        if located is None or stage is None:
            raise GatewayError("DEFAULT_4XX", "Forbidden", status=403)
        backend, api = located
        served = api
        deployment = api.deployments.get(stage.deployment_id or "")
        if deployment is None:
            raise GatewayError("DEFAULT_4XX", "Forbidden", status=403)
        deployed = getattr(deployment, _SNAPSHOT, None) or snapshot(api)
        resource, method_name, method, params = _route(deployed, path, request.method)
        now = time.time()
        identity: dict[str, Any] = {
            "sourceIp": request.remote_addr,
            "userAgent": request.headers.get("User-Agent"),
            "apiKey": None,
            "apiKeyId": None,
            "accountId": None,
            "caller": None,
            "user": None,
            "userArn": None,
            "accessKey": None,
            "cognitoIdentityId": None,
            "cognitoIdentityPoolId": None,
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "principalOrgId": None,
        }
        if method.get("apiKeyRequired"):
            _check_api_key(backend, api, stage_name, request, identity)
        integration = method.get("methodIntegration")
        if not integration:
            raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error")
        kind = integration.get("type")
        if kind == "MOCK":
            status, headers, body = _mock_answer(method, integration, request)
        elif kind == "AWS_PROXY":
            target = _function_of(integration.get("uri", ""))
            if target is None or (integration.get("httpMethod") or "").upper() != "POST":
                raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error")
            region, account, name, qualifier = target
            source_arn = f"arn:aws:execute-api:{api.region_name}:{api.account_id}:{api.id}/{stage_name}/{method_name}{resource['path']}"
            from moto.awslambda.utils import get_backend

            if not _permitted(get_backend(account, region), name, qualifier, source_arn, api.account_id):
                raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error")
            context = {
                "accountId": api.account_id,
                "apiId": api.id,
                "deploymentId": stage.deployment_id,
                "domainName": request.host,
                "domainPrefix": request.host.split(".")[0],
                "extendedRequestId": secrets.token_urlsafe(12)[:16],
                "httpMethod": request.method,
                "identity": identity,
                "path": environ.get(REQUESTED_PATH) or f"/{stage_name}{path}",
                "protocol": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "requestId": request_id,
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "requestTimeEpoch": int(now * 1000),
                "resourceId": resource["id"],
                "resourcePath": resource["path"],
                "stage": stage_name,
            }
            event = _proxy_event(request, context, resource, path, params, dict(stage.variables or {}))
            if REQUESTED_PATH in environ:
                event["path"] = environ[REQUESTED_PATH]
            event["headers"] = {**(event["headers"] or {}), "X-Amzn-Trace-Id": trace}
            event["multiValueHeaders"] = {**(event["multiValueHeaders"] or {}), "X-Amzn-Trace-Id": [trace]}
            timeout_ms = int(integration.get("timeoutInMillis") or DEFAULT_TIMEOUT_MS)
            relayed = time.monotonic()
            try:
                payload, function_error = _invoke_lambda(region, account, name, qualifier, event, timeout_ms)
            finally:
                integration_ms = (time.monotonic() - relayed) * 1000
            status, headers, body = _proxy_answer(payload, function_error)
        else:
            # Not served locally; API Gateway would call the integration.
            raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error")
    except GatewayError as error:
        status, headers, body = _gateway_answer(deployed, error, request, params)
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    headers += [
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", request_id),
        ("x-amz-apigw-id", secrets.token_urlsafe(12)[:16]),
        ("X-Amzn-Trace-Id", trace),
    ]
    start_response(f"{status} {_reason(status)}", headers)
    if served is not None:
        OBSERVERS.tell(Served(served.account_id, served.region_name, served.name, stage_name, status, received, (time.time() - received) * 1000, integration_ms))
    return [body] if request.method != "HEAD" else []



def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def install() -> list[str]:
    if not settings.enabled(NAME):
        return []

    @patching.replace(RestAPI, "create_deployment")
    def create_deployment(original: Any, self: RestAPI, name: str, description: str, stage_variables: Any = None) -> Any:
        deployment = original(self, name, description, stage_variables)
        setattr(deployment, _SNAPSHOT, snapshot(self))
        return deployment

    routes.route(PATTERN, _serve)
    return [NAME]

