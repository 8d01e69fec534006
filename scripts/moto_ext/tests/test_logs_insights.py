"""``logs-insights``: StartQuery, GetQueryResults, StopQuery and
DescribeQueries as AWS answers them, over known Lambda log lines: the
asynchronous states, each query form the deployer sends (and the rest of
the subset), the time range in seconds, ``limit``, the statistics, and the
errors. Switched off, moto answers at once and wrongly."""

import random
import re
import time
import unittest
from unittest import mock
from typing import Any, Optional

from . import support
from .support import Server, client, name, refused

ACCOUNT = support.ACCOUNT
# Lambda's lines for three invocations in version 3's environment (the
# first a cold start) and one in version 4's, as Lambda writes them.
REPORT = "REPORT RequestId: {id}\tDuration: {duration} ms\tBilled Duration: {billed} ms\tMemory Size: 128 MB\tMax Memory Used: {used} MB\t{init}"
STREAM_V3 = "2026/12/01/[3]0123456789abcdef"
STREAM_V4 = "2026/12/01/[4]fedcba9876543210"
# The deployer's queries (/work/wt/insights-queries.md, issue 22).
STATUS_QUERY = 'filter @type = "REPORT" | stats max(@maxMemoryUsed) as maxMemoryUsed, count(*) as reports'
METRICS_QUERY = (
    'filter @type = "REPORT" and @logStream like "[3]" | stats count(*) as reports, '
    "count(@initDuration) as coldStarts, max(@initDuration) as maxInitDuration, "
    "max(@maxMemoryUsed) as maxMemoryUsed by bin(60s)"
)
IN_PROGRESS = ("Scheduled", "Running")


def report(request: str, duration: str, used: int, init: Optional[str] = None) -> str:
    billed = int(float(duration)) + 1
    return REPORT.format(id=request, duration=duration, billed=billed, used=used, init=f"Init Duration: {init} ms\t" if init else "")


class Group:
    """A log group with known lines: ``minute`` is the start of a whole
    minute (epoch seconds) two minutes ago; lines at ``minute`` + 5 s,
    + 20 s, + 65 s (next minute) in version 3, + 30 s in version 4, and one
    an hour earlier, outside every range the tests ask for."""

    def __init__(self, url: Optional[str] = None):
        self.logs = client("logs", url)
        self.name = f"/aws/lambda/{name('insights')}"
        self.logs.create_log_group(logGroupName=self.name)
        self.minute = (int(time.time()) // 60 - 2) * 60
        at = lambda seconds: (self.minute + seconds) * 1000  # noqa: E731
        self.put(STREAM_V3, [
            (at(-3600), report("old", "99.00", 120)),
            (at(4), "START RequestId: a Version: 3"),
            (at(5), report("a", "12.34", 23, init="40.10")),
            (at(20), report("b", "1.50", 25)),
            (at(21), "an application line with Max Memory Used: 99 MB in it"),
            (at(65), report("c", "3.25", 31, init="55.50")),
        ])
        self.put(STREAM_V4, [(at(30), report("d", "7.00", 60, init="20.00"))])

    def put(self, stream: str, events: list[tuple[int, str]]) -> None:
        self.logs.create_log_stream(logGroupName=self.name, logStreamName=stream)
        self.logs.put_log_events(
            logGroupName=self.name,
            logStreamName=stream,
            logEvents=[{"timestamp": t, "message": m} for t, m in events],
        )

    def start(self, query: str, start: Optional[int] = None, end: Optional[int] = None, **options: Any) -> str:
        return self.logs.start_query(
            logGroupName=self.name,
            startTime=self.minute if start is None else start,
            endTime=self.minute + 119 if end is None else end,
            queryString=query,
            **options,
        )["queryId"]


def finished(logs: Any, query_id: str) -> tuple[list[str], dict]:
    """The statuses GetQueryResults answered, polled until the query ended,
    and its last answer."""
    statuses = []
    deadline = time.monotonic() + support.PATIENCE_SECONDS
    while True:
        answer = logs.get_query_results(queryId=query_id)
        statuses.append(answer["status"])
        if answer["status"] not in IN_PROGRESS or time.monotonic() > deadline:
            return statuses, answer
        time.sleep(0.02)


def listed_id(group: "Group") -> str:
    [query] = group.logs.describe_queries(logGroupName=group.name)["queries"]
    return query["queryId"]


def rows(answer: dict) -> list[dict[str, str]]:
    return [{item["field"]: item["value"] for item in row} for row in answer["results"]]


def answered(group: Group, query: str, **options: Any) -> list[dict[str, str]]:
    statuses, answer = finished(group.logs, group.start(query, **options))
    if statuses[-1] != "Complete":
        raise AssertionError(f"{query!r} ended {statuses[-1]}")
    return rows(answer)


_slow: list[Server] = []


def slow_queries() -> str:
    """A moto of ours whose queries stay Running for a minute (stopped
    when the tests end)."""
    if not _slow:
        _slow.append(Server({"LOCAL_AWS_LOGS_INSIGHTS_RUNNING_SECONDS": "60", "LOCAL_AWS_TIME_SCALE": "1"}))
    return _slow[0].wait().url


_steady: list[Server] = []


def steady_queries() -> str:
    """A moto of ours, unscaled, whose queries stay Running for a second:
    long enough for a client on a loaded machine (2 cores under a test run)
    to see a new query in progress before it completes; at the tests' scale
    the whole life is 0.05 s, which one slow GetQueryResults can miss."""
    if not _steady:
        _steady.append(Server({"LOCAL_AWS_LOGS_INSIGHTS_RUNNING_SECONDS": "1", "LOCAL_AWS_TIME_SCALE": "1"}))
    return _steady[0].wait().url


def tearDownModule() -> None:
    for server in _steady:
        server.stop()
        server.output.close()
    _steady.clear()
    for server in _slow:
        server.stop()
        server.output.close()
    _slow.clear()


class States(unittest.TestCase):
    def test_a_query_is_scheduled_then_running_then_complete(self) -> None:
        url = steady_queries()
        group = Group(url)
        statuses, answer = finished(group.logs, group.start(STATUS_QUERY))
        self.assertIn(statuses[0], IN_PROGRESS, "a new query answered at once")
        self.assertEqual(statuses[-1], "Complete")
        self.assertEqual(statuses, sorted(statuses, key=["Scheduled", "Running", "Complete"].index))
        self.assertEqual(
            answer["statistics"], {"recordsMatched": 4.0, "recordsScanned": 6.0, "bytesScanned": answer["statistics"]["bytesScanned"]}
        )
        self.assertGreater(answer["statistics"]["bytesScanned"], 400)
        timings = support.http(f"{url}/_local-aws/logs-insights")["queries"]
        [mine] = [q for q in timings if q["queryId"] == listed_id(group)]
        self.assertEqual(mine["status"], "Complete")
        self.assertGreaterEqual(mine["computeSeconds"], 0)
        listed = group.logs.describe_queries(logGroupName=group.name)["queries"]
        self.assertEqual([(q["status"], q["queryString"]) for q in listed], [("Complete", STATUS_QUERY)])

    def test_results_come_only_once_complete(self) -> None:
        group = Group()
        logs = group.logs
        query_id = group.start(STATUS_QUERY)
        first = logs.get_query_results(queryId=query_id)
        self.assertIn(first["status"], IN_PROGRESS)
        self.assertEqual(first["results"], [])

    def test_stop_cancels_a_running_query_and_refuses_an_ended_one(self) -> None:
        group = Group(slow_queries())
        query_id = group.start(STATUS_QUERY)
        self.assertEqual(group.logs.stop_query(queryId=query_id), {"success": True, "ResponseMetadata": mock.ANY})
        answer = group.logs.get_query_results(queryId=query_id)
        self.assertEqual((answer["status"], answer["results"]), ("Cancelled", []))
        err = refused(lambda: group.logs.stop_query(queryId=query_id))
        self.assertIsNotNone(err)
        self.assertEqual((err.status, err.code), (400, "InvalidParameterException"), err)
        self.assertIn("not running", err.message)

    def test_past_the_concurrent_query_quota_limit_exceeded(self) -> None:
        group = Group(slow_queries())
        started = [group.start(STATUS_QUERY) for _ in range(100)]
        err = refused(lambda: group.start(STATUS_QUERY))
        self.assertIsNotNone(err, "a 101st concurrent query was accepted")
        self.assertEqual((err.status, err.code), (400, "LimitExceededException"), err)
        group.logs.stop_query(queryId=started[0])
        group.start(STATUS_QUERY)
        for query_id in started[1:]:
            group.logs.stop_query(queryId=query_id)

    def test_switched_off_moto_answers_at_once(self) -> None:
        # Without the behaviour, moto's StartQuery is Complete before any
        # poll: a client that never waits would pass there and fail on AWS.
        group = Group(support.switched_off())
        statuses, _ = finished(group.logs, group.start(STATUS_QUERY))
        self.assertEqual(statuses, ["Complete"])


class DeployerQueries(unittest.TestCase):
    def test_status_peak_memory_in_bytes_and_reports(self) -> None:
        group = Group()
        self.assertEqual(answered(group, STATUS_QUERY, limit=10), [{"maxMemoryUsed": "60000000", "reports": "4"}])

    def test_metrics_cold_starts_per_bin_of_one_version(self) -> None:
        group = Group()
        first = time.strftime("%Y-%m-%d %H:%M:00.000", time.gmtime(group.minute))
        second = time.strftime("%Y-%m-%d %H:%M:00.000", time.gmtime(group.minute + 60))
        self.assertEqual(
            sorted(answered(group, METRICS_QUERY, limit=100), key=lambda r: r["bin(60s)"]),
            [
                {"bin(60s)": first, "reports": "2", "coldStarts": "1", "maxInitDuration": "40.1", "maxMemoryUsed": "25000000"},
                {"bin(60s)": second, "reports": "1", "coldStarts": "1", "maxInitDuration": "55.5", "maxMemoryUsed": "31000000"},
            ],
        )

    def test_nothing_in_range_no_rows(self) -> None:
        group = Group()
        self.assertEqual(answered(group, STATUS_QUERY, start=group.minute - 600, end=group.minute - 1), [])

    def test_switched_off_moto_answers_wrongly(self) -> None:
        group = Group(support.switched_off())
        _, answer = finished(group.logs, group.start(STATUS_QUERY))
        self.assertNotEqual(rows(answer), [{"maxMemoryUsed": "60000000", "reports": "4"}])


class LineByLine(unittest.TestCase):
    def test_the_deployers_queries_equal_a_reading_of_each_line(self) -> None:
        # Some hundreds of lines in three environments of two versions,
        # with cold starts and other lines among them, read once through
        # the queries and once line by line here.
        rng = random.Random(22)
        logs = client("logs")
        group = f"/aws/lambda/{name('lines')}"
        logs.create_log_group(logGroupName=group)
        start = (int(time.time()) // 60 - 10) * 60
        lines: list[tuple[str, int, str]] = []
        for stream in ("2026/12/01/[3]aaaa", "2026/12/01/[3]bbbb", "2026/12/01/[4]cccc"):
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            events = []
            for i in range(150):
                at = (start + i * 4) * 1000 + rng.randrange(1000)
                if rng.random() < 0.2:
                    message = f"START RequestId: r{i} Version: 3"
                else:
                    init = f"{rng.uniform(10, 900):.2f}" if i == 0 or rng.random() < 0.05 else None
                    message = report(f"r{i}", f"{rng.uniform(0.5, 80):.2f}", rng.randint(15, 120), init)
                events.append({"timestamp": at, "message": message})
                lines.append((stream, at, message))
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

        def number(line: str, label: str) -> Optional[float]:
            found = re.search(label + r": ([\d.]+) (?:ms|MB)", line)
            return float(found.group(1)) if found else None

        reports = [(s, t, m) for s, t, m in lines if m.startswith("REPORT")]
        run = lambda query: answered_in(logs, group, query, start, start + 600)  # noqa: E731
        self.assertEqual(
            run(STATUS_QUERY),
            [{"maxMemoryUsed": str(int(max(number(m, "Max Memory Used") for _, _, m in reports)) * 1_000_000), "reports": str(len(reports))}],
        )
        expected: dict[str, dict[str, str]] = {}
        for stream, at, line in reports:
            if "[3]" not in stream:
                continue
            key = time.strftime("%Y-%m-%d %H:%M:00.000", time.gmtime(at // 60000 * 60))
            row = expected.setdefault(key, {"bin(60s)": key, "reports": "0", "coldStarts": "0", "maxMemoryUsed": "0"})
            row["reports"] = str(int(row["reports"]) + 1)
            row["maxMemoryUsed"] = str(max(int(row["maxMemoryUsed"]), int(number(line, "Max Memory Used")) * 1_000_000))
            init = number(line, "Init Duration")
            if init is not None:
                row["coldStarts"] = str(int(row["coldStarts"]) + 1)
                top = max(float(row.get("maxInitDuration", "0")), init)
                # As AWS writes numbers: no ".0" on a whole one.
                row["maxInitDuration"] = str(int(top)) if top.is_integer() else repr(top)
        self.assertEqual(sorted(run(METRICS_QUERY), key=lambda r: r["bin(60s)"]), [expected[k] for k in sorted(expected)])


class OutOfOrder(unittest.TestCase):
    def test_batches_earlier_than_the_lines_before_them(self) -> None:
        # Each batch is in time order (PutLogEvents requires it); the
        # second comes before the first, the third between them, after a
        # query has read the stream once.
        logs = client("logs")
        group = f"/aws/lambda/{name('order')}"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=STREAM_V3)
        minute = (int(time.time()) // 60 - 3) * 60

        def put(*seconds: int) -> None:
            logs.put_log_events(
                logGroupName=group,
                logStreamName=STREAM_V3,
                logEvents=[{"timestamp": (minute + t) * 1000, "message": report(f"r{t}", f"{t}.50", t)} for t in seconds],
            )

        def ids() -> list[str]:
            return [r["@requestId"] for r in answered_in(logs, group, "fields @requestId | sort @timestamp asc", minute, minute + 179)]

        put(130, 140)
        put(10, 20)
        self.assertEqual(ids(), ["r10", "r20", "r130", "r140"])
        put(70, 80)
        self.assertEqual(ids(), ["r10", "r20", "r70", "r80", "r130", "r140"])
        per_minute = answered_in(logs, group, "stats count(*) as n, max(@maxMemoryUsed) as top by bin(1m)", minute, minute + 179)
        self.assertEqual(sorted((r["n"], r["top"]) for r in per_minute), [("2", "140000000"), ("2", "20000000"), ("2", "80000000")])
        events = logs.filter_log_events(logGroupName=group, startTime=(minute + 20) * 1000, endTime=(minute + 130) * 1000)["events"]
        self.assertEqual([e["message"].split("\t")[0] for e in events], ["REPORT RequestId: r20", "REPORT RequestId: r70", "REPORT RequestId: r80", "REPORT RequestId: r130"])


def answered_in(logs: Any, group: str, query: str, start: int, end: int) -> list[dict[str, str]]:
    query_id = logs.start_query(logGroupName=group, startTime=start, endTime=end, queryString=query, limit=100)["queryId"]
    statuses, answer = finished(logs, query_id)
    if statuses[-1] != "Complete":
        raise AssertionError(f"{query!r} ended {statuses[-1]}")
    return rows(answer)


class TimeRange(unittest.TestCase):
    def test_seconds_and_the_end_second_included(self) -> None:
        group = Group()
        count = "stats count(*) as n"
        # The line at minute + 5 s (at .000) and the one at + 4 s.
        self.assertEqual(answered(group, count, start=group.minute + 5, end=group.minute + 5), [{"n": "1"}])
        self.assertEqual(answered(group, count, start=group.minute, end=group.minute + 5), [{"n": "2"}])
        self.assertEqual(answered(group, count, start=group.minute + 6, end=group.minute + 19), [])

    def test_end_before_start_is_refused(self) -> None:
        group = Group()
        err = refused(lambda: group.start(STATUS_QUERY, start=group.minute + 10, end=group.minute))
        self.assertEqual((err.status, err.code) if err else None, (400, "InvalidParameterException"), err)


class Forms(unittest.TestCase):
    group: Group

    @classmethod
    def setUpClass(cls) -> None:
        cls.group = Group()

    def ask(self, query: str, **options: Any) -> list[dict[str, str]]:
        return answered(self.group, query, **options)

    def test_fields_sort_and_limit(self) -> None:
        self.assertEqual(
            self.ask('fields @requestId, @duration | filter @type = "REPORT" | sort @duration desc | limit 2'),
            [
                {"@requestId": "a", "@duration": "12.34", "@ptr": mock.ANY},
                {"@requestId": "d", "@duration": "7", "@ptr": mock.ANY},
            ],
        )
        self.assertEqual(
            [r["@requestId"] for r in self.ask('fields @requestId | filter @type = "REPORT" | sort @duration asc')],
            ["b", "c", "d", "a"],
        )
        self.assertEqual(len(self.ask('filter @type = "REPORT"', limit=3)), 3)

    def test_default_fields_and_timestamps(self) -> None:
        [row] = self.ask('filter @requestId = "b"')
        self.assertEqual(row["@timestamp"], time.strftime("%Y-%m-%d %H:%M:20.000", time.gmtime(self.group.minute)))
        self.assertEqual(row["@logStream"], STREAM_V3)
        self.assertEqual(row["@log"], f"{ACCOUNT}:{self.group.name}")
        self.assertEqual(
            {k: row[k] for k in ("@type", "@duration", "@billedDuration", "@memorySize", "@maxMemoryUsed")},
            {"@type": "REPORT", "@duration": "1.5", "@billedDuration": "2", "@memorySize": "128000000", "@maxMemoryUsed": "25000000"},
        )
        self.assertNotIn("@initDuration", row)

    def test_comparisons_and_logic(self) -> None:
        def ids(condition: str) -> list[str]:
            return sorted(r["@requestId"] for r in self.ask(f"fields @requestId | filter {condition}"))

        self.assertEqual(ids('@type = "REPORT" and @duration > 3.25'), ["a", "d"])
        self.assertEqual(ids("@duration >= 3.25 and @duration <= 7"), ["c", "d"])
        self.assertEqual(ids('@type != "REPORT"'), ["a"])  # the START line; the application line has no @type
        self.assertEqual(ids("@duration < 2 or @maxMemoryUsed / 1000 / 1000 = 60"), ["b", "d"])
        self.assertEqual(ids('@type = "REPORT" and not ispresent(@initDuration)'), ["b"])
        self.assertEqual(ids("isPresent(@initDuration) and @initDuration * 2 > 100"), ["c"])
        self.assertEqual(ids('@logStream like /\\[4\\]/'), ["d"])
        self.assertEqual(ids('@message like /request.?id: [AB]\\s/i'), ["a", "a", "b"])
        self.assertEqual(ids('@type = "REPORT" and @logStream not like "[3]"'), ["d"])

    def test_stats_functions(self) -> None:
        [row] = self.ask(
            'filter @type = "REPORT" | stats count(*), count(@initDuration) as cold, min(@duration), '
            "max(@duration), avg(@duration) as mean, sum(@billedDuration), pct(@duration, 50) as p50, "
            "pct(@duration, 100) as p100, max(@maxMemoryUsed / 1000 / 1000) as mb"
        )
        self.assertEqual(
            row,
            {
                "count(*)": "4",
                "cold": "3",
                "min(@duration)": "1.5",
                "max(@duration)": "12.34",
                "mean": "6.0225",
                "sum(@billedDuration)": "27",
                # Nearest rank: the 2nd of 1.5, 3.25, 7, 12.34.
                "p50": "3.25",
                "p100": "12.34",
                "mb": "60",
            },
        )

    def test_stats_by_a_field(self) -> None:
        answer = self.ask('filter @type = "REPORT" | stats count(*) as n by @logStream | sort n desc')
        self.assertEqual(answer, [{"@logStream": STREAM_V3, "n": "3"}, {"@logStream": STREAM_V4, "n": "1"}])

    def test_stats_by_bin_and_a_field(self) -> None:
        answer = self.ask('filter @type = "REPORT" | stats count(*) as n by bin(1h), @logStream')
        # The lines may straddle an hour: count per stream over the bins.
        per_stream: dict[str, int] = {}
        for r in answer:
            per_stream[r["@logStream"]] = per_stream.get(r["@logStream"], 0) + int(r["n"])
        self.assertEqual(per_stream, {STREAM_V3: 3, STREAM_V4: 1})
        self.assertTrue(all(r["bin(1h)"].endswith(":00:00.000") for r in answer), answer)


class FilterLogEventsOverColumns(unittest.TestCase):
    def test_a_time_range_and_a_pattern_read_the_same_events(self) -> None:
        group = Group()
        answer = group.logs.filter_log_events(
            logGroupName=group.name,
            startTime=(group.minute + 5) * 1000,
            endTime=(group.minute + 30) * 1000,
            filterPattern='"Max Memory Used"',
        )
        self.assertEqual(
            [(e["logStreamName"], e["timestamp"] // 1000 - group.minute) for e in answer["events"]],
            [(STREAM_V3, 5), (STREAM_V3, 20), (STREAM_V3, 21), (STREAM_V4, 30)],
        )


class Errors(unittest.TestCase):
    def test_what_the_local_aws_does_not_parse_is_malformed(self) -> None:
        group = Group()
        for query in (
            "",
            "filter @type = ",
            'parse @message "a * b" as x',
            "stats count(*) by bin(1mo)",
            "fields nosuchfield",
            "stats max(@duration) - min(@duration)",
            "filter @duration like /a",
            'filter @duration > "5"',
        ):
            with self.subTest(query=query):
                err = refused(lambda: group.start(query))
                self.assertIsNotNone(err, f"{query!r} was accepted")
                self.assertEqual((err.status, err.code), (400, "MalformedQueryException"), err)

    def test_a_missing_log_group_is_not_found(self) -> None:
        logs = client("logs")
        err = refused(lambda: logs.start_query(logGroupName=f"/aws/lambda/{name('none')}", startTime=0, endTime=1, queryString=STATUS_QUERY))
        self.assertEqual((err.status, err.code) if err else None, (400, "ResourceNotFoundException"), err)

    def test_an_unknown_query_is_not_found(self) -> None:
        logs = client("logs")
        for call in (logs.get_query_results, logs.stop_query):
            err = refused(lambda: call(queryId="00000000-0000-0000-0000-000000000000"))
            self.assertEqual((err.status, err.code) if err else None, (400, "ResourceNotFoundException"), err)

    def test_another_regions_query_is_not_found(self) -> None:
        group = Group()
        query_id = group.start(STATUS_QUERY)
        elsewhere = client("logs", region="eu-central-2")
        err = refused(lambda: elsewhere.get_query_results(queryId=query_id))
        self.assertEqual((err.status, err.code) if err else None, (400, "ResourceNotFoundException"), err)

    def test_one_way_to_name_the_log_groups(self) -> None:
        group = Group()
        err = refused(
            lambda: group.logs.start_query(
                logGroupName=group.name, logGroupNames=[group.name], startTime=0, endTime=1, queryString=STATUS_QUERY
            )
        )
        self.assertEqual((err.status, err.code) if err else None, (400, "InvalidParameterException"), err)

    def test_switched_off_moto_accepts_what_it_cannot_answer(self) -> None:
        group = Group(support.switched_off())
        self.assertIsNone(refused(lambda: group.start('parse @message "a * b" as x')))


if __name__ == "__main__":
    unittest.main()
