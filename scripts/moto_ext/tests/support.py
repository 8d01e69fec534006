"""What the extension's tests share: boto3 clients aimed at the local AWS,
unique names, and the fixture function (``fixture_function.rs``) built into a
``FROM scratch`` image and pushed to the local registry, once per run."""

import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from typing import Any, Optional

import boto3
import docker

ACCOUNT = "123456789012"
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "fixture_function.rs")


def endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5000").rstrip("/")


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def client(service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint(),
        region_name=region(),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )


_counter = 0
_counter_lock = threading.Lock()


def unique(prefix: str) -> str:
    global _counter
    with _counter_lock:
        _counter += 1
        n = _counter
    return f"{prefix}-{int(time.time()) % 100000:05d}-{os.getpid()}-{n}"


def require_extension(test: unittest.TestCase) -> None:
    try:
        with urllib.request.urlopen(f"{endpoint()}/_local-aws/status", timeout=5) as answer:
            status = json.load(answer)
    except (urllib.error.URLError, ValueError) as error:
        raise AssertionError(
            f"moto with the extension does not answer at {endpoint()} ({error}); start it with scripts/local-cloud up"
        )
    missing = {"lambda-run-images", "apigw-dataplane", "lambda-qualifiers"} - set(status.get("behaviours", []))
    if missing:
        raise AssertionError(f"the local AWS at {endpoint()} lacks {sorted(missing)}: {status}")


_image: Optional[str] = None
_image_lock = threading.Lock()


def fixture_image() -> str:
    """The fixture function's image by digest in the local registry."""
    global _image
    with _image_lock:
        if _image is None:
            _image = _build_image()
        return _image


def _build_image() -> str:
    with open(SOURCE, "rb") as source:
        digest = hashlib.sha256(source.read()).hexdigest()[:16]
    repository = f"{ACCOUNT}.dkr.ecr.{region()}.amazonaws.com/moto-ext-fixture"
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
                ["rustc", "--edition", "2021", "-O", "-C", "target-feature=+crt-static", "-C", "strip=symbols", SOURCE, "-o", binary],
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
            image, _ = engine.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    for line in engine.api.push(repository, tag=f"f{digest}", stream=True, decode=True):
        if "error" in line:
            raise AssertionError(f"pushing the fixture image failed: {line['error']}")
    image = engine.images.get(tag)
    digests = [d for d in image.attrs.get("RepoDigests", []) if d.startswith(repository + "@")]
    if not digests:
        raise AssertionError(f"the fixture image has no digest in {repository}: {image.attrs.get('RepoDigests')}")
    return digests[0]


_role: Optional[str] = None


def role_arn() -> str:
    global _role
    if _role is None:
        iam = client("iam")
        name = unique("moto-ext-fixture-role")
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
        }
        _role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    return _role


def create_function(name: str, environment: Optional[dict[str, str]] = None, **options: Any) -> dict[str, Any]:
    """The fixture image as the function ``name``."""
    spec: dict[str, Any] = {
        "FunctionName": name,
        "PackageType": "Image",
        "Code": {"ImageUri": options.pop("image", None) or fixture_image()},
        "Role": role_arn(),
        "MemorySize": options.pop("memory", 256),
        "Timeout": options.pop("timeout", 10),
        "Environment": {"Variables": environment or {}},
    }
    spec.update(options)
    return client("lambda").create_function(**spec)


def environments(name: str) -> list[Any]:
    """The running containers of the function ``name``."""
    return docker.from_env().containers.list(
        filters={"label": ["moto_ext.kind=lambda-environment", f"moto_ext.function={name}"]}
    )


def invoke(name: str, payload: Any = None, **options: Any) -> dict[str, Any]:
    answer = client("lambda").invoke(
        FunctionName=name, Payload=json.dumps(payload if payload is not None else {}).encode(), **options
    )
    answer["Body"] = answer["Payload"].read()
    return answer


class DeletesFunctions(unittest.TestCase):
    """Deletes the functions a test made (which stops their environments)."""

    def setUp(self) -> None:
        require_extension(self)
        self.functions: list[str] = []

    def tearDown(self) -> None:
        for name in self.functions:
            try:
                client("lambda").delete_function(FunctionName=name)
            except Exception:
                pass

    def function(self, prefix: str, environment: Optional[dict[str, str]] = None, **options: Any) -> str:
        name = unique(prefix)
        create_function(name, environment, **options)
        self.functions.append(name)
        return name
