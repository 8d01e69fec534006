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
- ``logs-deleted-tags``: a deleted log group's tags go with it.
  ListTagsForResource and TagResource of a log group that does not exist
  answer ResourceNotFoundException ("The specified resource does not
  exist", ListTagsForResource and TagResource, Errors:
  https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_ListTagsForResource.html,
  .../API_TagResource.html), and a group created again under the same name
  starts with only its own tags. moto keeps the tags by ARN after the
  delete and answers with them: a stage lock's holder, asking whether the
  lock is still its own before deleting it, would read its old tags on a
  lock that was broken and taken again, and delete the new holder's lock.
"""

import json
import threading
import time

from moto.logs.exceptions import LogsClientError, ResourceNotFoundException
from moto.logs.models import LogsBackend
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


def _install_deleted_tags() -> list[str]:
    if not settings.enabled("logs-deleted-tags"):
        return []

    @patching.replace(LogsBackend, "delete_log_group")
    def delete_log_group(original, self, log_group_name):  # type: ignore[no-untyped-def]
        group = self.groups.get(log_group_name)
        original(self, log_group_name)
        if group is not None:
            self.tagger.delete_all_tags_for_resource(group.arn)

    def require_group(backend, arn: str) -> None:  # type: ignore[no-untyped-def]
        bare = arn[:-2] if arn.endswith(":*") else arn
        if ":log-group:" not in bare or ":log-stream:" in bare:
            return
        if not any(group.arn == bare for group in backend.groups.values()):
            raise ResourceNotFoundException("The specified resource does not exist.")

    @patching.replace(LogsBackend, "list_tags_for_resource")
    def list_tags_for_resource(original, self, resource_arn):  # type: ignore[no-untyped-def]
        require_group(self, resource_arn)
        return original(self, resource_arn)

    @patching.replace(LogsBackend, "tag_resource")
    def tag_resource(original, self, arn, tags):  # type: ignore[no-untyped-def]
        require_group(self, arn)
        return original(self, arn, tags)

    return ["logs-deleted-tags"]


def install() -> list[str]:
    return _install_race() + _install_describe_lag() + _install_deleted_tags()
