"""CloudWatch metric alarms, evaluated as CloudWatch evaluates them, their
state changes published to SNS.

What the deployer can rely on (PutMetricAlarm, DescribeAlarms,
DeleteAlarms; "Using Amazon CloudWatch alarms",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html):

- ``PutMetricAlarm`` checks what the API reference lists: exactly one of
  ``Statistic`` and ``ExtendedStatistic`` for a metric alarm; ``Period`` 10,
  20, 30 or a multiple of 60 ("Valid values are 10, 20, 30, and any
  multiple of 60"); ``Period`` x ``EvaluationPeriods`` at most a day;
  ``DatapointsToAlarm`` at most ``EvaluationPeriods``; ``TreatMissingData``
  one of ``breaching``, ``notBreaching``, ``ignore``, ``missing``: else
  ``ValidationError`` (400). An SNS topic among the actions must be in the
  alarm's Region ("Invalid region {r} specified. Only {region} is
  supported.", ValidationError, as users report it: an alarm notifies only
  its own Region's topics). A new alarm is ``INSUFFICIENT_DATA``
  ("Unchecked: Initial alarm creation"; moto said ``OK``); putting an
  alarm that exists keeps its state ("When you update an existing alarm,
  its state is left unchanged"; moto reset it).
- An evaluator thread (every ``cloudwatch-alarm-tick``, 10 s scaled)
  evaluates each alarm held against the metric data moto holds (what
  ``lambda_metrics`` and ``apigw_metrics`` publish, and PutMetricData), as
  the guide's "Evaluating an alarm" has it: the last ``EvaluationPeriods``
  periods of ``Period`` seconds (scaled by ``LOCAL_AWS_TIME_SCALE``, so a
  60 s period lasts 6 s at 0.1) ending now, each the alarm's statistic
  (``Sum``, ``Average``, ``Minimum``, ``Maximum``, ``SampleCount``, or a
  percentile ``pNN``) of the data points of exactly its namespace, metric
  and dimensions; ``ALARM`` when at least ``DatapointsToAlarm`` (default
  ``EvaluationPeriods``) of them breach (``ComparisonOperator`` against
  ``Threshold``). Missing periods ("Configuring how CloudWatch alarms treat
  missing data"): ``notBreaching`` counts them good, ``breaching`` bad,
  ``ignore`` keeps the state when every period is missing, ``missing``
  (the default) goes ``INSUFFICIENT_DATA`` when every period is missing;
  otherwise the present ones decide (``OK`` when fewer than M breach).
  (CloudWatch's evaluation range reaches further back than N periods when
  data is missing, and it holds back some transitions to ALARM on sparse
  data; here only the last N periods count.)
- A change of state sets ``StateValue``, ``StateReason`` ("Threshold
  Crossed: 1 out of the last 1 datapoints [5.0 (06/12/26 11:40:00)] was
  greater than the threshold (0.0) (minimum 1 datapoint for OK -> ALARM
  transition)."), ``StateReasonData`` (JSON), ``StateUpdatedTimestamp``,
  and, when ``ActionsEnabled``, publishes to each SNS topic of
  ``AlarmActions`` (to ``ALARM``), ``OKActions`` (to ``OK``) or
  ``InsufficientDataActions``, the alarm's JSON as the message (the
  notification CloudWatch sends: ``AlarmName``, ``AlarmDescription``,
  ``AWSAccountId``, ``NewStateValue``, ``NewStateReason``,
  ``StateChangeTime``, ``Region``, ``AlarmArn``, ``OldStateValue``,
  ``Trigger``), subject ``ALARM: "{name}" in {Region}``. SNS then delivers
  it (``sns_http``).
- ``SetAlarmState`` changes the state until the next evaluation, as AWS
  does, and notifies likewise. Alarms on metric math and composite alarms
  are not evaluated.

Switch: ``LOCAL_AWS_STRICT_CLOUDWATCH_ALARMS=0``.
"""

import inspect
import json
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.models import Alarm, CloudWatchBackend, cloudwatch_backends

from . import cloudwatch_metrics, patching, settings

NAME = "cloudwatch-alarms"
TREATMENTS = ("breaching", "notBreaching", "ignore", "missing")
OPERATORS = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
# The Region's name in CloudWatch's notification (its "Region" field).
REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-central-1": "EU (Frankfurt)",
}
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")

# One evaluation at a time (the thread, and SetAlarmState's notification).
_LOCK = threading.Lock()


def _validate(period: int, evaluation_periods: int, datapoints: Optional[int], statistic: Optional[str], extended: Optional[str], treat: Optional[str], metric_data_queries: Any) -> None:
    if not metric_data_queries:
        if bool(statistic) == bool(extended):
            raise ValidationError("Exactly one of Statistic or ExtendedStatistic must be specified for a metric alarm.")
        if statistic and statistic not in STATISTICS:
            raise ValidationError(f"Value '{statistic}' at 'statistic' failed to satisfy constraint: Member must satisfy enum value set: [{', '.join(STATISTICS)}]")
        if period not in (10, 20, 30) and (period <= 0 or period % 60):
            raise ValidationError("Period must be 10, 20, 30 or a multiple of 60.")
        if period * evaluation_periods > 86400:
            raise ValidationError("The evaluation period of the alarm (Period * EvaluationPeriods) must not exceed one day (86400 seconds).")
    if evaluation_periods < 1:
        raise ValidationError("EvaluationPeriods must be at least 1.")
    if datapoints is not None and not 1 <= datapoints <= evaluation_periods:
        raise ValidationError("DatapointsToAlarm must be between 1 and EvaluationPeriods.")
    if treat is not None and treat not in TREATMENTS:
        raise ValidationError(f"Option {treat} is not supported. Supported options for parameter TreatMissingData are {', '.join(TREATMENTS)}.")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _statistic(alarm: Alarm, points: list[Any]) -> Optional[float]:
    if not points:
        return None
    singles = [float(p.value) for p in points if hasattr(p, "value")]
    # Statistic sets (PutMetricData's StatisticValues) have no values to rank.
    sets = [p for p in points if not hasattr(p, "value")]
    if alarm.extended_statistic:
        return cloudwatch_metrics.percentile(singles, alarm.extended_statistic)
    count = len(singles) + sum(float(p.sample_count) for p in sets)
    total = sum(singles) + sum(float(p.sum) for p in sets)
    return {
        "SampleCount": count,
        "Sum": total,
        "Average": total / count if count else None,
        "Minimum": min(singles + [float(p.min) for p in sets]),
        "Maximum": max(singles + [float(p.max) for p in sets]),
    }[alarm.statistic]


def _points(data: list[Any], alarm: Alarm, start: datetime, end: datetime) -> list[Any]:
    wanted = sorted((d.name, d.value) for d in alarm.dimensions)
    return [
        md
        for md in data
        if md.namespace == alarm.namespace
        and md.name == alarm.metric_name
        and start <= md.timestamp < end
        and (not alarm.unit or md.unit == alarm.unit)
        and sorted((d.name, d.value) for d in md.dimensions) == wanted
    ]


def evaluate(backend: CloudWatchBackend, alarm: Alarm, now: datetime, scale: Optional[float] = None, data: Optional[list[Any]] = None) -> Optional[tuple[str, str, dict[str, Any]]]:
    """The state ``alarm`` should be in at ``now`` (naive UTC), its periods
    scaled by ``scale`` (``LOCAL_AWS_TIME_SCALE`` unless given), with its
    reason and reason data; ``None`` to keep the state. ``data``: the
    backend's recent data points of the alarm's metric, when the caller
    has them at hand (else all of the backend's are read)."""
    if data is None:
        data = list(backend.metric_data)
    if alarm.metric_data_queries or not alarm.metric_name or alarm.comparison_operator not in OPERATORS:
        return None
    period = alarm.period * (settings.time_scale() if scale is None else scale)
    count = int(alarm.evaluation_periods)
    needed = int(alarm.datapoints_to_alarm or count)
    breaches, describe = OPERATORS[alarm.comparison_operator]
    threshold = float(alarm.threshold)
    treat = alarm.treat_missing_data or "missing"
    # Oldest first, as the reason lists them.
    periods: list[tuple[datetime, Optional[float]]] = []
    for i in reversed(range(count)):
        end = now - timedelta(seconds=i * period)
        start = end - timedelta(seconds=period)
        periods.append((start, _statistic(alarm, _points(data, alarm, start, end))))
    present = [(t, v) for t, v in periods if v is not None]
    if not present and treat in ("missing", "ignore"):
        if treat == "ignore":
            return None
        reason = f"Insufficient Data: {count} datapoint{'s were' if count > 1 else ' was'} unknown."
        return "INSUFFICIENT_DATA", reason, {"version": "1.0", "queryDate": _stamp(now), "recentDatapoints": []}
    if treat in ("missing", "ignore"):
        judged = [(t, v, breaches(v, threshold)) for t, v in present]
    else:
        judged = [(t, v, breaches(v, threshold) if v is not None else treat == "breaching") for t, v in periods]
    bad = sum(1 for _, _, b in judged if b)
    state = "ALARM" if bad >= needed else "OK"
    shown = [(t, v) for t, v, _ in judged if v is not None]
    listed = ", ".join(f"{v} ({t.strftime('%d/%m/%y %H:%M:%S')})" for t, v in shown)
    verb = describe if state == "ALARM" else f"not {describe}"
    counted = bad if state == "ALARM" else len(judged) - bad
    old = alarm.state_value
    reason = (
        f"Threshold Crossed: {counted} out of the last {len(judged)} datapoints [{listed}] was {verb} the threshold ({threshold}) "
        f"(minimum {needed} datapoint{'s' if needed > 1 else ''} for {old} -> {state} transition)."
    )
    data = {
        "version": "1.0",
        "queryDate": _stamp(now),
        "startDate": _stamp(periods[0][0]),
        "statistic": alarm.statistic,
        "period": alarm.period,
        "recentDatapoints": [v for _, v in shown],
        "threshold": threshold,
        "evaluatedDatapoints": [{"timestamp": _stamp(t), "value": v} for t, v in shown],
    }
    if alarm.extended_statistic:
        data.pop("statistic")
        data["extendedStatistic"] = alarm.extended_statistic
    return state, reason, data


def notification(alarm: Alarm, account_id: str, old_state: str) -> dict[str, Any]:
    """The message CloudWatch publishes to the alarm's topics on a change."""
    trigger: dict[str, Any] = {
        "MetricName": alarm.metric_name,
        "Namespace": alarm.namespace,
        "StatisticType": "ExtendedStatistic" if alarm.extended_statistic else "Statistic",
        "Statistic": (alarm.extended_statistic or alarm.statistic or "").upper(),
        "Unit": alarm.unit,
        "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
        "Period": alarm.period,
        "EvaluationPeriods": alarm.evaluation_periods,
        "DatapointsToAlarm": alarm.datapoints_to_alarm or alarm.evaluation_periods,
        "ComparisonOperator": alarm.comparison_operator,
        "Threshold": float(alarm.threshold),
        "TreatMissingData": alarm.treat_missing_data or "missing",
        "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
    }
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account_id,
        "AlarmConfigurationUpdatedTimestamp": _stamp(alarm.configuration_updated_timestamp),
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": _stamp(alarm.state_updated_timestamp),
        "Region": REGION_NAMES.get(alarm.region_name, alarm.region_name),
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_state,
        "OKActions": alarm.ok_actions,
        "AlarmActions": alarm.alarm_actions,
        "InsufficientDataActions": alarm.insufficient_data_actions,
        "Trigger": trigger,
    }


def _notify(alarm: Alarm, account_id: str, old_state: str) -> None:
    if not alarm.actions_enabled:
        return
    actions = {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions, "INSUFFICIENT_DATA": alarm.insufficient_data_actions}[alarm.state_value]
    from moto.sns.models import sns_backends

    message = json.dumps(notification(alarm, account_id, old_state))
    subject = f'{alarm.state_value}: "{alarm.name}" in {REGION_NAMES.get(alarm.region_name, alarm.region_name)}'[:100]
    for action in actions or []:
        parts = action.split(":")
        if len(parts) < 6 or parts[2] != "sns":
            continue
        try:
            sns_backends[parts[4]][parts[3]].publish(message, arn=action, subject=subject)
        except Exception as error:
            # CloudWatch records a failed action in the alarm's history and
            # carries on; so does the evaluator.
            print(f"moto_ext/{NAME}: publishing to {action} failed: {error}", file=sys.stderr, flush=True)


def change(backend: CloudWatchBackend, alarm: Alarm, state: str, reason: str, data: dict[str, Any]) -> None:
    old = alarm.state_value
    alarm.update_state(reason, json.dumps(data), state)
    _notify(alarm, backend.account_id, old)


def _recent(backend: CloudWatchBackend, alarms: list[Alarm], now: datetime) -> dict[tuple[str, str], list[Any]]:
    """The data points the alarms can look at, by namespace and metric: one
    pass over the backend's data per tick, however many alarms it holds."""
    reach = max(a.period * int(a.evaluation_periods or 1) for a in alarms) * settings.time_scale()
    horizon = now - timedelta(seconds=reach)
    by_metric: dict[tuple[str, str], list[Any]] = {}
    for md in list(backend.metric_data):
        if md.timestamp >= horizon:
            by_metric.setdefault((md.namespace, md.name), []).append(md)
    return by_metric


def evaluate_all() -> None:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for account_backends in list(cloudwatch_backends.values()):
        for backend in list(account_backends.values()):
            alarms = [a for a in list(backend.alarms.values()) if a.period and not a.metric_data_queries]
            if not alarms:
                continue
            recent = _recent(backend, alarms, now)
            for alarm in alarms:
                with _LOCK:
                    if backend.alarms.get(alarm.name) is not alarm:
                        continue
                    decided = evaluate(backend, alarm, now, data=recent.get((alarm.namespace, alarm.metric_name), []))
                    if decided is not None and decided[0] != alarm.state_value:
                        change(backend, alarm, *decided)


def _run(tick: float) -> None:
    while True:
        time.sleep(tick)
        try:
            evaluate_all()
        except Exception as error:
            print(f"moto_ext/{NAME}: evaluating alarms failed: {error}", file=sys.stderr, flush=True)


def install() -> list[str]:
    if not settings.enabled(NAME):
        return []
    tick = settings.window("cloudwatch-alarm-tick", 10)

    @patching.replace(CloudWatchBackend, "put_metric_alarm")
    def put_metric_alarm(original: Any, self: CloudWatchBackend, *args: Any, **kwargs: Any) -> Alarm:
        bound = inspect.signature(original).bind(self, *args, **kwargs)
        bound.apply_defaults()
        p = bound.arguments
        datapoints = p.get("datapoints_to_alarm")
        for action in (p.get("alarm_actions") or []) + (p.get("ok_actions") or []) + (p.get("insufficient_data_actions") or []):
            parts = str(action).split(":")
            if len(parts) >= 6 and parts[2] == "sns" and parts[3] != self.region_name:
                raise ValidationError(f"Invalid region {parts[3]} specified. Only {self.region_name} is supported.")
        _validate(
            int(p.get("period") or 0),
            int(p.get("evaluation_periods") or 0),
            None if datapoints is None else int(datapoints),
            p.get("statistic"),
            p.get("extended_statistic"),
            p.get("treat_missing_data"),
            p.get("metric_data_queries"),
        )
        with _LOCK:
            before = self.alarms.get(p["name"])
            alarm = original(self, *args, **kwargs)
            if before is not None:
                # An update keeps the state (and its history).
                alarm.state_value, alarm.state_reason, alarm.state_reason_data = before.state_value, before.state_reason, before.state_reason_data
                alarm.state_updated_timestamp, alarm.history = before.state_updated_timestamp, before.history
            else:
                alarm.state_value = "INSUFFICIENT_DATA"
        return alarm

    @patching.replace(CloudWatchBackend, "set_alarm_state")
    def set_alarm_state(original: Any, self: CloudWatchBackend, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
        with _LOCK:
            alarm = self.alarms.get(alarm_name)
            old = alarm.state_value if alarm else None
            original(self, alarm_name, reason, reason_data, state_value)
            if alarm is not None and old != state_value:
                _notify(alarm, self.account_id, old or "INSUFFICIENT_DATA")

    threading.Thread(target=_run, args=(tick,), name="alarm evaluator", daemon=True).start()
    return [NAME]
