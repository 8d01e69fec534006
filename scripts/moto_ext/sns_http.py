"""SNS subscriptions confirmed as SNS confirms them, and notifications
delivered to HTTP/HTTPS endpoints as SNS delivers them.

What the deployer can rely on:

- ``Subscribe`` with protocol ``http``/``https``: the subscription is
  pending until confirmed ("Subscribe" API reference: "the endpoint owner
  must call the ConfirmSubscription action with the token from the
  confirmation message"; "the response includes ... pending confirmation
  ... unless ReturnSubscriptionArn is true"): ``Subscribe`` answers
  ``SubscriptionArn`` ``pending confirmation`` (the ARN with
  ``ReturnSubscriptionArn=true``), ``GetSubscriptionAttributes`` has
  ``PendingConfirmation`` ``true``, and ``ListSubscriptions``/
  ``ListSubscriptionsByTopic`` list it with ``SubscriptionArn``
  ``PendingConfirmation`` (its ARN is not known to a client until
  ``ConfirmSubscription`` answers it). SNS POSTs a ``SubscriptionConfirmation``
  ("HTTP/HTTPS subscription confirmation JSON format",
  https://docs.aws.amazon.com/sns/latest/dg/http-subscription-confirmation-json.html)
  with ``Token`` and ``SubscribeURL``; ``ConfirmSubscription(TopicArn,
  Token)`` or a GET of ``SubscribeURL`` confirms it (the URL points at this
  moto, ``/_local-aws/sns/confirm?...``, where AWS's points at
  ``sns.{region}.amazonaws.com``). A wrong token: ``InvalidParameter``.
  moto confirmed every subscription at once and sent nothing.
- Notifications go only to confirmed subscriptions ("Amazon SNS doesn't
  send messages to an endpoint until the subscription is confirmed"), as a
  POST with AWS's headers ("HTTP/HTTPS headers",
  https://docs.aws.amazon.com/sns/latest/dg/http-header.html):
  ``x-amz-sns-message-type``, ``x-amz-sns-message-id``,
  ``x-amz-sns-topic-arn``, ``x-amz-sns-subscription-arn`` (notifications),
  ``Content-Type: text/plain; charset=UTF-8``, ``User-Agent: Amazon Simple
  Notification Service Agent``, and the JSON body of "HTTP/HTTPS
  notification JSON format" (``Type``, ``MessageId``, ``TopicArn``,
  ``Subject``, ``Message``, ``Timestamp``, ``SignatureVersion``,
  ``Signature``, ``SigningCertURL``, ``UnsubscribeURL``). Delivery is
  asynchronous: ``Publish`` answers before the POST (moto posted inside the
  Publish request, without the headers).
- Retries ("Amazon SNS message delivery retries",
  https://docs.aws.amazon.com/sns/latest/dg/sns-message-delivery-retries.html):
  a 5XX answer, no answer within 15 s or no connection is a failed attempt,
  retried by the default HTTP/S delivery policy: 3 retries, 20 s apart
  (window ``sns-http-retry``, scaled); any other answer ends delivery.
- ``Unsubscribe`` takes an ARN: ``PendingConfirmation`` (what a listing
  shows of a pending subscription) answers ``InvalidParameter`` "Invalid
  parameter: SubscriptionArn Reason: An ARN must have at least 6 elements,
  not 1" (moto answered success and deleted nothing); a pending
  subscription goes with its topic (``DeleteTopic``).
- ``email``/``email-json`` subscriptions stay ``PendingConfirmation``
  (``Subscribe`` answers ``pending confirmation``): nothing is mailed
  locally, so nobody can confirm them, as an unconfirmed address never
  receives anything on AWS either.

The signature of a confirmation message is not one a client can verify
(moto signs notifications only, with a key of its own).

Switch: ``LOCAL_AWS_STRICT_SNS_HTTP_DELIVERY=0``.
"""

import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Callable, Iterable, Optional
from xml.sax.saxutils import escape

from moto.core.responses import ActionResult
from moto.sns.exceptions import SNSInvalidParameter
from moto.sns.models import SNSBackend, Subscription, sns_backends
from moto.sns.responses import SNSResponse

from . import patching, routes, settings

NAME = "sns-http-delivery"
CONFIRM_PATH = "/_local-aws/sns/confirm"
PENDING_PROTOCOLS = ("http", "https", "email", "email-json")
# "Amazon SNS message delivery retries": an HTTP/S endpoint has 15 s to answer.
ANSWER_SECONDS = 15
RETRIES = 3

_LOCK = threading.Lock()
# token -> (account, region, subscription ARN)
_TOKENS: dict[str, tuple[str, str, str]] = {}
# The Host the last Subscribe came to, per thread: where SubscribeURL points.
_HOST = threading.local()


def _base_url() -> str:
    return f"http://{getattr(_HOST, 'value', None) or '127.0.0.1:5000'}"


def pending(subscription: Subscription) -> bool:
    return str(subscription.attributes.get("PendingConfirmation")).lower() == "true"


def confirm(account: str, region: str, topic_arn: Optional[str], token: str) -> str:
    """Confirms the subscription of ``token``; its ARN."""
    with _LOCK:
        found = _TOKENS.get(token)
    if found is None or found[0] != account or found[1] != region:
        raise SNSInvalidParameter("Invalid token")
    backend: SNSBackend = sns_backends[account][region]
    subscription = backend.subscriptions.get(found[2])
    if subscription is None or (topic_arn and subscription.topic.arn != topic_arn):
        raise SNSInvalidParameter("Invalid token")
    subscription.attributes["PendingConfirmation"] = "false"
    subscription.attributes["ConfirmationWasAuthenticated"] = "false"
    subscription.confirmed = True
    return subscription.arn


def _post(url: str, body: dict[str, Any], headers: dict[str, str], retry_seconds: float) -> None:
    """POSTs ``body`` until an attempt succeeds or the retries are spent."""
    data = json.dumps(body).encode()
    for attempt in range(RETRIES + 1):
        if attempt:
            time.sleep(retry_seconds)
        request = urllib.request.Request(url, data=data, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=ANSWER_SECONDS) as answer:
                answer.read()
            return
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return
        except (OSError, ValueError):
            pass


def _deliver(subscription: Subscription, kind: str, body: dict[str, Any], retry_seconds: float) -> None:
    headers = {
        "Content-Type": "text/plain; charset=UTF-8",
        "User-Agent": "Amazon Simple Notification Service Agent",
        "x-amz-sns-message-type": kind,
        "x-amz-sns-message-id": body["MessageId"],
        "x-amz-sns-topic-arn": subscription.topic.arn,
    }
    if kind == "Notification":
        headers["x-amz-sns-subscription-arn"] = subscription.arn
    threading.Thread(target=_post, args=(subscription.endpoint, body, headers, retry_seconds), name="sns delivery", daemon=True).start()


def _confirm_route(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    token = (query.get("Token") or [""])[0]
    topic_arn = (query.get("TopicArn") or [""])[0]
    parts = topic_arn.split(":")
    try:
        if len(parts) < 6:
            raise SNSInvalidParameter("Invalid parameter: TopicArn")
        arn = confirm(parts[4], parts[3], topic_arn, token)
        status = "200 OK"
        body = (
            '<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
            f"<ConfirmSubscriptionResult><SubscriptionArn>{escape(arn)}</SubscriptionArn></ConfirmSubscriptionResult>"
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></ConfirmSubscriptionResponse>"
        )
    except SNSInvalidParameter as error:
        status = "400 Bad Request"
        body = f"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameter</Code><Message>{escape(error.message)}</Message></Error></ErrorResponse>"
    raw = body.encode()
    start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(raw)))])
    return [raw]


def install() -> list[str]:
    if not settings.enabled(NAME):
        return []
    retry_seconds = settings.window("sns-http-retry", 20)

    @patching.replace(SNSBackend, "subscribe")
    def subscribe(original: Any, self: SNSBackend, topic_arn: str, endpoint: str, protocol: str) -> Subscription:
        known = self._find_subscription(topic_arn, endpoint, protocol)
        subscription = original(self, topic_arn, endpoint, protocol)
        if known is not None or protocol not in PENDING_PROTOCOLS:
            return subscription
        subscription.attributes["PendingConfirmation"] = "true"
        subscription.attributes["ConfirmationWasAuthenticated"] = "false"
        subscription.confirmed = False
        if protocol in ("http", "https"):
            token = secrets.token_hex(64)
            with _LOCK:
                _TOKENS[token] = (self.account_id, self.region_name, subscription.arn)
            query = urllib.parse.urlencode({"Action": "ConfirmSubscription", "TopicArn": topic_arn, "Token": token})
            body = {
                "Type": "SubscriptionConfirmation",
                "MessageId": str(uuid.uuid4()),
                "Token": token,
                "TopicArn": topic_arn,
                "Message": f"You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
                "SubscribeURL": f"{_base_url()}{CONFIRM_PATH}?{query}",
                "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "SignatureVersion": "1",
                "Signature": "",
                "SigningCertURL": f"https://sns.{self.region_name}.amazonaws.com/SimpleNotificationService-local.pem",
            }
            _deliver(subscription, "SubscriptionConfirmation", body, retry_seconds)
        return subscription

    @patching.replace(SNSResponse, "subscribe")
    def response_subscribe(original: Any, self: SNSResponse) -> Any:
        _HOST.value = self.headers.get("Host") or self.headers.get("host")
        answer = original(self)
        arn = answer.result["SubscriptionArn"]
        subscription = self.backend.subscriptions.get(arn)
        returns_arn = str(self._get_param("ReturnSubscriptionArn") or "").lower() == "true"
        if subscription is not None and pending(subscription) and not returns_arn:
            return ActionResult({"SubscriptionArn": "pending confirmation"})
        return answer

    @patching.replace(SNSBackend, "unsubscribe")
    def unsubscribe(original: Any, self: SNSBackend, subscription_arn: str) -> None:
        parts = (subscription_arn or "").split(":")
        if len(parts) < 6:
            raise SNSInvalidParameter(f"Invalid parameter: SubscriptionArn Reason: An ARN must have at least 6 elements, not {len(parts)}")
        return original(self, subscription_arn)

    @patching.replace(SNSResponse, "confirm_subscription")
    def response_confirm_subscription(original: Any, self: SNSResponse) -> Any:
        topic_arn = self._get_param("TopicArn")
        if topic_arn not in self.backend.topics:
            return original(self)
        arn = confirm(self.current_account, self.region, topic_arn, self._get_param("Token") or "")
        return ActionResult({"SubscriptionArn": arn})

    @patching.replace(Subscription, "publish")
    def publish(original: Any, self: Subscription, message: str, message_id: str, subject: Optional[str] = None, message_attributes: Optional[dict[str, Any]] = None, *args: Any, **kwargs: Any) -> None:
        if self.protocol not in PENDING_PROTOCOLS:
            return original(self, message, message_id, subject, message_attributes, *args, **kwargs)
        if pending(self) or self.protocol not in ("http", "https"):
            # Unconfirmed: SNS sends nothing. Confirmed e-mail: no mail here.
            return None
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(message_attributes, message):
            return None
        structure = kwargs.get("message_structure") or (args[2] if len(args) > 2 else None)
        if structure == "json":
            message = self._parse_message_structure(message, self.protocol)
        body = self.get_post_data(message, message_id, subject, message_attributes=message_attributes)
        body["UnsubscribeURL"] = f"https://sns.{self.topic.sns_backend.region_name}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={self.arn}"
        _deliver(self, "Notification", body, retry_seconds)
        return None

    def listed(original: Any, self: SNSResponse) -> Any:
        answer = original(self)
        answer.result["Subscriptions"] = [
            {
                "SubscriptionArn": "PendingConfirmation" if pending(s) else s.arn,
                "Owner": s.account_id,
                "Protocol": s.protocol,
                "Endpoint": s.endpoint,
                "TopicArn": s.topic.arn,
            }
            for s in answer.result["Subscriptions"]
        ]
        return answer

    patching.replace(SNSResponse, "list_subscriptions")(listed)
    patching.replace(SNSResponse, "list_subscriptions_by_topic")(listed)

    routes.route(CONFIRM_PATH, _confirm_route)
    return [NAME]
