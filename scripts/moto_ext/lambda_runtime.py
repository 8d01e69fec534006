"""Invoke of a ``PackageType=Image`` function runs its image, as Lambda does.

moto answers such an invoke with "not yet supported" (or, with its simple
backend, with a canned payload). Here ``LambdaFunction.invoke`` (the
function, version or alias target moto resolved) runs the version's image in
an execution environment (``lambda_environments``) and answers as the Invoke
API reference (AWS Lambda API Reference, "Invoke") describes:

- ``RequestResponse``: 200 with the function's payload and
  ``X-Amz-Executed-Version``; with ``LogType: Tail``, ``X-Amz-Log-Result``,
  the last 4 KB of the invocation's log, base64.
- A function error: 200 with ``X-Amz-Function-Error: Unhandled`` and the
  error document, as the runtime posted it to ``/invocation/{id}/error``
  (``errorType``, ``errorMessage``).
- The process exits (init or invoke): ``{"errorType": "Runtime.ExitError",
  "errorMessage": "RequestId: … Error: Runtime exited with error: exit status
  N"}`` (``Runtime.OutOfMemory`` when killed for memory); an init error the
  runtime reported: its document. The next invoke starts a new environment.
- A timeout: ``{"errorType": "Sandbox.Timedout", "errorMessage": "RequestId:
  … Error: Task timed out after N.NN seconds"}``; the environment is reset
  ("Troubleshoot invocation issues in Lambda"; the log says ``Task timed out
  after N.NN seconds``).
- ``Event``: 202 at once, the function runs in the background;
  ``DryRun``: 204.
- A payload that is not JSON: ``InvalidRequestContentException`` (400).
- An image that cannot be pulled or run: ``ResourceConflictException``
  (409), as for a function whose state is ``Failed`` ("Lambda function
  states").

Deleting a function stops its environments; so do moto's reset and moto's
exit. Zip functions keep moto's own behaviour.

Every invocation passes ``GATES`` first (with the function's invocations
in flight counted, so ``lambda_concurrency`` can refuse one beyond its
reserved concurrency) and, once answered or refused, is told to
``OBSERVERS`` as an ``Outcome`` (``lambda_metrics`` publishes it to
CloudWatch, as Lambda does).

Switch: ``LOCAL_AWS_STRICT_LAMBDA_RUN_IMAGES=0`` (then moto's own invoke).
"""

import contextvars
import json
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Optional

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda.responses import LambdaResponse
from moto.moto_api._internal.models import MotoAPIBackend

from . import lambda_environments as envs
from . import observers, patching, settings

NAME = "lambda-run-images"
# How long an invoke waits for a busy function version's environment.
ACQUIRE_WAIT_SECONDS = 60.0


class _InvalidRequestContent(LambdaClientError):
    code = 400

    def __init__(self, message: str):
        super().__init__("InvalidRequestContentException", message)


class _CannotRun(LambdaClientError):
    code = 409

    def __init__(self, message: str):
        super().__init__("ResourceConflictException", message)


class Answer:
    """What one invocation answered."""

    def __init__(self, payload: bytes, function_error: Optional[str], log_lines: list[str], version: str, duration_ms: float = 0.0):
        self.payload = payload
        self.function_error = function_error
        self.log_lines = log_lines
        self.version = version
        self.duration_ms = duration_ms
        # For a version with provisioned concurrency: whether it ran on an
        # on-demand environment, beyond it (None: none is configured).
        self.spillover: Optional[bool] = None


@dataclass(frozen=True)
class Outcome:
    """One invocation, as Lambda's metrics count it: run (with or without a
    function error) or throttled (refused for concurrency)."""

    account_id: str
    region: str
    function_name: str
    # The qualifier the caller named (an alias or a version), or None.
    resource: Optional[str]
    executed_version: str
    # When the invocation was received (epoch seconds).
    started: float
    throttled: bool
    function_error: bool = False
    duration_ms: float = 0.0
    # The function's invocations in flight when it began (itself included),
    # of the resource invoked, and of the account.
    concurrent: int = 0
    concurrent_resource: int = 0
    concurrent_account: int = 0
    # Ran beyond the version's provisioned concurrency (None: it has none).
    spillover: Optional[bool] = None


class Throttled(LambdaClientError):
    """429 TooManyRequestsException with a reason (Invoke API reference,
    Errors: "Reason" is one of ``ConcurrentInvocationLimitExceeded``,
    ``ReservedFunctionConcurrentInvocationLimitExceeded``, ...)."""

    code = 429

    def __init__(self, reason: str) -> None:
        super().__init__("TooManyRequestsException", "Rate Exceeded.")
        body = json.loads(self.description)
        body["Reason"] = reason
        self.description = json.dumps(body)


# Called with the function version, the qualifier invoked and the
# function's invocations in flight (not counting this one), under the
# in-flight lock; may raise Throttled.
GATES: list[Callable[[LambdaFunction, Optional[str], int], None]] = []
# Called with each Outcome, after the answer.
OBSERVERS: observers.Observers[Outcome] = observers.Observers("lambda")

# The qualifier of the invocation this thread serves, as the caller named it
# (moto resolves an alias to its version before LambdaFunction.invoke).
_QUALIFIER: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("moto_ext_qualifier", default=None)
_FLIGHT_LOCK = threading.Lock()
_IN_FLIGHT: Counter[tuple[str, ...]] = Counter()


def _keys(fn: LambdaFunction, resource: Optional[str]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    return (
        (fn.account_id, fn.region, fn.function_name),
        (fn.account_id, fn.region, fn.function_name, resource or ""),
        (fn.account_id, fn.region),
    )


def _header(headers: Any, name: str) -> Optional[str]:
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    value = getter(name) if getter else None
    if value is None and isinstance(headers, dict):
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return value


def _error(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def invoke(fn: LambdaFunction, payload: bytes, trace_id: Optional[str] = None, client_context: Optional[str] = None, wait_for_log: bool = False, resource: Optional[str] = None) -> Answer:
    """Runs one invocation of the function version ``fn`` (invoked as
    ``resource``, the qualifier the caller named) in an execution
    environment and returns its answer; passes it through ``GATES`` first
    and tells ``OBSERVERS`` how it went."""
    started = time.time()
    keys = _keys(fn, resource)

    def outcome(**fields: Any) -> Outcome:
        return Outcome(fn.account_id, fn.region, fn.function_name, resource, str(fn.version), started, **fields)

    refused: Optional[Throttled] = None
    with _FLIGHT_LOCK:
        try:
            for gate in GATES:
                gate(fn, resource, _IN_FLIGHT[keys[0]])
        except Throttled as error:
            refused = error
        else:
            for key in keys:
                _IN_FLIGHT[key] += 1
            concurrency = {k: _IN_FLIGHT[key] for k, key in zip(("concurrent", "concurrent_resource", "concurrent_account"), keys)}
    if refused is not None:
        OBSERVERS.tell(outcome(throttled=True))
        raise refused
    try:
        answer = _run(fn, payload, trace_id, client_context, wait_for_log)
    except Throttled:
        # No environment came free in time: refused for concurrency.
        OBSERVERS.tell(outcome(throttled=True))
        raise
    finally:
        with _FLIGHT_LOCK:
            for key in keys:
                _IN_FLIGHT[key] -= 1
                if _IN_FLIGHT[key] <= 0:
                    del _IN_FLIGHT[key]
    OBSERVERS.tell(outcome(throttled=False, function_error=answer.function_error is not None, duration_ms=answer.duration_ms, spillover=answer.spillover, **concurrency))
    return answer


def _spilled(answer: Answer, spillover: Optional[bool]) -> Answer:
    answer.spillover = spillover
    return answer


def _exists(fn: LambdaFunction) -> bool:
    """Whether moto still holds the function version ``fn``."""
    from moto.awslambda.utils import get_backend

    version = str(fn.version)
    try:
        get_backend(fn.account_id, fn.region).get_function(fn.function_name, None if version == "$LATEST" else version)
    except LambdaClientError:
        return False
    return True


def _run(fn: LambdaFunction, payload: bytes, trace_id: Optional[str], client_context: Optional[str], wait_for_log: bool) -> Answer:
    config = envs.FunctionConfig.of(fn)
    invocation = envs.Invocation(
        request_id=str(uuid.uuid4()),
        payload=payload,
        trace_id=trace_id or envs.new_trace_id(),
        client_context=client_context,
    )
    try:
        environment, cold = envs.POOL.acquire(config, ACQUIRE_WAIT_SECONDS)
    except TimeoutError:
        raise Throttled("ConcurrentInvocationLimitExceeded")
    spillover = (not environment.provisioned) if envs.POOL.provisioned(config) else None
    keep = False
    try:
        init_ms: Optional[float] = None
        if cold:
            # Deleted since it was resolved (an Event invocation's thread
            # comes late): DeleteFunction retired its environments before
            # this one was made, so none is started for it.
            if not _exists(fn):
                raise _CannotRun(f"Lambda could not run {config.arn}: the function was deleted")
            # What the function prints during its init belongs to this
            # (first) invocation's log tail.
            environment.logs.mark(time.time(), [], begin=invocation)
            try:
                environment.start()
            except envs.FunctionUnavailable as error:
                raise _CannotRun(f"Lambda could not run {config.arn}: {error}")
            except Exception as error:  # Docker unreachable and the like
                raise _CannotRun(f"Lambda could not run {config.arn}: {error}")
            failure = environment.wait_ready()
            if failure is not None:
                return _spilled(_init_failed(environment, invocation, failure, wait_for_log), spillover)
            init_ms = environment.init_ms
            # What the function printed during its init reaches us through
            # Docker a moment after its first poll: let it in before START.
            time.sleep(envs.LOG_GRACE_SECONDS)
        keep = True
        environment.invocations += 1
        environment.run(invocation)
        return _spilled(_answered(environment, invocation, init_ms, wait_for_log), spillover)
    finally:
        keep = keep and invocation.outcome in ("response", "error")
        envs.POOL.release(environment, keep)


def _invoke_event(fn: LambdaFunction, payload: bytes, resource: Optional[str]) -> None:
    """An ``Event`` invocation, already answered 202: what goes wrong (the
    image cannot run, the function was deleted meanwhile) is only logged."""
    try:
        invoke(fn, payload, resource=resource)
    except LambdaClientError as error:
        print(f"moto_ext/lambda: event invocation of {fn.function_arn} failed: {error}", file=sys.stderr, flush=True)


def _init_failed(environment: envs.Environment, invocation: envs.Invocation, failure: envs.InitFailure, wait_for_log: bool) -> Answer:
    config = environment.config
    if failure.error_type == "Runtime.ExitError":
        environment.wait_exit(0.5)
    environment.wait_for_output()
    now = time.time()
    invocation.started_wall = now
    invocation.started = invocation.finished = time.monotonic()
    if failure.body is not None:
        payload = failure.body
    else:
        payload = _error(failure.error_type, f"RequestId: {invocation.request_id} Error: {failure.message}")
    init_ms = max(0.0, now - (environment.started_wall or now)) * 1000
    lines = [
        f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\tStatus: error\tError Type: {failure.error_type}",
        f"START RequestId: {invocation.request_id} Version: {config.version}",
    ]
    if failure.error_type == "Sandbox.Timedout":
        lines.append(f"{envs.iso_now()} {invocation.request_id} {failure.message}")
    lines += [
        f"END RequestId: {invocation.request_id}",
        envs.report_line(invocation, config, environment.max_memory_mb(), None, "error", failure.error_type),
    ]
    environment.logs.mark(now + envs.LOG_GRACE_SECONDS, lines, end=invocation)
    invocation.finish("init", payload, failure.error_type)
    return _answer(invocation, payload, "Unhandled", config, wait_for_log)


def _answered(environment: envs.Environment, invocation: envs.Invocation, init_ms: Optional[float], wait_for_log: bool) -> Answer:
    config = environment.config
    request_id = invocation.request_id
    status: Optional[str] = None
    error_type: Optional[str] = None
    lines: list[str] = []
    if invocation.outcome == "response":
        payload, function_error = invocation.body, None
    elif invocation.outcome == "error":
        payload, function_error = invocation.body or _error(invocation.error_type or "Runtime.Unknown", ""), "Unhandled"
    elif invocation.outcome == "timeout":
        message = f"Task timed out after {config.timeout_s:.2f} seconds"
        lines.append(f"{envs.iso_now()} {request_id} {message}")
        payload = _error("Sandbox.Timedout", f"RequestId: {request_id} Error: {message}")
        function_error, status, error_type = "Unhandled", "timeout", None
    else:  # the process exited mid-invocation
        environment.wait_exit(0.5)
        code, oom = environment.exit or (-1, False)
        error_type = "Runtime.OutOfMemory" if oom else "Runtime.ExitError"
        payload = _error(error_type, f"RequestId: {request_id} Error: {envs.exit_text(code, oom)}")
        function_error, status = "Unhandled", "error"
    lines += [
        f"END RequestId: {request_id}",
        envs.report_line(invocation, config, environment.max_memory_mb(), init_ms, status, error_type),
    ]
    environment.wait_for_output()
    ended = time.time()
    environment.logs.mark(ended + envs.LOG_GRACE_SECONDS, lines, end=invocation)
    return _answer(invocation, payload, function_error, config, wait_for_log)


def _answer(invocation: envs.Invocation, payload: bytes, function_error: Optional[str], config: envs.FunctionConfig, wait_for_log: bool) -> Answer:
    if wait_for_log:
        invocation.log_done.wait(2.0)
    return Answer(payload, function_error, list(invocation.log_lines), config.version, invocation.duration_ms)


def install() -> list[str]:
    if not settings.enabled(NAME):
        return []
    try:
        removed = envs.remove_stale_containers()
        if removed:
            print(f"moto_ext/lambda: removed {removed} execution environment(s) left by a previous moto", flush=True)
    except Exception as error:
        print(f"moto_ext/lambda: cannot reach Docker to clean up old environments: {error}", file=sys.stderr, flush=True)

    @patching.replace(LambdaFunction, "invoke")
    def function_invoke(original: Any, self: LambdaFunction, body: Any, request_headers: Any, response_headers: Any) -> Any:
        if self.package_type != "Image":
            return original(self, body, request_headers, response_headers)
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")
        if not raw.strip():
            raw = b"{}"
        try:
            json.loads(raw)
        except ValueError:
            raise _InvalidRequestContent("Could not parse request body into json: Could not parse payload into json")
        kind = _header(request_headers, "X-Amz-Invocation-Type") or "RequestResponse"
        response_headers["x-amz-executed-version"] = str(self.version)
        if kind == "DryRun":
            return b""
        if kind == "Event":
            threading.Thread(target=_invoke_event, args=(self, raw, _QUALIFIER.get()), name="lambda event invoke", daemon=True).start()
            return b""
        tail = (_header(request_headers, "X-Amz-Log-Type") or "") == "Tail"
        answer = invoke(
            self,
            raw,
            trace_id=_header(request_headers, "X-Amzn-Trace-Id"),
            client_context=_header(request_headers, "X-Amz-Client-Context"),
            wait_for_log=tail,
            resource=_QUALIFIER.get(),
        )
        if answer.function_error:
            response_headers["x-amz-function-error"] = answer.function_error
        if tail:
            response_headers["x-amz-log-result"] = envs.tail(answer.log_lines)
        return answer.payload

    # moto reads Invoke's qualifier as `qualifier`, but the API sends
    # `?Qualifier=` (Invoke API reference): without this every invoke of a
    # version or alias would run $LATEST.
    @patching.replace(LambdaResponse, "invoke")
    def response_invoke(original: Any, self: LambdaResponse) -> Any:
        qualifier = self.querystring.get("Qualifier")
        if qualifier and "qualifier" not in self.querystring:
            self.querystring["qualifier"] = qualifier
        return original(self)

    # The qualifier as the caller named it, for the metrics' Resource
    # dimension (LambdaFunction.invoke sees only the version it resolved).
    @patching.replace(LambdaBackend, "invoke")
    def backend_invoke(original: Any, self: LambdaBackend, function_name: str, qualifier: Optional[str], *args: Any, **kwargs: Any) -> Any:
        named = qualifier
        if not named and ":" in function_name.split(":function:")[-1]:
            named = function_name.rsplit(":", 1)[1]
        token = _QUALIFIER.set(named or None)
        try:
            return original(self, function_name, qualifier, *args, **kwargs)
        finally:
            _QUALIFIER.reset(token)

    @patching.replace(LambdaBackend, "delete_function")
    def delete_function(original: Any, self: LambdaBackend, function_name: str, qualifier: Optional[str] = None) -> Any:
        fn = self.get_function(function_name, qualifier)
        result = original(self, function_name, qualifier)
        envs.POOL.retire(fn.account_id, fn.region, fn.function_name, str(fn.version) if qualifier else None)
        return result

    @patching.replace(MotoAPIBackend, "reset")
    def reset(original: Any, self: MotoAPIBackend) -> Any:
        envs.POOL.stop_all()
        return original(self)

    return [NAME]
