"""The local AWS's extension of moto server.

moto forgives much that AWS refuses, and lacks AWS's data plane for
container-image functions. This package is loaded into moto server's own
process before it serves (``python -m moto_ext``, started by
``scripts/local-cloud``) and adds, module by module, what AWS documents and
moto does not. Every behaviour:

- names, in a comment, the AWS documentation page it follows;
- can be switched off by an environment variable (``settings.enabled``);
- uses time windows from ``settings.window``, scaled by
  ``LOCAL_AWS_TIME_SCALE`` so the test suite can shrink them, measured
  from moments kept per resource in ``windows`` (forgotten on moto reset).

Patches go through ``patching.replace``, which fails loudly when moto no
longer has what is patched (moto is pinned in ``scripts/local-cloud``).
Routes moto server lacks (API Gateway's data plane, the extension's own
status) go through ``routes.route``.
"""

import importlib

from . import settings, windows

# The behaviour modules, in the order they are installed. Each has an
# ``install()`` that returns the names of the behaviours it turned on.
# The strict_* modules come last: their patches wrap the others', so a
# request AWS would refuse is refused before anything else runs.
MODULES: list[str] = [
    "status",
    # The data plane: image functions run, stages serve (issue #14).
    "lambda_qualifiers",
    "lambda_version_numbers",
    "lambda_runtime",
    "apigw_dataplane",
    # ECR is its registry: pushes are listed, deletes reach it (issue #26).
    "ecr_registry",
    # What AWS measures and limits of it (issue #13).
    "cloudwatch_metrics",
    "cloudwatch_cbor",
    "lambda_metrics",
    "apigw_metrics",
    "lambda_concurrency",
    # Idle functions and recreated roles, as AWS has them (issue #27).
    "lambda_inactive",
    "lambda_role_grant",
    # Logs Insights, and the read quotas that make it needed (issue #22).
    "logs_insights",
    "logs_quota",
    "strict_lambda",
    "strict_iam",
    "strict_logs",
    "strict_apigw",
    "strict_ecr",
    # IAM as AWS authorizes, once moto enforces it (issue #11).
    "iam_auth",
]


def install() -> list[str]:
    """Applies every module's patches; returns the behaviours now in force."""
    installed: list[str] = []
    windows.install()
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        installed.extend(module.install())
    settings.INSTALLED[:] = installed
    return installed
