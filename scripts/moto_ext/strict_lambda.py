"""Lambda as strict as AWS: missing functions and function states.

- ``lambda-not-found``: an operation on a function that does not exist
  answers 404 ResourceNotFoundException. moto already does so for
  ListAliases, GetAlias, GetPolicy, ListTags and GetFunctionConfiguration
  (with or without a qualifier); it answers ListVersionsByFunction with an
  empty list, which this corrects. Lambda API reference,
  ListVersionsByFunction, Errors
  (https://docs.aws.amazon.com/lambda/latest/api/API_ListVersionsByFunction.html):
  "ResourceNotFoundException: The resource specified in the request does
  not exist. HTTP Status Code: 404".

- ``lambda-states``: a new function is ``Pending`` for a window after
  CreateFunction, a new version ``Pending`` after PublishVersion, and
  ``LastUpdateStatus`` is ``InProgress`` after UpdateFunctionCode and
  UpdateFunctionConfiguration; inside those windows an update or a
  publish, and an invoke of a ``Pending`` function or version, answer 409
  ResourceConflictException. "Lambda function states"
  (https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html):
  "Lambda does not invoke a function during pending state. Any invocations
  or other API actions that operate on the function will fail", and
  UpdateFunctionConfiguration
  (https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html):
  "During this time, you can't modify the function, but you can still
  invoke it." So an invoke during an update is served (by the previous
  code), as on AWS; only ``Pending`` refuses invokes.

One correction of moto that is not a switchable behaviour but fidelity:
updates keep ``TracingConfig`` and ``Architectures`` (moto dropped them).
(Invoke's ``Qualifier``, which moto ignored, is passed on by
``lambda_runtime``.)
"""

from typing import Any, Optional

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda.responses import LambdaResponse
from moto.awslambda_simple.models import LambdaSimpleBackend

from . import patching, settings, windows


class ResourceConflict(LambdaClientError):
    """409 ResourceConflictException, Lambda's "busy, try again"."""

    code = 409

    def __init__(self, message: str) -> None:
        super().__init__("ResourceConflictException", message)


def _key(fn: LambdaFunction) -> tuple[str, str, str, str]:
    return (fn.account_id, fn.region, fn.function_name, str(fn.version))


def _pending(fn: LambdaFunction, seconds: float) -> float:
    return windows.open_for(seconds, "lambda-created", *_key(fn))


def _updating(fn: LambdaFunction, seconds: float) -> float:
    return windows.open_for(seconds, "lambda-updated", *_key(fn))


def _install_not_found() -> list[str]:
    if not settings.enabled("lambda-not-found"):
        return []

    @patching.replace(LambdaBackend, "list_versions_by_function")
    def list_versions_by_function(original, self, function_name: str):  # type: ignore[no-untyped-def]
        # get_function raises moto's UnknownFunctionException (404,
        # "Function not found: <arn>"), as GetFunction does.
        self.get_function(function_name)
        return original(self, function_name)

    return ["lambda-not-found"]


def _install_states() -> list[str]:
    if not settings.enabled("lambda-states"):
        return []
    created = settings.window("lambda-pending", 5)
    updated = settings.window("lambda-update", 5)
    published = settings.window("lambda-version-pending", 5)

    def pending_for(fn: LambdaFunction) -> float:
        # $LATEST is Pending after CreateFunction; a version after PublishVersion.
        return _pending(fn, created if fn.version == "$LATEST" else published)

    def refuse_while_busy(latest: LambdaFunction) -> None:
        """An update or a publish of ``$LATEST`` while it is Pending or
        while an update is in progress: the messages AWS gives."""
        if pending_for(latest):
            raise ResourceConflict(
                "The operation cannot be performed at this time. The resource "
                f"{latest.function_arn} is currently in the following state: 'Pending'. "
                "StateReasonCode: 'Creating'"
            )
        if _updating(latest, updated):
            raise ResourceConflict(
                "The operation cannot be performed at this time. An update is in "
                f"progress for resource: {latest.function_arn}"
            )

    @patching.replace(LambdaFunction, "get_configuration")
    def get_configuration(original, self, on_create: bool = False):  # type: ignore[no-untyped-def]
        config: dict[str, Any] = original(self, on_create)
        if pending_for(self):
            config["State"] = "Pending"
            config["StateReason"] = "The function is being created."
            config["StateReasonCode"] = "Creating"
            # "first set to Successful after function creation completes"
            config.pop("LastUpdateStatus", None)
        elif _updating(self, updated):
            config["LastUpdateStatus"] = "InProgress"
            config["LastUpdateStatusReason"] = "The function is being created."
            config["LastUpdateStatusReasonCode"] = "Creating"
        return config

    @patching.replace(LambdaBackend, "create_function")
    def create_function(original, self, spec: dict[str, Any]):  # type: ignore[no-untyped-def]
        fn = original(self, spec)
        latest = self.get_function(fn.function_name)
        windows.forget("lambda-created", latest.account_id, latest.region, latest.function_name)
        windows.forget("lambda-updated", latest.account_id, latest.region, latest.function_name)
        windows.mark("lambda-created", *_key(latest))
        if fn.version != "$LATEST":  # Publish=True
            windows.mark("lambda-created", *_key(fn))
        return fn

    def update(name: str):  # type: ignore[no-untyped-def]
        @patching.replace(LambdaBackend, name)
        def patched(original, self, function_name: str, qualifier: Optional[str], body: dict[str, Any]):  # type: ignore[no-untyped-def]
            latest = self.get_function(function_name, qualifier)
            refuse_while_busy(latest)
            answer = original(self, function_name, qualifier, body)
            if not body.get("DryRun"):
                windows.mark("lambda-updated", *_key(latest))
            return answer

    update("update_function_code")
    update("update_function_configuration")

    @patching.replace(LambdaBackend, "publish_version")
    def publish_version(original, self, function_name: str, description: str = ""):  # type: ignore[no-untyped-def]
        latest = self.get_function(function_name)
        refuse_while_busy(latest)
        before = {str(v.version) for v in self._lambdas._functions[latest.function_name]["versions"]}
        version = original(self, function_name, description)
        if version is not None and str(version.version) not in before:
            windows.mark("lambda-created", *_key(version))
        return version

    # The backend-level invoke, whichever backend answers: moto's simple
    # backend (use_docker false) overrides LambdaBackend.invoke.
    for backend in (LambdaBackend, LambdaSimpleBackend):

        @patching.replace(backend, "invoke")
        def invoke(original, self, function_name: str, qualifier: Optional[str], *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
            # The version an alias points at, or $LATEST.
            target = self.get_function(function_name, qualifier)
            if pending_for(target):
                raise ResourceConflict(
                    "The operation cannot be performed at this time. The function is "
                    "currently in the following state: Pending"
                )
            return original(self, function_name, qualifier, *args, **kwargs)

    @patching.replace(LambdaBackend, "delete_function")
    def delete_function(original, self, function_name: str, qualifier: Optional[str] = None):  # type: ignore[no-untyped-def]
        fn = self.get_function(function_name, qualifier)
        answer = original(self, function_name, qualifier)
        if qualifier is None:
            windows.forget("lambda-created", fn.account_id, fn.region, fn.function_name)
            windows.forget("lambda-updated", fn.account_id, fn.region, fn.function_name)
        return answer

    return ["lambda-states"]


def _keep_updated_settings() -> None:
    """moto's UpdateFunctionConfiguration drops TracingConfig and its
    UpdateFunctionCode drops Architectures; AWS applies both
    (UpdateFunctionConfiguration and UpdateFunctionCode, Request Syntax).
    Without this, a tracing or architecture change never shows, and a
    deployer's plan never converges."""

    @patching.replace(LambdaFunction, "update_configuration")
    def update_configuration(original, self, config_updates: dict[str, Any]):  # type: ignore[no-untyped-def]
        if "TracingConfig" in config_updates:
            self.tracing_config = config_updates["TracingConfig"]
        return original(self, config_updates)

    @patching.replace(LambdaFunction, "update_function_code")
    def update_function_code(original, self, updated_spec: dict[str, Any]):  # type: ignore[no-untyped-def]
        if updated_spec.get("Architectures") and not updated_spec.get("DryRun"):
            self.architectures = updated_spec["Architectures"]
        return original(self, updated_spec)


def install() -> list[str]:
    _keep_updated_settings()
    return _install_not_found() + _install_states()
