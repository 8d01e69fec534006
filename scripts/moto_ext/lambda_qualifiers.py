"""What a published version and an alias own, as Lambda keeps them.

moto publishes a version as a shallow copy of ``$LATEST``: the version shares
``$LATEST``'s code and environment dictionaries and its resource policy, so a
later ``UpdateFunctionCode`` changes the image a published version reports
(and, with ``lambda_runtime``, runs). And moto files a permission added with
an alias qualifier under the version the alias points at *now*: once the
alias moves, ``GetPolicy --qualifier alias`` finds nothing, while in AWS the
statement belongs to the alias and moves with it.

- "Lambda function versions" (AWS Lambda Developer Guide): a published
  version is an immutable snapshot of the function's code and configuration.
  Each version has its own resource policy (a permission added without a
  qualifier or to another version does not apply to it).
- "Viewing resource-based IAM policies in Lambda" / AddPermission API
  reference: ``Qualifier`` "to add permissions to a published version of the
  function"; a statement on an alias applies to invocations through that
  alias. AddPermission with a statement id already in the policy answers
  ``ResourceConflictException`` (409); RemovePermission of a statement that
  is not there ``ResourceNotFoundException`` (404).

Switch: ``LOCAL_AWS_STRICT_LAMBDA_QUALIFIERS=0``.
"""

import copy
import json
from typing import Any, Optional
from urllib.parse import unquote

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaAlias, LambdaBackend, LambdaStorage
from moto.awslambda.policy import Policy
from moto.awslambda.responses import LambdaResponse

from . import patching, settings

NAME = "lambda-qualifiers"

# The attribute of a LambdaAlias holding its own resource policy.
_POLICY = "_moto_ext_policy"
# Set on a published version once it owns its code, environment and policy.
_SNAPSHOT = "_moto_ext_snapshot"


def alias_policy(alias: LambdaAlias, function: Any) -> Policy:
    """The alias's own resource policy, made empty on first use."""
    policy = getattr(alias, _POLICY, None)
    if policy is None:
        policy = Policy(function)
        setattr(alias, _POLICY, policy)
    return policy


def find_alias(backend: LambdaBackend, function_name: str, qualifier: Optional[str]) -> Optional[tuple[LambdaAlias, Any]]:
    """The alias ``qualifier`` of the function, with its ``$LATEST``; None
    when the qualifier is no alias (a version, ``$LATEST`` or nothing)."""
    if not qualifier or qualifier.upper() == "$LATEST" or qualifier.isdigit():
        return None
    storage: LambdaStorage = backend._lambdas
    function = storage.get_function_by_name_or_arn_with_qualifier(function_name)
    aliases = storage._get_function_aliases(function.function_name)
    alias = aliases.get(qualifier)
    return (alias, function) if alias is not None else None


def policy_for(backend: LambdaBackend, function_name: str, qualifier: Optional[str]) -> Policy:
    """The resource policy that decides an invocation of
    ``function_name:qualifier``: the alias's, the version's or the
    function's own."""
    found = find_alias(backend, function_name, qualifier) if settings.enabled(NAME) else None
    if found is not None:
        alias, function = found
        return alias_policy(alias, function)
    return backend.get_function(function_name, qualifier).policy


class _Conflict(LambdaClientError):
    code = 409

    def __init__(self, sid: str):
        super().__init__(
            "ResourceConflictException",
            f"The statement id ({sid}) provided already exists. Please provide a new statement id, "
            "or remove the existing statement.",
        )


class _NotFound(LambdaClientError):
    code = 404

    def __init__(self, message: str):
        super().__init__("ResourceNotFoundException", message)


def install() -> list[str]:
    if not settings.enabled(NAME):
        return []

    @patching.replace(LambdaStorage, "publish_version")
    def publish_version(original: Any, self: LambdaStorage, name_or_arn: str, description: str = "") -> Any:
        version = original(self, name_or_arn, description)
        if version is not None and not getattr(version, _SNAPSHOT, False):
            # A new version (moto answers an unchanged function with the
            # last one): its own copies, so that later updates of $LATEST
            # leave it as published, and a policy of its own.
            version.code = copy.deepcopy(version.code)
            version.environment_vars = dict(version.environment_vars)
            version.policy = Policy(version)
            setattr(version, _SNAPSHOT, True)
        return version

    @patching.replace(LambdaBackend, "add_permission")
    def add_permission(original: Any, self: LambdaBackend, function_name: str, qualifier: str, raw: str) -> Any:
        found = find_alias(self, function_name, qualifier)
        if found is None:
            return original(self, function_name, qualifier, raw)
        alias, function = found
        policy = alias_policy(alias, function)
        sid = json.loads(raw).get("StatementId")
        if sid and any(s.get("Sid") == sid for s in policy.statements):
            raise _Conflict(sid)
        statement, _ = policy.add_statement(raw, qualifier)
        return statement

    @patching.replace(LambdaBackend, "get_policy")
    def get_policy(original: Any, self: LambdaBackend, function_name: str, qualifier: Optional[str] = None) -> str:
        found = find_alias(self, function_name, qualifier)
        if found is None:
            return original(self, function_name, qualifier)
        alias, function = found
        return alias_policy(alias, function).wire_format()

    # moto's RemovePermission ignores the Qualifier: the statement of an
    # alias is removed from the alias's policy here.
    @patching.replace(LambdaResponse, "remove_permission")
    def remove_permission(original: Any, self: LambdaResponse) -> Any:
        function_name = unquote(self.path.split("/")[-3])
        statement_id = unquote(self.path.split("/")[-1].split("?")[0])
        qualifier = self.querystring.get("Qualifier", [None])[0]
        found = find_alias(self.backend, function_name, qualifier)
        if found is None:
            return original(self)
        alias, function = found
        policy = alias_policy(alias, function)
        if not any(s.get("Sid") == statement_id for s in policy.statements):
            raise _NotFound(f"Statement {statement_id} is not found in resource policy.")
        policy.del_statement(statement_id, self.querystring.get("RevisionId", [""])[0])
        return 204, {"status": 204}, "{}"

    return [NAME]
