"""Route 53 record changes as Route 53 checks them: a batch is refused
whole, before anything changes, when one of its changes does not fit the
zone as it is.

What the deployer can rely on (``ChangeResourceRecordSets``, API
reference, https://docs.aws.amazon.com/Route53/latest/APIReference/API_ChangeResourceRecordSets.html,
error ``InvalidChangeBatch``, 400: "This exception contains a list of
messages that might contain one or more error messages"):

- ``CREATE`` of a name and type (and set identifier) that exists:
  "Tried to create resource record set [name='{name}', type='{type}'] but
  it already exists" (moto added a second record when the values
  differed). ``UPSERT`` replaces it.
- ``DELETE`` must name the record as it is ("To delete a resource record
  set, you must specify all the same values that you specified when you
  created it"): a record that is not there: "Tried to delete resource
  record set [name='{name}', type='{type}'] but it was not found"; other
  values (TTL, records, alias target): "... but the values provided do not
  match the current values" (moto deleted every record of the name and
  type, whatever the values).
- Alias records to an API Gateway regional domain name ("Routing traffic
  to an Amazon API Gateway API by using your domain name",
  https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/routing-to-api-gateway.html;
  ``AliasTarget``: "For regional APIs, specify the value of
  regionalDomainName" and, as ``HostedZoneId``, "regionalHostedZoneId"):
  the target (``d-{id}.execute-api.{region}.amazonaws.com``) must be the
  ``regionalDomainName`` of a domain name of the account in this moto, and
  the hosted zone ID the Region's API Gateway zone: else "Tried to create
  an alias that targets {target}, type {type} in zone {zone}, but the alias
  target name does not lie within the target zone" (wrong zone) or "...
  but that target was not found" (no such domain name). moto accepted any
  target. Other alias targets are left as moto has them.

- Each accepted batch is its own change (``ChangeInfo.Id``
  ``/change/C...``, ``SubmittedAt`` now), ``PENDING`` until it has
  propagated, then ``INSYNC`` on ``GetChange`` (API reference: "While your
  changes are propagating, GetChange returns a status of PENDING. When
  propagation is complete, GetChange returns a status of INSYNC. Changes
  generally propagate to all Route 53 name servers managing the hosted zone
  within 60 seconds."): window ``route53-propagation``, 30 s scaled (moto
  answered one fixed change, ``INSYNC``, submitted in 2010). A change ID
  this moto never gave (its other operations' fixed one) answers
  ``INSYNC``, as moto did.

- ``ListResourceRecordSets`` answers each value as XML text, escaped
  (API reference, "ListResourceRecordSets", the example response:
  ``<ResourceRecord><Value>192.0.2.235</Value></ResourceRecord>``). moto
  wrapped every value in ``<![CDATA[...]]>``, which the Rust SDK's XML
  reader reads as an empty value: a client then could neither compare a
  record nor DELETE it (which must name its values as they are).

Switches: ``LOCAL_AWS_STRICT_ROUTE53_RECORD_CHANGES=0``,
``LOCAL_AWS_STRICT_ROUTE53_ALIAS_TARGETS=0``,
``LOCAL_AWS_STRICT_ROUTE53_PROPAGATION=0``,
``LOCAL_AWS_STRICT_ROUTE53_RECORD_VALUES=0``.
"""

import re
import secrets
import string
import threading
import time
from xml.sax.saxutils import escape
from typing import Any, Optional

from moto.route53.exceptions import Route53ClientError
from moto.route53.models import FakeZone, Route53Backend
from moto.route53.responses import Route53 as Route53Response

from . import apigw_domains, patching, settings, windows

CHANGES = "route53-record-changes"
VALUES = "route53-record-values"
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)
ALIASES = "route53-alias-targets"
PROPAGATION = "route53-propagation"
# Change ID -> when it was submitted (ISO 8601), for GetChange.
_SUBMITTED: dict[str, str] = {}
_CHANGES_LOCK = threading.Lock()
APIGW_TARGET = re.compile(r"^d-[a-z0-9]+\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com$")


class InvalidChangeBatch(Route53ClientError):
    code = 400

    def __init__(self, messages: list[str]) -> None:
        # Route 53's body lists each message; the SDKs show them joined.
        super().__init__("InvalidChangeBatch", "[" + ", ".join(messages) + "]")


def _dotted(name: str) -> str:
    return name if name.endswith(".") else name + "."


def _values(record_set: dict[str, Any]) -> list[str]:
    records = record_set.get("ResourceRecords")
    if not records:
        return []
    if isinstance(records, dict):
        # The query parser's shape: {"ResourceRecord": [...] or {...}}.
        records = list(records.values())[0]
    if isinstance(records, dict):
        records = [records]
    return sorted(r["Value"] if isinstance(r, dict) else str(r) for r in records)


def _alias(record_set: dict[str, Any]) -> Optional[tuple[str, str]]:
    alias = record_set.get("AliasTarget")
    if not alias:
        return None
    return _dotted(alias.get("DNSName", "")).lower(), alias.get("HostedZoneId", "")


def _existing(zone: FakeZone, record_set: dict[str, Any]) -> Optional[Any]:
    name = _dotted(record_set["Name"]).lower()
    for record in zone.rrsets:
        if (
            _dotted(record.name).lower() == name
            and record.type_ == record_set.get("Type")
            and record.set_identifier == record_set.get("SetIdentifier")
        ):
            return record
    return None


def _matches(record: Any, record_set: dict[str, Any]) -> bool:
    wanted_alias = _alias(record_set)
    if wanted_alias is not None or record.alias_target:
        have = record.alias_target or {}
        return wanted_alias == (_dotted(have.get("DNSName", "")).lower(), have.get("HostedZoneId", ""))
    ttl = record_set.get("TTL")
    if ttl is not None and str(record.ttl) != str(ttl):
        return False
    return sorted(record.records or []) == _values(record_set)


def _describe(record_set: dict[str, Any]) -> str:
    return f"[name='{_dotted(record_set['Name'])}', type='{record_set.get('Type')}']"


def _alias_problem(account_id: str, record_set: dict[str, Any]) -> Optional[str]:
    alias = _alias(record_set)
    if alias is None:
        return None
    target, zone = alias
    found = APIGW_TARGET.match(target.rstrip("."))
    if not found:
        return None
    region = found.group("region")
    prefix = f"Tried to create an alias that targets {target}, type {record_set.get('Type')} in zone {zone}"
    if zone != apigw_domains.regional_hosted_zone(region):
        return f"{prefix}, but the alias target name does not lie within the target zone"
    from moto.apigateway.models import apigateway_backends

    backend = apigateway_backends[account_id][region] if region in apigateway_backends[account_id] else None
    names = [d.regional_domain_name.lower() for d in list(backend.domain_names.values())] if backend else []
    if target.rstrip(".") not in names:
        return f"{prefix}, but that target was not found"
    return None


def _change_info(change_id: str, status: str, submitted: str, root: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
        f"<ChangeInfo><Id>/change/{change_id}</Id><Status>{status}</Status><SubmittedAt>{submitted}</SubmittedAt></ChangeInfo></{root}>"
    )


def _install_propagation() -> list[str]:
    if not settings.enabled(PROPAGATION):
        return []
    seconds = settings.window(PROPAGATION, 30)

    @patching.replace(Route53Response, "change_resource_record_sets")
    def change_resource_record_sets(original: Any, self: Route53Response) -> Any:
        original(self)
        change_id = "C" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(20))
        submitted = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        with _CHANGES_LOCK:
            _SUBMITTED[change_id] = submitted
        windows.mark(PROPAGATION, change_id)
        return _change_info(change_id, "PENDING", submitted, "ChangeResourceRecordSetsResponse")

    @patching.replace(Route53Response, "get_change")
    def get_change(original: Any, self: Route53Response) -> Any:
        change_id = self.parsed_url.path.rstrip("/").rsplit("/", 1)[1]
        with _CHANGES_LOCK:
            submitted = _SUBMITTED.get(change_id)
        if submitted is None:
            return original(self)
        status = "PENDING" if windows.open_for(seconds, PROPAGATION, change_id) else "INSYNC"
        return _change_info(change_id, status, submitted, "GetChangeResponse")

    return [PROPAGATION]


def _install_values() -> list[str]:
    if not settings.enabled(VALUES):
        return []

    @patching.replace(Route53Response, "list_resource_record_sets")
    def list_resource_record_sets(original: Any, self: Route53Response) -> Any:
        answer = original(self)
        if isinstance(answer, tuple) and len(answer) == 3 and isinstance(answer[2], str):
            status, headers, body = answer
            return status, headers, _CDATA.sub(lambda m: escape(m.group(1)), body)
        if isinstance(answer, str):
            return _CDATA.sub(lambda m: escape(m.group(1)), answer)
        return answer

    return [VALUES]


def install() -> list[str]:
    changes, aliases = settings.enabled(CHANGES), settings.enabled(ALIASES)
    if not changes and not aliases:
        return _install_propagation() + _install_values()

    @patching.replace(Route53Backend, "change_resource_record_sets")
    def change_resource_record_sets(original: Any, self: Route53Backend, zoneid: str, change_list: list[dict[str, Any]]) -> None:
        zone = self.get_hosted_zone(zoneid)
        problems: list[str] = []
        for change in change_list:
            record_set = change.get("ResourceRecordSet") or {}
            if "Name" not in record_set:
                continue
            action = change.get("Action")
            existing = _existing(zone, record_set)
            if changes and action == "CREATE" and existing is not None:
                problems.append(f"Tried to create resource record set {_describe(record_set)} but it already exists")
            if changes and action == "DELETE":
                if existing is None:
                    problems.append(f"Tried to delete resource record set {_describe(record_set)} but it was not found")
                elif not _matches(existing, record_set):
                    problems.append(f"Tried to delete resource record set {_describe(record_set)} but the values provided do not match the current values")
            if aliases and action in ("CREATE", "UPSERT"):
                problem = _alias_problem(self.account_id, record_set)
                if problem:
                    problems.append(problem)
        if problems:
            raise InvalidChangeBatch(problems)
        return original(self, zoneid, change_list)

    return ([CHANGES] if changes else []) + ([ALIASES] if aliases else []) + _install_propagation() + _install_values()
