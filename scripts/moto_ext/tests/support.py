"""What the extension's tests share: the endpoint under test and moto servers
of our own, AWS clients that wait as clients of real AWS must, the fixture
function's image, and reading errors the way an AWS SDK does.

The behaviours are shown in force on the endpoint under test
(``MOTO_EXT_TEST_ENDPOINT``, else ``AWS_ENDPOINT_URL``, else moto's
default port), which ``scripts/test`` points at the moto it started; what
happens inside a window, on a moto of ours whose windows are wider. Their
switches are shown to work on moto servers these tests start themselves
(from this checkout's ``scripts/moto_ext``, on free ports): one with
``LOCAL_AWS_STRICT_<NAME>=0`` for every behaviour, one strict server
that the reset test may reset without touching anyone else's state, and
one strict server with wider windows for the tests that look inside them
(see "looking inside a window").

The endpoint under test is strict: every test is a client that waits where
AWS documents a wait, so that a test of one behaviour does not trip over
another. A function is ``Pending`` after CreateFunction and a version after
PublishVersion, ``LastUpdateStatus`` is ``InProgress`` after an update
("Lambda function states",
https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html: use the
waiters ``function_active_v2``, ``function_updated_v2`` and
``published_version_active``); a new role cannot be assumed by Lambda for a
while (IAM eventual consistency: ask again); API Gateway's control-plane
quotas answer 429 (ask again later). Tests about those very answers make
the raw calls instead and look at what comes back.
"""

import atexit
import datetime
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import unittest
from unittest import mock
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import boto3
import botocore.config
import botocore.exceptions
import docker

SCRIPTS = Path(__file__).resolve().parents[2]
FIXTURE_SOURCE = Path(__file__).resolve().parent / "fixture_function.rs"
REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
ACCOUNT = "123456789012"
# The data plane: image functions run, stages serve.
DATA_PLANE = ["lambda-qualifiers", "lambda-run-images", "apigw-dataplane", "ecr-registry"]
# AWS's documented refusals and windows.
STRICT = [
    "lambda-not-found",
    "lambda-states",
    "lambda-version-numbers",
    "lambda-inactive",
    "lambda-role-grant",
    "iam-get-role",
    "iam-role-assumable",
    "iam-xray",
    "iam-delete-conflict",
    "logs-race",
    "logs-describe-lag",
    "logs-deleted-tags",
    "logs-insights",
    "logs-read-quota",
    "logs-filter-page",
    "logs-put-limits",
    "apigw-delete-rest-api",
    "apigw-create-deployment",
    "apigw-update-usage-plan",
    "ecr-scan-default",
]
# What AWS measures and limits of the data plane.
MEASURED = [
    "cloudwatch-statistics",
    "cloudwatch-cbor",
    "lambda-metrics",
    "apigw-metrics",
    "lambda-reserved-concurrency",
    "lambda-provisioned-concurrency",
]
# IAM as AWS authorizes it, once moto enforces IAM (checked end to end by
# crates/deployer/tests/it/iam_policy.rs, on a moto of its own).
IAM_AUTH = [
    "iam-auth-signature",
    "iam-auth-actions",
    "iam-auth-resources",
    "iam-auth-pass-role",
    "iam-auth-errors",
]
BEHAVIOURS = DATA_PLANE + MEASURED + STRICT + IAM_AUTH
# Custom domains, alarms and who they notify (issue #23).
DOMAINS_AND_ALARMS = [
    "acm-dns-validation",
    "acm-in-use",
    "apigw-domain-certificate",
    "apigw-base-path-mappings",
    "apigw-domain-dataplane",
    "route53-record-changes",
    "route53-alias-targets",
    "route53-propagation",
    "sns-http-delivery",
    "cloudwatch-alarms",
]
BEHAVIOURS += DOMAINS_AND_ALARMS
# What the deployer's custom domain needed besides: tagging a domain name,
# and record values as Route 53 writes them.
BEHAVIOURS += ["apigw-domain-tags", "route53-record-values"]
TRUST = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
ROLE_NOT_ASSUMABLE = "The role defined for the function cannot be assumed by Lambda."
# How often a waiting client asks again, and for how long at most (far
# beyond any window, even unscaled).
POLL_SECONDS = 0.1
PATIENCE_SECONDS = 90.0
# The time scale of the moto the window tests run on (``wide_windows``).
WIDE_TIME_SCALE = "0.2"


def endpoint() -> str:
    return (
        os.environ.get("MOTO_EXT_TEST_ENDPOINT")
        or os.environ.get("AWS_ENDPOINT_URL")
        or "http://127.0.0.1:5000"
    ).rstrip("/")


def http(url: str, body: Optional[dict[str, Any]] = None, timeout: float = 10) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        text = answer.read().decode()
    return json.loads(text) if text else {}


def status(url: str) -> dict[str, Any]:
    return http(f"{url}/_local-aws/status")


def window(url: str, name: str) -> float:
    """The window ``name`` of the server at ``url``, in seconds."""
    windows = status(url)["windows"]
    if name not in windows:
        raise AssertionError(f"the local AWS at {url} has no window {name} (is its behaviour switched off?)")
    return float(windows[name])


_clients: dict[tuple[str, str, str], Any] = {}
_clients_lock = threading.Lock()


def client(service: str, url: Optional[str] = None, region: str = REGION) -> Any:
    """The SDK client of ``service`` at ``url``, made once and shared:
    making one costs a tenth of a second and more on a loaded machine, time
    a test would otherwise spend inside the window it looks into (botocore's
    clients are thread-safe; only their making is not)."""
    key = (service, url or endpoint(), region)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = boto3.client(
                service,
                endpoint_url=key[1],
                region_name=region,
                aws_access_key_id="test",
                aws_secret_access_key="test",
                # One attempt: a test must see what the server answered, not
                # what the SDK's retries made of it; where a client waits, it
                # says so.
                config=botocore.config.Config(retries={"total_max_attempts": 1}),
            )
        return _clients[key]


def cbor_client(url: Optional[str] = None) -> Any:
    """A CloudWatch client that speaks Smithy RPC v2 CBOR, as the current
    Rust SDK does (boto3 prefers JSON 1.0 when a service offers both).
    Made under the clients' lock: the protocol preference it patches is
    botocore's global, and the modules' tests run side by side, so another
    thread making a client meanwhile would get CBOR (or fail: Lambda has
    none)."""
    with _clients_lock, mock.patch("botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", ("smithy-rpc-v2-cbor",)):
        cloudwatch = boto3.client(
            "cloudwatch",
            endpoint_url=url or endpoint(),
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=botocore.config.Config(retries={"total_max_attempts": 1}),
        )
    assert cloudwatch.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    return cloudwatch


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Refused:
    """An AWS error as the SDK read it."""

    def __init__(self, err: botocore.exceptions.ClientError):
        meta = err.response.get("ResponseMetadata", {})
        self.status: int = meta.get("HTTPStatusCode", 0)
        self.headers: dict[str, str] = {k.lower(): v for k, v in meta.get("HTTPHeaders", {}).items()}
        self.code: str = err.response.get("Error", {}).get("Code", "")
        self.message: str = err.response.get("Error", {}).get("Message", "")

    def __repr__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def refused(call: Callable[[], Any]) -> Optional[Refused]:
    """The error ``call`` met, or ``None`` when it succeeded."""
    try:
        call()
    except botocore.exceptions.ClientError as err:
        return Refused(err)
    return None


# ---------------------------------------------------------------- waiting as a client of AWS


def asked_again(call: Callable[[], Any], not_yet: Callable[[Refused], bool]) -> Any:
    """``call``'s answer, asked again while AWS answers what ``not_yet``
    says time cures; any other error is raised at once."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        try:
            return call()
        except botocore.exceptions.ClientError as err:
            if not not_yet(Refused(err)) or time.monotonic() > deadline:
                raise
        time.sleep(POLL_SECONDS)


def role_not_assumable_yet(err: Refused) -> bool:
    """IAM has not propagated the role to Lambda yet ("Troubleshoot IAM:
    Changes that I make are not always immediately visible")."""
    return err.code == "InvalidParameterValueException" and err.message == ROLE_NOT_ASSUMABLE


def throttled(err: Refused) -> bool:
    """A quota's 429 TooManyRequestsException (API Gateway API reference,
    Common errors)."""
    return err.status == 429


def new_role(url: Optional[str] = None) -> tuple[str, str]:
    """A new role trusting Lambda: its name and ARN."""
    role = client("iam", url).create_role(RoleName=name("ext-role"), AssumeRolePolicyDocument=TRUST)["Role"]
    return role["RoleName"], role["Arn"]


_roles: dict[str, str] = {}
_roles_lock = threading.Lock()


def lambda_role(url: Optional[str] = None) -> str:
    """The ARN of a role for functions, one per server, made on first use.
    ``create_function`` waits until Lambda can assume it."""
    url = url or endpoint()
    with _roles_lock:
        if url not in _roles:
            _roles[url] = new_role(url)[1]
        return _roles[url]


def function_spec(function: str, role: str, environment: Optional[dict[str, str]] = None, **options: Any) -> dict[str, Any]:
    """CreateFunction's request for the fixture image as ``function``
    (``image``, ``memory`` and ``timeout`` among ``options``; the rest
    passed as they are). Without ``memory``, Lambda's default, 128 MB."""
    spec: dict[str, Any] = {
        "FunctionName": function,
        "PackageType": "Image",
        "Code": {"ImageUri": options.pop("image", None) or fixture_image()},
        "Role": role,
        "Timeout": options.pop("timeout", 10),
        "Environment": {"Variables": environment or {}},
    }
    if "memory" in options:
        spec["MemorySize"] = options.pop("memory")
    spec.update(options)
    return spec


def create_function(url: Optional[str] = None, prefix: str = "ext-fn", role: Optional[str] = None, environment: Optional[dict[str, str]] = None, wait_for_role: bool = True, **options: Any) -> str:
    """Creates a function of the fixture image (``function_spec``) and
    returns its name, asking again while Lambda cannot assume the role yet
    (unless ``wait_for_role`` is false). The function is then ``Pending``:
    see ``wait_until_active``."""
    function = name(prefix)
    spec = function_spec(function, role or lambda_role(url), environment, **options)
    lam = client("lambda", url)
    if wait_for_role:
        asked_again(lambda: lam.create_function(**spec), role_not_assumable_yet)
    else:
        lam.create_function(**spec)
    return function


def wait_until_active(lam: Any, function: str, qualifier: Optional[str] = None) -> None:
    """Waits with Lambda's own waiters until ``$LATEST`` is ``Active`` with
    no update in progress, or the published version ``qualifier`` is
    ``Active``."""
    config = {"Delay": POLL_SECONDS, "MaxAttempts": int(PATIENCE_SECONDS / POLL_SECONDS)}
    if qualifier is None or qualifier == "$LATEST":
        lam.get_waiter("function_active_v2").wait(FunctionName=function, WaiterConfig=config)
        lam.get_waiter("function_updated_v2").wait(FunctionName=function, WaiterConfig=config)
    else:
        lam.get_waiter("published_version_active").wait(FunctionName=function, Qualifier=qualifier, WaiterConfig=config)


def publish_version(lam: Any, function: str) -> str:
    """Publishes ``$LATEST`` once it is ready; returns the version, waited
    until it is ``Active`` (invocable)."""
    wait_until_active(lam, function)
    version = lam.publish_version(FunctionName=function)["Version"]
    wait_until_active(lam, function, version)
    return version


def invoke(function: str, payload: Any = None, url: Optional[str] = None, **options: Any) -> dict[str, Any]:
    """Invoke's answer, its payload read into ``Body``."""
    answer = client("lambda", url).invoke(
        FunctionName=function, Payload=json.dumps(payload if payload is not None else {}).encode(), **options
    )
    answer["Body"] = answer["Payload"].read()
    return answer


def delete_function(function: str, url: Optional[str] = None) -> None:
    """Deletes the function (which stops its execution environments), if
    it is still there."""
    lam = client("lambda", url)
    try:
        lam.delete_function(FunctionName=function)
    except lam.exceptions.ResourceNotFoundException:
        pass


def require_data_plane() -> None:
    """Fails unless the endpoint under test runs the data plane."""
    try:
        behaviours = set(status(endpoint()).get("behaviours", []))
    except (OSError, ValueError) as error:
        raise AssertionError(f"moto with the extension does not answer at {endpoint()} ({error}); start it with scripts/local-cloud up")
    missing = set(DATA_PLANE) - behaviours
    if missing:
        raise AssertionError(f"the local AWS at {endpoint()} lacks {sorted(missing)}")


class FunctionsTest(unittest.TestCase):
    """A test that makes functions; they are deleted when it ends."""

    def new_function(self, url: Optional[str] = None, **options: Any) -> str:
        """``create_function``: the function is ``Pending``."""
        function = create_function(url, **options)
        self.addCleanup(delete_function, function, url)
        return function

    def active_function(self, url: Optional[str] = None, **options: Any) -> str:
        """``create_function``, waited until ``Active``."""
        function = self.new_function(url, **options)
        wait_until_active(client("lambda", url), function)
        return function


# ---------------------------------------------------------------- looking inside a window
#
# A test that asserts what happens inside a window means nothing when the
# client was slower than the window. On 2 cores beside a cargo build (load
# 3 to 8), a look of four or five calls into a 0.5 s window took 0.6 to 0.7
# s on the endpoint under test, whose one process also serves the data
# plane's containers for the other modules. So these tests run on a moto of
# their own (``wide_windows``), whose windows are twice as long (1 s for
# most), and a run that took longer than its window is run again
# (``inside_window``). The waits after a window grow by its length only on
# the modules that are not the family's longest (the runtime's).


# How many times a scenario is run when the client was too slow to see
# inside its window (a void observation, not a defect).
WINDOW_TRIES = 4
T = TypeVar("T")


class Stopwatch:
    """Started by a scenario just before the call that opens its window:
    the server opens it later, so the time measured from here to the last
    look inside is never less than the window's age at that look."""

    def __init__(self) -> None:
        self.started: Optional[float] = None

    def start(self) -> None:
        self.started = time.monotonic()

    def elapsed(self) -> Optional[float]:
        return None if self.started is None else time.monotonic() - self.started


def inside_window(url: str, window_name: str, scenario: Callable[[Stopwatch], T], tries: int = WINDOW_TRIES) -> T:
    """``scenario``'s answer, from a run that looked inside the window
    ``window_name`` in time.

    ``scenario`` makes what it needs, starts the stopwatch just before the
    call that opens the window, makes its assertions about what happens
    inside it and returns; what happens after the window is the caller's.
    A run that took the window's length or more, asserting or not, observed
    nothing (the window may have closed under it), so the scenario is run
    again, up to ``tries`` times; a failed assertion from a run in time is
    a real failure, raised as it is. Rerunning costs nothing on an idle
    machine, while a longer window (a larger time scale) would cost every
    run its length again in the waits after it."""
    seconds = window(url, window_name)
    slow: list[float] = []
    for _ in range(tries):
        watch = Stopwatch()
        try:
            answer = scenario(watch)
        except AssertionError:
            took = watch.elapsed()
            if took is None or took < seconds:
                raise
            slow.append(took)
            continue
        took = watch.elapsed()
        if took is None:
            raise AssertionError("the scenario never started its stopwatch")
        if took < seconds:
            return answer
        slow.append(took)
    raise AssertionError(
        f"never inside the {seconds:.2f} s window {window_name} in {tries} tries: the client took "
        f"{', '.join(f'{t:.2f}' for t in slow)} s from the call that opens it to its last look inside "
        "(a machine this loaded needs wider windows: WIDE_TIME_SCALE)"
    )


# ---------------------------------------------------------------- the fixture function's image


_image: Optional[str] = None
_image_lock = threading.Lock()


def fixture_image() -> str:
    """The fixture function (``fixture_function.rs``) built into a ``FROM
    scratch`` image and pushed to the local registry, once per run; by
    digest."""
    global _image
    with _image_lock:
        if _image is None:
            _image = _build_image()
        return _image


def _build_image() -> str:
    digest = hashlib.sha256(FIXTURE_SOURCE.read_bytes()).hexdigest()[:16]
    repository = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/moto-ext-fixture"
    tag = f"{repository}:f{digest}"
    engine = docker.from_env()
    try:
        image = engine.images.get(tag)
    except docker.errors.ImageNotFound:
        image = None
    if image is None:
        with tempfile.TemporaryDirectory() as work:
            binary = os.path.join(work, "bootstrap")
            subprocess.run(
                ["rustc", "--edition", "2021", "-O", "-C", "target-feature=+crt-static", "-C", "strip=symbols", str(FIXTURE_SOURCE), "-o", binary],
                check=True,
            )
            context = io.BytesIO()
            with tarfile.open(fileobj=context, mode="w") as tar:
                dockerfile = b'FROM scratch\nCOPY bootstrap /var/task/bootstrap\nENTRYPOINT ["/var/task/bootstrap"]\n'
                info = tarfile.TarInfo("Dockerfile")
                info.size = len(dockerfile)
                tar.addfile(info, io.BytesIO(dockerfile))
                info = tar.gettarinfo(binary, "bootstrap")
                info.mode = 0o755
                with open(binary, "rb") as data:
                    tar.addfile(info, data)
            context.seek(0)
            engine.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    for line in engine.api.push(repository, tag=f"f{digest}", stream=True, decode=True):
        if "error" in line:
            raise AssertionError(f"pushing the fixture image failed: {line['error']}")
    image = engine.images.get(tag)
    digests = [d for d in image.attrs.get("RepoDigests", []) if d.startswith(repository + "@")]
    if not digests:
        raise AssertionError(f"the fixture image has no digest in {repository}: {image.attrs.get('RepoDigests')}")
    return digests[0]


def environments(function: str, exited_too: bool = False) -> list[Any]:
    """The running execution environments (containers) of ``function``;
    with ``exited_too``, those whose process has ended as well."""
    return docker.from_env().containers.list(
        all=exited_too, filters={"label": ["moto_ext.kind=lambda-environment", f"moto_ext.function={function}"]}
    )


# ---------------------------------------------------------------- moto servers of our own


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A moto server with the extension, started by a test, with ``env``."""

    def __init__(self, env: dict[str, str], when_up: Optional[Callable[[str], Any]] = None):
        """``when_up``: what to tell the server once it answers."""
        self.when_up = when_up
        self._up = False
        self._lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full = dict(os.environ)
        for key in list(full):
            if key.startswith("LOCAL_AWS_"):
                del full[key]
        full.update(
            {
                "PYTHONPATH": str(SCRIPTS),
                "PYTHONDONTWRITEBYTECODE": "1",
                "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
            }
        )
        full.update(env)
        # To a file, not a pipe nobody reads: a server logs every request,
        # and one that filled a pipe's buffer would stop answering.
        self.output = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto_ext", "-H", "127.0.0.1", "-p", str(self.port)],
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )

    def wait(self) -> "Server":
        """The server, once it answers."""
        with self._lock:
            if not self._up:
                self._wait_up()
                self._up = True
        return self

    def _wait_up(self) -> None:
        deadline = time.monotonic() + 90
        while True:
            if self.process.poll() is not None:
                self.output.seek(0)
                output = self.output.read().decode("utf-8", "replace")
                raise RuntimeError(f"moto_ext on port {self.port} exited:\n{output}")
            try:
                status(self.url)
                if self.when_up:
                    self.when_up(self.url)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto_ext on port {self.port} did not answer within 90 s")
                time.sleep(0.3)

    def ask_to_stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> None:
        """Ends the server; ``ask_to_stop`` first lets several end at once."""
        self.ask_to_stop()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_SERVERS: dict[str, Server] = {}
_servers_lock = threading.Lock()


def start_servers() -> None:
    """Starts (once) the switched-off server, the private strict one and
    the one with wide windows, side by side; each test waits only for the
    one it uses (starting one takes seconds of CPU, tens on a loaded
    machine)."""
    with _servers_lock:
        if _SERVERS:
            return
        atexit.register(stop_servers)
        # The data plane's switches too: the switched-off server is moto as
        # it was before the extension.
        off = {f"LOCAL_AWS_STRICT_{b.upper().replace('-', '_')}": "0" for b in BEHAVIOURS}
        # Without lambda-run-images, moto's full backend cannot invoke an
        # image function; its simple backend answers with the payload.
        _SERVERS["off"] = Server(off, lambda url: http(f"{url}/moto-api/config", {"lambda": {"use_docker": False}}))
        _SERVERS["private"] = Server({"LOCAL_AWS_TIME_SCALE": "0.1"})
        _SERVERS["wide"] = Server({"LOCAL_AWS_TIME_SCALE": WIDE_TIME_SCALE})


def stop_servers() -> None:
    for server in _SERVERS.values():
        server.ask_to_stop()
    for server in _SERVERS.values():
        server.stop()
    _SERVERS.clear()


def switched_off() -> str:
    """A moto of ours with every behaviour's own switch set to 0."""
    start_servers()
    return _SERVERS["off"].wait().url


def private_strict() -> str:
    """A strict moto of ours nobody else uses (safe to reset)."""
    start_servers()
    return _SERVERS["private"].wait().url


def wide_windows() -> str:
    """A strict moto of ours with windows twice as long as the endpoint
    under test's, for the tests that look inside one (``inside_window``)."""
    start_servers()
    return _SERVERS["wide"].wait().url


# ---------------------------------------------------------------- CloudWatch metrics


def metric(namespace: str, metric_name: str, dimensions: dict[str, str], statistics: Optional[list[str]] = None, percentiles: Optional[list[str]] = None) -> dict[str, Any]:
    """GetMetricStatistics of the last ten minutes in one period: the one
    datapoint (its ExtendedStatistics as they came), or {} when nothing was
    published."""
    now = datetime.datetime.now(datetime.timezone.utc)
    options: dict[str, Any] = {"Statistics": statistics or ["Sum", "SampleCount"]}
    if percentiles:
        options["ExtendedStatistics"] = percentiles
    answer = client("cloudwatch").get_metric_statistics(
        Namespace=namespace,
        MetricName=metric_name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - datetime.timedelta(minutes=10),
        EndTime=now + datetime.timedelta(minutes=1),
        Period=3600,
        **options,
    )
    points = answer["Datapoints"]
    if len(points) > 1:
        raise AssertionError(f"more than one datapoint in one period: {points}")
    return points[0] if points else {}
