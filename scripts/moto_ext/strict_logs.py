"""CloudWatch Logs as strict as AWS about log groups in flux.

- ``logs-race``: CreateLogGroup and DeleteLogGroup of one name in flight
  at the same time: the later one answers OperationAbortedException.
  CreateLogGroup and DeleteLogGroup, Errors
  (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html,
  .../API_DeleteLogGroup.html): "OperationAbortedException: Multiple
  concurrent requests to update the same resource were in conflict. HTTP
  Status Code: 400". AWS documents it for concurrent requests only, so
  only those meet it: each create or delete takes the window's length to
  apply (the time AWS takes to answer one), and another one of the same
  name that arrives meanwhile is refused. A client that asks in sequence,
  each call after the previous answer, never meets it (an earlier model,
  a window of seconds *after* each answer, refused sequential calls too,
  which AWS documents nowhere; it cost every `deployer up` seconds of
  retries on its stage lock).
- ``logs-describe-lag``: a group younger than the window is missing from
  DescribeLogGroups. CloudWatch Logs is eventually consistent: a group
  created by CreateLogGroup is listed once the change has propagated
  (DescribeLogGroups reads a replicated index, not the write path).
"""

import json
import threading
import time

from moto.logs.exceptions import LogsClientError
from moto.logs.responses import LogsResponse

from . import patching, settings, windows


class OperationAborted(LogsClientError):
    def __init__(self) -> None:
        super().__init__(
            "OperationAbortedException",
            "Multiple concurrent requests to update the same resource were in conflict.",
        )


def _install_race() -> list[str]:
    if not settings.enabled("logs-race"):
        return []
    seconds = settings.window("logs-race", 0.2)
    in_flight: set[tuple[str, str, str]] = set()
    guard = threading.Lock()

    def guarded(name: str) -> None:
        @patching.replace(LogsResponse, name)
        def patched(original, self):  # type: ignore[no-untyped-def]
            key = (self.current_account, self.region, self._get_param("logGroupName"))
            with guard:
                if key in in_flight:
                    raise OperationAborted()
                in_flight.add(key)
            try:
                # moto serves each request on its own thread: while this
                # one is being applied, another of the same name is
                # concurrent with it.
                time.sleep(seconds)
                return original(self)
            finally:
                with guard:
                    in_flight.discard(key)

    guarded("create_log_group")
    guarded("delete_log_group")
    return ["logs-race"]


def _install_describe_lag() -> list[str]:
    if not settings.enabled("logs-describe-lag"):
        return []
    seconds = settings.window("logs-describe-lag", 5)

    @patching.replace(LogsResponse, "create_log_group")
    def create_log_group(original, self):  # type: ignore[no-untyped-def]
        answer = original(self)
        windows.mark("logs-group-created", self.current_account, self.region, self._get_param("logGroupName"))
        return answer

    @patching.replace(LogsResponse, "describe_log_groups")
    def describe_log_groups(original, self):  # type: ignore[no-untyped-def]
        answer = json.loads(original(self))
        answer["logGroups"] = [
            group
            for group in answer.get("logGroups", [])
            if not windows.open_for(
                seconds, "logs-group-created", self.current_account, self.region, group.get("logGroupName")
            )
        ]
        return json.dumps(answer)

    return ["logs-describe-lag"]


def install() -> list[str]:
    return _install_race() + _install_describe_lag()
