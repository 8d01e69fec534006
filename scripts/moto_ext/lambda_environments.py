"""Lambda execution environments for image functions: a Docker container per
environment, the Lambda Runtime API it polls, and its CloudWatch Logs stream.

Follows "Understanding the Lambda execution environment lifecycle" and
"Using the Lambda runtime API for custom runtimes" (AWS Lambda Developer
Guide):

- An environment runs the function version's image (by the digest it was
  deployed with) with the version's environment, memory and ``/tmp`` size,
  as Lambda runs container images ("Create a Lambda function using a
  container image": a read-only root file system, a writable ``/tmp``, a
  non-root default user). The Runtime API this module serves (one port per
  environment: ``AWS_LAMBDA_RUNTIME_API`` is ``host:port``) listens on the
  Docker bridge's gateway address, which the container reaches from the
  bridge network: never the host's network.
- A runner that cannot be turned against its host: every capability is
  dropped, ``no-new-privileges`` is set, the root file system is read-only,
  and only images of this account's ECR registry (the local registry, which
  must hold the image's manifest) run. Lambda runs only images from ECR
  ("Create a Lambda function using a container image": "the container image
  must be in an Amazon ECR repository"); another image is refused as
  CreateFunction refuses it (InvalidParameterValueException, "Source image
  ... is not valid").
- Init ends at the runtime's first ``GET /invocation/next``; the Init phase
  is limited to 10 seconds (an init that is still running then is given the
  function timeout, as Lambda's retry of a suppressed init would be).
- One invocation at a time per environment; an environment is reused warm,
  stopped after a timeout (Lambda resets it), after its process exits, when
  idle for a while (``LOCAL_AWS_LAMBDA_IDLE_SECONDS``, default 300, scaled),
  when its function is deleted or reconfigured, on moto's reset and when
  moto stops. At most ``PER_VERSION`` environments per function version
  and ``MAX_ENVIRONMENTS`` in all (the least recently used idle one goes).
- Provisioned concurrency ("Configuring provisioned concurrency"): ``Pool.provision``
  keeps up to ``PER_VERSION`` environments of a version initialized ahead
  of any request (``AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency``);
  they are neither reaped when idle nor made room of, until
  ``Pool.unprovision``.
- "Working with Lambda function logs": a log stream per environment in
  ``/aws/lambda/{name}`` named ``YYYY/MM/DD/[version]id``; the function's
  stdout and stderr line by line; Lambda's ``START``, ``END`` and ``REPORT``
  lines (``Duration``, ``Billed Duration``, ``Memory Size``, ``Max Memory
  Used``, and ``Init Duration`` on a cold start).

Containers carry the labels ``moto_ext.kind=lambda-environment`` and
``moto_ext.port=<moto's port>``, so that ``scripts/local-cloud down moto``
and a restarted moto remove what a dead one left, and two motos on one
dockerd leave each other's alone.
"""

import atexit
import base64
import calendar
import ipaddress
import json
import math
import os
import secrets
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

from . import settings

LABEL_KIND = "moto_ext.kind"
LABEL_PORT = "moto_ext.port"
KIND = "lambda-environment"

API_PREFIX = "/2018-06-01/runtime"
# "Lambda quotas": the synchronous response payload limit.
MAX_PAYLOAD = 6 * 1024 * 1024
# "Understanding the Lambda execution environment lifecycle": Init phase limit.
INIT_LIMIT_SECONDS = 10.0
# The user Lambda runs container images as (sbx_user1051).
LAMBDA_USER = "993:990"
PER_VERSION = 3
MAX_ENVIRONMENTS = 24
# How long after an answer the function's last lines may still be on their
# way from Docker; END and REPORT are written after them.
LOG_GRACE_SECONDS = 0.02
# How long an answer waits, at most, for the function's output that Docker
# had already logged to reach us (``Environment.wait_for_output``).
OUTPUT_PATIENCE_SECONDS = 2.0


def moto_port() -> str:
    """moto's port, from the launcher's arguments (``-p PORT``)."""
    args = sys.argv[1:]
    for i, arg in enumerate(args):
        if arg in ("-p", "--port") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--port="):
            return arg.split("=", 1)[1]
    return "5000"


_docker_client: Any = None
_docker_lock = threading.Lock()


def docker_client() -> Any:
    global _docker_client
    with _docker_lock:
        if _docker_client is None:
            import docker

            _docker_client = docker.from_env(max_pool_size=64)
        return _docker_client


_runtime_host: Optional[str] = None


def runtime_host() -> str:
    """The address the Runtime APIs listen on: the default bridge network's
    gateway, which containers on it reach (loopback only when Docker cannot
    be asked: no environment starts then anyway)."""
    global _runtime_host
    with _docker_lock:
        if _runtime_host is not None:
            return _runtime_host
    try:
        ipam = docker_client().networks.get("bridge").attrs["IPAM"]["Config"][0]
        # The default bridge lists only its subnet; its gateway (docker0)
        # is then the subnet's first address, as Docker assigns it.
        gateway = ipam.get("Gateway") or str(next(ipaddress.ip_network(ipam["Subnet"]).hosts()))
    except Exception:  # noqa: BLE001 - Docker unreachable: start() says so
        return "127.0.0.1"
    with _docker_lock:
        _runtime_host = gateway
    return gateway


def image_refusal(config: "FunctionConfig") -> Optional[str]:
    """Why ``config.image`` may not run, or ``None``: it must name an image
    of the function's own account's ECR registry that the registry holds."""
    registry = f"{config.account_id}.dkr.ecr.{config.region}.amazonaws.com/"
    invalid = f"Source image {config.image} is not valid. Provide a valid source image."
    rest = config.image[len(registry):] if config.image.startswith(registry) else ""
    if "@" in rest:
        repository, reference = rest.split("@", 1)
    elif ":" in rest:
        repository, reference = rest.rsplit(":", 1)
    else:
        return invalid
    from .ecr_registry import Registry

    try:
        held = Registry(registry.rstrip("/"), repository).manifest(reference)
    except Exception as error:  # noqa: BLE001 - the registry did not answer
        return f"Source image {config.image} cannot be read from ECR: {error}"
    if held is None:
        return f"Source image {config.image} does not exist. Provide a valid source image."
    return None


def ours() -> dict[str, list[str]]:
    return {"label": [f"{LABEL_KIND}={KIND}", f"{LABEL_PORT}={moto_port()}"]}


def remove_stale_containers() -> int:
    """Removes the environments a previous moto on this port left behind."""
    removed = 0
    for container in docker_client().containers.list(all=True, filters=ours()):
        try:
            container.remove(force=True)
            removed += 1
        except Exception:
            pass
    return removed


class FunctionUnavailable(Exception):
    """The environment could not be made at all (no image, no Docker)."""


@dataclass(frozen=True)
class FunctionConfig:
    """What of a function version shapes its environments."""

    account_id: str
    region: str
    name: str
    version: str
    arn: str
    image: str
    environment: tuple[tuple[str, str], ...]
    memory_mb: int
    timeout_s: float
    tmp_mb: int
    entry_point: tuple[str, ...]
    command: tuple[str, ...]
    working_dir: Optional[str]

    @staticmethod
    def of(fn: Any) -> "FunctionConfig":
        image_config = fn.image_config
        return FunctionConfig(
            account_id=fn.account_id,
            region=fn.region,
            name=fn.function_name,
            version=str(fn.version),
            arn=fn.function_arn,
            image=fn.code.get("ImageUri", ""),
            environment=tuple(sorted((str(k), str(v)) for k, v in (fn.environment_vars or {}).items())),
            memory_mb=int(fn.memory_size),
            timeout_s=float(fn.timeout),
            tmp_mb=int(fn.ephemeral_storage or 512),
            entry_point=tuple(image_config.entry_point or ()),
            command=tuple(image_config.cmd or ()),
            working_dir=image_config.working_directory,
        )

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.account_id, self.region, self.name, self.version)

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    trace_id: str
    client_context: Optional[str] = None
    # Set when the runtime takes it (wall clock and monotonic).
    started_wall: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    deadline_ms: int = 0
    # "response", "error", "exit", "timeout" or "init"
    outcome: str = ""
    body: bytes = b""
    error_type: Optional[str] = None
    done: threading.Event = field(default_factory=threading.Event)
    # The log lines of this invocation, once its REPORT is written.
    log_lines: list[str] = field(default_factory=list)
    log_done: threading.Event = field(default_factory=threading.Event)

    def finish(self, outcome: str, body: bytes = b"", error_type: Optional[str] = None) -> None:
        if self.done.is_set():
            return
        self.finished = time.monotonic()
        self.outcome, self.body, self.error_type = outcome, body, error_type
        self.done.set()

    @property
    def duration_ms(self) -> float:
        if not self.started:
            return 0.0
        return max(0.0, (self.finished or time.monotonic()) - self.started) * 1000


def new_trace_id() -> str:
    """An X-Ray trace header as Lambda hands it to the runtime."""
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


# ---------------------------------------------------------------- logs


@dataclass
class _Mark:
    at: float
    lines: list[str]
    begin: Optional[Invocation] = None
    end: Optional[Invocation] = None


class LogSink:
    """An environment's log stream, written in order by one thread: the
    function's lines as they arrive, Lambda's own lines at the moment they
    belong to (``END`` a little after the answer, so the lines the function
    printed before answering come first)."""

    def __init__(self, config: FunctionConfig, stream: str):
        self.config = config
        self.stream = stream
        self._cond = threading.Condition()
        self._lines: deque[tuple[float, str]] = deque()
        self._marks: deque[_Mark] = deque()
        self._closed = False
        self._capturing: Optional[Invocation] = None
        self._thread = threading.Thread(target=self._run, name=f"logs {stream}", daemon=True)
        self._thread.start()

    def function_line(self, text: str) -> None:
        with self._cond:
            self._lines.append((time.time(), text))
            self._cond.notify()

    def mark(self, at: float, lines: list[str], begin: Optional[Invocation] = None, end: Optional[Invocation] = None) -> None:
        """Lambda's own ``lines`` at time ``at``. Marks come in the order
        things happened: one still waiting for late lines (an ``END``) is
        due no later than the next (the next invocation's ``START``)."""
        with self._cond:
            for pending in self._marks:
                pending.at = min(pending.at, at)
            self._marks.append(_Mark(at, lines, begin, end))
            self._cond.notify()

    def close(self) -> None:
        """Writes what is due or pending, then nothing more."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._lines and not self._marks and not self._closed:
                    self._cond.wait()
                if self._marks and not self._closed:
                    wait = self._marks[0].at - time.time()
                    if wait > 0:
                        self._cond.wait(wait)
                batch, finished = self._take_due()
                closing = self._closed and not self._lines and not self._marks
            self._write(batch)
            for invocation in finished:
                invocation.log_done.set()
            if closing:
                return

    def _take_due(self) -> tuple[list[tuple[float, str]], list[Invocation]]:
        now = time.time()
        batch: list[tuple[float, str]] = []
        finished: list[Invocation] = []

        def take_lines(until: float) -> None:
            while self._lines and self._lines[0][0] <= until:
                at, text = self._lines.popleft()
                batch.append((at, text))
                if self._capturing is not None:
                    self._capturing.log_lines.append(text)

        while self._marks and (self._marks[0].at <= now or self._closed):
            mark = self._marks.popleft()
            take_lines(mark.at)
            if mark.begin is not None:
                self._capturing = mark.begin
            for text in mark.lines:
                batch.append((mark.at, text))
                if self._capturing is not None:
                    self._capturing.log_lines.append(text)
            if mark.end is not None:
                finished.append(mark.end)
                if self._capturing is mark.end:
                    self._capturing = None
        take_lines(self._marks[0].at if self._marks else math.inf)
        return batch, finished

    def _write(self, batch: list[tuple[float, str]]) -> None:
        if not batch:
            return
        from moto.logs.models import logs_backends

        try:
            logs = logs_backends[self.config.account_id][self.config.region]
            # Lambda creates the group and the stream on first use (with the
            # role's logs:CreateLogGroup), and again after they were deleted.
            logs.ensure_log_group(self.config.log_group)
            group = logs.groups[self.config.log_group]
            if self.stream not in group.streams:
                group.create_log_stream(self.stream)
            events = [{"timestamp": int(at * 1000), "message": text} for at, text in batch]
            logs.put_log_events(self.config.log_group, self.stream, events)
        except Exception as error:  # a log that cannot be written must not stop the function
            print(f"moto_ext/lambda: cannot write {self.config.log_group} {self.stream}: {error}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- Runtime API


class _RuntimeApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, environment: "Environment"):
        self.environment = environment
        super().__init__((runtime_host(), 0), _RuntimeHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A process that went away mid-request (stopped, timed out) is not
        # moto's error.
        pass


class _RuntimeHandler(BaseHTTPRequestHandler):
    """``/2018-06-01/runtime/...`` as "Using the Lambda runtime API for
    custom runtimes" describes it."""

    protocol_version = "HTTP/1.1"
    server: _RuntimeApi

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes, headers: Optional[dict[str, str]] = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> Optional[bytes]:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            size = 0
            while True:
                line = self.rfile.readline()
                length = int(line.split(b";")[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(length))
                self.rfile.readline()
                size += length
            body = b"".join(chunks)
        else:
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(size) if size else b""
        return body if len(body) <= MAX_PAYLOAD else None

    def do_GET(self) -> None:
        if self.path.rstrip("/") != f"{API_PREFIX}/invocation/next":
            self._answer(404, b'{"errorType":"InvalidRequest","errorMessage":"unknown path"}')
            return
        invocation = self.server.environment.next_invocation()
        if invocation is None:
            # The environment is being stopped; its process goes with it.
            self._answer(410, b'{"errorType":"EnvironmentStopped","errorMessage":"environment stopped"}')
            return
        headers = {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.server.environment.config.arn,
            "Lambda-Runtime-Trace-Id": invocation.trace_id,
        }
        if invocation.client_context:
            headers["Lambda-Runtime-Client-Context"] = invocation.client_context
        self._answer(200, invocation.payload, headers)

    def do_POST(self) -> None:
        parts = self.path[len(API_PREFIX) :].strip("/").split("/") if self.path.startswith(API_PREFIX) else []
        body = self._body()
        if body is None:
            self._answer(413, b'{"errorType":"RequestEntityTooLarge","errorMessage":"payload over 6 MB"}')
            if len(parts) == 3 and parts[0] == "invocation":
                self.server.environment.complete(
                    parts[1],
                    "error",
                    json.dumps(
                        {
                            "errorType": "Function.ResponseSizeTooLarge",
                            "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
                        }
                    ).encode(),
                    "Function.ResponseSizeTooLarge",
                )
            return
        error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
        environment = self.server.environment
        if parts == ["init", "error"]:
            environment.init_failed(body, error_type or "Runtime.Unknown")
            self._answer(202, b'{"status":"OK"}')
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            outcome = "response" if parts[2] == "response" else "error"
            if environment.complete(parts[1], outcome, body, error_type):
                self._answer(202, b'{"status":"OK"}')
            else:
                self._answer(400, b'{"errorType":"InvalidRequestID","errorMessage":"unknown or finished request id"}')
        else:
            self._answer(404, b'{"errorType":"InvalidRequest","errorMessage":"unknown path"}')


# ---------------------------------------------------------------- environment


@dataclass
class InitFailure:
    error_type: str
    message: str
    # The document the runtime posted to /init/error, when it did.
    body: Optional[bytes] = None


class Environment:
    """One execution environment: a container and the Runtime API it polls."""

    def __init__(self, config: FunctionConfig, initialization_type: str = "on-demand"):
        self.config = config
        self.initialization_type = initialization_type
        # Kept initialized for provisioned concurrency (Pool.provision).
        self.provisioned = False
        self.id = uuid.uuid4().hex
        day = time.strftime("%Y/%m/%d", time.gmtime())
        self.stream = f"{day}/[{config.version}]{self.id}"
        self.logs = LogSink(config, self.stream)
        self._cond = threading.Condition()
        self._pending: Optional[Invocation] = None
        self._current: Optional[Invocation] = None
        self.ready_wall: Optional[float] = None
        self.started_wall: Optional[float] = None
        self._init_error: Optional[InitFailure] = None
        self.exit: Optional[tuple[int, bool]] = None
        self.stopped = False
        self.busy = False
        self.last_used = time.monotonic()
        self.invocations = 0
        self.container: Any = None
        self.pid: Optional[int] = None
        # Lines of output the pump has passed on to the log, and whether its
        # stream has ended (wait_for_output).
        self._output = threading.Condition()
        self._pumped = 0
        self._pump_done = False
        self.server = _RuntimeApi(self)
        threading.Thread(target=self.server.serve_forever, name=f"runtime-api {self.id}", daemon=True).start()

    @property
    def runtime_api(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    # ---- runtime side

    def next_invocation(self) -> Optional[Invocation]:
        with self._cond:
            if self.ready_wall is None:
                self.ready_wall = time.time()
                self._cond.notify_all()
            while self._pending is None and not self.stopped:
                self._cond.wait(1.0)
            if self.stopped:
                return None
            invocation = self._pending
            assert invocation is not None
            self._pending = None
            self._current = invocation
            invocation.started_wall = time.time()
            invocation.started = time.monotonic()
            invocation.deadline_ms = int((invocation.started_wall + self.config.timeout_s) * 1000)
            start = f"START RequestId: {invocation.request_id} Version: {self.config.version}"
            self.logs.mark(invocation.started_wall, [start], begin=invocation)
        return invocation

    def complete(self, request_id: str, outcome: str, body: bytes, error_type: Optional[str]) -> bool:
        with self._cond:
            invocation = self._current
            if invocation is None or invocation.request_id != request_id:
                return False
            self._current = None
        invocation.finish(outcome, body, error_type)
        return True

    def init_failed(self, body: bytes, error_type: str) -> None:
        try:
            message = str(json.loads(body).get("errorMessage", ""))
        except (ValueError, AttributeError):
            message = body.decode("utf-8", "replace")
        with self._cond:
            self._init_error = InitFailure(error_type, message, body)
            self._cond.notify_all()

    # ---- Lambda side

    def start(self) -> None:
        """Creates and starts the container (the image pulled when the
        local engine does not hold it); raises FunctionUnavailable."""
        import docker.errors

        config = self.config
        refusal = image_refusal(config)
        if refusal is not None:
            raise FunctionUnavailable(refusal)
        client = docker_client()
        try:
            try:
                client.images.get(config.image)
            except docker.errors.ImageNotFound:
                client.images.pull(config.image)
        except docker.errors.DockerException as error:
            raise FunctionUnavailable(f"the image {config.image} cannot be pulled: {error}") from error
        environment = dict(config.environment)
        # "Defined runtime environment variables": Lambda sets these, and
        # they win over the function's own.
        environment.update(
            {
                "AWS_LAMBDA_RUNTIME_API": self.runtime_api,
                "AWS_LAMBDA_FUNCTION_NAME": config.name,
                "AWS_LAMBDA_FUNCTION_VERSION": config.version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": config.log_group,
                "AWS_LAMBDA_LOG_STREAM_NAME": self.stream,
                "AWS_LAMBDA_INITIALIZATION_TYPE": self.initialization_type,
                "AWS_REGION": config.region,
                "AWS_DEFAULT_REGION": config.region,
                "LAMBDA_TASK_ROOT": "/var/task",
                "LAMBDA_RUNTIME_DIR": "/var/runtime",
                "TZ": ":UTC",
            }
        )
        options: dict[str, Any] = {
            "environment": environment,
            "network_mode": "bridge",
            "user": LAMBDA_USER,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "read_only": True,
            "tmpfs": {"/tmp": f"rw,size={config.tmp_mb}m,mode=1777"},
            "mem_limit": f"{config.memory_mb}m",
            "memswap_limit": f"{config.memory_mb}m",
            "labels": {
                LABEL_KIND: KIND,
                LABEL_PORT: moto_port(),
                "moto_ext.function": config.name,
                "moto_ext.version": config.version,
            },
            "name": f"moto-ext-{moto_port()}-{config.name[:40]}-{self.id[:8]}",
        }
        if config.entry_point:
            options["entrypoint"] = list(config.entry_point)
        if config.command:
            options["command"] = list(config.command)
        if config.working_dir:
            options["working_dir"] = config.working_dir
        try:
            container = client.containers.create(config.image, **options)
            with self._cond:
                self.container = container
                stopped = self.stopped
            if stopped:
                # Stopped (its function deleted) while the container was
                # being made: stop() found none to remove.
                container.remove(force=True)
                raise FunctionUnavailable("the environment was stopped while it started")
            # Attached before it starts, so that nothing it prints is lost,
            # not even what a process that dies at once says.
            output = self.container.attach(stdout=True, stderr=True, stream=True, logs=True)
            pump = threading.Thread(target=self._pump, args=(output,), name=f"output {self.id}", daemon=True)
            pump.start()
            self.container.start()
            state = client.api.inspect_container(self.container.id)["State"]
        except docker.errors.DockerException as error:
            self.stop()
            raise FunctionUnavailable(f"the image {config.image} cannot be run: {error}") from error
        self.pid = state.get("Pid") or None
        self.started_wall = _docker_time(state.get("StartedAt")) or time.time()
        threading.Thread(target=self._watch, args=(pump,), name=f"exit {self.id}", daemon=True).start()

    def _pump(self, output: Any) -> None:
        """The function's stdout and stderr, line by line."""
        pending = b""
        try:
            for chunk in output:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.logs.function_line(line.decode("utf-8", "replace").rstrip("\r"))
                with self._output:
                    self._pumped += len(lines)
                    self._output.notify_all()
        except Exception:
            pass
        if pending:
            self.logs.function_line(pending.decode("utf-8", "replace"))
        with self._output:
            self._pump_done = True
            self._output.notify_all()

    def wait_for_output(self, patience: float = OUTPUT_PATIENCE_SECONDS) -> None:
        """Waits, at most ``patience``, until the pump has passed on every
        line Docker had logged by now. The function's output reaches us
        through Docker, its answer straight through the Runtime API; on a
        loaded machine the output came hundreds of milliseconds later, after
        END and even after the next START. Lambda writes what a function
        printed before answering ahead of END (and into Invoke's LogResult)."""
        if self.container is None:
            return
        try:
            logged = docker_client().api.logs(self.container.id, stdout=True, stderr=True, stream=False).count(b"\n")
        except Exception:  # no log to compare with: the grace alone
            return
        deadline = time.monotonic() + patience
        with self._output:
            while self._pumped < logged and not self._pump_done:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._output.wait(left)

    def _watch(self, pump: threading.Thread) -> None:
        """Waits for the process to exit (its output read first)."""
        code, oom = -1, False
        while True:
            try:
                # No timeout: an environment lives as long as it is used.
                code = int(self.container.wait(timeout=None).get("StatusCode", -1))
                oom = bool(docker_client().api.inspect_container(self.container.id)["State"].get("OOMKilled"))
                break
            except Exception:
                if self.stopped:
                    break
                time.sleep(0.5)
        pump.join(timeout=1.0)
        with self._cond:
            self.exit = (code, oom)
            current = self._current
            self._current = None
            self._cond.notify_all()
        if current is not None:
            current.finish("exit")

    def wait_ready(self) -> Optional[InitFailure]:
        """Waits for the runtime's first poll; the failure when it exited,
        reported an init error or took too long."""
        deadline = time.monotonic() + INIT_LIMIT_SECONDS + self.config.timeout_s
        with self._cond:
            while self.ready_wall is None and self._init_error is None and self.exit is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self.ready_wall is not None:
                return None
            if self._init_error is not None:
                return self._init_error
            if self.exit is not None:
                return InitFailure("Runtime.ExitError", exit_text(*self.exit))
        return InitFailure("Sandbox.Timedout", f"Task timed out after {self.config.timeout_s:.2f} seconds")

    def wait_exit(self, seconds: float) -> None:
        with self._cond:
            end = time.monotonic() + seconds
            while self.exit is None and time.monotonic() < end:
                self._cond.wait(end - time.monotonic())

    @property
    def init_ms(self) -> float:
        if self.ready_wall is None or self.started_wall is None:
            return 0.0
        return max(0.0, self.ready_wall - self.started_wall) * 1000

    def run(self, invocation: Invocation) -> None:
        """Hands the event to the runtime and waits for its answer, the
        process's exit or the function's timeout."""
        with self._cond:
            if self.exit is not None or self.stopped:
                invocation.finish("exit")
                return
            self._pending = invocation
            self._cond.notify_all()
        if invocation.done.wait(self.config.timeout_s):
            return
        with self._cond:
            if self._current is invocation:
                self._current = None
            if self._pending is invocation:
                self._pending = None
        invocation.finish("timeout")

    def max_memory_mb(self) -> int:
        return _max_memory_mb(self.pid)

    def stop(self) -> None:
        """Stops the process and the Runtime API; writes what is left of the log."""
        with self._cond:
            if self.stopped:
                return
            self.stopped = True
            self._cond.notify_all()
            # Read with the lock held: a container made after this is
            # removed by start() instead.
            container = self.container
        if container is not None:
            try:
                container.remove(force=True)
            except Exception:
                pass
        self.server.shutdown()
        self.server.server_close()
        self.logs.close()


def exit_text(code: int, oom: bool) -> str:
    if oom or code == 137:
        return "Runtime exited with error: signal: killed"
    if code > 128:
        return f"Runtime exited with error: signal: {code - 128}"
    return f"Runtime exited with error: exit status {code}"


def _docker_time(text: Optional[str]) -> Optional[float]:
    """Docker's RFC 3339 time (nanoseconds, UTC) as epoch seconds."""
    if not text or text.startswith("0001-"):
        return None
    try:
        stamp, _, fraction = text.rstrip("Z").partition(".")
        seconds = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))
        return seconds + float(f"0.{fraction or '0'}")
    except ValueError:
        return None


def _max_memory_mb(pid: Optional[int]) -> int:
    """The environment's peak memory: its cgroup's high-water mark (what
    Lambda reports as Max Memory Used), else the process's peak RSS."""
    if not pid:
        return 0
    try:
        with open(f"/proc/{pid}/cgroup") as cgroups:
            for line in cgroups:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                candidates = []
                if "memory" in controllers.split(","):
                    candidates.append(f"/sys/fs/cgroup/memory{path}/memory.max_usage_in_bytes")
                if controllers == "":
                    candidates.append(f"/sys/fs/cgroup{path}/memory.peak")
                for candidate in candidates:
                    if os.path.exists(candidate):
                        with open(candidate) as peak:
                            return math.ceil(int(peak.read().strip()) / (1024 * 1024))
    except (OSError, ValueError):
        pass
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return math.ceil(int(line.split()[1]) / 1024)
    except (OSError, ValueError):
        pass
    return 0


# ---------------------------------------------------------------- the pool


class Pool:
    """Every environment of this moto, by function version."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._environments: list[Environment] = []
        self._reaper: Optional[threading.Thread] = None

    def _idle_seconds(self) -> float:
        return settings.window("lambda-idle", 300.0)

    def acquire(self, config: FunctionConfig, wait_seconds: float) -> tuple[Environment, bool]:
        """An idle environment of the version (warm), or a new one (cold,
        not started yet). Waits while the version has ``PER_VERSION`` busy
        ones; raises TimeoutError after ``wait_seconds``."""
        to_stop: list[Environment] = []
        deadline = time.monotonic() + wait_seconds
        try:
            with self._cond:
                self._start_reaper()
                while True:
                    mine = [e for e in self._environments if e.config.key == config.key]
                    # A reconfigured $LATEST: its old environments are retired;
                    # so are idle ones whose process is gone (killed outside).
                    for old in [e for e in mine if not e.busy and (e.config != config or e.exit is not None)]:
                        self._environments.remove(old)
                        to_stop.append(old)
                    mine = [e for e in self._environments if e.config == config]
                    idle = [e for e in mine if not e.busy and e.exit is None and not e.stopped]
                    if idle:
                        # Provisioned environments serve first; a request
                        # finds an on-demand one only when they are all
                        # busy ("spillover", Lambda's metrics).
                        chosen = max(idle, key=lambda e: (e.provisioned, e.last_used))
                        chosen.busy = True
                        return chosen, False
                    if len([e for e in self._environments if e.config.key == config.key]) < PER_VERSION:
                        to_stop.extend(self._make_room())
                        environment = Environment(config)
                        environment.busy = True
                        self._environments.append(environment)
                        return environment, True
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError()
                    self._cond.wait(left)
        finally:
            for environment in to_stop:
                _stop_later(environment)

    def _make_room(self) -> list[Environment]:
        """Takes the least recently used idle environments out when the
        pool is full (called with the lock held)."""
        out = []
        while len(self._environments) >= MAX_ENVIRONMENTS:
            idle = [e for e in self._environments if not e.busy and not e.provisioned]
            if not idle:
                break
            oldest = min(idle, key=lambda e: e.last_used)
            self._environments.remove(oldest)
            out.append(oldest)
        return out

    def release(self, environment: Environment, keep: bool) -> None:
        """Gives the environment back; ``keep=False`` stops it (a timeout,
        an exit, a failed init: Lambda resets the environment)."""
        with self._cond:
            environment.busy = False
            environment.last_used = time.monotonic()
            if not keep or environment.exit is not None or environment.stopped:
                if environment in self._environments:
                    self._environments.remove(environment)
                keep = False
            self._cond.notify_all()
        if not keep:
            _stop_later(environment)

    def provision(self, config: FunctionConfig, count: int) -> list[Environment]:
        """Makes ``count`` environments of the version (at most
        ``PER_VERSION``) provisioned: its idle initialized ones first, then
        new ones, returned busy and not started, for the caller to start
        (``start``, ``wait_ready``) and ``release``. The version's other
        environments stop being provisioned."""
        to_stop: list[Environment] = []
        made: list[Environment] = []
        try:
            with self._cond:
                self._start_reaper()
                mine = [e for e in self._environments if e.config == config and e.exit is None and not e.stopped]
                for environment in mine:
                    environment.provisioned = False
                wanted = min(count, PER_VERSION)
                warm = [e for e in mine if not e.busy and e.ready_wall is not None][:wanted]
                for environment in warm:
                    environment.provisioned = True
                while len(warm) + len(made) < wanted and len([e for e in self._environments if e.config.key == config.key]) < PER_VERSION:
                    to_stop.extend(self._make_room())
                    environment = Environment(config, "provisioned-concurrency")
                    environment.busy = environment.provisioned = True
                    self._environments.append(environment)
                    made.append(environment)
        finally:
            for environment in to_stop:
                _stop_later(environment)
        return made

    def unprovision(self, account_id: str, region: str, name: str, version: Optional[str] = None) -> None:
        """The function's (or version's) environments are on-demand again:
        reaped when idle like any other."""
        with self._cond:
            for environment in self._environments:
                if environment.config.key[:3] == (account_id, region, name) and (version is None or environment.config.version == version):
                    environment.provisioned = False
                    environment.last_used = time.monotonic()

    def provisioned(self, config: FunctionConfig) -> list[Environment]:
        """The version's provisioned environments."""
        with self._cond:
            return [e for e in self._environments if e.config == config and e.provisioned]

    def retire(self, account_id: str, region: str, name: str, version: Optional[str] = None) -> None:
        """Stops the environments of a deleted function (or version), now."""
        with self._cond:
            gone = [
                e
                for e in self._environments
                if e.config.key[:3] == (account_id, region, name) and (version is None or e.config.version == version)
            ]
            for environment in gone:
                self._environments.remove(environment)
            self._cond.notify_all()
        for environment in gone:
            environment.stop()

    def stop_all(self) -> None:
        with self._cond:
            gone = list(self._environments)
            self._environments.clear()
            self._cond.notify_all()
        for environment in gone:
            environment.stop()

    def count(self) -> int:
        with self._cond:
            return len(self._environments)

    def _start_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, name="lambda idle reaper", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        while True:
            idle_limit = self._idle_seconds()
            time.sleep(max(0.5, min(idle_limit / 4, 30.0)))
            now = time.monotonic()
            with self._cond:
                gone = [e for e in self._environments if not e.busy and not e.provisioned and now - e.last_used > idle_limit]
                for environment in gone:
                    self._environments.remove(environment)
            for environment in gone:
                environment.stop()


def _stop_later(environment: Environment) -> None:
    threading.Thread(target=environment.stop, name=f"stop {environment.id}", daemon=True).start()


POOL = Pool()
atexit.register(POOL.stop_all)


def tail(lines: list[str], limit: int = 4096) -> str:
    """The last ``limit`` bytes of the log, base64, as Invoke's LogResult."""
    text = "".join(line + "\n" for line in lines).encode("utf-8")
    return base64.b64encode(text[-limit:]).decode("ascii")


def billed_ms(duration_ms: float) -> int:
    return max(1, math.ceil(duration_ms))


def report_line(invocation: Invocation, config: FunctionConfig, used_mb: int, init_ms: Optional[float], status: Optional[str] = None, error_type: Optional[str] = None) -> str:
    line = (
        f"REPORT RequestId: {invocation.request_id}\tDuration: {invocation.duration_ms:.2f} ms\t"
        f"Billed Duration: {billed_ms(invocation.duration_ms)} ms\tMemory Size: {config.memory_mb} MB\t"
        f"Max Memory Used: {used_mb} MB\t"
    )
    if init_ms is not None:
        line += f"Init Duration: {init_ms:.2f} ms\t"
    if status is not None:
        line += f"Status: {status}\t"
        if error_type:
            line += f"Error Type: {error_type}\t"
    return line


def iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"

