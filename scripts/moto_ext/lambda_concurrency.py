"""Lambda's concurrency controls: reserved concurrency as AWS enforces it,
and provisioned concurrency, which moto lacks.

"Configuring reserved concurrency" and "Configuring provisioned concurrency
for a function" (AWS Lambda Developer Guide), "Lambda quotas" (1,000
concurrent executions per account and Region by default).

Behaviour ``lambda-reserved-concurrency``:

- PutFunctionConcurrency refuses a reservation that leaves the account
  fewer than 100 unreserved executions: 400 InvalidParameterValueException
  "Specified ReservedConcurrentExecutions for function decreases account's
  UnreservedConcurrentExecution below its minimum value of [100]." (moto
  has the check, but only with ``MOTO_LAMBDA_CONCURRENCY_QUOTA`` set; set
  here to the default quota, 1000).
- GetFunction answers the function's ``Concurrency`` for any qualifier,
  0 included; GetAccountSettings (which moto lacks) answers the account's
  ``ConcurrentExecutions`` (1000) and ``UnreservedConcurrentExecutions``.
- Invoke beyond the function's reserved concurrency (all its versions and
  aliases together; 0 refuses every invoke, "To throttle a function, set
  the reserved concurrency to zero") answers 429 TooManyRequestsException,
  ``Reason: ReservedFunctionConcurrentInvocationLimitExceeded`` (Invoke API
  reference, Errors), and counts a Throttle (``lambda_metrics``).

Behaviour ``lambda-provisioned-concurrency``: Put/Get/Delete/ListProvisionedConcurrencyConfig(s)
(``/2019-09-30/functions/{name}/provisioned-concurrency``, Lambda API
reference, each operation's page):

- Put answers 202 with ``Status: IN_PROGRESS``; after a window
  (``LOCAL_AWS_LAMBDA_PROVISIONED_CONCURRENCY_SECONDS``, default 20, scaled)
  the version's environments are initialized (``lambda_environments``:
  at most ``PER_VERSION`` of them, whatever the amount asked; the first
  requests then report no ``Init Duration``) and the status is ``READY``,
  with Allocated and Available equal to the amount requested; ``FAILED``,
  with a ``StatusReason``, when the image cannot start.
- The qualifier must be a published version or an alias: ``$LATEST`` or
  none gives 400 InvalidParameterValueException "Provisioned Concurrency
  Configs cannot be applied to unpublished function versions." (AWS's
  message, as reported in hashicorp/terraform-provider-aws#12120); a
  function, version or alias that does not exist, 404
  ResourceNotFoundException.
- Provisioned concurrency "cannot exceed" the function's reserved
  concurrency when it has one (all its versions and aliases together), and
  otherwise must leave the account 100 unreserved executions: 400
  InvalidParameterValueException.
- Get of a qualifier without a configuration: 404
  ProvisionedConcurrencyConfigNotFoundException (GetProvisionedConcurrencyConfig,
  Errors). Delete of one: 404 ResourceNotFoundException (Delete's Errors
  list no other).
- An alias's configuration follows the alias: when it moves to another
  version, the configuration is ``IN_PROGRESS`` again and the new
  version's environments are initialized (the old version's become
  on-demand).
- Deleting the function or the alias deletes its configurations.

Switches: ``LOCAL_AWS_STRICT_LAMBDA_RESERVED_CONCURRENCY=0``,
``LOCAL_AWS_STRICT_LAMBDA_PROVISIONED_CONCURRENCY=0``.
"""

import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional
from urllib.parse import parse_qs, unquote

from moto.awslambda.exceptions import LambdaClientError
from moto.core.exceptions import RESTError
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda.utils import get_backend
from moto.moto_api._internal.models import MotoAPIBackend

from . import lambda_environments as envs
from . import iam_auth, lambda_runtime, patching, routes, settings

RESERVED = "lambda-reserved-concurrency"
PROVISIONED = "lambda-provisioned-concurrency"
# "Lambda quotas": concurrent executions per account and Region, 1,000 by
# default; "new AWS accounts have reduced concurrency and memory quotas"
# (as low as 10), which LOCAL_AWS_LAMBDA_CONCURRENCY_LIMIT models. The
# unreserved minimum is 100 ("Configuring reserved concurrency": reserve
# "up to the Unreserved account concurrency value minus 100"); an account
# below that keeps all of it unreserved (AWS answers such an account
# "... below its minimum value of [10]").
ACCOUNT_LIMIT = int(os.environ.get("LOCAL_AWS_LAMBDA_CONCURRENCY_LIMIT") or 1000)
UNRESERVED_MINIMUM = min(100, ACCOUNT_LIMIT)
PATH = re.compile(r"^/2019-09-30/functions/(?P<function>[^/]+)/provisioned-concurrency/?$")
ACCOUNT_SETTINGS = re.compile(r"^/2016-08-19/account-settings/?$")
# "Lambda quotas": code storage per Region, deployment package sizes.
CODE_STORAGE = 75 * 1024**3
ZIPPED_LIMIT = 50 * 1024**2
UNZIPPED_LIMIT = 250 * 1024**2


class _Invalid(LambdaClientError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameterValueException", message)


class _NotFound(LambdaClientError):
    code = 404

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(error_type, message)


def _reserved(account_id: str, region: str, name: str) -> Optional[int]:
    """The function's reserved concurrency (kept on ``$LATEST``), or None."""
    try:
        value = get_backend(account_id, region).get_function(name).reserved_concurrency
    except LambdaClientError:
        return None
    return None if value is None or value == "" else int(value)


# ---------------------------------------------------------------- reserved concurrency


def _gate(fn: LambdaFunction, resource: Optional[str], in_flight: int) -> None:
    reserved = _reserved(fn.account_id, fn.region, fn.function_name)
    if reserved is not None and in_flight >= reserved:
        raise lambda_runtime.Throttled("ReservedFunctionConcurrentInvocationLimitExceeded")


def _install_reserved() -> list[str]:
    if not settings.enabled(RESERVED) or not settings.enabled(lambda_runtime.NAME):
        return []
    # moto's own check of the unreserved minimum, at AWS's default quota.
    os.environ.setdefault("MOTO_LAMBDA_CONCURRENCY_QUOTA", str(ACCOUNT_LIMIT))
    lambda_runtime.GATES.append(_gate)

    # GetFunction's Concurrency is the function's, whichever version is
    # asked for (moto answers a version's copy from when it was published),
    # and 0 is a reservation (moto leaves out a falsy one).
    @patching.replace(LambdaFunction, "get_code")
    def get_code(original: Any, self: LambdaFunction) -> dict[str, Any]:
        answer: dict[str, Any] = original(self)
        reserved = _reserved(self.account_id, self.region, self.function_name)
        if reserved is None:
            answer.pop("Concurrency", None)
        else:
            answer["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
        return answer

    routes.route(ACCOUNT_SETTINGS, _account_settings)
    return [RESERVED]


def _account_settings(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """GetAccountSettings (moto has none): the account's limits, and its
    unreserved concurrency after every function's reservation."""
    region, account = iam_auth.region_account(environ)
    try:
        iam_auth.authorize(environ, account, "GetAccountSettings")
    except RESTError as error:
        return _refused(start_response, error)
    functions = list(get_backend(account, region).list_functions())
    reserved = sum(int(f.reserved_concurrency) for f in functions if f.reserved_concurrency not in (None, ""))
    body = {
        "AccountLimit": {
            "TotalCodeSize": CODE_STORAGE,
            "CodeSizeUnzipped": UNZIPPED_LIMIT,
            "CodeSizeZipped": ZIPPED_LIMIT,
            "ConcurrentExecutions": ACCOUNT_LIMIT,
            "UnreservedConcurrentExecutions": ACCOUNT_LIMIT - reserved,
        },
        "AccountUsage": {"TotalCodeSize": sum(int(f.code_size or 0) for f in functions), "FunctionCount": len(functions)},
    }
    return _answer(start_response, 200, body)


# ---------------------------------------------------------------- provisioned concurrency


@dataclass
class Config:
    """One provisioned concurrency configuration (of a version or alias)."""

    function_arn: str
    requested: int
    version: str
    last_modified: str
    status: str = "IN_PROGRESS"
    reason: Optional[str] = None

    def answer(self) -> dict[str, Any]:
        allocated = self.requested if self.status == "READY" else 0
        body: dict[str, Any] = {
            "RequestedProvisionedConcurrentExecutions": self.requested,
            "AvailableProvisionedConcurrentExecutions": allocated,
            "AllocatedProvisionedConcurrentExecutions": allocated,
            "Status": self.status,
            "LastModified": self.last_modified,
        }
        if self.reason:
            body["StatusReason"] = self.reason
        return body


_LOCK = threading.Lock()
# (account, region, function name, qualifier) -> its configuration. A
# later Put replaces the object, so an allocation under way for the old one
# (or for a deleted one) knows it is moot.
_CONFIGS: dict[tuple[str, str, str, str], Config] = {}


def _now() -> str:
    # Lambda's timestamp format, e.g. 2019-12-03T22:32:51+0000.
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime())


def _target(backend: LambdaBackend, name: str, qualifier: Optional[str]) -> LambdaFunction:
    """The version a qualifier names (an alias: the version it points at)."""
    if not qualifier or qualifier == "$LATEST":
        backend.get_function(name)  # 404 first for a function that does not exist
        raise _Invalid("Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
    fn = backend.get_function(name, qualifier)
    if str(fn.version) == "$LATEST":
        # An alias of $LATEST.
        raise _Invalid("Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
    return fn


def _check_room(fn: LambdaFunction, qualifier: str, requested: int) -> None:
    key = (fn.account_id, fn.region)
    with _LOCK:
        others = [(k, c) for k, c in _CONFIGS.items() if k[:2] == key and not (k[2] == fn.function_name and k[3] == qualifier)]
    reserved = _reserved(fn.account_id, fn.region, fn.function_name)
    if reserved is not None:
        mine = sum(c.requested for k, c in others if k[2] == fn.function_name) + requested
        if mine > reserved:
            raise _Invalid(
                f"Requested Provisioned Concurrency ({mine} for the function's versions and aliases) "
                f"should not be greater than the reservedConcurrentExecution for function ({reserved})."
            )
        return
    backend = get_backend(fn.account_id, fn.region)
    reserved_total = sum(int(f.reserved_concurrency) for f in backend.list_functions() if f.reserved_concurrency not in (None, ""))
    unreserved_provisioned = sum(c.requested for k, c in others if _reserved(k[0], k[1], k[2]) is None)
    left = ACCOUNT_LIMIT - reserved_total - unreserved_provisioned - requested
    if left < UNRESERVED_MINIMUM:
        raise _Invalid(
            "Specified ProvisionedConcurrentExecutions for function decreases account's "
            f"UnreservedConcurrentExecution below its minimum value of [{UNRESERVED_MINIMUM}]."
        )


def _allocate(key: tuple[str, str, str, str], config: Config, fn_config: envs.FunctionConfig, window: float) -> None:
    """After the window, initializes the version's environments, then READY
    (or FAILED), unless a later Put or a Delete came meanwhile."""
    time.sleep(window)
    with _LOCK:
        if _CONFIGS.get(key) is not config:
            return
    reason: Optional[str] = None
    for environment in envs.POOL.provision(fn_config, config.requested):
        try:
            environment.start()
            failure = environment.wait_ready()
            if failure is not None:
                reason = f"FUNCTION_ERROR_INIT_FAILURE: {failure.error_type}: {failure.message}"
        except Exception as error:  # the image cannot be pulled or run
            reason = f"FUNCTION_ERROR_INIT_FAILURE: {error}"
        envs.POOL.release(environment, keep=reason is None)
    with _LOCK:
        if _CONFIGS.get(key) is not config:
            return
        config.status, config.reason = ("FAILED", reason) if reason else ("READY", None)
    if reason:
        print(f"moto_ext/lambda: provisioned concurrency of {config.function_arn} failed: {reason}", file=sys.stderr, flush=True)


def _configure(fn: LambdaFunction, qualifier: str, requested: int) -> Config:
    """A new configuration of ``qualifier`` (for the version ``fn``),
    ``IN_PROGRESS`` until its allocation is done."""
    key = (fn.account_id, fn.region, fn.function_name, qualifier)
    arn = f"arn:aws:lambda:{fn.region}:{fn.account_id}:function:{fn.function_name}:{qualifier}"
    config = Config(function_arn=arn, requested=requested, version=str(fn.version), last_modified=_now())
    with _LOCK:
        previous = _CONFIGS.get(key)
        _CONFIGS[key] = config
    if previous is not None and previous.version != config.version:
        envs.POOL.unprovision(fn.account_id, fn.region, fn.function_name, previous.version)
    window = settings.window("lambda-provisioned-concurrency", 20)
    threading.Thread(target=_allocate, args=(key, config, envs.FunctionConfig.of(fn), window), name="provisioned concurrency", daemon=True).start()
    return config


def _forget(account_id: str, region: str, name: str, qualifier: Optional[str] = None) -> None:
    """Drops the configurations of a function (or of one qualifier) and
    lets their environments go on-demand."""
    with _LOCK:
        gone = [(k, c) for k, c in _CONFIGS.items() if k[:3] == (account_id, region, name) and (qualifier is None or k[3] == qualifier)]
        for k, _ in gone:
            del _CONFIGS[k]
        still = {c.version for k, c in _CONFIGS.items() if k[:3] == (account_id, region, name)}
    for _, config in gone:
        if config.version not in still:
            envs.POOL.unprovision(account_id, region, name, config.version)


def _answer(start_response: Callable[..., Any], status: int, body: Optional[dict[str, Any]], headers: Optional[list[tuple[str, str]]] = None) -> Iterable[bytes]:
    data = b"" if body is None else json.dumps(body).encode()
    reason = {200: "OK", 202: "Accepted", 204: "No Content"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))] + (headers or []))
    return [data]


def _serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    try:
        return _handle(environ, start_response)
    except LambdaClientError as error:
        return _answer(start_response, error.code, json.loads(error.description), [("x-amzn-ErrorType", error.error_type)])
    except RESTError as error:
        # Refused by IAM (iam_auth.authorize): moto's own answer.
        return _refused(start_response, error)


def _refused(start_response: Callable[..., Any], error: RESTError) -> Iterable[bytes]:
    data = error.get_body().encode()
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-length"]
    start_response(f"{error.code} Error", headers + [("Content-Length", str(len(data)))])
    return [data]


# The operation each method of the provisioned-concurrency path is, as IAM
# names it ("Actions, resources, and condition keys for AWS Lambda").
def _operation(method: str, query: dict[str, str]) -> str:
    if method == "GET":
        return "GetProvisionedConcurrencyConfig" if "Qualifier" in query else "ListProvisionedConcurrencyConfigs"
    return {"PUT": "PutProvisionedConcurrencyConfig", "DELETE": "DeleteProvisionedConcurrencyConfig"}.get(method, method)


def _handle(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    found = PATH.match(environ.get("PATH_INFO", ""))
    assert found is not None
    name = unquote(found.group("function"))
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
    method = environ.get("REQUEST_METHOD", "GET")
    region, account = iam_auth.region_account(environ)
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    iam_auth.authorize(environ, account, _operation(method, query), body)
    if name.startswith("arn:"):
        parts = name.split(":")
        if len(parts) >= 7:
            region, account = parts[3], parts[4]
    backend = get_backend(account, region)
    qualifier = query.get("Qualifier")

    if method == "GET" and "Qualifier" not in query:
        # ListProvisionedConcurrencyConfigs (?List=ALL)
        latest = backend.get_function(name)
        with _LOCK:
            mine = [(k, c) for k, c in _CONFIGS.items() if k[:3] == (latest.account_id, latest.region, latest.function_name)]
        items = [{"FunctionArn": c.function_arn, **c.answer()} for _, c in sorted(mine, key=lambda kc: kc[0][3])]
        return _answer(start_response, 200, {"ProvisionedConcurrencyConfigs": items})

    fn = _target(backend, name, qualifier)
    assert qualifier is not None
    key = (fn.account_id, fn.region, fn.function_name, qualifier)

    if method == "GET":
        with _LOCK:
            config = _CONFIGS.get(key)
            body = config.answer() if config else None
        if body is None:
            raise _NotFound("ProvisionedConcurrencyConfigNotFoundException", "No Provisioned Concurrency Config found for this function")
        return _answer(start_response, 200, body)

    if method == "DELETE":
        with _LOCK:
            known = key in _CONFIGS
        if not known:
            raise _NotFound("ResourceNotFoundException", "No Provisioned Concurrency Config found for this function")
        _forget(*key)
        return _answer(start_response, 204, None)

    if method == "PUT":
        try:
            request = json.loads(body or b"{}")
            requested = int(request["ProvisionedConcurrentExecutions"])
        except (ValueError, KeyError, TypeError):
            raise _Invalid("ProvisionedConcurrentExecutions must be a number of at least 1.")
        if requested < 1:
            raise _Invalid("ProvisionedConcurrentExecutions must be a number of at least 1.")
        _check_room(fn, qualifier, requested)
        return _answer(start_response, 202, _configure(fn, qualifier, requested).answer())

    raise _Invalid(f"{method} is not supported here.")


def _install_provisioned() -> list[str]:
    if not settings.enabled(PROVISIONED) or not settings.enabled(lambda_runtime.NAME):
        return []
    settings.window("lambda-provisioned-concurrency", 20)
    routes.route(PATH, _serve)

    @patching.replace(LambdaBackend, "delete_function")
    def delete_function(original: Any, self: LambdaBackend, function_name: str, qualifier: Optional[str] = None) -> Any:
        fn = self.get_function(function_name, qualifier)
        # Before the environments are retired, so that an allocation under
        # way makes none after them.
        _forget(fn.account_id, fn.region, fn.function_name, qualifier)
        return original(self, function_name, qualifier)

    # "Configuring provisioned concurrency": when an alias moves to another
    # version, Lambda deallocates the old version's provisioned concurrency
    # and allocates it for the new one (the configuration is IN_PROGRESS
    # again meanwhile).
    @patching.replace(LambdaBackend, "update_alias")
    def update_alias(original: Any, self: LambdaBackend, name: str, function_name: str, *args: Any, **kwargs: Any) -> Any:
        alias = original(self, name, function_name, *args, **kwargs)
        target = self.get_function(function_name, name)
        with _LOCK:
            config = _CONFIGS.get((target.account_id, target.region, target.function_name, name))
        if config is not None and config.version != str(target.version):
            _configure(target, name, config.requested)
        return alias

    @patching.replace(LambdaBackend, "delete_alias")
    def delete_alias(original: Any, self: LambdaBackend, name: str, function_name: str) -> Any:
        answer = original(self, name, function_name)
        fn = self.get_function(function_name)
        _forget(fn.account_id, fn.region, fn.function_name, name)
        return answer

    @patching.replace(MotoAPIBackend, "reset")
    def reset(original: Any, self: MotoAPIBackend) -> Any:
        with _LOCK:
            _CONFIGS.clear()
        return original(self)

    return [PROVISIONED]


def install() -> list[str]:
    return _install_reserved() + _install_provisioned()
