"""``lambda-role-grant``: a function whose execution role was deleted and
recreated under the same name cannot decrypt its environment until it is
updated.

Lambda encrypts a function's environment variables and, when the function
is created or its configuration updated, grants the execution role's
principal (its unique ``RoleId``, not its name or ARN) the use of the key.
A role deleted and recreated with the same name has the same ARN but a new
principal, so the grant no longer applies: every invoke fails with 502
``KMSAccessDeniedException``. AWS Knowledge Center, "How do I resolve
KMSAccessDeniedException errors from AWS Lambda?"
(https://repost.aws/knowledge-center/lambda-kmsaccessdeniedexception-errors):
"This error usually occurs when a Lambda function's execution role is
deleted and then recreated using the same name, but with a different
principal" — the fix is to reset the grant by updating the function's
configuration. The versions published before keep the grant they were
published with (a version is an immutable snapshot), so rolling back to
one does not help either. Invoke API reference, Errors:
"KMSAccessDeniedException: Lambda couldn't decrypt the environment
variables because KMS access was denied. Check the Lambda function's KMS
permissions. HTTP Status Code: 502".

Here: the role's ``RoleId`` is recorded for ``$LATEST`` at CreateFunction
and at each UpdateFunctionConfiguration, and copied to a version when it
is published; an invoke of a function version with environment variables
whose role (by ARN) now has another ``RoleId`` answers 502
``KMSAccessDeniedException`` with AWS's message.

Switch: ``LOCAL_AWS_STRICT_LAMBDA_ROLE_GRANT=0``.
"""

import threading
from typing import Any, Optional

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.iam.models import iam_backends
from moto.moto_api._internal.models import MotoAPIBackend

from . import patching, settings

NAME = "lambda-role-grant"

# The message AWS gives (Knowledge Center page above).
MESSAGE = (
    "Lambda was unable to decrypt the environment variables because KMS access was denied. "
    "Please check the function's KMS key settings. KMS Exception: "
    "UnrecognizedClientExceptionKMS Message: The security token included in the request is invalid."
)

_LOCK = threading.Lock()
# (account, region, function, version) -> the RoleId the grant was made for.
_GRANTS: dict[tuple[str, str, str, str], str] = {}


class KmsAccessDenied(LambdaClientError):
    code = 502

    def __init__(self) -> None:
        super().__init__("KMSAccessDeniedException", MESSAGE)


def _key(fn: LambdaFunction) -> tuple[str, str, str, str]:
    return (fn.account_id, fn.region, fn.function_name, str(fn.version))


def _role_id(fn: LambdaFunction) -> Optional[str]:
    """The ``RoleId`` of the role named by the function's ARN now, or None
    when there is no such role."""
    try:
        return iam_backends[fn.account_id][fn.partition].get_role_by_arn(fn.role).id
    except Exception:
        return None


def _grant(fn: LambdaFunction) -> None:
    role_id = _role_id(fn)
    with _LOCK:
        if role_id is None:
            _GRANTS.pop(_key(fn), None)
        else:
            _GRANTS[_key(fn)] = role_id


def _forget(account: str, region: str, function: str) -> None:
    with _LOCK:
        for key in [k for k in _GRANTS if k[:3] == (account, region, function)]:
            del _GRANTS[key]


def install() -> list[str]:
    if not settings.enabled(NAME):
        return []

    @patching.replace(LambdaBackend, "create_function")
    def create_function(original, self, spec: dict[str, Any]):  # type: ignore[no-untyped-def]
        fn = original(self, spec)
        _forget(fn.account_id, fn.region, fn.function_name)
        _grant(self.get_function(fn.function_name))
        _grant(fn)
        return fn

    @patching.replace(LambdaBackend, "update_function_configuration")
    def update_function_configuration(original, self, function_name: str, qualifier: Optional[str], body: dict[str, Any]):  # type: ignore[no-untyped-def]
        answer = original(self, function_name, qualifier, body)
        if not body.get("DryRun"):
            _grant(self.get_function(function_name, qualifier))
        return answer

    @patching.replace(LambdaBackend, "publish_version")
    def publish_version(original, self, function_name: str, description: str = ""):  # type: ignore[no-untyped-def]
        latest = self.get_function(function_name)
        version = original(self, function_name, description)
        if version is not None:
            with _LOCK:
                granted = _GRANTS.get(_key(latest))
                if granted is not None:
                    _GRANTS.setdefault(_key(version), granted)
        return version

    for backend in (LambdaBackend, LambdaSimpleBackend):

        @patching.replace(backend, "invoke")
        def invoke(original, self, function_name: str, qualifier: Optional[str], *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
            target = self.get_function(function_name, qualifier)
            with _LOCK:
                granted = _GRANTS.get(_key(target))
            now = _role_id(target)
            if target.environment_vars and granted is not None and now is not None and now != granted:
                raise KmsAccessDenied()
            return original(self, function_name, qualifier, *args, **kwargs)

    @patching.replace(LambdaBackend, "delete_function")
    def delete_function(original, self, function_name: str, qualifier: Optional[str] = None):  # type: ignore[no-untyped-def]
        fn = self.get_function(function_name, qualifier)
        answer = original(self, function_name, qualifier)
        if qualifier is None:
            _forget(fn.account_id, fn.region, fn.function_name)
        return answer

    @patching.replace(MotoAPIBackend, "reset")
    def reset(original, self):  # type: ignore[no-untyped-def]
        with _LOCK:
            _GRANTS.clear()
        return original(self)

    return [NAME]
