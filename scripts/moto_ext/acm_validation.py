"""ACM certificates validated by DNS, as ACM validates them, against the
Route 53 hosted zones of the same moto.

What the deployer can rely on (``RequestCertificate`` with
``ValidationMethod=DNS``, ``DescribeCertificate``, ``DeleteCertificate``):

- For a few seconds after ``RequestCertificate`` (window
  ``acm-record-delay``, 5 s scaled), ``DescribeCertificate`` lists each
  domain without its ``ResourceRecord`` and ``ValidationStatus``
  (DescribeCertificate API reference: "If you have just created a
  certificate using the RequestCertificate action, there is a delay of
  several seconds before you can retrieve information about it"; users see
  ``[{'DomainName': ..., 'ValidationMethod': 'DNS'}]``): a client polls until
  the record is there. moto answered it at once.
- A requested certificate is ``PENDING_VALIDATION``. ``DescribeCertificate``
  lists, per domain name, ``DomainValidationOptions[].ResourceRecord``: a
  CNAME whose name (``_<32 hex>.<domain>.``) and value
  (``_<32 hex>.<10 letters>.acm-validations.aws.``) are the certificate's own
  ("DNS validation",
  https://docs.aws.amazon.com/acm/latest/userguide/dns-validation.html:
  "ACM provides you with one or more CNAME records that must be added to
  your DNS database"), ``ValidationStatus`` ``PENDING_VALIDATION``.
- It becomes ``ISSUED`` (each domain's ``ValidationStatus`` ``SUCCESS``)
  once every domain's CNAME, name and value, is in a public hosted zone of
  this moto (any account's: ACM asks public DNS; a private zone does not
  count), and the window ``acm-dns-validation`` (default 30 s, scaled)
  has passed since ACM first saw them: ACM validates asynchronously, in a
  time it does not bound (here a scaled half-minute), seen on
  ``DescribeCertificate``/``GetCertificate``/``ListCertificates``. A client
  polls ``DescribeCertificate`` (the SDKs' ``certificate_validated`` waiter).
  moto instead issued every certificate 60 s after the request, whatever DNS
  held. ``IssuedAt`` is answered only once issued.
- A certificate requested without ``ValidationMethod`` is validated by
  e-mail ("AWS::CertificateManager::Certificate", ValidationMethod: "If
  not specified, this property defaults to EMAIL validation"; the API's
  default likewise): its options say ``ValidationMethod`` ``EMAIL`` with
  ``ValidationEmails`` and no ``ResourceRecord``, and it stays
  ``PENDING_VALIDATION``: nobody receives the mail locally ("Email
  validation": the five addresses ``admin@``, ``administrator@``,
  ``hostmaster@``, ``postmaster@``, ``webmaster@`` of the domain). moto
  answered a DNS record for it and issued it.
- ``DeleteCertificate`` of a certificate an API Gateway domain name uses
  (``certificateArn`` or ``regionalCertificateArn``) answers
  ``ResourceInUseException`` (DeleteCertificate API reference, Errors:
  "ResourceInUseException: The certificate is in use by another AWS
  service in the caller's account. Remove the association and try again.";
  the note: "You cannot delete an ACM certificate that is being used by
  another AWS service"); ``InUseBy`` lists the domain names' ARNs
  (``arn:aws:apigateway:{region}::/domainnames/{name}``). moto deleted it.

Switches: ``LOCAL_AWS_STRICT_ACM_DNS_VALIDATION=0``,
``LOCAL_AWS_STRICT_ACM_IN_USE=0``.
"""

import hashlib
import json
import string
from typing import Any, Iterator

from moto.acm.models import AWSCertificateManagerBackend, CertBundle
from moto.acm.responses import AWSCertificateManagerResponse
from moto.core.exceptions import AWSError

from . import patching, settings, windows

VALIDATION = "acm-dns-validation"
# The attribute of a CertBundle holding how it is validated (DNS or EMAIL).
_METHOD = "_moto_ext_validation_method"
MAILBOXES = ("admin", "administrator", "hostmaster", "postmaster", "webmaster")
IN_USE = "acm-in-use"


class ResourceInUse(AWSError):
    TYPE = "ResourceInUseException"


def _token(arn: str, domain: str, salt: str, length: int = 32) -> str:
    return hashlib.sha256(f"{salt}|{arn}|{domain}".encode()).hexdigest()[:length]


def _letters(arn: str, domain: str) -> str:
    digest = hashlib.sha256(f"letters|{arn}|{domain}".encode()).digest()
    return "".join(string.ascii_lowercase[b % 26] for b in digest[:10])


def validation_record(arn: str, domain: str) -> dict[str, str]:
    """The CNAME ACM asks for, for ``domain`` of the certificate ``arn``: the
    same on every read ("DNS validation": the record stays in place for
    renewals)."""
    base = domain[2:] if domain.startswith("*.") else domain
    return {
        "Name": f"_{_token(arn, base, 'name')}.{base}.",
        "Type": "CNAME",
        "Value": f"_{_token(arn, base, 'value')}.{_letters(arn, base)}.acm-validations.aws.",
    }


def _domains(cert: CertBundle) -> list[str]:
    described = cert.describe()["Certificate"]
    names = [described["DomainName"]] + [n for n in described.get("SubjectAlternativeNames", []) if n != described["DomainName"]]
    return names


def _records() -> Iterator[tuple[str, str, list[str]]]:
    """(name, type, values) of every record set in this moto's public hosted
    zones, whatever the account: ACM looks the record up in public DNS,
    which a private zone does not answer."""
    from moto.route53.models import route53_backends

    for account_backends in list(route53_backends.values()):
        # One backend per partition, made on first use.
        for backend in list(account_backends.values()):
            for zone in list(backend.zones.values()):
                if zone.private_zone:
                    continue
                for record in list(zone.rrsets):
                    yield record.name, record.type_, list(record.records or [])


def _in_dns(record: dict[str, str]) -> bool:
    wanted = (record["Name"].rstrip(".").lower(), record["Value"].rstrip(".").lower())
    for name, kind, values in _records():
        if kind == "CNAME" and name.rstrip(".").lower() == wanted[0] and any(v.rstrip(".").lower() == wanted[1] for v in values):
            return True
    return False


def users(arn: str) -> list[str]:
    """The ARNs of the API Gateway domain names using the certificate ``arn``."""
    from moto.apigateway.models import apigateway_backends

    parts = arn.split(":")
    account, region = parts[4], parts[3]
    if region not in apigateway_backends[account]:
        return []
    backend = apigateway_backends[account][region]
    return [
        f"arn:aws:apigateway:{region}::/domainnames/{domain.domain_name}"
        for domain in list(backend.domain_names.values())
        if arn in (domain.certificate_arn, domain.regional_certificate_arn)
    ]


def _install_validation() -> list[str]:
    if not settings.enabled(VALIDATION):
        return []
    seconds = settings.window(VALIDATION, 30)
    delay = settings.window("acm-record-delay", 5)

    @patching.replace(CertBundle, "check")
    def check(original: Any, self: CertBundle) -> None:
        if not (self.type == "AMAZON_ISSUED" and self.status == "PENDING_VALIDATION"):
            return original(self)
        if getattr(self, _METHOD, "DNS") == "EMAIL":
            # Nobody reads the validation mail here.
            return None
        # moto's own check would issue it after a fixed wait; ACM issues
        # once the validation records are in DNS.
        key = (VALIDATION, self.arn)
        if all(_in_dns(validation_record(self.arn, d)) for d in _domains(self)):
            if windows.since(*key) is None:
                windows.mark(*key)
            if not windows.open_for(seconds, *key):
                self.status = "ISSUED"
        else:
            windows.forget(*key)
        return None

    @patching.replace(CertBundle, "describe")
    def describe(original: Any, self: CertBundle) -> dict[str, Any]:
        answer = original(self)
        described = answer["Certificate"]
        if self.type == "AMAZON_ISSUED":
            status = "SUCCESS" if self.status == "ISSUED" else self.status
            not_yet = windows.open_for(delay, "acm-requested", self.arn) > 0
            method = getattr(self, _METHOD, "DNS")
            for option in described.get("DomainValidationOptions", []):
                option["ValidationMethod"] = method
                if not_yet:
                    for key in ("ResourceRecord", "ValidationStatus", "ValidationEmails"):
                        option.pop(key, None)
                    continue
                option["ValidationStatus"] = status
                if method == "EMAIL":
                    base = option["DomainName"][2:] if option["DomainName"].startswith("*.") else option["DomainName"]
                    option["ValidationEmails"] = [f"{box}@{base}" for box in MAILBOXES]
                    option.pop("ResourceRecord", None)
                else:
                    option["ResourceRecord"] = validation_record(self.arn, option["DomainName"])
            if self.status != "ISSUED":
                described.pop("IssuedAt", None)
        return answer

    @patching.replace(AWSCertificateManagerResponse, "request_certificate")
    def request_certificate(original: Any, self: AWSCertificateManagerResponse) -> Any:
        answer = original(self)
        text = answer if isinstance(answer, str) else answer[0]
        arn = json.loads(text).get("CertificateArn")
        cert = self.acm_backend._certificates.get(arn)
        if cert is not None and not self._get_param("CertificateAuthorityArn"):
            setattr(cert, _METHOD, self._get_param("ValidationMethod") or "EMAIL")
            windows.mark("acm-requested", arn)
        return answer

    return [VALIDATION]


def _install_in_use() -> list[str]:
    if not settings.enabled(IN_USE):
        return []

    @patching.replace(AWSCertificateManagerBackend, "delete_certificate")
    def delete_certificate(original: Any, self: AWSCertificateManagerBackend, arn: str) -> None:
        if arn in self._certificates and users(arn):
            raise ResourceInUse(message=f"Certificate {arn} in account {self.account_id} is in use.")
        return original(self, arn)

    @patching.replace(CertBundle, "describe")
    def describe(original: Any, self: CertBundle) -> dict[str, Any]:
        answer = original(self)
        answer["Certificate"]["InUseBy"] = sorted(set(self.in_use_by) | set(users(self.arn)))
        return answer

    return [IN_USE]


def install() -> list[str]:
    return _install_validation() + _install_in_use()
