"""CloudWatch Logs' read quotas: FilterLogEvents and GetLogEvents
transactions per second, per account and Region.

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

from moto.logs.exceptions import LogsClientError
from moto.logs.responses import LogsResponse

from . import patching, settings

NAME = "logs-read-quota"
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


def install() -> list[str]:
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
    return [NAME]
