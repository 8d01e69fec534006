"""What AWS authorizes a request on: the resource ARN of each action the
deployer calls, and the values of the condition keys its policy uses.

The resources, per service, from "Actions, resources, and condition keys"
(Service Authorization Reference, https://docs.aws.amazon.com/service-authorization/latest/reference/):

- CloudWatch Logs (``list_amazoncloudwatchlogs``, and "CloudWatch Logs
  permissions reference", CloudWatch Logs User Guide): an action on a log
  group is authorized on ``arn:...:log-group:NAME:*`` (the group and its
  streams), an action on one stream on ``...:log-group:NAME:log-stream:S``;
  TagResource, UntagResource and ListTagsForResource take the group's ARN
  as given, without ``:*`` ("TagResource": "resourceArn ... For
  CloudWatch Logs, the log group ARN does not end in :*"). So a policy
  naming only the bare ARN lets the tag actions through and refuses
  CreateLogGroup, as AWS does. DescribeLogGroups takes only ``*``.
- Lambda (``list_awslambda``, and "Fine-tuning the Resources and
  Conditions sections of policies", Lambda Developer Guide): the function's
  ARN, qualified (``:alias`` or ``:version``) when the request names a
  qualifier (``Qualifier``, or a qualified name or ARN); alias, version-list,
  PublishVersion and reserved-concurrency actions on the unqualified
  function. "If you use an unqualified ARN ... the policy applies only to
  the unqualified function": a policy without ``function:NAME:*`` refuses
  Invoke of the alias. ListFunctions and GetAccountSettings take only ``*``.
- ECR (``list_amazonelasticcontainerregistry``): the repository
  ``arn:...:ecr:REGION:ACCOUNT:repository/NAME``; the tag actions the ARN
  given; GetAuthorizationToken only ``*``.
- IAM (``list_awsidentityandaccessmanagementiam``): the role
  ``arn:...:iam::ACCOUNT:role/PATH/NAME``; ``iam:PolicyARN`` is the
  policy AttachRolePolicy/DetachRolePolicy name, ``iam:PassedToService``
  the service a role is passed to (Lambda, for CreateFunction and
  UpdateFunctionConfiguration: ``iam_auth``'s pass-role check).
- STS GetCallerIdentity: allowed whatever the policy ("GetCallerIdentity":
  "No permissions are required to perform this operation").
- CloudWatch GetMetricData: only ``*``.
- API Gateway (``list_apigateway``; "Control access for managing an API"
  and "Using tags to control access to API Gateway REST API resources",
  API Gateway Developer Guide): the path, ``arn:...:apigateway:REGION::/PATH``.
  ``aws:ResourceTag/K`` is the tag of the resource the path names; a
  child of a REST API (resource, method, deployment, stage...) inherits the
  API's tags, a stage's own tags win over them, a usage plan's keys inherit
  the plan's ("API Gateway resources that can be tagged", "Tag
  inheritance"), a custom domain name has its own; ``/tags/{arn}`` is checked against the tags of the
  resource it names. A collection (``/restapis``, ``/apikeys``,
  ``/usageplans``, ``/domainnames``) has no tags. ``aws:RequestTag/K`` and
  ``aws:TagKeys`` are the tags a create (POST, CreateDomainName's
  included: its ``tags`` are request tags like CreateRestApi's, and the
  Service Authorization Reference lists ``aws:RequestTag`` for
  ``apigateway:POST``) or a TagResource (PUT ``/tags/...``) sends, and
  the keys an UntagResource removes.
- ACM (``list_awscertificatemanager``): the certificate
  ``arn:...:acm:REGION:ACCOUNT:certificate/ID`` the request names, with
  its tags as ``aws:ResourceTag/K`` (a certificate's ARN is ACM's to
  choose, so a policy scopes by tag); RequestCertificate and
  ListCertificates only ``*``, RequestCertificate and AddTagsToCertificate
  with the tags they send as ``aws:RequestTag/K`` and ``aws:TagKeys``.
- Route 53 (``list_amazonroute53``): ``arn:...:route53:::hostedzone/ID``
  for the zone the path names (ChangeResourceRecordSets,
  ListResourceRecordSets, GetHostedZone, ChangeTagsForResource),
  ``arn:...:route53:::change/ID`` for GetChange; the listings only ``*``.
- SNS (``list_amazonsns``): the topic ``arn:...:sns:REGION:ACCOUNT:NAME``
  (CreateTopic's from its ``Name``; Subscribe, Publish, ConfirmSubscription,
  the topic attributes and ListSubscriptionsByTopic from ``TopicArn``; the
  tag actions from ``ResourceArn``); the actions on a subscription
  (Unsubscribe, Get/SetSubscriptionAttributes) and the listings only ``*``.
- CloudWatch alarms (``list_amazoncloudwatch``): the alarm
  ``arn:...:cloudwatch:REGION:ACCOUNT:alarm:NAME`` for PutMetricAlarm,
  SetAlarmState, DescribeAlarmHistory (``AlarmName``), DeleteAlarms and
  DescribeAlarms (each of ``AlarmNames``; DescribeAlarms without names
  ``*``-wide, the alarm ``*``), the tag actions (``ResourceARN``). The
  request is read as JSON, query form or CBOR (the Rust SDK's).
"""

import json
import re
from typing import Any, Optional
from urllib.parse import parse_qs, unquote, urlsplit

from moto.utilities.utils import get_partition

from .cbor import Decoder
from .iam_policy import Context

ANY = "*"

# Lambda paths whose action is on the unqualified function whatever the
# request's qualifier.
_LAMBDA_UNQUALIFIED = ("/aliases", "/versions", "/concurrency")
_LOGS_TAG_ACTIONS = {"logs:TagResource", "logs:UntagResource", "logs:ListTagsForResource"}
_LOGS_ANY = {"logs:DescribeLogGroups"}
_ECR_ANY = {"ecr:GetAuthorizationToken"}
_LAMBDA_ANY = {"lambda:ListFunctions", "lambda:GetAccountSettings"}


class Request:
    """The parts of a request the targets are read from."""

    def __init__(
        self,
        action: str,
        method: str,
        path: str,
        body: Any,
        region: str,
        account: str,
        data: Optional[dict[str, Any]] = None,
    ) -> None:
        self.action = action
        self.method = method.upper()
        parts = urlsplit(path)
        # As sent (API Gateway's /tags/{UrlEncodedResourceARN}), and decoded.
        self.raw_path = parts.path
        self.path = unquote(parts.path)
        self.query = {k: v for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.body = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else (body or "")
        # As sent: CloudWatch's CBOR is not text.
        self.raw_body = bytes(body) if isinstance(body, (bytes, bytearray)) else self.body.encode()
        self.region = region
        self.account = account
        self.partition = get_partition(region)
        self.data = data or {}

    def json(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.body or "{}")
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    def form(self, name: str) -> str:
        """A parameter of a query-protocol (form) request."""
        found = parse_qs(self.body).get(name) or _listed(self.data.get(name))
        return str(found[0]) if found else ""


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def target(request: Request) -> tuple[list[str], Context]:
    """The resources ``request.action`` is authorized on (each must be
    allowed) and the request's condition keys."""
    service = request.action.split(":", 1)[0]
    finder = {
        "logs": _logs,
        "lambda": _lambda,
        "ecr": _ecr,
        "iam": _iam,
        "apigateway": _apigateway,
        "acm": _acm,
        "route53": _route53,
        "sns": _sns,
        "cloudwatch": _cloudwatch,
    }.get(service)
    if finder is None:
        return [ANY], {}
    return finder(request)


# ---------------------------------------------------------------- CloudWatch Logs


def _log_group_arn(request: Request, group: str) -> str:
    """A log group's ARN without ``:*``, from its name or ARN."""
    if group.startswith("arn:"):
        return group[:-2] if group.endswith(":*") else group
    return f"arn:{request.partition}:logs:{request.region}:{request.account}:log-group:{group}"


def _logs(request: Request) -> tuple[list[str], Context]:
    body = request.json()
    if request.action in _LOGS_ANY:
        return [ANY], {}
    if request.action in _LOGS_TAG_ACTIONS and body.get("resourceArn"):
        return [str(body["resourceArn"])], {}
    # StartQuery of several groups: authorized on each of them.
    several = body.get("logGroupNames") or body.get("logGroupIdentifiers")
    if isinstance(several, list) and several:
        return [f"{_log_group_arn(request, str(g))}:*" for g in several], {}
    group = body.get("logGroupName") or body.get("logGroupIdentifier")
    if not group:
        return [ANY], {}
    arn = _log_group_arn(request, str(group))
    stream = body.get("logStreamName")
    if stream:
        return [f"{arn}:log-stream:{stream}"], {}
    return [f"{arn}:*"], {}


# ---------------------------------------------------------------- Lambda


def _function_arn(request: Request, named: str) -> tuple[str, str]:
    """The unqualified ARN of the function ``named`` (a name, a partial or a
    full ARN, possibly qualified) and the qualifier it carries."""
    if named.startswith("arn:"):
        parts = named.split(":")
        base = ":".join(parts[:7])
        return base, parts[7] if len(parts) > 7 else ""
    parts = named.split(":")
    if len(parts) >= 3 and parts[1] == "function":
        # ACCOUNT:function:NAME[:QUALIFIER]
        account, name = parts[0], parts[2]
        qualifier = parts[3] if len(parts) > 3 else ""
    else:
        account, name = request.account, parts[0]
        qualifier = parts[1] if len(parts) > 1 else ""
    return f"arn:{request.partition}:lambda:{request.region}:{account}:function:{name}", qualifier


def _lambda(request: Request) -> tuple[list[str], Context]:
    if request.action in _LAMBDA_ANY:
        return [ANY], {}
    tags = re.match(r"^/[\d-]+/tags/(.+)$", request.path)
    if tags:
        return [tags.group(1)], {}
    found = re.match(r"^/[\d-]+/functions/([^/]+)(/.*)?$", request.path)
    if found:
        arn, qualifier = _function_arn(request, found.group(1))
        rest = found.group(2) or ""
        qualifier = (request.query.get("Qualifier") or [qualifier])[0]
        if qualifier and not rest.startswith(_LAMBDA_UNQUALIFIED):
            return [f"{arn}:{qualifier}"], {}
        return [arn], {}
    name = request.json().get("FunctionName")
    if name:
        return [_function_arn(request, str(name))[0]], {}
    return [ANY], {}


# ---------------------------------------------------------------- ECR


def _ecr(request: Request) -> tuple[list[str], Context]:
    if request.action in _ECR_ANY:
        return [ANY], {}
    body = request.json()
    if body.get("resourceArn"):
        return [str(body["resourceArn"])], {}
    account = str(body.get("registryId") or request.account)

    def arn(name: Any) -> str:
        return f"arn:{request.partition}:ecr:{request.region}:{account}:repository/{name}"

    if body.get("repositoryName"):
        return [arn(body["repositoryName"])], {}
    names = _listed(body.get("repositoryNames"))
    return ([arn(n) for n in names] if names else [ANY]), {}


# ---------------------------------------------------------------- IAM


def _iam(request: Request) -> tuple[list[str], Context]:
    context: Context = {}
    policy_arn = request.form("PolicyArn")
    if policy_arn:
        context["iam:PolicyARN"] = [policy_arn]
    role = request.form("RoleName")
    if not role:
        return [ANY], context
    return [role_arn(request.account, request.partition, role, request.form("Path"))], context


def role_arn(account: str, partition: str, name: str, path: str = "") -> str:
    """The role's ARN, with its path as IAM holds it (or as CreateRole
    gives it)."""
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import iam_backends

    try:
        return iam_backends[account][partition].get_role(name).arn
    except (KeyError, NotFoundException):
        path = path or "/"
        return f"arn:{partition}:iam::{account}:role{path}{name}"


# ---------------------------------------------------------------- API Gateway


def _apigateway(request: Request) -> tuple[list[str], Context]:
    resource = f"arn:{request.partition}:apigateway:{request.region}::{request.raw_path}"
    context: Context = {}
    tags = _resource_tags(request, request.path)
    for key, value in tags.items():
        context[f"aws:ResourceTag/{key}"] = [value]
    sent = _request_tags(request)
    if sent is not None:
        for key, value in sent.items():
            context[f"aws:RequestTag/{key}"] = [value]
        if sent:
            context["aws:TagKeys"] = list(sent)
    removed = request.query.get("tagKeys")
    if request.method == "DELETE" and request.path.startswith("/tags/") and removed:
        context["aws:TagKeys"] = removed
    return [resource], context


def _request_tags(request: Request) -> Optional[dict[str, str]]:
    """The tags a create or a TagResource sends, ``None`` when it is neither."""
    creates = request.method == "POST" and re.match(r"^/(restapis|apikeys|usageplans|domainnames|restapis/[^/]+/stages)$", request.path)
    tags_put = request.method == "PUT" and request.path.startswith("/tags/")
    if not (creates or tags_put):
        return None
    tags = request.json().get("tags") or {}
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


def _resource_tags(request: Request, path: str) -> dict[str, str]:
    """The tags (own and inherited) of the API Gateway resource at ``path``."""
    from moto.apigateway.models import apigateway_backends

    try:
        backend = apigateway_backends[request.account][request.region]
    except KeyError:
        return {}
    tagged = re.match(r"^/tags/(arn:[^:]+:apigateway:[^:]*::)(/.+)$", path)
    if tagged:
        return _resource_tags(request, tagged.group(2))
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2:
        return {}
    kind, ident = parts[0], parts[1]
    if kind == "restapis":
        api = backend.apis.get(ident)
        if api is None:
            return {}
        tags = dict(api.tags or {})
        if len(parts) >= 4 and parts[2] == "stages":
            stage = api.stages.get(parts[3])
            tags.update((stage.tags or {}) if stage is not None else {})
        return tags
    if kind == "apikeys":
        key = backend.keys.get(ident)
        return dict(key.tags or {}) if key is not None else {}
    if kind == "usageplans":
        plan = backend.usage_plans.get(ident)
        return dict(plan.tags or {}) if plan is not None else {}
    if kind == "domainnames":
        domain = backend.domain_names.get(ident)
        return dict(domain.tags or {}) if domain is not None else {}
    return {}


# ---------------------------------------------------------------- ACM, Route 53, SNS, CloudWatch alarms


def _acm(request: Request) -> tuple[list[str], Context]:
    body = request.json()
    context: Context = {}
    sent = [t for t in _listed(body.get("Tags")) if isinstance(t, dict) and "Key" in t]
    for tag in sent:
        context[f"aws:RequestTag/{tag['Key']}"] = [str(tag.get("Value", ""))]
    if sent:
        context["aws:TagKeys"] = [str(t["Key"]) for t in sent]
    arn = body.get("CertificateArn")
    if not arn:
        return [ANY], context
    from moto.acm.models import acm_backends

    parts = str(arn).split(":")
    try:
        certificate = acm_backends[parts[4]][parts[3]]._certificates.get(str(arn))
    except (IndexError, KeyError):
        certificate = None
    for key, value in (dict(certificate.tags) if certificate is not None else {}).items():
        context[f"aws:ResourceTag/{key}"] = [value or ""]
    return [str(arn)], context


def _route53(request: Request) -> tuple[list[str], Context]:
    found = re.match(r"^/[\d-]+/(hostedzone|change)/([^/]+)", request.path)
    if found is None:
        found = re.match(r"^/[\d-]+/tags/(hostedzone)/([^/]+)", request.path)
    if found is None:
        return [ANY], {}
    return [f"arn:{request.partition}:route53:::{found.group(1)}/{found.group(2)}"], {}


_SNS_ANY = {"sns:Unsubscribe", "sns:GetSubscriptionAttributes", "sns:SetSubscriptionAttributes", "sns:ListTopics", "sns:ListSubscriptions"}


def _sns(request: Request) -> tuple[list[str], Context]:
    if request.action in _SNS_ANY:
        return [ANY], {}
    arn = request.form("TopicArn") or request.form("ResourceArn")
    if arn:
        return [arn], {}
    if request.action == "sns:CreateTopic" and request.form("Name"):
        return [f"arn:{request.partition}:sns:{request.region}:{request.account}:{request.form('Name')}"], {}
    return [ANY], {}


def _cloudwatch_params(request: Request) -> dict[str, Any]:
    """The request's parameters: JSON (awsJson1_0), CBOR (rpc-v2-cbor) or a
    query form (``AlarmNames.member.1``), as the lists JSON would have."""
    body = request.json()
    if body:
        return body
    if request.raw_body and request.raw_body[0] & 0xE0 == 0xA0:
        # A CBOR map (major type 5): the Rust SDK's rpc-v2-cbor.
        try:
            decoded = Decoder().decode(request.raw_body)
            return decoded if isinstance(decoded, dict) else {}
        except Exception:
            return {}
    form = parse_qs(request.body)
    params: dict[str, Any] = {k: v[0] for k, v in form.items()}
    names = [v[0] for k, v in sorted(form.items()) if k.startswith("AlarmNames.member.")]
    if names:
        params["AlarmNames"] = names
    return params


def _cloudwatch(request: Request) -> tuple[list[str], Context]:
    params = _cloudwatch_params(request)
    if params.get("ResourceARN"):
        return [str(params["ResourceARN"])], {}

    def alarm(name: Any) -> str:
        return f"arn:{request.partition}:cloudwatch:{request.region}:{request.account}:alarm:{name}"

    if params.get("AlarmName"):
        return [alarm(params["AlarmName"])], {}
    names = _listed(params.get("AlarmNames"))
    if names:
        return [alarm(n) for n in names], {}
    if request.action in ("cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmHistory"):
        return [alarm("*")], {}
    return [ANY], {}
