"""API Gateway's fixed control-plane quotas, answered 429 as AWS does.

"Amazon API Gateway quotas", section "API Gateway quotas for creating,
deploying and managing an API"
(https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html):
"These quotas can't be increased." — DeleteRestApi "1 request every 30
seconds per account", CreateDeployment "1 request every 5 seconds per
account", UpdateUsagePlan "1 request every 20 seconds per account" (per
Region, as every API Gateway quota). A request inside the window after the
last one let through answers 429 TooManyRequestsException with a
Retry-After header (API reference, Common errors: "TooManyRequestsException
... HTTP Status Code: 429").

One behaviour per operation: ``apigw-delete-rest-api``,
``apigw-create-deployment``, ``apigw-update-usage-plan``; each window is
the quota's period (scaled by ``LOCAL_AWS_TIME_SCALE``).
"""

import math
import threading
from typing import Any

from moto.apigateway.exceptions import ApiGatewayException
from moto.apigateway.responses import APIGatewayResponse

from . import patching, settings, windows


class TooManyRequests(ApiGatewayException):
    code = 429

    def __init__(self, retry_after: float) -> None:
        super().__init__("TooManyRequestsException", "Too Many Requests")
        self.retry_after = retry_after

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return super().get_headers(*args, **kwargs) + [("Retry-After", str(max(1, math.ceil(self.retry_after))))]


# One request at a time decides whether it is inside a window, so that two
# racing requests cannot both pass.
_QUOTA_LOCK = threading.Lock()

QUOTAS = {
    "delete_rest_api": ("apigw-delete-rest-api", 30),
    "create_deployment": ("apigw-create-deployment", 5),
    "update_usage_plan": ("apigw-update-usage-plan", 20),
}


def _install_quota(operation: str, behaviour: str, default_seconds: float) -> list[str]:
    if not settings.enabled(behaviour):
        return []
    seconds = settings.window(behaviour, default_seconds)

    @patching.replace(APIGatewayResponse, operation)
    def patched(original, self):  # type: ignore[no-untyped-def]
        key = (behaviour, self.current_account, self.region)
        with _QUOTA_LOCK:
            wait = windows.open_for(seconds, *key)
            if wait:
                raise TooManyRequests(wait)
            windows.mark(*key)
        return original(self)

    return [behaviour]


def install() -> list[str]:
    installed: list[str] = []
    for operation, (behaviour, seconds) in QUOTAS.items():
        installed += _install_quota(operation, behaviour, seconds)
    return installed
