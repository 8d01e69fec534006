"""IAM authorization as AWS does it, for a moto that enforces it.

moto server checks every request against its IAM users' policies once
``INITIAL_NO_AUTH_ACTION_COUNT`` unauthenticated requests have been served
(``moto/core/authorization.py``). Its check is a stand-in; where it differs
from AWS in what the deployer's policy test relies on, these behaviours make
it answer as AWS does. They change nothing while moto does not enforce IAM
(the default: the count is infinite).

- ``iam-auth-signature``: a request with no body (every GET of Lambda and
  API Gateway, whose REST protocols carry parameters in the path) is signed
  over the empty payload ("Create a canonical request for Signature Version
  4", IAM User Guide: HashedPayload is the hash of the request body, of the
  empty string when there is none). moto recomputes the signature over the
  parameters it parsed instead, and answers SignatureDoesNotMatch to a
  correctly signed request; and it takes a path or query as it decoded
  them, not percent-encoded as they were signed. Likewise a form-encoded
  body (IAM's query protocol) is checked as the bytes sent, not as moto
  re-encodes the form it parsed (whose encoding and order differ from the
  Rust SDK's).
- ``iam-auth-actions``: moto names an action ``{signing name}:{Operation}``.
  AWS does so for most operations, but Lambda's Invoke is authorized as
  ``lambda:InvokeFunction`` ("Actions, resources, and condition keys for
  AWS Lambda", Service Authorization Reference), and API Gateway's control
  plane by HTTP method on the resource's path: ``apigateway:GET`` on
  ``arn:aws:apigateway:{region}::/restapis/{id}`` ("Control access for
  managing an API", API Gateway Developer Guide). For API Gateway the
  resource checked is that path; without ``iam-auth-resources``, the other
  services are checked against ``*`` (a policy naming narrower resources
  does not match it).
- ``iam-auth-resources``: every request is checked on the resource ARN AWS
  authorizes its action on, with the condition keys AWS sets for it
  (``iam_targets``: log groups, functions with or without qualifier,
  repositories, roles, API Gateway paths and their tags), and the caller's
  policies are evaluated as IAM evaluates them, conditions included
  (``iam_policy``). moto itself evaluates no condition of an identity
  policy: it reads any it meets as a deny.
- ``iam-auth-pass-role``: a call that hands Lambda a role (CreateFunction,
  and UpdateFunctionConfiguration with a ``Role``) also needs
  ``iam:PassRole`` on that role ("Grant a user permissions to pass a role
  to an AWS service", IAM User Guide; the Service Authorization Reference
  lists iam:PassRole as a dependent action of both). Without it Lambda
  answers 403 AccessDeniedException, "... is not authorized to perform:
  iam:PassRole on resource: arn:aws:iam::...:role/..."; moto never checks
  it. The check is against the role's ARN, so a policy that lets the
  caller pass another role is refused as AWS refuses it; with
  ``iam-auth-resources``, ``iam:PassedToService`` is Lambda's
  (``lambda.amazonaws.com``) and evaluated.
- ``iam-auth-errors``: a denied request is answered in the service's own
  protocol: IAM's ``AccessDenied`` as one ``<Error>`` of an
  ``<ErrorResponse>`` (IAM API Reference, "Common Errors" and its query
  API's error format), ``AccessDeniedException`` as JSON from ECR and CloudWatch Logs
  (HTTP 400, "Common Errors" of their API references), Lambda and API
  Gateway (HTTP 403, their "Common Errors"), with the message AWS writes
  ("User: ... is not authorized to perform: ACTION on resource: RESOURCE
  ..."). moto answers XML whatever the protocol, which a JSON client cannot
  read as AccessDenied.
  ACM answers ``AccessDeniedException`` as JSON (400); Route 53
  ``AccessDenied`` and SNS ``AuthorizationError`` in one ``<Error>`` of an
  ``<ErrorResponse>`` (403; their API references' "Common Errors" and each
  action's Errors).

The extension's own routes, which moto's dispatcher never sees
(provisioned concurrency, GetAccountSettings) or sees only translated
(CloudWatch's CBOR protocol, whose translation the client never signed),
are checked the same way through ``authorize``: a policy that lacks
``lambda:GetProvisionedConcurrencyConfig`` or ``cloudwatch:GetMetricData``
is refused here as AWS refuses it. CloudWatch signs as ``monitoring``; its
actions are ``cloudwatch:*``.

``GET /_local-aws/iam`` lists the authorization decisions since the last
``DELETE /_local-aws/iam`` (or start): ``{"allowed": [{"action",
"resource"}], "denied": [...]}``, so a test can see which actions a run used.
"""

import io
import json
import os
import re
import threading
from typing import Any, Callable, Iterable
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape

from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError, RESTError
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.responses import BaseResponse
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.iam.access_control import IAMPolicy, IAMRequest, IAMRequestBase
from moto.iam.models import get_account_id_from
from moto.utilities.utils import get_partition

from . import iam_policy, iam_targets, patching, routes, settings

# Where a form body's bytes are kept in the WSGI environment.
RAW_FORM_BODY = "moto_ext.raw_form_body"
# Set in the WSGI environment of a request a route of ours has already
# authorized (``authorize``) and hands on to moto translated: moto would
# check the translation's signature, which the client never signed.
AUTHORIZED = "moto_ext.authorized"

# Signing names whose IAM action prefix differs ("Actions, resources, and
# condition keys for Amazon CloudWatch": the prefix is ``cloudwatch``).
ACTION_PREFIX = {"monitoring": "cloudwatch"}

# Operations whose IAM action is not named after them.
RENAMED = {"lambda:Invoke": "lambda:InvokeFunction"}

# Status of AccessDeniedException per JSON-speaking service.
JSON_ERROR_STATUS = {"ecr": 400, "logs": 400, "monitoring": 400, "lambda": 403, "apigateway": 403}
# ACM answers AccessDeniedException as JSON, 400 (its "Common Errors").
JSON_ERROR_STATUS["acm"] = 400
# XML services' code for a denial: Route 53's AccessDenied (403), SNS's
# AuthorizationError (403, SNS API reference, each action's Errors).
XML_ERROR_CODE = {"iam": "AccessDenied", "route53": "AccessDenied", "sns": "AuthorizationError"}

# The raw request URI of the request being authenticated (per server thread).
_SIGNED = threading.local()
_LOCK = threading.Lock()
_DECISIONS: dict[str, list[dict[str, str]]] = {"allowed": [], "denied": []}


class AccessDenied(JsonRESTError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__("AccessDeniedException", message)
        self.code = status
        # restJson clients (Lambda, API Gateway) read the code from this
        # header; awsJson ones from __type.

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [("Content-Type", "application/json"), ("X-Amzn-ErrorType", "AccessDeniedException")]


class QueryAccessDenied(RESTError):
    """IAM's query-protocol error: one ``<Error>`` in ``<ErrorResponse>``,
    with ``<Type>Sender</Type>``; moto's usual list of ``<Errors>`` leaves
    an awsQuery client without a code or message."""


    code = 403

    def __init__(self, message: str) -> None:
        super().__init__("AccessDenied", message)
        # Written out rather than moto's template: its CDATA message reads
        # as empty to the Rust SDK's XML parser, and IAM sends none.
        self.description = (
            '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            f"<Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{escape(message)}</Message></Error>"
            "<RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ErrorResponse>"
        )
        self.content_type = "text/xml"


def _record(kind: str, action: str, resource: str) -> None:
    with _LOCK:
        _DECISIONS[kind].append({"action": action, "resource": resource})


def _decisions(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    with _LOCK:
        if environ.get("REQUEST_METHOD") == "DELETE":
            for kind in _DECISIONS:
                _DECISIONS[kind].clear()
        body = json.dumps(_DECISIONS).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _content_length(headers: Any) -> int:
    try:
        return int(headers.get("Content-Length") or 0)
    except ValueError:
        return 0


def _install_signature() -> list[str]:
    if not settings.enabled("iam-auth-signature"):
        return []

    @patching.replace(DomainDispatcherApplication, "__call__")
    def keep_form_body(original, self, environ, start_response):  # type: ignore[no-untyped-def]
        # werkzeug consumes a form body while parsing it; keep the bytes.
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            body = environ["wsgi.input"].read(_content_length({"Content-Length": environ.get("CONTENT_LENGTH")}))
            environ["wsgi.input"] = io.BytesIO(body)
            environ[RAW_FORM_BODY] = body
        return original(self, environ, start_response)

    @patching.replace(BaseResponse, "setup_class")
    def setup_class(original, self, request, full_url, headers, *args, **kwargs):  # type: ignore[no-untyped-def]
        answer = original(self, request, full_url, headers, *args, **kwargs)
        environ = getattr(request, "environ", {})
        self._moto_ext_signed_body = environ.get(RAW_FORM_BODY)
        self._moto_ext_raw_uri = environ.get("RAW_URI")
        return answer

    @patching.replace(ActionAuthenticatorMixin, "_authenticate_and_authorize_action")
    def authenticate(original, self, iam_request_cls, resource="*"):  # type: ignore[no-untyped-def]
        _SIGNED.raw_uri = getattr(self, "_moto_ext_raw_uri", None)
        signed = getattr(self, "_moto_ext_signed_body", None)
        try:
            if not signed:
                return original(self, iam_request_cls, resource)
            parsed_body = self.raw_body
            self.raw_body = signed
            try:
                return original(self, iam_request_cls, resource)
            finally:
                self.raw_body = parsed_body
        finally:
            _SIGNED.raw_uri = None

    @patching.replace(IAMRequestBase, "_create_aws_request")
    def create_aws_request(original, self):  # type: ignore[no-untyped-def]
        request = original(self)
        if not self._body and _content_length(self._headers) == 0:
            request.data = b""
        # The path and query as the client sent them: moto holds them
        # decoded, and an ARN in a path (Lambda's /tags/{arn}) or a tag key
        # in a query (``?tagKeys=deployer:stage``) was signed
        # percent-encoded (SigV4's canonical request encodes every byte but
        # ``A-Za-z0-9-_.~``; botocore takes the query as it finds it).
        parts = urlsplit(request.url)
        path = quote(unquote(parts.path), safe="/-_.~")
        raw_uri = getattr(_SIGNED, "raw_uri", None)
        if raw_uri:
            # The path exactly as sent: decoding loses an encoded `/`
            # (API Gateway's /tags/{UrlEncodedResourceARN}), which the
            # client signed as `%2F`.
            path = urlsplit(raw_uri).path
        query = "&".join(
            "=".join(quote(unquote(part), safe="-_.~") for part in pair.split("=", 1))
            for pair in parts.query.split("&")
            if pair
        )
        request.url = path + (f"?{query}" if query else "")
        return request

    return ["iam-auth-signature"]


def _install_actions() -> list[str]:
    if not settings.enabled("iam-auth-actions"):
        return []
    resources_checked = settings.enabled("iam-auth-resources")

    @patching.replace(BaseResponse, "setup_class")
    def note_authorized(original, self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        answer = original(self, request, *args, **kwargs)
        self._moto_ext_authorized = bool(getattr(request, "environ", {}).get(AUTHORIZED))
        return answer

    @patching.replace(ActionAuthenticatorMixin, "_authenticate_and_authorize_action")
    def skip_authorized(original, self, iam_request_cls, resource="*"):  # type: ignore[no-untyped-def]
        if getattr(self, "_moto_ext_authorized", False):
            return None
        return original(self, iam_request_cls, resource)

    @patching.replace(IAMRequestBase, "check_action_permitted")
    def check_action_permitted(original, self, resource):  # type: ignore[no-untyped-def]
        prefix, operation = self._action.split(":", 1)
        self._action = f"{ACTION_PREFIX.get(prefix, prefix)}:{operation}"
        if self._service == "apigateway":
            self._action = f"apigateway:{self._method.upper()}"
            path = urlsplit(self._path).path
            resource = f"arn:{get_partition(self._region)}:apigateway:{self._region}::{path}"
        self._action = RENAMED.get(self._action, self._action)
        if resources_checked:
            return _check_as_aws(self, resource)
        self._moto_ext_resource = resource
        try:
            original(self, resource)
        except Exception:
            _record("denied", self._action, resource)
            raise
        _record("allowed", self._action, resource)

    routes.route("/_local-aws/iam", _decisions)
    return ["iam-auth-actions"] + (["iam-auth-resources"] if resources_checked else [])


def _documents(request: IAMRequestBase) -> list[Any]:
    """The caller's policy documents, parsed as moto reads them."""
    return [IAMPolicy(policy)._policy_json for policy in request._access_key.collect_policies()]


def _check_as_aws(request: IAMRequestBase, resource: str) -> None:
    """``iam-auth-resources``: the request's action on each resource AWS
    authorizes it on, with its condition keys (``iam_targets``), evaluated
    as IAM evaluates a policy (``iam_policy``). ``resource`` is what the
    caller named: the role for iam:PassRole."""
    action = request._action
    if action == "sts:GetCallerIdentity":
        # "No permissions are required to perform this operation."
        return
    if action == "iam:PassRole":
        resources, context = [resource], {"iam:PassedToService": [PASSED_TO]}
    else:
        resources, context = iam_targets.target(
            iam_targets.Request(
                action,
                request._method,
                request._path,
                request._body,
                request._region,
                request.account_id,
                request._data if isinstance(request._data, dict) else {},
            )
        )
    documents = _documents(request)
    for arn in resources:
        request._moto_ext_resource = arn
        if not iam_policy.allowed(documents, action, arn, context):
            _record("denied", action, arn)
            request._raise_access_denied()
        _record("allowed", action, arn)


# Lambda operations that hand Lambda the execution role named in the
# request's ``Role``.
PASSES_ROLE = {"lambda:CreateFunction", "lambda:UpdateFunctionConfiguration"}


def _passed_role(body: Any) -> str:
    try:
        role = json.loads(body or b"{}").get("Role")
    except (ValueError, AttributeError):
        return ""
    return role if isinstance(role, str) else ""


# The service CreateFunction and UpdateFunctionConfiguration pass the role
# to (the condition key iam:PassedToService).
PASSED_TO = "lambda.amazonaws.com"


def _install_pass_role() -> list[str]:
    if not settings.enabled("iam-auth-pass-role"):
        return []

    @patching.replace(IAMRequestBase, "check_action_permitted")
    def check_pass_role(original, self, resource):  # type: ignore[no-untyped-def]
        original(self, resource)
        # After the operation's own check, which names the action as AWS
        # does (with iam-auth-actions on).
        role = _passed_role(self._body) if self._action in PASSES_ROLE else ""
        if role:
            self._action = "iam:PassRole"
            original(self, role)

    return ["iam-auth-pass-role"]


def _install_errors() -> list[str]:
    if not settings.enabled("iam-auth-errors"):
        return []

    @patching.replace(IAMRequest, "_raise_access_denied")
    def raise_access_denied(original, self):  # type: ignore[no-untyped-def]
        resource = getattr(self, "_moto_ext_resource", "*")
        message = (
            f"User: {self._access_key.arn} is not authorized to perform: {self._action} "
            f"on resource: {resource} because no identity-based policy allows the "
            f"{self._action} action"
        )
        if self._service == "iam":
            raise QueryAccessDenied(message)
        if self._service in XML_ERROR_CODE:
            denied = QueryAccessDenied(message)
            denied.error_type = XML_ERROR_CODE[self._service]
            denied.description = denied.description.replace("<Code>AccessDenied</Code>", f"<Code>{denied.error_type}</Code>")
            raise denied
        status = JSON_ERROR_STATUS.get(self._service)
        if status is None:
            return original(self)
        raise AccessDenied(status, message)

    return ["iam-auth-errors"]


def region_account(environ: dict[str, Any]) -> tuple[str, str]:
    """The request's region and account, as moto's own handlers find them:
    the region from the signature (``Credential=KEY/DATE/REGION/SERVICE/...``),
    the account from ``MOTO_ACCOUNT_ID``, else the access key."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    found = re.search(r"Credential=([^/]+)/\d+/([^/]+)/", authorization)
    region = found.group(2) if found else "us-east-1"
    if "MOTO_ACCOUNT_ID" in os.environ:
        return region, os.environ["MOTO_ACCOUNT_ID"]
    return region, get_account_id_from(found.group(1)) if found else DEFAULT_ACCOUNT_ID


def authorize(environ: dict[str, Any], account: str, operation: str, body: bytes = b"") -> None:
    """moto's IAM check of a request a route of ours serves (moto's
    dispatcher, which checks every request it handles, never sees it):
    nothing while moto does not enforce IAM; else the signature, then
    ``{service}:{operation}`` against the caller's policies. Raises moto's
    errors (a ``RESTError``), answered as moto answers them. ``account``
    is the caller's, as the route found it."""
    from moto import settings as moto_settings
    from werkzeug.datastructures import EnvironHeaders

    if ActionAuthenticatorMixin.request_count < moto_settings.INITIAL_NO_AUTH_ACTION_COUNT:
        return
    path = environ.get("PATH_INFO", "")
    if environ.get("QUERY_STRING"):
        path += "?" + environ["QUERY_STRING"]
    request = IAMRequest(
        account_id=account,
        method=environ.get("REQUEST_METHOD", "GET"),
        path=path,
        data={},
        body=body,
        headers=EnvironHeaders(environ),
        action=operation,
    )
    request.check_signature()
    request.check_action_permitted("*")


def install() -> list[str]:
    return _install_signature() + _install_actions() + _install_pass_role() + _install_errors()
