"""CloudWatch Logs' quotas on reading and writing events: FilterLogEvents
and GetLogEvents transactions per second, per account and Region; the
size of a FilterLogEvents page; the size of a PutLogEvents batch.

Behaviour ``logs-read-quota`` (switch ``LOCAL_AWS_STRICT_LOGS_READ_QUOTA=0``).

- "CloudWatch Logs quotas" (Amazon CloudWatch Logs User Guide,
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html):
  FilterLogEvents, 5 transactions per second per account and Region;
  GetLogEvents, 25 ("We recommend subscriptions if you are continuously
  processing new data"). The AWS Knowledge Center's "How do I determine
  throttling in my CloudWatch logs?" adds that these are hard limits, that
  a call past them answers ThrottlingException ("Rate exceeded"), and that
  FilterLogEvents, GetLogEvents and DescribeLogStreams "are designed for
  human interaction and not for automation".
- ThrottlingException, HTTP 400 (CloudWatch Logs API reference, Common
  Errors), which the AWS SDKs retry with back-off.

Behaviour ``logs-filter-page`` (switch ``LOCAL_AWS_STRICT_LOGS_FILTER_PAGE=0``):
FilterLogEvents answers "as many log events as can fit in 1 MB (up to
10,000 log events)" (FilterLogEvents API reference), an event counting its
message's UTF-8 bytes plus 26 (as PutLogEvents counts them), then a
``nextToken``; moto answers 10,000 whatever their size, so a reader of
Lambda's REPORT lines (about 200 bytes each) needed half the calls it
needs on AWS.

Behaviour ``logs-put-limits`` (switch ``LOCAL_AWS_STRICT_LOGS_PUT_LIMITS=0``):
PutLogEvents refuses, with InvalidParameterException, a batch of more than
10,000 events, of more than 1,048,576 bytes ("the sum of all event
messages in UTF-8, plus 26 bytes for each log event"), or spanning more
than 24 hours (PutLogEvents API reference, the batch's constraints; moto
checks only their order). A loader of a million lines must batch them as
AWS takes them.

The quota is a sliding window of one second (``logs-read-quota``, not
scaled by ``LOCAL_AWS_TIME_SCALE``: a rate is what the quota is, and a
test suite that runs ten times faster must still meet it; set
``LOCAL_AWS_LOGS_READ_QUOTA_SECONDS`` to change it): a call is refused
when the account already made the quota's number of accepted calls of that
operation in that Region within the last window. Refused calls do not
count.
"""

import collections
import os
import threading
import time

from moto.logs.exceptions import InvalidParameterException, LogsClientError
from moto.logs.models import LogsBackend
from moto.logs.responses import LogsResponse
from moto.moto_api._internal.models import MotoAPIBackend

from . import patching, settings

NAME = "logs-read-quota"
PAGE = "logs-filter-page"
# FilterLogEvents: "1 MB"; PutLogEvents counts an event as its message's
# UTF-8 bytes plus 26.
PAGE_BYTES = 1_048_576
EVENT_OVERHEAD = 26
PUT = "logs-put-limits"
# PutLogEvents: "The maximum number of log events in a batch is 10,000";
# "cannot span more than 24 hours".
PUT_EVENTS = 10_000
PUT_SPAN_MS = 24 * 3600 * 1000
# Transactions per second, per account and Region ("CloudWatch Logs quotas").
QUOTAS = {"filter_log_events": 5, "get_log_events": 25}


class Throttled(LogsClientError):
    def __init__(self) -> None:
        super().__init__("ThrottlingException", "Rate exceeded")


class Rate:
    """Accepted calls in the last ``seconds``, per key; ``admit`` says
    whether one more is within ``most``."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.calls: dict[tuple, collections.deque] = collections.defaultdict(collections.deque)
        self.lock = threading.Lock()

    def admit(self, key: tuple, most: int) -> bool:
        now = time.monotonic()
        with self.lock:
            calls = self.calls[key]
            while calls and now - calls[0] >= self.seconds:
                calls.popleft()
            if len(calls) >= most:
                return False
            calls.append(now)
            return True

    def clear(self) -> None:
        with self.lock:
            self.calls.clear()


def _install_page() -> list[str]:
    if not settings.enabled(PAGE):
        return []

    @patching.replace(LogsBackend, "filter_log_events")
    def filter_log_events(original, self, log_group_name, *rest):  # type: ignore[no-untyped-def]
        page, token, searched = original(self, log_group_name, *rest)
        size = 0
        for kept, event in enumerate(page):
            size += len(event["message"].encode()) + EVENT_OVERHEAD
            if size > PAGE_BYTES and kept > 0:
                page = page[:kept]
                last = page[-1]
                # moto's own token: the group, and the last event answered.
                token = f"{log_group_name}@{last['logStreamName']}@{last['eventId']}"
                break
        return page, token, searched

    return [PAGE]


def _install_put() -> list[str]:
    if not settings.enabled(PUT):
        return []

    @patching.replace(LogsResponse, "put_log_events")
    def put_log_events(original, self):  # type: ignore[no-untyped-def]
        events = self._get_param("logEvents") or []
        if len(events) > PUT_EVENTS:
            raise InvalidParameterException(f"The maximum number of log events in a batch is {PUT_EVENTS}; this one has {len(events)}.")
        size = sum(len(str(e.get("message", "")).encode()) + EVENT_OVERHEAD for e in events)
        if size > PAGE_BYTES:
            raise InvalidParameterException(f"Upload too large: {size} bytes exceeds limit of {PAGE_BYTES}")
        stamps = [e.get("timestamp") for e in events if isinstance(e.get("timestamp"), int)]
        if stamps and max(stamps) - min(stamps) > PUT_SPAN_MS:
            raise InvalidParameterException("A batch of log events in a single request cannot span more than 24 hours.")
        return original(self)

    return [PUT]


def install() -> list[str]:
    return _install_quota() + _install_page() + _install_put()


def _install_quota() -> list[str]:
    if not settings.enabled(NAME):
        return []
    raw = os.environ.get("LOCAL_AWS_LOGS_READ_QUOTA_SECONDS")
    try:
        seconds = float(raw) if raw else 1.0
    except ValueError:
        raise SystemExit("moto_ext: LOCAL_AWS_LOGS_READ_QUOTA_SECONDS must be a number")
    settings.WINDOWS[NAME] = seconds
    rate = Rate(seconds)

    def limited(operation: str) -> None:
        @patching.replace(LogsResponse, operation)
        def patched(original, self):  # type: ignore[no-untyped-def]
            if not rate.admit((self.current_account, self.region, operation), QUOTAS[operation]):
                raise Throttled()
            return original(self)

    for operation in QUOTAS:
        limited(operation)

    # A reset moto has no window open, this one included.
    @patching.replace(MotoAPIBackend, "reset")
    def reset(original, self):  # type: ignore[no-untyped-def]
        rate.clear()
        return original(self)

    return [NAME]
