"""API Gateway custom domain names (REST APIs, REGIONAL endpoints), their
base path mappings, and the data plane serving a mapped domain by its
``Host`` header.

What the deployer can rely on:

- ``CreateDomainName`` with ``endpointConfiguration.types=[REGIONAL]`` and
  ``regionalCertificateArn`` ("Setting up custom domain names for REST
  APIs", https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-custom-domains.html:
  "For a Regional custom domain name ... the certificate must be in the
  same Region as your API"; "the certificate must be issued"): the
  certificate must be an ACM certificate of the same account and Region,
  else ``BadRequestException`` "Invalid certificate ARN: {arn}.
  Certificate must be in '{region}'." (AWS's wording, as users report it);
  unknown, or not ``ISSUED`` (``PENDING_VALIDATION``): ``BadRequestException``
  (the CreateDomainName API reference's error for a request that "is not
  valid"; the message is ours). A REGIONAL domain without a regional
  certificate: ``BadRequestException``. A name that exists:
  ``BadRequestException`` "The domain name you provided already exists."
  (moto replaced the existing one silently). The answer has
  ``regionalDomainName`` (``d-{id}.execute-api.{region}.amazonaws.com``)
  and ``regionalHostedZoneId``, the Region's API Gateway zone ("Amazon API
  Gateway endpoints and quotas" in the General Reference; moto answered
  CloudFront's ``Z2FDTNDATAQYW2`` for every Region), and no
  ``distributionDomainName`` (that is EDGE's).
- Base path mappings (``CreateBasePathMapping``): no ``basePath`` is
  ``(none)``, one per domain name: a second mapping of the same base path,
  ``(none)`` included, is ``ConflictException`` "Base path already exists
  for this domain name" (moto replaced a ``(none)`` mapping silently); a
  ``(none)`` mapping beside others, or another beside a ``(none)`` one, is
  ``ConflictException`` "Only one base path mapping is allowed if the base
  path is empty." (AWS's words, as users report them).
- ``DeleteRestApi`` of an API a base path mapping points at:
  ``BadRequestException`` "Deleting RestApi {id} failed. Please remove all
  base path mappings related to the RestApi in your domains." (AWS's words,
  as users report them; moto deleted it and left the mapping pointing at
  nothing). A client deletes the mapping (or the domain name) first.
- ``GetBasePathMappings`` of a domain without any answers an empty list
  (moto failed with 500). ``DeleteDomainName`` deletes the domain's
  mappings with it (a domain created again under the name starts with
  none; moto kept them).
- The data plane: a request to moto's port whose ``Host`` is a domain name
  with mappings (``curl -H 'Host: forecast.example.com'
  http://127.0.0.1:5000/predict``) is served by the mapped API's stage, as
  API Gateway does ("Working with API mappings for REST APIs": the base
  path is the first path segment, ``(none)`` takes every other request),
  through ``apigw_dataplane`` (the stage's deployment, its API keys, the
  Lambda proxy, its metrics). The proxy event's ``path`` and
  ``requestContext.path`` are the path as requested on the domain, base
  path included (``/v1/predict``; with the execute-api URL they are
  ``/predict`` and ``/{stage}/predict``), as API Gateway sends them (users
  report it, e.g. awslabs/aws-serverless-express#216); ``resource`` and
  ``pathParameters`` are the stage's. A path that no mapping covers (a
  domain name without mappings included): 403 ``{"message":"Forbidden"}``.

- ``TagResource``/``UntagResource`` of a domain name's ARN
  (``arn:aws:apigateway:{region}::/domainnames/{name}``) change its tags,
  which ``GetDomainName(s)`` answer (TagResource API reference: "Adds or
  updates a tag on a given resource"; a DomainName is among "API Gateway
  resources that can be tagged"). moto tagged only stages: it failed on
  any other ARN.

Switches: ``LOCAL_AWS_STRICT_APIGW_DOMAIN_CERTIFICATE=0``,
``LOCAL_AWS_STRICT_APIGW_BASE_PATH_MAPPINGS=0``,
``LOCAL_AWS_STRICT_APIGW_DOMAIN_DATAPLANE=0``,
``LOCAL_AWS_STRICT_APIGW_DOMAIN_TAGS=0``.
"""

import re
from typing import Any, Callable, Iterable, Optional

from moto.apigateway.exceptions import BadRequestException, BasePathConflictException, ConflictException
from moto.apigateway.models import APIGatewayBackend, DomainName, apigateway_backends

from . import apigw_dataplane, routes, settings

CERTIFICATE = "apigw-domain-certificate"
MAPPINGS = "apigw-base-path-mappings"
DATAPLANE = "apigw-domain-dataplane"
TAGS = "apigw-domain-tags"

# "Amazon API Gateway endpoints and quotas" (AWS General Reference): the
# Route 53 hosted zone ID of each Region's API Gateway endpoints, the alias
# target's HostedZoneId for a regional custom domain name.
REGIONAL_HOSTED_ZONES = {
    "us-east-1": "Z1UJRXOUMOOFQ8",
    "us-east-2": "ZOJJZC49E0EPZ",
    "us-west-1": "Z2MUQ32089INYE",
    "us-west-2": "Z2OJLYMUO9EFXC",
    "ca-central-1": "Z19DQILCV0OWEC",
    "eu-central-1": "Z1U9ULNL0V5AJ3",
    "eu-west-1": "ZLY8HYME6SFDD",
    "eu-west-2": "ZJ5UAJN8Y3Z2Q",
    "eu-west-3": "Z3KY65QIEKYHQQ",
    "ap-south-1": "Z3VO1THU9YC4UR",
    "ap-northeast-1": "Z1YSHQZHG15GKL",
    "ap-northeast-2": "Z20JF4UZKIW1U8",
    "ap-northeast-3": "Z2YQB5RD63NC85",
    "ap-southeast-1": "ZL327KTPIQFUL",
    "ap-southeast-2": "Z2RPCDW04V8134",
    "sa-east-1": "ZCMLWB8V5SYIT",
}


def regional_hosted_zone(region: str) -> str:
    return REGIONAL_HOSTED_ZONES.get(region, REGIONAL_HOSTED_ZONES["us-east-1"])


def _is_regional(configuration: Any) -> bool:
    return "REGIONAL" in ((configuration or {}).get("types") or [])


def _check_certificate(backend: APIGatewayBackend, arn: str) -> None:
    from moto.acm.models import acm_backends

    parts = arn.split(":")
    if len(parts) < 6 or parts[2] != "acm":
        raise BadRequestException(f"Invalid certificate ARN: {arn}.")
    if parts[3] != backend.region_name:
        raise BadRequestException(f"Invalid certificate ARN: {arn}. Certificate must be in '{backend.region_name}'.")
    if parts[4] != backend.account_id or parts[3] not in acm_backends[parts[4]]:
        raise BadRequestException(f"Invalid certificate ARN: {arn}. Certificate not found.")
    acm = acm_backends[parts[4]][parts[3]]
    if arn not in acm._certificates:
        raise BadRequestException(f"Invalid certificate ARN: {arn}. Certificate not found.")
    # get_certificate runs ACM's check: a pending certificate whose
    # validation record is now in DNS may be issued by this read.
    status = acm.get_certificate(arn).status
    if status != "ISSUED":
        raise BadRequestException(f"Invalid certificate ARN: {arn}. Certificate status is {status}, it must be ISSUED.")


def _install_certificate() -> list[str]:
    if not settings.enabled(CERTIFICATE):
        return []
    from . import patching

    @patching.replace(APIGatewayBackend, "create_domain_name")
    def create_domain_name(original: Any, self: APIGatewayBackend, domain_name: str, *args: Any, **kwargs: Any) -> Any:
        names = [
            "certificate_name", "tags", "certificate_arn", "certificate_body", "certificate_private_key",
            "certificate_chain", "regional_certificate_name", "regional_certificate_arn", "endpoint_configuration", "security_policy",
        ]
        given = dict(zip(names, args), **kwargs)
        if domain_name and domain_name in self.domain_names:
            raise BadRequestException("The domain name you provided already exists.")
        if _is_regional(given.get("endpoint_configuration")):
            arn = given.get("regional_certificate_arn")
            if arn:
                _check_certificate(self, arn)
            elif not given.get("regional_certificate_name"):
                raise BadRequestException("A certificate was not provided for the endpoint type REGIONAL.")
        elif given.get("certificate_arn"):
            _check_certificate(self, given["certificate_arn"])
        return original(self, domain_name, *args, **kwargs)

    @patching.replace(DomainName, "to_json")
    def to_json(original: Any, self: DomainName) -> dict[str, Any]:
        answer = original(self)
        if _is_regional(self.endpoint_configuration):
            region = self.regional_domain_name.split(".")[2]
            answer["regionalHostedZoneId"] = regional_hosted_zone(region)
            answer.pop("distributionDomainName", None)
            answer.pop("distributionHostedZoneId", None)
        return answer

    return [CERTIFICATE]


def _install_mappings() -> list[str]:
    if not settings.enabled(MAPPINGS):
        return []
    from . import patching

    @patching.replace(APIGatewayBackend, "create_base_path_mapping")
    def create_base_path_mapping(original: Any, self: APIGatewayBackend, domain_name: str, rest_api_id: str, base_path: str, stage: str) -> Any:
        if domain_name in self.domain_names:
            existing = self.base_path_mappings.get(domain_name, {})
            wanted = base_path or "(none)"
            if wanted in existing:
                raise BasePathConflictException()
            if existing and (wanted == "(none)" or "(none)" in existing):
                raise ConflictException("Only one base path mapping is allowed if the base path is empty.")
        return original(self, domain_name, rest_api_id, base_path, stage)

    @patching.replace(APIGatewayBackend, "delete_rest_api")
    def delete_rest_api(original: Any, self: APIGatewayBackend, function_id: str) -> Any:
        mapped = [d for d, mappings in self.base_path_mappings.items() if d in self.domain_names and any(m.rest_api_id == function_id for m in mappings.values())]
        if mapped:
            raise BadRequestException(f"Deleting RestApi {function_id} failed. Please remove all base path mappings related to the RestApi in your domains.")
        return original(self, function_id)

    @patching.replace(APIGatewayBackend, "get_base_path_mappings")
    def get_base_path_mappings(original: Any, self: APIGatewayBackend, domain_name: str) -> Any:
        if domain_name in self.domain_names:
            self.base_path_mappings.setdefault(domain_name, {})
        return original(self, domain_name)

    @patching.replace(APIGatewayBackend, "delete_domain_name")
    def delete_domain_name(original: Any, self: APIGatewayBackend, domain_name: str) -> None:
        original(self, domain_name)
        self.base_path_mappings.pop(domain_name, None)

    return [MAPPINGS]


# ---------------------------------------------------------------- the data plane


def mapping_for(host: str, path: str) -> Optional[tuple[Any, str]]:
    """The base path mapping serving ``path`` on the custom domain ``host``
    (``None`` when none covers it), and the path left for the stage;
    ``None`` when ``host`` is no domain name."""
    name = host.split(":")[0].lower()
    for account_backends in list(apigateway_backends.values()):
        for backend in list(account_backends.values()):
            if name not in backend.domain_names:
                continue
            mappings = backend.base_path_mappings.get(name) or {}
            segments = path.lstrip("/").split("/", 1)
            first, rest = segments[0], ("/" + segments[1]) if len(segments) > 1 else "/"
            if first and first in mappings:
                return mappings[first], rest
            if "(none)" in mappings:
                return mappings["(none)"], path or "/"
            return None, path
    return None


def _serving(environ: dict[str, Any]) -> bool:
    host = environ.get("HTTP_HOST", "")
    return mapping_for(host, environ.get("PATH_INFO", "")) is not None


def _serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    found = mapping_for(environ.get("HTTP_HOST", ""), environ.get("PATH_INFO", ""))
    mapping, rest = found if found else (None, "/")
    if mapping is None or not mapping.stage:
        body = b'{"message":"Forbidden"}'
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("x-amzn-ErrorType", "ForbiddenException")],
        )
        return [body]
    inner = dict(environ)
    inner["PATH_INFO"] = f"/restapis/{mapping.rest_api_id}/{mapping.stage}/_user_request_{rest}"
    inner[apigw_dataplane.REQUESTED_PATH] = environ.get("PATH_INFO") or "/"
    return apigw_dataplane._serve(inner, start_response)


def _install_dataplane() -> list[str]:
    if not settings.enabled(DATAPLANE) or not settings.enabled(apigw_dataplane.NAME):
        return []
    routes.route_host(_serving, _serve)
    return [DATAPLANE]


# TagResource and UntagResource of a domain name: moto routes `/tags/{arn}`
# to its stage tagging only (and the ARN's slashes, decoded, miss its route).
TAG_PATH = re.compile(r"^/tags/arn:[^:/]+:apigateway:(?P<region>[^:/]*)::/domainnames/(?P<name>[^/]+)$")


def _tags(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    import json
    from urllib.parse import parse_qs

    from moto.apigateway.exceptions import DomainNameNotFound
    from moto.core.exceptions import RESTError

    from . import iam_auth

    found = TAG_PATH.match(environ.get("PATH_INFO", ""))
    assert found is not None
    method = environ.get("REQUEST_METHOD", "GET")
    _, account = iam_auth.region_account(environ)
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    try:
        iam_auth.authorize(environ, account, "TagResource" if method == "PUT" else "UntagResource", body)
        domain = apigateway_backends[account][found.group("region")].domain_names.get(found.group("name"))
        if domain is None:
            raise DomainNameNotFound()
    except RESTError as error:
        data = error.get_body().encode()
        headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-length"]
        start_response(f"{error.code} Error", headers + [("Content-Length", str(len(data)))])
        return [data]
    if method == "PUT":
        tags = (json.loads(body or b"{}") or {}).get("tags") or {}
        domain.tags = {**(domain.tags or {}), **tags}
        answer = b""
        status = "204 No Content"
    elif method == "DELETE":
        removed = parse_qs(environ.get("QUERY_STRING", "")).get("tagKeys", [])
        domain.tags = {k: v for k, v in (domain.tags or {}).items() if k not in removed}
        answer = b""
        status = "204 No Content"
    else:
        answer = json.dumps({"tags": domain.tags or {}}).encode()
        status = "200 OK"
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
    return [answer]


def _install_tags() -> list[str]:
    if not settings.enabled(TAGS):
        return []
    routes.route(TAG_PATH, _tags)
    return [TAGS]


def install() -> list[str]:
    return _install_certificate() + _install_mappings() + _install_dataplane() + _install_tags()
