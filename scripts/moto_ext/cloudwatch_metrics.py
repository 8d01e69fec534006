"""CloudWatch metrics as AWS services publish them, and read as CloudWatch
reads them.

``publish`` puts a service's own data points (``AWS/Lambda``,
``AWS/ApiGateway``) into moto's CloudWatch backend of the account and
region, in-process, with the moment they belong to. It is what
``lambda_metrics`` and ``apigw_metrics`` share, not a behaviour of its own.
(PutMetricData cannot do it: AWS reserves the ``AWS/`` namespaces.)

Behaviour ``cloudwatch-statistics``: GetMetricStatistics and
GetMetricData read as CloudWatch does, where moto does not:

- "Amazon CloudWatch concepts", Dimensions
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Dimension):
  "CloudWatch treats each unique combination of dimensions as a separate
  metric, even if the metrics have the same metric name", and statistics
  can only be retrieved for a combination that was published. moto matches
  any data point that has the asked dimensions among others (so a
  ``FunctionName`` query also summed the ``FunctionName,Resource`` points,
  counting each invocation twice or more), and GetMetricData with no
  dimensions matched every point of the name, and with dimensions ignored
  the namespace. Here a query matches the namespace, the name and exactly
  its dimensions.
- Percentiles ("CloudWatch statistics definitions", Percentile ``pNN``;
  GetMetricStatistics ``ExtendedStatistics``, GetMetricData ``Stat``):
  moto ignores ExtendedStatistics and answers no value for ``p99``. Here a
  percentile is the nearest-rank value of the period's published values
  (the smallest value with at least NN% of the values at or below it).
  Data points published as statistic sets have no values to rank and are
  left out of percentiles, as CloudWatch does unless all values fall in
  one bucket.

Periods start at the query's StartTime. GetMetricData's metric math and
Metrics Insights queries keep moto's own reading.

Switch: ``LOCAL_AWS_STRICT_CLOUDWATCH_STATISTICS=0``.
"""

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, Sequence

from moto.cloudwatch.exceptions import InvalidParameterValue
from moto.cloudwatch.models import CloudWatchBackend, Dimension, MetricDatum, Statistics, cloudwatch_backends
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

from . import patching, settings

NAME = "cloudwatch-statistics"
# GetMetricStatistics API reference, ExtendedStatistics: "p(\d{1,2}(\.\d{0,2})?|100)".
PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d{0,2})?|100)$")

# A metric's value: name, value, unit.
Datum = tuple[str, float, str]


def publish(account_id: str, region: str, namespace: str, at: float, data: Sequence[Datum], dimension_sets: Sequence[Sequence[tuple[str, str]]]) -> None:
    """Puts each datum once per dimension set, timestamped ``at`` (epoch
    seconds), as the service's own metrics."""
    backend: CloudWatchBackend = cloudwatch_backends[account_id][region]
    # moto keeps naive UTC datetimes.
    when = datetime.fromtimestamp(at, tz=timezone.utc).replace(tzinfo=None)
    points = [
        MetricDatum(namespace, name, float(value), [{"Name": k, "Value": v} for k, v in dimensions], when, unit)
        for dimensions in dimension_sets
        for name, value, unit in data
    ]
    # One list extension: readers copy the list, and see all or none.
    backend.metric_data.extend(points)


def percentile(values: Sequence[float], stat: str) -> Optional[float]:
    """The nearest-rank percentile ``stat`` (``p99``) of ``values``."""
    if not values:
        return None
    ranked = sorted(values)
    share = float(stat[1:]) / 100
    index = max(0, math.ceil(share * len(ranked)) - 1)
    return ranked[min(index, len(ranked) - 1)]


def _exactly(dimensions: Sequence[Any]) -> list[Dimension]:
    return sorted(Dimension(d["Name"], d.get("Value")) for d in dimensions or [])


def _matching(backend: CloudWatchBackend, namespace: str, name: str, dimensions: Sequence[Any], start: datetime, end: datetime, unit: Optional[str]) -> list[Any]:
    wanted = _exactly(dimensions)
    return sorted(
        (
            md
            for md in backend.get_all_metrics()
            if md.namespace == namespace
            and md.name == name
            and start <= md.timestamp < end
            and (not unit or md.unit == unit)
            and sorted(md.dimensions) == wanted
        ),
        key=lambda md: md.timestamp,
    )


def _naive(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def install() -> list[str]:
    if not settings.enabled(NAME):
        return []

    @patching.replace(Statistics, "get_statistics_for_type")
    def get_statistics_for_type(original: Any, self: Statistics, stat: str) -> Any:
        if PERCENTILE.match(stat or ""):
            return percentile(self.metric_single_values_list, stat)
        return original(self, stat)

    @patching.replace(CloudWatchBackend, "get_metric_statistics")
    def get_metric_statistics(original: Any, self: CloudWatchBackend, namespace: str, metric_name: str, start_time: datetime, end_time: datetime, period: int, stats: list[str], dimensions: list[dict[str, str]], unit: Optional[str] = None, extended: Optional[list[str]] = None) -> list[Statistics]:
        start, end = _naive(start_time).replace(microsecond=0), _naive(end_time).replace(microsecond=0)
        if start >= end:
            # moto's own check and message.
            return original(self, namespace, metric_name, start_time, end_time, period, stats, dimensions, unit)
        data = _matching(self, namespace, metric_name, dimensions, start, end, unit)
        answer: list[Statistics] = []
        step = timedelta(seconds=period)
        # Periods start at StartTime, as CloudWatch aligns them to the query.
        buckets: dict[int, Statistics] = {}
        for md in data:
            index = int((md.timestamp - start) / step)
            bucket = buckets.get(index)
            if bucket is None:
                bucket = buckets[index] = Statistics(stats, start + index * step)
                answer.append(bucket)
            bucket.metric_data.append(md)
            bucket.unit = md.unit
        for bucket in answer:
            if extended:
                # Serialized as the datapoint's ExtendedStatistics map.
                bucket.extended_statistics = {p: percentile(bucket.metric_single_values_list, p) for p in extended}  # type: ignore[attr-defined]
        return answer

    @patching.replace(CloudWatchResponse, "get_metric_statistics")
    def response_get_metric_statistics(original: Any, self: CloudWatchResponse) -> Any:
        extended = self._get_param("ExtendedStatistics") or []
        if not extended:
            return original(self)
        # moto's handler drops ExtendedStatistics; this one passes them on.
        bad = [p for p in extended if not PERCENTILE.match(p)]
        if bad:
            raise InvalidParameterValue(f"The value {bad[0]} for parameter ExtendedStatistics is not supported.")
        metric_name = self._get_param("MetricName")
        datapoints = self.cloudwatch_backend.get_metric_statistics(
            self._get_param("Namespace"),
            metric_name,
            self._get_param("StartTime"),
            self._get_param("EndTime"),
            self._get_int_param("Period"),
            self._get_param("Statistics", []),
            self._get_param("Dimensions", []),
            unit=self._get_param("Unit"),
            extended=extended,
        )
        return ActionResult({"Label": metric_name, "Datapoints": datapoints})

    @patching.replace(CloudWatchBackend, "get_metric_data")
    def get_metric_data(original: Any, self: CloudWatchBackend, queries: list[dict[str, Any]], start_time: datetime, end_time: datetime, scan_by: str = "TimestampAscending") -> list[dict[str, Any]]:
        answers = original(self, queries, start_time, end_time, scan_by)
        start, end = _naive(start_time).replace(microsecond=0), _naive(end_time).replace(microsecond=0)
        by_id = {q["Id"]: q for q in queries if "MetricStat" in q}
        for answer in answers:
            query = by_id.get(answer["id"])
            if query is None:
                continue
            metric_stat = query["MetricStat"]
            metric = metric_stat["Metric"]
            stat = metric_stat["Stat"]
            step = timedelta(seconds=int(metric_stat["Period"]))
            data = _matching(self, metric["Namespace"], metric["MetricName"], metric.get("Dimensions", []), start, end, metric_stat.get("Unit"))
            buckets: dict[int, Statistics] = {}
            for md in data:
                index = int((md.timestamp - start) / step)
                bucket = buckets.setdefault(index, Statistics([stat], start + index * step))
                bucket.metric_data.append(md)
            ordered = sorted(buckets.items(), reverse=scan_by == "TimestampDescending")
            values = [(b.timestamp, b.get_statistics_for_type(stat)) for _, b in ordered]
            values = [(t, v) for t, v in values if v is not None]
            answer["timestamps"] = [t for t, _ in values]
            answer["values"] = [v for _, v in values]
        return answers

    return [NAME]
