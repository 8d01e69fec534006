"""What the extension's tests share: the endpoint under test, a second moto
of ours with every strict behaviour switched off, AWS clients, and
reading errors the way an AWS SDK does.

The behaviours are shown in force on the endpoint under test
(``MOTO_EXT_TEST_ENDPOINT``, else ``AWS_ENDPOINT_URL``, else moto's
default port), which ``scripts/test`` points at the moto it started. Their
switches are shown to work on moto servers these tests start themselves
(from this checkout's ``scripts/moto_ext``, on free ports): one with
``LOCAL_AWS_STRICT_<NAME>=0`` for every behaviour, and one strict server
that the reset test may reset without touching anyone else's state.
"""

import atexit
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import boto3
import botocore.config
import botocore.exceptions

SCRIPTS = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
BEHAVIOURS = [
    "lambda-not-found",
    "lambda-states",
    "iam-get-role",
    "iam-role-assumable",
    "iam-xray",
    "iam-delete-conflict",
    "logs-race",
    "logs-describe-lag",
    "apigw-delete-rest-api",
    "apigw-create-deployment",
    "apigw-update-usage-plan",
]


def endpoint() -> str:
    return (
        os.environ.get("MOTO_EXT_TEST_ENDPOINT")
        or os.environ.get("AWS_ENDPOINT_URL")
        or "http://127.0.0.1:5000"
    ).rstrip("/")


def http(url: str, body: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.read().decode()
    return json.loads(text) if text else {}


def status(url: str) -> dict[str, Any]:
    return http(f"{url}/_local-aws/status")


def window(url: str, name: str) -> float:
    """The window ``name`` of the server at ``url``, in seconds."""
    return float(status(url)["windows"][name])


def client(service: str, url: str, region: str = REGION) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        # One attempt: a test must see what the server answered, not what
        # the SDK's retries made of it.
        config=botocore.config.Config(retries={"total_max_attempts": 1}),
    )


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


def eventually(call: Callable[[], Any], seconds: float) -> Any:
    """``call``'s answer once it stops failing, retrying for ``seconds``
    (a closed window lets it through)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except botocore.exceptions.ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A moto server with the extension, started by a test, with ``env``."""

    def __init__(self, env: dict[str, str]):
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
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto_ext", "-H", "127.0.0.1", "-p", str(self.port)],
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def wait(self) -> "Server":
        deadline = time.monotonic() + 90
        while True:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode() if self.process.stdout else ""
                raise RuntimeError(f"moto_ext on port {self.port} exited:\n{output}")
            try:
                status(self.url)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto_ext on port {self.port} did not answer within 90 s")
                time.sleep(0.3)
        # As scripts/local-cloud does: invokes answer without Docker.
        http(f"{self.url}/moto-api/config", {"lambda": {"use_docker": False}})
        return self

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_SERVERS: dict[str, Server] = {}


def start_servers() -> None:
    """Starts (once) the switched-off server and the private strict one,
    side by side."""
    if _SERVERS:
        return
    atexit.register(stop_servers)
    switched_off = {f"LOCAL_AWS_STRICT_{b.upper().replace('-', '_')}": "0" for b in BEHAVIOURS}
    _SERVERS["off"] = Server(switched_off)
    _SERVERS["private"] = Server({"LOCAL_AWS_TIME_SCALE": "0.1"})
    for server in _SERVERS.values():
        server.wait()


def stop_servers() -> None:
    for server in _SERVERS.values():
        server.stop()
    _SERVERS.clear()


def switched_off() -> str:
    """A moto of ours with every behaviour's own switch set to 0."""
    start_servers()
    return _SERVERS["off"].url


def private_strict() -> str:
    """A strict moto of ours nobody else uses (safe to reset)."""
    start_servers()
    return _SERVERS["private"].url
