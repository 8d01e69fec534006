"""IAM as eventually consistent as AWS, and Lambda's view of it.

IAM, "Troubleshoot IAM: Changes that I make are not always immediately
visible"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency):
"IAM ... achieves high availability by replicating data across multiple
servers ... Changes that you make ... take time to become visible from all
possible endpoints." The behaviours, each measured from the moment of the
change:

- ``iam-get-role``: GetRole right after CreateRole answers 404
  NoSuchEntity.
- ``iam-role-assumable``: CreateFunction (or UpdateFunctionConfiguration
  with a new role) with a role younger than the window answers
  InvalidParameterValueException "The role defined for the function cannot
  be assumed by Lambda." (CreateFunction, Errors: "One of the parameters in
  the request is not valid", HTTP 400).
- ``iam-xray``: with tracing ``Active``, CreateFunction and
  UpdateFunctionConfiguration refuse a role without a policy allowing
  ``xray:PutTraceSegments``, or whose such policies were all attached
  inside the window: InvalidParameterValueException "The provided
  execution role does not have permissions to call PutTraceSegments on
  XRAY". "Visualize Lambda function invocations using AWS X-Ray"
  (https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html): "Your
  function needs permission to upload trace data to X-Ray ... add the
  AWSXRayDaemonWriteAccess policy to your function's execution role."
- ``iam-delete-conflict``: DeleteRole right after DetachRolePolicy (or
  DeleteRolePolicy) answers 409 DeleteConflict "Cannot delete entity, must
  detach all policies first." (DeleteRole, Errors: "DeleteConflict ...
  HTTP Status Code: 409").
"""

import fnmatch
import json
from typing import Any, Optional
from urllib.parse import unquote

from moto.awslambda.exceptions import InvalidParameterValueException
from moto.awslambda.models import LambdaBackend
from moto.iam.exceptions import DeleteConflictException, NotFoundException
from moto.iam.models import Role, iam_backends
from moto.iam.responses import IamResponse
from moto.utilities.utils import get_partition

from . import patching, settings, windows

ROLE_NOT_ASSUMABLE = "The role defined for the function cannot be assumed by Lambda."
NO_XRAY = "The provided execution role does not have permissions to call PutTraceSegments on XRAY"


def _role_of(arn: str, region: str) -> tuple[Optional[Role], str, str]:
    """The role an execution-role ARN names (``None`` when IAM has none:
    moto's own check answers that), its account and its name."""
    parts = arn.split(":")
    account = parts[4] if len(parts) > 5 else ""
    name = arn.rsplit("/", 1)[-1]
    try:
        role = iam_backends[account][get_partition(region)].get_role_by_arn(arn)
    except (KeyError, NotFoundException):
        role = None
    return role, account, name


def _document(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    for candidate in (text, unquote(text or "")):
        try:
            return json.loads(candidate)
        except (TypeError, ValueError):
            continue
    return {}


def _allows_put_trace_segments(document: Any) -> bool:
    statements = _document(document).get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        if isinstance(actions, str):
            actions = [actions]
        if any(fnmatch.fnmatchcase("xray:puttracesegments", a.lower()) for a in actions):
            return True
    return False


def _xray_grants(role: Role) -> list[tuple[str, ...]]:
    """The keys under which the role's policies allowing PutTraceSegments
    were attached (managed) or put (inline)."""
    grants: list[tuple[str, ...]] = []
    for arn, policy in role.managed_policies.items():
        default = next((v for v in policy.versions if v.version_id == policy.default_version_id), None)
        if default is not None and _allows_put_trace_segments(default.document):
            grants.append(("managed", arn))
    for name, document in role.policies.items():
        if _allows_put_trace_segments(document):
            grants.append(("inline", name))
    return grants


def _install_get_role() -> list[str]:
    if not settings.enabled("iam-get-role"):
        return []
    seconds = settings.window("iam-get-role", 5)

    @patching.replace(IamResponse, "get_role")
    def get_role(original, self):  # type: ignore[no-untyped-def]
        name = self._get_param("RoleName")
        if windows.open_for(seconds, "iam-role-created", self.current_account, name):
            raise NotFoundException(f"The role with name {name} cannot be found.")
        return original(self)

    return ["iam-get-role"]


def _install_lambda_checks() -> list[str]:
    installed = []
    assumable = settings.enabled("iam-role-assumable")
    xray = settings.enabled("iam-xray")
    if assumable:
        role_seconds = settings.window("iam-role-assumable", 10)
        installed.append("iam-role-assumable")
    if xray:
        xray_seconds = settings.window("iam-xray", 10)
        installed.append("iam-xray")
    if not installed:
        return []

    def check(role_arn: str, region: str, tracing_active: bool, role_is_new: bool) -> None:
        role, account, name = _role_of(role_arn, region)
        if role is None:
            return
        if assumable and role_is_new and windows.open_for(role_seconds, "iam-role-created", account, name):
            raise InvalidParameterValueException(ROLE_NOT_ASSUMABLE)
        if xray and tracing_active:
            grants = _xray_grants(role)
            if not grants or all(
                windows.open_for(xray_seconds, "iam-role-granted", account, name, *grant) for grant in grants
            ):
                raise InvalidParameterValueException(NO_XRAY)

    def active(tracing: Any) -> bool:
        return isinstance(tracing, dict) and tracing.get("Mode") == "Active"

    @patching.replace(LambdaBackend, "create_function")
    def create_function(original, self, spec: dict[str, Any]):  # type: ignore[no-untyped-def]
        check(spec.get("Role", ""), self.region_name, active(spec.get("TracingConfig")), True)
        return original(self, spec)

    @patching.replace(LambdaBackend, "update_function_configuration")
    def update_function_configuration(original, self, function_name: str, qualifier: Optional[str], body: dict[str, Any]):  # type: ignore[no-untyped-def]
        fn = self.get_function(function_name, qualifier)
        role = body.get("Role") or fn.role
        # Checked when the request asks for tracing, or moves a traced
        # function to another role.
        tracing = active(body.get("TracingConfig")) or (role != fn.role and active(fn.tracing_config))
        check(role, self.region_name, tracing, role != fn.role)
        return original(self, function_name, qualifier, body)

    return installed


def _install_role_moments() -> None:
    """Remembers when roles were created and policies attached or removed,
    for the behaviours above and below."""

    @patching.replace(IamResponse, "create_role")
    def create_role(original, self):  # type: ignore[no-untyped-def]
        answer = original(self)
        name = self._get_param("RoleName")
        windows.forget("iam-role-granted", self.current_account, name)
        windows.forget("iam-role-detached", self.current_account, name)
        windows.mark("iam-role-created", self.current_account, name)
        return answer

    @patching.replace(IamResponse, "attach_role_policy")
    def attach_role_policy(original, self):  # type: ignore[no-untyped-def]
        answer = original(self)
        key = (self.current_account, self._get_param("RoleName"), "managed", self._get_param("PolicyArn"))
        windows.mark("iam-role-granted", *key)
        return answer

    @patching.replace(IamResponse, "put_role_policy")
    def put_role_policy(original, self):  # type: ignore[no-untyped-def]
        answer = original(self)
        key = (self.current_account, self._get_param("RoleName"), "inline", self._get_param("PolicyName"))
        windows.mark("iam-role-granted", *key)
        return answer

    def removal(name: str) -> None:
        @patching.replace(IamResponse, name)
        def patched(original, self):  # type: ignore[no-untyped-def]
            answer = original(self)
            windows.mark("iam-role-detached", self.current_account, self._get_param("RoleName"))
            return answer

    removal("detach_role_policy")
    removal("delete_role_policy")


def _install_delete_conflict() -> list[str]:
    if not settings.enabled("iam-delete-conflict"):
        return []
    seconds = settings.window("iam-delete-conflict", 5)

    @patching.replace(IamResponse, "delete_role")
    def delete_role(original, self):  # type: ignore[no-untyped-def]
        name = self._get_param("RoleName")
        if windows.open_for(seconds, "iam-role-detached", self.current_account, name):
            raise DeleteConflictException("Cannot delete entity, must detach all policies first.")
        answer = original(self)
        windows.forget("iam-role-created", self.current_account, name)
        windows.forget("iam-role-granted", self.current_account, name)
        windows.forget("iam-role-detached", self.current_account, name)
        return answer

    return ["iam-delete-conflict"]


def install() -> list[str]:
    if not settings.strict():
        return []
    _install_role_moments()
    return _install_get_role() + _install_lambda_checks() + _install_delete_conflict()
