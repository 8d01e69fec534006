"""CloudWatch spoken in Smithy RPC v2 CBOR, the protocol current AWS SDKs use
for it, in front of moto's CloudWatch, which answers only AWS Query and AWS
JSON 1.0 (getmoto/moto#9195: "no current (or planned) support in Moto for
the RPC v2 CBOR protocol").

"FAQs on CloudWatch supported protocols"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-protocols-faq.html):
CloudWatch accepts AWS Query, AWS JSON 1.0 and Smithy RPC v2 CBOR, and "AWS
SDKs will prioritize the protocol that is the most performant for each
language"; the Rust SDK's ``aws-sdk-cloudwatch`` speaks CBOR since 1.100. "Smithy RPC v2 CBOR protocol"
(https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html):
``POST /service/{service}/operation/{operation}`` with header
``smithy-protocol: rpc-v2-cbor``; request and response bodies are CBOR maps
of the operation's input and output, timestamps tagged 1 (epoch seconds);
the response carries ``smithy-protocol: rpc-v2-cbor`` too, and an error is a
CBOR map with ``__type`` (and ``message``), its HTTP status the error's.
CloudWatch is "awsQueryCompatible": the ``x-amzn-query-error`` header names
the Query error code, as in JSON.

The route decodes the request's CBOR with botocore's own decoder, hands moto
the same operation as JSON 1.0 (``X-Amz-Target:
GraniteServiceVersion20100801.{operation}``), and writes moto's answer back
as CBOR through CloudWatch's service model (so timestamps are tagged as the
SDKs expect). What the operation does stays moto's, with the extension's
patches (``cloudwatch_metrics``).

Switch: ``LOCAL_AWS_STRICT_CLOUDWATCH_CBOR=0`` (then CBOR requests reach
moto, which does not understand them).
"""

import base64
import gzip
import io
import json
from datetime import datetime
from typing import Any, Callable, Iterable

import botocore.session
from botocore.parsers import JSONParser
from botocore.serialize import CBORSerializer

from moto.core.exceptions import RESTError

from . import iam_auth, routes, settings
from .cbor import Decoder

NAME = "cloudwatch-cbor"
SERVICE = "GraniteServiceVersion20100801"
PREFIX = f"/service/{SERVICE}/operation/"

_model: Any = None


def _service_model() -> Any:
    global _model
    if _model is None:
        _model = botocore.session.get_session().get_service_model("cloudwatch")
    return _model


class _Encoder(CBORSerializer):
    # Tag 1 carries epoch seconds.
    TIMESTAMP_FORMAT = "unixtimestamp"

    def encode_shape(self, value: Any, shape: Any) -> bytes:
        out = bytearray()
        self._serialize_data_item(out, value, shape)
        return bytes(out)

    def encode_strings(self, value: dict[str, str]) -> bytes:
        """A map of strings, for an error (no shape to follow)."""
        out = bytearray()
        info, size = self._get_additional_info_and_num_bytes(len(value))
        out.extend(self._get_initial_byte(self.MAP_MAJOR_TYPE, info))
        if size:
            out.extend(len(value).to_bytes(size, "big"))
        for key, item in value.items():
            self._serialize_type_string(out, key, None, None)
            self._serialize_type_string(out, str(item), None, None)
        return bytes(out)


def _json_default(value: Any) -> Any:
    # JSON 1.0 writes timestamps as epoch seconds.
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _answer(start_response: Callable[..., Any], status: str, headers: list[tuple[str, str]], body: bytes) -> Iterable[bytes]:
    headers = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length", "smithy-protocol")]
    headers += [("Content-Type", "application/cbor"), ("Content-Length", str(len(body))), ("smithy-protocol", "rpc-v2-cbor")]
    start_response(status, headers)
    return [body]


def _error(start_response: Callable[..., Any], status: str, code: str, message: str, headers: list[tuple[str, str]]) -> Iterable[bytes]:
    body = _Encoder().encode_strings({"__type": code, "message": message})
    return _answer(start_response, status, headers, body)


def _serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    operation_name = environ.get("PATH_INFO", "")[len(PREFIX) :]
    model = _service_model()
    try:
        operation = model.operation_model(operation_name)
    except Exception:
        return _error(start_response, "404 Not Found", "UnknownOperationException", f"no operation {operation_name}", [])
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        # Checked here, over the bytes the client signed; moto then skips
        # its own check of the translation (iam_auth.AUTHORIZED).
        iam_auth.authorize(environ, iam_auth.region_account(environ)[1], operation_name, raw)
    except RESTError as error:
        return _error(start_response, f"{error.code} Error", error.error_type, error.message, [])
    if environ.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
        # PutMetricData's bodies of 10 KiB and more come compressed (its
        # requestCompression trait).
        raw = gzip.decompress(raw)
    try:
        params = Decoder().decode(raw)
    except Exception as err:  # botocore's decoder raises its own parser errors
        return _error(start_response, "400 Bad Request", "SerializationException", f"the body is not CBOR: {err}", [])
    body = json.dumps(params, default=_json_default).encode()

    inner = dict(environ)
    inner["PATH_INFO"] = "/"
    inner["REQUEST_URI"] = inner["RAW_URI"] = "/"
    inner["CONTENT_TYPE"] = "application/x-amz-json-1.0"
    inner["CONTENT_LENGTH"] = str(len(body))
    inner["HTTP_X_AMZ_TARGET"] = f"{SERVICE}.{operation_name}"
    inner.pop("HTTP_SMITHY_PROTOCOL", None)
    inner.pop("HTTP_CONTENT_ENCODING", None)
    inner["wsgi.input"] = io.BytesIO(body)
    inner[iam_auth.AUTHORIZED] = True

    captured: dict[str, Any] = {}

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        captured["status"], captured["headers"] = status, headers
        return lambda _chunk: None

    answer = b"".join(routes.behind()(inner, capture))
    status: str = captured["status"]
    headers: list[tuple[str, str]] = captured["headers"]
    if not status.startswith("2"):
        try:
            error = json.loads(answer or b"{}")
        except ValueError:
            error = {"message": answer.decode(errors="replace")}
        code = str(error.get("__type") or error.get("code") or "InternalFailure")
        message = str(error.get("message") or error.get("Message") or "")
        return _error(start_response, status, code, message, headers)
    try:
        return _answer(start_response, status, headers, _encode_output(answer, headers, operation))
    except Exception as err:  # a CBOR client cannot read a traceback page
        return _error(start_response, "500 Internal Server Error", "InternalFailure", f"cloudwatch_cbor: {err!r}", [])


def _encode_output(answer: bytes, headers: list[tuple[str, str]], operation: Any) -> bytes:
    """moto's JSON answer, as the operation's output shape in CBOR."""
    if not operation.output_shape:
        return b""
    parsed = JSONParser().parse({"body": answer, "headers": dict(headers), "status_code": 200}, operation.output_shape)
    parsed.pop("ResponseMetadata", None)
    return _Encoder().encode_shape(parsed, operation.output_shape)


def install() -> list[str]:
    if not settings.enabled(NAME):
        return []
    routes.route(PREFIX, _serve)
    return [NAME]
