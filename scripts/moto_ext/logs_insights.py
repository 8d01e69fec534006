"""CloudWatch Logs Insights: StartQuery, GetQueryResults, StopQuery and
DescribeQueries with AWS's semantics, over log groups of any size.

Behaviour ``logs-insights`` (switch ``LOCAL_AWS_STRICT_LOGS_INSIGHTS=0``:
moto's own StartQuery, which answers at once, ``Complete``, and parses
little). AWS pages followed:

- StartQuery
  (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_StartQuery.html):
  exactly one of ``logGroupName``, ``logGroupNames`` (at most 50) and
  ``logGroupIdentifiers`` (names or ARNs), else InvalidParameterException;
  ``startTime`` and ``endTime`` in epoch *seconds*, "The range is
  inclusive, so the specified end time is included in the query" (the
  whole end second); ``limit`` at most 10,000, the default. Errors: a
  query it cannot parse, MalformedQueryException (with
  ``queryCompileError``; ``logs_query`` says which forms it parses); a log
  group that does not exist, ResourceNotFoundException; past the
  concurrent-query quota, LimitExceededException.
- "CloudWatch Logs quotas" and "View running queries or query history":
  100 concurrent Logs Insights queries per account; a query times out
  after 60 minutes (not reproduced: no local query runs that long).
- GetQueryResults
  (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetQueryResults.html):
  ``status`` ``Scheduled``, ``Running``, ``Complete``, ``Failed``,
  ``Cancelled`` (``Timeout`` and ``Unknown`` are never reached here);
  ``results`` as lists of ``{field, value}``, every value a string (a
  field without a value is left out of its row); ``statistics``
  ``recordsMatched``, ``recordsScanned``, ``bytesScanned``. Results are
  only given once ``Complete`` (AWS may give partial ones before).
- StopQuery
  (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_StopQuery.html):
  a query in progress becomes ``Cancelled`` (``success: true``); "If the
  query has already ended, the operation returns an error indicating that
  the specified query is not running" (InvalidParameterException here;
  an unknown id, ResourceNotFoundException).
- DescribeQueries: the account's queries in the Region, newest first,
  filtered by ``logGroupName`` and ``status``.

Timing: a query is ``Scheduled`` for the window ``logs-insights-scheduled``
(default 0.2 s, scaled), then ``Running`` while it is computed and for at
least ``logs-insights-running`` (default 0.3 s, scaled): a client must poll,
as on AWS, and the local AWS's answer stays fast enough for a 2 s
``status`` at production volume.

Speed: each log stream keeps its events' fields in columns (arrays of
numbers, REPORT lines parsed once when they are put, ``Columns``), and a
query compiles to one Python comprehension over them (``logs_query``): a
stats query over a million REPORT lines takes a fraction of a second.
"""

import base64
import bisect
import datetime
import json
import math
import re
import threading
import time
import uuid
from array import array
from typing import Any, Optional

from moto.logs.exceptions import LogsClientError
from moto.logs.models import LogStream, logs_backends
from moto.logs.responses import LogsResponse
from moto.logs.utils import EventMessageFilter
from moto.moto_api._internal.models import MotoAPIBackend

from . import logs_query, patching, routes, settings

NAME = "logs-insights"
# "CloudWatch Logs quotas": concurrent Logs Insights queries per account.
# StartQuery's API reference still says "up to 30"; the quotas page and
# the user guide's "View running queries or query history" say 100, the
# newer figure. The deployer does not depend on which: past the quota its
# reports call Insights unavailable and carry on (aws::logs::Insights).
CONCURRENT_QUERIES = 100
# StartQuery, logGroupNames: "You can include up to 50 log groups."
MAX_GROUPS = 50
MAX_QUERY_LENGTH = 10_000
# How long a stream whose puts came out of time order must go without a
# put before its columns are sorted in the background.
SETTLE_SECONDS = 0.5
NAN = math.nan

# The numbers Lambda's REPORT line gives ("Supported logs and discovered
# fields", Lambda logs), with the factor to the discovered field's unit.
_REPORT_FIELDS = {
    "Duration": ("@duration", 1.0),
    "Billed Duration": ("@billedDuration", 1.0),
    "Memory Size": ("@memorySize", 1_000_000.0),
    "Max Memory Used": ("@maxMemoryUsed", 1_000_000.0),
    "Init Duration": ("@initDuration", 1.0),
}
_REPORT_NUMBERS = [name for name, _ in _REPORT_FIELDS.values()]
_REPORT_VALUE = re.compile(r"(Billed Duration|Init Duration|Duration|Memory Size|Max Memory Used): (\d+(?:\.\d+)?) (?:ms|MB)")
_REQUEST_ID = re.compile(r"RequestId: (\S+)")
_TYPES = {"REPORT": "REPORT", "START": "START", "END": "END"}
# A REPORT line as Lambda writes it: its numbers in _REPORT_FIELDS' order.
_REPORT_LINE = re.compile(
    r"REPORT RequestId: \S+\tDuration: (\d+(?:\.\d+)?) ms\tBilled Duration: (\d+(?:\.\d+)?) ms\t"
    r"Memory Size: (\d+) MB\tMax Memory Used: (\d+) MB(?:\tInit Duration: (\d+(?:\.\d+)?) ms)?"
)


def _report_values(message: str) -> Optional[tuple]:
    """The numbers of a REPORT line not quite as Lambda writes it (fields
    missing or spaced otherwise), in _REPORT_FIELDS' order; None for any
    other line."""
    if _type_of(message) != "REPORT":
        return None
    found = dict(_REPORT_VALUE.findall(message))
    return tuple(found.get(label) for label in _REPORT_FIELDS)


def _type_of(message: str) -> Optional[str]:
    """``@type``: the first word of Lambda's own lines."""
    return _TYPES.get(message.split(" ", 1)[0])


class _Error(LogsClientError):
    def __init__(self, error_type: str, message: str, **extra: Any) -> None:
        super().__init__(error_type, message)
        if extra:
            body = json.loads(self.description)
            body.update(extra)
            self.description = json.dumps(body)


def _invalid(message: str) -> _Error:
    return _Error("InvalidParameterException", message)


# ---------------------------------------------------------------- columns


class Columns:
    """A log stream's events as columns in time order: timestamps,
    ingestion times, sizes, ``@type`` and the REPORT numbers (NaN where a
    line has none). Row ``i`` is ``stream.events[i]``, or, once rows were
    put back in time order, ``stream.events[event[i]]``.

    ``catch_up`` appends the stream's new events (at PutLogEvents, so that
    a query does not parse them); ``in_time_order`` sorts the rows when a
    batch came earlier than the rows before it (a reader's first query
    after such puts pays it once: the rows are a few sorted runs, which
    Python's sort merges in one pass). Readers hold ``lock`` while they
    read, as sorting replaces the columns. After such puts the rows are
    also sorted once the stream has had no put for ``SETTLE_SECONDS``
    (``settle``), so that a loader's first query seldom waits for it."""

    def __init__(self) -> None:
        self.count = 0
        self.timestamp = array("q")
        self.ingestion = array("q")
        self.size = array("q")
        self.type: list[Optional[str]] = []
        self.numbers = {name: array("d") for name in _REPORT_NUMBERS}
        self.event: Optional[array] = None
        self.in_order = True
        self.lock = threading.RLock()
        self.timer: Optional[threading.Timer] = None

    def catch_up(self, events: list) -> None:
        with self.lock:
            new = events[self.count :]
            if not new:
                return
            stamps = [e.timestamp for e in new]
            if self.in_order and (
                (self.timestamp and stamps[0] < self.timestamp[-1]) or any(a > b for a, b in zip(stamps, stamps[1:]))
            ):
                self.in_order = False
            self.timestamp.extend(stamps)
            self.ingestion.extend([e.ingestion_time for e in new])
            messages = [e.message for e in new]
            # Characters, not UTF-8 bytes: bytesScanned is AWS's estimate too.
            self.size.extend(map(len, messages))
            # Lambda's own REPORT lines all look alike: one match each;
            # anything else that starts with REPORT, field by field.
            matches = list(map(_REPORT_LINE.match, messages))
            values = [m.groups() if m else _report_values(text) for m, text in zip(matches, messages)]
            for position, (name, factor) in enumerate(_REPORT_FIELDS.values()):
                self.numbers[name].extend([float(v[position]) * factor if v and v[position] else NAN for v in values])
            self.type.extend(["REPORT" if v else _type_of(text) for v, text in zip(values, messages)])
            if self.event is not None:
                self.event.extend(range(self.count, len(events)))
            self.count = len(events)

    def settle(self) -> None:
        """Sorts the rows once no put came for ``SETTLE_SECONDS``."""
        with self.lock:
            if self.in_order:
                return
            if self.timer is not None:
                self.timer.cancel()
            self.timer = threading.Timer(SETTLE_SECONDS, self.in_time_order)
            self.timer.daemon = True
            self.timer.start()

    def in_time_order(self) -> None:
        with self.lock:
            if self.in_order:
                return
            # Stable: events of one millisecond keep the order they came in.
            order = sorted(range(self.count), key=self.timestamp.__getitem__)
            self.timestamp = array("q", map(self.timestamp.__getitem__, order))
            self.ingestion = array("q", map(self.ingestion.__getitem__, order))
            self.size = array("q", map(self.size.__getitem__, order))
            self.type = list(map(self.type.__getitem__, order))
            self.numbers = {name: array("d", map(column.__getitem__, order)) for name, column in self.numbers.items()}
            self.event = array("q", order if self.event is None else map(self.event.__getitem__, order))
            self.in_order = True

    def events(self, stream: LogStream, rows: Any) -> list:
        """The events of ``rows`` (a slice or indexes)."""
        if isinstance(rows, slice):
            if self.event is None:
                return stream.events[rows]
            return list(map(stream.events.__getitem__, self.event[rows]))
        where = rows if self.event is None else map(self.event.__getitem__, rows)
        return list(map(stream.events.__getitem__, where))


def columns_of(stream: LogStream) -> Columns:
    """The stream's columns, up to date and in time order; hold their lock
    while reading them."""
    columns = _columns(stream)
    columns.catch_up(stream.events)
    columns.in_time_order()
    return columns


def _columns(stream: LogStream) -> Columns:
    columns = getattr(stream, "_moto_ext_columns", None)
    if columns is None:
        columns = stream._moto_ext_columns = Columns()  # type: ignore[attr-defined]
    return columns


def _request_id(message: str) -> Optional[str]:
    match = _REQUEST_ID.search(message)
    return match.group(1) if match else None


def _rows_in(columns: Columns, start_ms: int, end_ms: int) -> slice:
    """The rows with a timestamp in [start_ms, end_ms] (the columns in time
    order)."""
    stamps = columns.timestamp
    return slice(bisect.bisect_left(stamps, start_ms), bisect.bisect_right(stamps, end_ms))


def _take(values: Any, rows: Any) -> Any:
    return values[rows] if isinstance(rows, slice) else [values[i] for i in rows]


def _column(name: str, stream: LogStream, group: Any, columns: Columns, rows: Any, count: int) -> Any:
    if name == "@timestamp":
        return _take(columns.timestamp, rows)
    if name == "@ingestionTime":
        return _take(columns.ingestion, rows)
    if name == "@type":
        return _take(columns.type, rows)
    if name in columns.numbers:
        return _take(columns.numbers[name], rows)
    if name == "@logStream":
        return [stream.log_stream_name] * count
    if name == "@log":
        return [f"{group.account_id}:{group.name}"] * count
    events = columns.events(stream, rows)
    if name == "@message":
        return [e.message for e in events]
    if name == "@requestId":
        return [_request_id(e.message) if t is not None else None for e, t in zip(events, _take(columns.type, rows))]
    raise logs_query.Malformed(f"no column {name}")


# ---------------------------------------------------------------- running a query


def _format(value: Any, moment: bool = False) -> Optional[str]:
    """A value as GetQueryResults gives it: a string; times as AWS writes
    them (``2025-12-01 11:25:00.000``, UTC)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):
        return value
    if moment:
        moment = datetime.datetime.fromtimestamp(value / 1000, datetime.timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{int(value) % 1000:03d}"
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def _sort_key(value: Any, descending: bool) -> tuple:
    """Absent values last, in either direction."""
    absent = value is None or (isinstance(value, float) and value != value)
    if absent:
        return (1, 0)
    if descending:
        return (0, -value) if not isinstance(value, str) else (0, _Reversed(value))
    return (0, value)


class _Reversed:
    def __init__(self, text: str) -> None:
        self.text = text

    def __lt__(self, other: "_Reversed") -> bool:
        return self.text > other.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.text == other.text


def run(plan: logs_query.Plan, groups: list, start_s: int, end_s: int, limit: int) -> tuple[list, dict]:
    """The query's results and statistics over ``groups``."""
    query = plan.query
    start_ms, end_ms = start_s * 1000, end_s * 1000 + 999
    reading = _Reading(plan)
    for group in groups:
        for stream in list(group.streams.values()):
            columns = columns_of(stream)
            with columns.lock:
                picked = _rows_in(columns, start_ms, end_ms)
                count = picked.stop - picked.start
                if count == 0:
                    continue
                reading.scanned += count
                reading.scanned_bytes += sum(columns.size[picked])
                reading.read(group, stream, columns, picked, count)
    statistics = {
        "recordsMatched": float(reading.matched),
        "recordsScanned": float(reading.scanned),
        "bytesScanned": float(reading.scanned_bytes),
    }
    if query.limit is not None:
        limit = min(limit, query.limit)
    if query.aggregated:
        return _aggregate(plan, reading.partial)[:limit], statistics
    return _records(plan, reading.rows, reading.pointers)[:limit], statistics


class _Reading:
    """What a query has read so far: without stats, the matching rows;
    with stats, per group key, the matching rows' count and each
    aggregate's values."""

    def __init__(self, plan: logs_query.Plan):
        self.plan = plan
        self.scanned = 0
        self.scanned_bytes = 0
        self.matched = 0
        self.rows: list = []
        self.pointers: list[tuple[str, str]] = []
        self.partial: dict[Any, list] = {}

    def read(self, group: Any, stream: LogStream, columns: Columns, picked: slice, count: int) -> None:
        """Reads the rows ``picked`` (a time range of the stream)."""
        plan = self.plan
        if plan.records is not None:
            inputs = [_column(name, stream, group, columns, picked, count) for name in plan.records.reads]
            found = plan.records.run(*inputs) if inputs else plan.records.run(count)
            self.pointers.append((group.name, stream.log_stream_name))
            base = picked.start
            which = len(self.pointers) - 1
            # The row's pointer: which stream and which event.
            self.rows.extend(row[:-1] + ((which, base + row[-1]),) for row in found)
            self.matched += len(found)
            return
        if plan.per_stream is not None:
            one = [_column(name, stream, group, columns, slice(0, 1), 1) for name in plan.per_stream.reads]
            if not plan.per_stream.run(*one):
                return
        if plan.bin is not None and plan.keys is None:
            # In time order, a bin is a slice too.
            stamps = columns.timestamp
            at, stop = picked.start, picked.stop
            while at < stop:
                key = stamps[at] - stamps[at] % plan.bin
                end = bisect.bisect_left(stamps, key + plan.bin, at, stop)
                self.gather((key,), group, stream, columns, slice(at, end), end - at)
                at = end
            return
        if plan.bin is None and plan.keys is None:
            self.gather((), group, stream, columns, picked, count)
            return
        # Any other grouping: each row's key, then each key's rows.
        assert plan.keys is not None
        inputs = [_column(name, stream, group, columns, picked, count) for name in plan.keys.reads]
        found = plan.keys.run(*inputs) if inputs else plan.keys.run(count)
        keys = found if len(plan.query.groups) > 1 else [(k,) for k in found]
        absolute = range(picked.start, picked.stop)
        members: dict[Any, list[int]] = {}
        for row, key in zip(absolute, keys):
            members.setdefault(key, []).append(row)
        for key, rows in members.items():
            self.gather(key, group, stream, columns, rows, len(rows))

    def gather(self, key: tuple, group: Any, stream: LogStream, columns: Columns, rows: Any, count: int) -> None:
        """Adds the rows (a slice or indexes) that pass the filters to the
        group ``key``."""
        plan = self.plan
        cache: dict[str, Any] = {}

        def column(name: str) -> Any:
            if name not in cache:
                cache[name] = _column(name, stream, group, columns, rows, count)
            return cache[name]

        chosen = None
        matched = count
        if plan.equal is not None:
            # Lambda's log groups hold REPORT lines and little else: a
            # count in C often settles `@type = "REPORT"` for every row.
            matched = column(plan.equal[0]).count(plan.equal[1])
        if plan.matching is not None and 0 < matched < count:
            inputs = [column(name) for name in plan.matching.reads]
            chosen = plan.matching.run(*inputs) if inputs else plan.matching.run(count)
            matched = len(chosen)
        if matched == 0:
            return
        self.matched += matched
        entry = self.partial.get(key)
        if entry is None:
            entry = self.partial[key] = [0] + [[] for _ in plan.arguments]
        entry[0] += matched
        for i, argument in enumerate(plan.arguments, start=1):
            inputs = [column(name) for name in argument.reads]
            if chosen is not None:
                inputs = [list(map(values.__getitem__, chosen)) for values in inputs]
            if argument.plain:
                entry[i].extend(inputs[0])
            else:
                entry[i].extend(argument.run(*inputs) if inputs else argument.run(matched))


def _records(plan: logs_query.Plan, rows: list, pointers: list[tuple[str, str]]) -> list:
    query = plan.query
    width = len(plan.projected)
    if query.sort:
        first = width - 1 - len(query.sort)
        for offset in reversed(range(len(query.sort))):
            descending = query.sort[offset][1]
            rows.sort(key=lambda row: _sort_key(row[first + offset], descending))
    answers = []
    for row in rows:
        answer = []
        for name, moment, value in zip(plan.projected, plan.times, row):
            if not name:
                continue
            if name == "@ptr":
                group, stream = pointers[value[0]]
                text = base64.b64encode(f"{group}\n{stream}\n{value[1]}".encode()).decode()
            else:
                text = _format(value, moment)
            if text is not None:
                answer.append({"field": name, "value": text})
        answers.append(answer)
    return answers


def _aggregate(plan: logs_query.Plan, partial: dict[Any, list]) -> list:
    query = plan.query
    answers = []
    for key in sorted(partial, key=lambda k: tuple(_sort_key(v, False) for v in k)):
        entry = partial[key]
        matched = entry[0]
        cache: dict = {}
        answer = []
        for (name, expr, length), value in zip(query.groups, key):
            text = _format(value, length is not None or logs_query.is_time(expr))
            if text is not None:
                answer.append({"field": name, "value": text})
        for out, use in zip(query.stats, plan.uses):
            values = None if use is None else entry[1 + use]
            numeric = use is not None and plan.numeric[use]
            value = logs_query.aggregate(out.expr[1], values, numeric, out.expr[3], matched, cache)
            text = _format(value)
            if text is not None:
                answer.append({"field": out.name, "value": text})
        answers.append(answer)
    if query.sort:
        for name, descending in reversed(query.sort):
            def value_of(answer: list, name: str = name) -> Any:
                for item in answer:
                    if item["field"] == name:
                        try:
                            return float(item["value"])
                        except ValueError:
                            return item["value"]
                return None

            answers.sort(key=lambda a: _sort_key(value_of(a), descending))
    return answers


# ---------------------------------------------------------------- queries and their states


class InsightsQuery:
    def __init__(self, account: str, region: str, groups: list, start_s: int, end_s: int, text: str, limit: int, plan: logs_query.Plan):
        self.id = str(uuid.uuid4())
        self.account = account
        self.region = region
        self.groups = groups
        self.group_names = [g.name for g in groups]
        self.start_s = start_s
        self.end_s = end_s
        self.text = text
        self.limit = limit
        self.plan = plan
        self.created_ms = int(time.time() * 1000)
        self.status = "Scheduled"
        self.results: list = []
        self.statistics = {"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": 0.0}
        # How long the local AWS took to compute the answer, for benchmarks.
        self.compute_seconds: Optional[float] = None
        self.lock = threading.Lock()

    def in_progress(self) -> bool:
        return self.status in ("Scheduled", "Running")

    def cancel(self) -> bool:
        with self.lock:
            if not self.in_progress():
                return False
            self.status = "Cancelled"
            self.results = []
            return True

    def _move(self, to: str, **state: Any) -> None:
        with self.lock:
            if self.status == "Cancelled":
                return
            self.status = to
            for key, value in state.items():
                setattr(self, key, value)

    def work(self, scheduled: float, running: float) -> None:
        time.sleep(scheduled)
        self._move("Running")
        if self.status != "Running":
            return
        began = time.monotonic()
        try:
            results, statistics = run(self.plan, self.groups, self.start_s, self.end_s, self.limit)
        except Exception as error:  # noqa: BLE001 - a query that breaks is Failed, as on AWS
            print(f"moto_ext: logs-insights query {self.id} failed: {error!r}", flush=True)
            self._move("Failed")
            return
        took = time.monotonic() - began
        time.sleep(max(0.0, running - took))
        self._move("Complete", results=results, statistics=statistics, compute_seconds=took)


_QUERIES: dict[str, InsightsQuery] = {}
_QUERIES_LOCK = threading.Lock()


def _find(self: LogsResponse, query_id: Optional[str]) -> InsightsQuery:
    """The query of the caller's account and Region, or ResourceNotFoundException."""
    with _QUERIES_LOCK:
        query = _QUERIES.get(query_id or "")
    if query is None or (query.account, query.region) != (self.current_account, self.region):
        raise _Error("ResourceNotFoundException", f"Query {query_id} does not exist.")
    return query


def _group_name(identifier: str) -> str:
    """A log group's name from its name or ARN (``...:log-group:NAME[:*]``)."""
    if identifier.startswith("arn:") and ":log-group:" in identifier:
        name = identifier.split(":log-group:", 1)[1]
        return name[:-2] if name.endswith(":*") else name
    return identifier


def _start_query(self: LogsResponse) -> str:
    name = self._get_param("logGroupName")
    names = self._get_param("logGroupNames")
    identifiers = self._get_param("logGroupIdentifiers")
    given = [p for p in (name, names, identifiers) if p]
    if len(given) != 1:
        raise _invalid("Exactly one of logGroupName, logGroupNames or logGroupIdentifiers must be specified.")
    wanted = [name] if name else [_group_name(i) for i in (names or identifiers)]
    if len(wanted) > MAX_GROUPS:
        raise _invalid(f"At most {MAX_GROUPS} log groups can be queried at once.")
    start_s = self._get_param("startTime")
    end_s = self._get_param("endTime")
    if not isinstance(start_s, int) or not isinstance(end_s, int) or start_s < 0 or end_s < 0:
        raise _invalid("startTime and endTime are required, in seconds since the epoch.")
    if end_s < start_s:
        raise _invalid("endTime must be greater than or equal to startTime.")
    limit = self._get_param("limit")
    if limit is None:
        limit = logs_query.DEFAULT_LIMIT
    if not isinstance(limit, int) or not 1 <= limit <= logs_query.DEFAULT_LIMIT:
        raise _invalid(f"limit must be from 1 to {logs_query.DEFAULT_LIMIT}.")
    text = self._get_param("queryString") or ""
    if len(text) > MAX_QUERY_LENGTH:
        raise _invalid(f"queryString is longer than {MAX_QUERY_LENGTH} characters.")
    try:
        plan = logs_query.compile_query(logs_query.parse(text))
    except logs_query.Malformed as error:
        raise _Error(
            "MalformedQueryException",
            error.message,
            queryCompileError={
                "location": {"startCharOffset": error.at, "endCharOffset": error.end},
                "message": error.message,
            },
        )
    backend = logs_backends[self.current_account][self.region]
    groups = []
    for group_name in wanted:
        group = backend.groups.get(group_name)
        if group is None:
            raise _Error("ResourceNotFoundException", f"Log group '{group_name}' does not exist for account ID '{self.current_account}'.")
        groups.append(group)
    query = InsightsQuery(self.current_account, self.region, groups, start_s, end_s, text, limit, plan)
    with _QUERIES_LOCK:
        running = sum(1 for q in _QUERIES.values() if q.account == self.current_account and q.in_progress())
        if running >= CONCURRENT_QUERIES:
            raise _Error("LimitExceededException", f"Account maximum query concurrency limit of [{CONCURRENT_QUERIES}] reached.")
        _QUERIES[query.id] = query
    worker = threading.Thread(
        target=query.work,
        args=(settings.WINDOWS["logs-insights-scheduled"], settings.WINDOWS["logs-insights-running"]),
        name=f"logs-insights-{query.id}",
        daemon=True,
    )
    worker.start()
    return json.dumps({"queryId": query.id})


def _get_query_results(self: LogsResponse) -> str:
    query = _find(self, self._get_param("queryId"))
    with query.lock:
        answer = {"results": query.results, "statistics": query.statistics, "status": query.status}
    return json.dumps(answer)


def _stop_query(self: LogsResponse) -> str:
    query = _find(self, self._get_param("queryId"))
    if not query.cancel():
        raise _invalid(f"Query {query.id} is not running (its status is {query.status}).")
    return json.dumps({"success": True})


def _describe_queries(self: LogsResponse) -> str:
    group = self._get_param("logGroupName")
    status = self._get_param("status")
    most = self._get_param("maxResults") or 1000
    with _QUERIES_LOCK:
        queries = [
            q
            for q in _QUERIES.values()
            if q.account == self.current_account
            and q.region == self.region
            and (not group or group in q.group_names)
            and (not status or q.status == status)
        ]
    queries.sort(key=lambda q: q.created_ms, reverse=True)
    return json.dumps(
        {
            "queries": [
                {
                    "queryId": q.id,
                    "queryString": q.text,
                    "status": q.status,
                    "createTime": q.created_ms,
                    "logGroupName": q.group_names[0],
                }
                for q in queries[:most]
            ]
        }
    )


def _timings(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """``GET /_local-aws/logs-insights``: each query's id, status and the
    seconds the local AWS spent computing it, newest first, so that a
    benchmark can show the local AWS's time apart from its client's."""
    with _QUERIES_LOCK:
        queries = sorted(_QUERIES.values(), key=lambda q: q.created_ms, reverse=True)
    body = json.dumps(
        {
            "queries": [
                {"queryId": q.id, "status": q.status, "computeSeconds": q.compute_seconds, "recordsScanned": q.statistics["recordsScanned"]}
                for q in queries
            ]
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def install() -> list[str]:
    if not settings.enabled(NAME):
        return []
    routes.route("/_local-aws/logs-insights", _timings)
    settings.window("logs-insights-scheduled", 0.2)
    settings.window("logs-insights-running", 0.3)

    @patching.replace(LogsResponse, "start_query")
    def start_query(original, self):  # type: ignore[no-untyped-def]
        return _start_query(self)

    @patching.replace(LogsResponse, "get_query_results")
    def get_query_results(original, self):  # type: ignore[no-untyped-def]
        return _get_query_results(self)

    @patching.replace(LogsResponse, "describe_queries")
    def describe_queries(original, self):  # type: ignore[no-untyped-def]
        return _describe_queries(self)

    # moto has no StopQuery: a method of that name is the action.
    if hasattr(LogsResponse, "stop_query"):
        raise patching.PatchError("moto_ext: moto now has LogsResponse.stop_query; review logs_insights")
    LogsResponse.stop_query = _stop_query  # type: ignore[attr-defined]

    # REPORT lines are parsed once, when they are put.
    @patching.replace(LogStream, "put_log_events")
    def put_log_events(original, self, log_events):  # type: ignore[no-untyped-def]
        token = original(self, log_events)
        columns = _columns(self)
        columns.catch_up(self.events)
        columns.settle()
        return token

    # The same columns spare FilterLogEvents a pass over every event of
    # a busy stream (moto also builds its pattern once per event): a time
    # range in a stream in time order is a slice.
    @patching.replace(LogStream, "filter_log_events")
    def filter_log_events(original, self, start_time, end_time, filter_pattern):  # type: ignore[no-untyped-def]
        columns = columns_of(self)
        with columns.lock:
            stamps = columns.timestamp
            lo = bisect.bisect_left(stamps, start_time) if start_time else 0
            hi = bisect.bisect_right(stamps, end_time) if end_time else len(stamps)
            events = columns.events(self, slice(lo, hi))
        pattern = EventMessageFilter(filter_pattern)
        found = []
        for event in events:
            if pattern.matches(event.message):
                answer = event.to_filter_dict()
                answer["logStreamName"] = self.log_stream_name
                found.append(answer)
        return found

    @patching.replace(MotoAPIBackend, "reset")
    def reset(original, self):  # type: ignore[no-untyped-def]
        with _QUERIES_LOCK:
            for query in _QUERIES.values():
                query.cancel()
            _QUERIES.clear()
        return original(self)

    return [NAME]
