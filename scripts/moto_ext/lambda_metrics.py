"""Lambda publishes its functions' metrics to CloudWatch, from the local
execution.

"Types of metrics for Lambda functions"
(https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html),
namespace ``AWS/Lambda``, one data point per invocation at the moment it
was received (the timestamp "reflects when the function was invoked"):

- ``Invocations`` (1): every invocation that ran the function, with or
  without a function error; "Invocations aren't recorded if the invocation
  request is throttled or otherwise results in an invocation error" (an
  image that cannot run).
- ``Errors`` (1 or 0): a function error, a timeout, an init failure, an
  exit (everything Invoke answers with ``X-Amz-Function-Error``). Invocation
  metrics are "binary indicators": Sum counts them, Average is the rate.
- ``Throttles`` (1): an invocation refused for concurrency (429
  TooManyRequestsException: reserved concurrency reached, or no
  environment free in time); it records nothing else.
- ``Duration`` (milliseconds): the time the function code spent on the
  event (the REPORT line's Duration), so percentiles work
  (``cloudwatch_metrics``).
- ``ConcurrentExecutions`` (count): the invocations in flight when it began.
- ``ProvisionedConcurrencyInvocations`` and
  ``ProvisionedConcurrencySpilloverInvocations`` (1 or 0), for an invocation
  of a version with provisioned concurrency: whether it ran on a
  provisioned environment or, all of them busy, on an on-demand one
  ("spillover": "the number of times your function code is executed on
  standard concurrency when all provisioned concurrency is in use").

Dimensions, as the console and AWS's metric metadata list them: none (the
account's aggregate), ``FunctionName``; and, for an invocation of a
qualified ARN, ``FunctionName,Resource`` (``name:qualifier``); for an alias,
also ``FunctionName,Resource,ExecutedVersion`` (the version the alias
pointed at). Each combination is its own metric.

Only the invocations the extension runs (image functions, through
``lambda_runtime``) are counted; moto's own zip-function invoke is not.

Switch: ``LOCAL_AWS_STRICT_LAMBDA_METRICS=0``.
"""

from . import cloudwatch_metrics, lambda_runtime, settings

NAME = "lambda-metrics"
NAMESPACE = "AWS/Lambda"


def dimension_sets(outcome: lambda_runtime.Outcome) -> list[list[tuple[str, str]]]:
    function = [("FunctionName", outcome.function_name)]
    sets = [function]
    if outcome.resource:
        resource = function + [("Resource", f"{outcome.function_name}:{outcome.resource}")]
        sets.append(resource)
        if not outcome.resource.isdigit() and outcome.resource != "$LATEST":
            sets.append(resource + [("ExecutedVersion", outcome.executed_version)])
    return sets


def publish(outcome: lambda_runtime.Outcome) -> None:
    sets = dimension_sets(outcome)
    if outcome.throttled:
        data: list[cloudwatch_metrics.Datum] = [("Throttles", 1, "Count")]
    else:
        data = [
            ("Invocations", 1, "Count"),
            ("Errors", 1 if outcome.function_error else 0, "Count"),
            ("Duration", round(outcome.duration_ms, 2), "Milliseconds"),
        ]
        if outcome.spillover is not None:
            data.append(("ProvisionedConcurrencyInvocations", 0 if outcome.spillover else 1, "Count"))
            data.append(("ProvisionedConcurrencySpilloverInvocations", 1 if outcome.spillover else 0, "Count"))
    publish_sets = [[]] + sets
    cloudwatch_metrics.publish(outcome.account_id, outcome.region, NAMESPACE, outcome.started, data, publish_sets)
    if not outcome.throttled:
        # Each combination counts what it names: the account's, the
        # function's, the resource's invocations in flight.
        concurrency = [
            ([], outcome.concurrent_account),
            (sets[0], outcome.concurrent),
        ] + [(s, outcome.concurrent_resource) for s in sets[1:]]
        for dimensions, value in concurrency:
            cloudwatch_metrics.publish(
                outcome.account_id, outcome.region, NAMESPACE, outcome.started, [("ConcurrentExecutions", value, "Count")], [dimensions]
            )


def install() -> list[str]:
    if not settings.enabled(NAME) or not settings.enabled(lambda_runtime.NAME):
        return []
    lambda_runtime.OBSERVERS.append(publish)
    return [NAME]
