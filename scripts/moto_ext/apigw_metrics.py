"""API Gateway publishes a REST API stage's metrics to CloudWatch, from the
requests the local data plane serves (``apigw_dataplane``).

"Amazon API Gateway dimensions and metrics"
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html),
namespace ``AWS/ApiGateway``, one data point per request at the moment it
arrived:

- ``Count``: every request ("The ``SampleCount`` statistic represents this
  metric").
- ``4XXError``, ``5XXError`` (1 or 0): the answer's class, gateway
  responses included ("API Gateway counts modified gateway response status
  codes"); Sum counts them, Average is the rate.
- ``Latency`` (milliseconds): from the request's arrival to the answer.
- ``IntegrationLatency`` (milliseconds): from relaying the request to the
  backend (the Lambda proxy) to its answer; none for a request that never
  reached one (a MOCK, a gateway answer before the integration).

Dimensions: ``ApiName`` and ``ApiName,Stage`` (the per-method ones need
detailed CloudWatch metrics, which the data plane does not model).

Switch: ``LOCAL_AWS_STRICT_APIGW_METRICS=0``.
"""

from . import apigw_dataplane, cloudwatch_metrics, settings

NAME = "apigw-metrics"
NAMESPACE = "AWS/ApiGateway"


def publish(served: apigw_dataplane.Served) -> None:
    data: list[cloudwatch_metrics.Datum] = [
        ("Count", 1, "Count"),
        ("4XXError", 1 if 400 <= served.status < 500 else 0, "Count"),
        ("5XXError", 1 if served.status >= 500 else 0, "Count"),
        ("Latency", round(served.latency_ms, 2), "Milliseconds"),
    ]
    if served.integration_latency_ms is not None:
        data.append(("IntegrationLatency", round(served.integration_latency_ms, 2), "Milliseconds"))
    api = [("ApiName", served.api_name)]
    cloudwatch_metrics.publish(served.account_id, served.region, NAMESPACE, served.received, data, [api, api + [("Stage", served.stage)]])


def install() -> list[str]:
    if not settings.enabled(NAME) or not settings.enabled(apigw_dataplane.NAME):
        return []
    apigw_dataplane.OBSERVERS.append(publish)
    return [NAME]
