"""``lambda-inactive``: a function or version left idle becomes ``Inactive``,
and its first invoke fails while Lambda restores it.

"Lambda function states"
(https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html):
"Inactive – A function becomes inactive when it has been idle long enough
for Lambda to reclaim the external resources that were configured for it.
When you try to invoke a function that is inactive, the invocation fails
and Lambda sets the function to pending state until the function resources
are recreated." For a container image the failed invoke answers 409
``CodeArtifactUserPendingException`` ("Troubleshoot container image issues
in Lambda", https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-images.html:
"The CodeArtifact is pending optimization. The function transitions to
active state when Lambda completes the optimization. HTTP response code
409"; Invoke API reference, Errors: "Wait for the function's State to
become Active and try the request again").

Here: ``$LATEST`` and each published version remember when they were last
used (created, updated, published, invoked). Once idle longer than the
``lambda-inactive`` window, GetFunction(Configuration) reports ``State:
Inactive``, ``StateReasonCode: Idle``; an invoke then answers 409
``CodeArtifactUserPendingException`` and starts a ``lambda-restore``
window in which the state is ``Pending`` (``StateReasonCode: Restoring``)
and invokes are refused the same way; after it the function is ``Active``
(and used, so idle again only after another full window). An update of an
inactive ``$LATEST`` re-activates it.

The idle window defaults to 14 days (``LOCAL_AWS_LAMBDA_INACTIVE_SECONDS``
sets it; tests that need an idle function start a moto of their own with a
few seconds), scaled by ``LOCAL_AWS_TIME_SCALE`` like every window.

Switch: ``LOCAL_AWS_STRICT_LAMBDA_INACTIVE=0``.
"""

from typing import Any, Optional

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda_simple.models import LambdaSimpleBackend

from . import patching, settings, windows

NAME = "lambda-inactive"


class CodeArtifactUserPending(LambdaClientError):
    """409 CodeArtifactUserPendingException (Invoke API reference, Errors)."""

    code = 409

    def __init__(self, arn: str) -> None:
        super().__init__(
            "CodeArtifactUserPendingException",
            f"Lambda is restoring the function {arn}, which was inactive: its code artifact user "
            "is still being provisioned. Wait for the function's State to become Active and try "
            "the request again.",
        )


def _key(fn: LambdaFunction) -> tuple[str, str, str, str]:
    return (fn.account_id, fn.region, fn.function_name, str(fn.version))


def used(fn: LambdaFunction) -> None:
    """``fn`` (a function version) was used now: its idle time starts again."""
    windows.mark("lambda-used", *_key(fn))


def install() -> list[str]:
    if not settings.enabled(NAME):
        return []
    idle = settings.window("lambda-inactive", 14 * 24 * 3600)
    restore = settings.window("lambda-restore", 5)

    def restoring(fn: LambdaFunction) -> bool:
        return windows.open_for(restore, "lambda-restoring", *_key(fn)) > 0

    def inactive(fn: LambdaFunction) -> bool:
        elapsed = windows.since("lambda-used", *_key(fn))
        return elapsed is not None and elapsed > idle and not restoring(fn)

    @patching.replace(LambdaFunction, "get_configuration")
    def get_configuration(original, self, on_create: bool = False):  # type: ignore[no-untyped-def]
        config: dict[str, Any] = original(self, on_create)
        if restoring(self):
            config["State"] = "Pending"
            config["StateReason"] = "The function is being restored after being inactive."
            config["StateReasonCode"] = "Restoring"
        elif inactive(self):
            config["State"] = "Inactive"
            config["StateReason"] = "The function is inactive because it has been idle."
            config["StateReasonCode"] = "Idle"
        return config

    @patching.replace(LambdaBackend, "create_function")
    def create_function(original, self, spec: dict[str, Any]):  # type: ignore[no-untyped-def]
        fn = original(self, spec)
        windows.forget("lambda-used", fn.account_id, fn.region, fn.function_name)
        windows.forget("lambda-restoring", fn.account_id, fn.region, fn.function_name)
        used(self.get_function(fn.function_name))
        used(fn)
        return fn

    def update(name: str) -> None:
        @patching.replace(LambdaBackend, name)
        def patched(original, self, function_name: str, qualifier: Optional[str], body: dict[str, Any]):  # type: ignore[no-untyped-def]
            answer = original(self, function_name, qualifier, body)
            if not body.get("DryRun"):
                used(self.get_function(function_name, qualifier))
            return answer

    update("update_function_code")
    update("update_function_configuration")

    @patching.replace(LambdaBackend, "publish_version")
    def publish_version(original, self, function_name: str, description: str = ""):  # type: ignore[no-untyped-def]
        version = original(self, function_name, description)
        if version is not None and windows.since("lambda-used", *_key(version)) is None:
            used(version)
        return version

    # The backend-level invoke, whichever backend answers (as lambda_states).
    for backend in (LambdaBackend, LambdaSimpleBackend):

        @patching.replace(backend, "invoke")
        def invoke(original, self, function_name: str, qualifier: Optional[str], *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
            target = self.get_function(function_name, qualifier)
            if restoring(target):
                raise CodeArtifactUserPending(target.function_arn)
            if inactive(target):
                # The failed invoke starts the restore; the function is
                # used from now on, so it is not idle again at once after.
                windows.mark("lambda-restoring", *_key(target))
                used(target)
                raise CodeArtifactUserPending(target.function_arn)
            used(target)
            return original(self, function_name, qualifier, *args, **kwargs)

    return [NAME]
