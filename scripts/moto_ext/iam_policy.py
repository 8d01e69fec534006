"""An identity-based policy evaluated as IAM evaluates it: actions,
resources and conditions.

moto's own check (``moto/iam/access_control.py``) matches a statement's
actions and resources, and reads a condition it cannot evaluate as an
explicit deny. AWS, "Policy evaluation logic" (IAM User Guide,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
a request is allowed when some Allow statement matches its action, its
resource and all of its conditions, and no Deny statement does; anything
else is an implicit deny.

Matching, from the IAM JSON policy element reference:

- ``Action``: "case insensitive", with ``*`` and ``?`` wildcards
  ("IAM JSON policy elements: Action").
- ``Resource``: an ARN, "case sensitive", ``*`` and ``?`` wildcards that
  may span segments ("IAM JSON policy elements: Resource").
- ``Condition`` ("IAM JSON policy elements: Condition operators", and
  "Condition keys with multiple values"): the operators of one block, the
  keys of one operator are all required (AND); the values of one key are
  alternatives (OR). A key the request lacks makes a condition false,
  except with the ``...IfExists`` operators and the negated ones
  (``StringNotEquals``...), for which it is true, and ``Null``, which asks
  just that. ``ForAllValues:`` is true when every value of the request's
  key matches one of the policy's (and when the request has none);
  ``ForAnyValue:`` when at least one does. ``ArnEquals`` and ``ArnLike``
  both take wildcards ("ARN condition operators"). Condition key names are
  not case sensitive ("Condition element").

``allowed(policies, action, resource, context)`` is the decision; the
context maps a condition key to the request's values for it.
"""

import json
import re
from typing import Any, Iterable, Optional

Context = dict[str, list[str]]


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, text: str, ignore_case: bool = False) -> bool:
    """``*`` and ``?`` as IAM reads them (no ``[...]`` sets, unlike fnmatch)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL
    return re.fullmatch(regex, text, flags) is not None


# Each comparison: (policy value, request value) -> bool.
_COMPARE = {
    "stringequals": lambda p, v: p == v,
    "stringequalsignorecase": lambda p, v: p.lower() == v.lower(),
    "stringlike": lambda p, v: _glob(p, v),
    "arnequals": lambda p, v: _glob(p, v),
    "arnlike": lambda p, v: _glob(p, v),
    "bool": lambda p, v: p.lower() == v.lower(),
}
# The negated operators and the comparison they negate.
_NEGATED = {
    "stringnotequals": "stringequals",
    "stringnotequalsignorecase": "stringequalsignorecase",
    "stringnotlike": "stringlike",
    "arnnotequals": "arnequals",
    "arnnotlike": "arnlike",
}


def _condition(operator: str, key: str, wanted: list[str], context: Context) -> bool:
    """One key of one operator block."""
    name = operator.lower()
    qualifier = ""
    if ":" in name:
        qualifier, name = name.split(":", 1)
    if_exists = name.endswith("ifexists")
    if if_exists:
        name = name[: -len("ifexists")]
    values = context.get(key.lower())
    wanted = [str(w) for w in wanted]
    if name == "null":
        absent = not values
        return any((w.lower() == "true") == absent for w in wanted)
    negated = name in _NEGATED
    compare = _COMPARE.get(_NEGATED.get(name, name))
    if compare is None:
        # An operator this evaluator does not know: never grants (an Allow
        # does not apply), as IAM would refuse to store such a policy.
        return False
    if not values:
        if qualifier == "forallvalues":
            return True
        return if_exists or negated

    def matches(value: str) -> bool:
        hit = any(compare(w, value) for w in wanted)
        return not hit if negated else hit

    if qualifier == "forallvalues":
        return all(matches(v) for v in values)
    # A single-valued key, or ForAnyValue over a multivalued one.
    return any(matches(v) for v in values)


def conditions_hold(block: Optional[dict[str, Any]], context: Context) -> bool:
    for operator, keys in (block or {}).items():
        for key, wanted in (keys or {}).items():
            if not _condition(operator, key, _listed(wanted), context):
                return False
    return True


def _statement_applies(statement: dict[str, Any], action: str, resource: str, context: Context) -> bool:
    if "NotAction" in statement:
        if any(_glob(a, action, ignore_case=True) for a in _listed(statement["NotAction"])):
            return False
    elif not any(_glob(a, action, ignore_case=True) for a in _listed(statement.get("Action"))):
        return False
    if "NotResource" in statement:
        if any(_glob(r, resource) for r in _listed(statement["NotResource"])):
            return False
    elif not any(_glob(r, resource) for r in _listed(statement.get("Resource"))):
        return False
    return conditions_hold(statement.get("Condition"), context)


def statements(policy: Any) -> list[dict[str, Any]]:
    """The statements of a policy document (JSON text or parsed)."""
    document = json.loads(policy) if isinstance(policy, str) else policy
    return [s for s in _listed((document or {}).get("Statement")) if isinstance(s, dict)]


def allowed(policies: Iterable[Any], action: str, resource: str, context: Optional[Context] = None) -> bool:
    """Whether ``policies`` (documents) allow ``action`` on ``resource``
    with the request's condition ``context``."""
    context = {k.lower(): v for k, v in (context or {}).items()}
    allow = False
    for policy in policies:
        for statement in statements(policy):
            if not _statement_applies(statement, action, resource, context):
                continue
            if statement.get("Effect") == "Deny":
                return False
            if statement.get("Effect") == "Allow":
                allow = True
    return allow


__all__ = ["Context", "allowed", "conditions_hold", "statements"]
