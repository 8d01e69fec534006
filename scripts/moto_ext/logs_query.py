"""The CloudWatch Logs Insights query language, the subset the local AWS
answers, parsed and compiled to Python that runs over a log stream's
columns (``logs_insights.Columns``).

"CloudWatch Logs Insights language query syntax"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html)
and its pages on each command. The subset:

- ``fields`` and ``display`` (expressions, ``as`` aliases);
- ``filter`` with ``=``, ``!=``, ``<``, ``>``, ``<=``, ``>=``, ``and``,
  ``or``, ``not``, ``like "text"`` (a substring), ``like /regex/`` and
  ``=~ /regex/`` (``/i``: ignoring case), ``not like``, ``ispresent(f)``,
  arithmetic ``+ - * / %``;
- ``stats`` with ``count(*)``, ``count(e)``, ``min``, ``max``, ``avg``,
  ``sum``, ``pct(e, n)`` over fields or arithmetic of them, ``as``
  aliases, ``by bin(N ms|s|m|h|d|w)`` and/or by fields;
- ``sort e [asc|desc], ...`` and ``limit N``; ``#`` comments.

What is not in the subset (``parse``, ``dedup``, other functions, calendar
bins, arithmetic of aggregates, a field the local AWS does not discover)
is refused as MalformedQueryException, naming what and where, rather than
answered wrongly.

Values, as in "Supported logs and discovered fields": ``@timestamp`` and
``@ingestionTime`` in milliseconds since the epoch; Lambda's REPORT fields
``@duration``, ``@billedDuration`` and ``@initDuration`` in milliseconds,
``@memorySize`` and ``@maxMemoryUsed`` in bytes (the guide's own example
divides them by ``1000 / 1000`` to get the MB of the REPORT line). A field
an event lacks is absent: NaN in a numeric column, None in a text one;
comparisons with it are false and aggregates skip it.

``pct(e, n)``: the syntax page defines a percentile as the value below
which n percent of the values lie ("pct(@duration, 95) returns the
@duration value at which 95 percent of the values of @duration are lower
than this value, and 5 percent are higher"); AWS computes it with an
approximation it does not document. Here it is exact, nearest rank: the
smallest value with at least n percent of the values at or below it
(``sorted[ceil(n/100 * count) - 1]``), which is what an exact reading of
the same definition gives on a sample, and what the deployer's own
percentiles use.
"""

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

# Fields every event has, and those Lambda's log lines give ("Supported
# logs and discovered fields", Lambda logs: @type, @requestId and, for
# REPORT lines, the rest). Their kind: "num" (float, NaN when absent) or
# "str" (None when absent).
FIELDS: dict[str, str] = {
    "@timestamp": "num",
    "@ingestionTime": "num",
    "@message": "str",
    "@logStream": "str",
    "@log": "str",
    "@type": "str",
    "@requestId": "str",
    "@duration": "num",
    "@billedDuration": "num",
    "@memorySize": "num",
    "@maxMemoryUsed": "num",
    "@initDuration": "num",
}
# The fields of a query without ``fields``: AWS returns each event's.
DEFAULT_FIELDS = list(FIELDS)

AGGREGATES = {"count", "min", "max", "avg", "sum", "pct"}
# Bin units ("bin(period)": ms, s, m, h, d, w; months, quarters and years
# are calendar bins, not a fixed length, and not in the subset).
BIN_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "hr": 3_600_000, "d": 86_400_000, "w": 604_800_000}
# StartQuery, limit: "The maximum number of log events to return in the
# query ... The default is 10,000."
DEFAULT_LIMIT = 10_000


class Malformed(Exception):
    """The query is not one the local AWS parses: ``message`` says what and
    ``at`` (a character offset) where."""

    def __init__(self, message: str, at: int = 0, end: Optional[int] = None):
        super().__init__(message)
        self.message = message
        self.at = at
        self.end = at if end is None else end


# ---------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<duration>\d+(?:ms|min|hr|s|m|h|d|w|mo|q|y)\b)
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<quoted>`[^`]*`)
  | (?P<name>[@A-Za-z_][A-Za-z0-9_.@$]*)
  | (?P<op><=|>=|!=|=~|[=<>+\-*/%(),|\[\]])
    """,
    re.VERBOSE,
)
_REGEX = re.compile(r"/((?:[^/\\\n]|\\.)*)/([a-z]*)")


@dataclass
class Token:
    kind: str  # name, num, str, duration, op, regex, end
    text: str
    at: int
    value: Any = None


def tokens(query: str) -> list[Token]:
    out: list[Token] = []
    i = 0
    while i < len(query):
        previous = out[-1] if out else None
        # A regular expression stands where a value follows ``like`` or
        # ``=~``; elsewhere ``/`` divides.
        if query[i] == "/" and previous is not None and (previous.text.lower() == "like" or previous.text == "=~"):
            match = _REGEX.match(query, i)
            if not match:
                raise Malformed("unterminated regular expression", i)
            flags = match.group(2)
            if set(flags) - {"i"}:
                raise Malformed(f"regular expression flags {flags!r} are not supported (only i)", i, match.end())
            try:
                pattern = re.compile(match.group(1), re.IGNORECASE if flags else 0)
            except re.error as error:
                raise Malformed(f"bad regular expression: {error}", i, match.end())
            out.append(Token("regex", match.group(0), i, pattern))
            i = match.end()
            continue
        match = _TOKEN.match(query, i)
        if not match:
            raise Malformed(f"unexpected character {query[i]!r}", i)
        kind = match.lastgroup or ""
        text = match.group(0)
        if kind == "str":
            out.append(Token("str", text, i, _unquote(text[1:-1])))
        elif kind == "quoted":
            out.append(Token("name", text, i, text[1:-1]))
        elif kind == "name":
            out.append(Token("name", text, i, text))
        elif kind == "num":
            out.append(Token("num", text, i, float(text)))
        elif kind != "space":
            out.append(Token(kind, text, i, text))
        i = match.end()
    out.append(Token("end", "", len(query)))
    return out


def _unquote(body: str) -> str:
    return re.sub(r"\\(.)", r"\1", body)


# ---------------------------------------------------------------- syntax tree
#
# Expressions are tuples: ("field", name), ("num", value), ("str", text),
# ("regex", pattern), ("arith", op, left, right), ("neg", e),
# ("cmp", op, left, right), ("like", e, pattern-node, negated),
# ("and", l, r), ("or", l, r), ("not", e), ("present", e),
# ("agg", function, argument-or-None, percent) — aggregates only in stats.


@dataclass
class Output:
    """One column of the answer: its name and expression."""

    name: str
    expr: tuple


@dataclass
class Query:
    text: str
    filters: list[tuple] = field(default_factory=list)
    fields: list[Output] = field(default_factory=list)
    stats: list[Output] = field(default_factory=list)
    # (name, expression, bin length in ms or None)
    groups: list[tuple[str, tuple, Optional[int]]] = field(default_factory=list)
    # (output name or expression, descending)
    sort: list[tuple[Any, bool]] = field(default_factory=list)
    limit: Optional[int] = None
    aggregated: bool = False


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = tokens(text)
        self.i = 0
        # Aliases of ``fields``: later commands refer to them by name.
        self.aliases: dict[str, tuple] = {}

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def take(self) -> Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def word(self, *words: str) -> bool:
        tok = self.tok
        return tok.kind == "name" and tok.text.lower() in words

    def op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def expect_op(self, op: str) -> Token:
        if not self.op(op):
            raise self.error(f"expected {op!r}")
        return self.take()

    def error(self, message: str) -> Malformed:
        tok = self.tok
        found = "the end of the query" if tok.kind == "end" else repr(tok.text)
        return Malformed(f"{message}, found {found} at character {tok.at}", tok.at, tok.at + len(tok.text))

    # ---------------------------------------------------------- commands

    def query(self) -> Query:
        q = Query(self.text)
        if self.tok.kind == "end":
            raise Malformed("the query is empty", 0)
        while True:
            self.command(q)
            if self.tok.kind == "end":
                break
            self.expect_op("|")
        return q

    def command(self, q: Query) -> None:
        tok = self.tok
        if tok.kind != "name":
            raise self.error("expected a command")
        name = tok.text.lower()
        self.take()
        if name in ("fields", "display"):
            if q.aggregated:
                raise Malformed(f"{name} after stats is not supported by the local AWS", tok.at)
            outputs = self.outputs(aggregates=False)
            for out in outputs:
                self.aliases[out.name] = out.expr
            if name == "display":
                q.fields = outputs
            else:
                known = {o.name for o in q.fields}
                q.fields += [o for o in outputs if o.name not in known]
        elif name == "filter":
            if q.aggregated:
                raise Malformed("filter after stats is not supported by the local AWS", tok.at)
            q.filters.append(self.expr(aggregates=False))
        elif name == "stats":
            if q.aggregated:
                raise Malformed("a second stats is not supported by the local AWS", tok.at)
            q.aggregated = True
            q.stats = self.outputs(aggregates=True)
            if self.word("by"):
                self.take()
                q.groups = self.group_keys()
        elif name == "sort":
            q.sort = self.sort_keys(q)
        elif name == "limit":
            num = self.take()
            if num.kind != "num" or num.value != int(num.value) or not 1 <= num.value <= DEFAULT_LIMIT:
                self.i -= 1
                raise self.error(f"limit takes a whole number from 1 to {DEFAULT_LIMIT}")
            q.limit = int(num.value)
        else:
            raise Malformed(f"the command {tok.text!r} at character {tok.at} is not supported by the local AWS (it answers fields, display, filter, stats, sort, limit)", tok.at, tok.at + len(tok.text))

    def outputs(self, aggregates: bool) -> list[Output]:
        outs: list[Output] = []
        while True:
            start = self.tok.at
            expr = self.expr(aggregates=aggregates)
            end = self.toks[self.i - 1].at + len(self.toks[self.i - 1].text)
            name = self.text[start:end].strip()
            if aggregates and expr[0] != "agg":
                raise Malformed(f"stats needs an aggregate function (count, min, max, avg, sum, pct) at character {start}", start, end)
            outs.append(Output(self.alias(name), expr))
            if not self.op(","):
                return outs
            self.take()

    def alias(self, name: str) -> str:
        """The name after ``as``, if there is one, else ``name``."""
        if not self.word("as"):
            return name
        self.take()
        alias = self.take()
        if alias.kind != "name":
            self.i -= 1
            raise self.error("expected a name after as")
        return alias.value

    def group_keys(self) -> list[tuple[str, tuple, Optional[int]]]:
        keys: list[tuple[str, tuple, Optional[int]]] = []
        while True:
            start = self.tok.at
            if self.word("bin") and self.toks[self.i + 1].text == "(":
                self.take()
                self.take()
                period = self.take()
                if period.kind != "duration":
                    self.i -= 1
                    raise self.error("bin takes a period such as 5m or 1h")
                number, unit = re.match(r"(\d+)([a-z]+)", period.text).groups()  # type: ignore[union-attr]
                if unit not in BIN_UNITS:
                    raise Malformed(f"bin({period.text}): calendar periods (mo, q, y) are not supported by the local AWS", period.at)
                if int(number) == 0:
                    raise Malformed("bin's period must be above zero", period.at)
                self.expect_op(")")
                length = int(number) * BIN_UNITS[unit]
                expr: tuple = ("field", "@timestamp")
            else:
                expr = self.expr(aggregates=False)
                length = None
            end = self.toks[self.i - 1].at + len(self.toks[self.i - 1].text)
            name = self.text[start:end].strip()
            keys.append((self.alias(name), expr, length))
            if not self.op(","):
                return keys
            self.take()

    def sort_keys(self, q: Query) -> list[tuple[Any, bool]]:
        keys: list[tuple[Any, bool]] = []
        while True:
            start = self.tok.at
            if q.aggregated:
                # After stats, sort names a column of the answer.
                tok = self.take()
                if tok.kind != "name":
                    self.i -= 1
                    raise self.error("expected the name of a stats column")
                names = [o.name for o in q.stats] + [g[0] for g in q.groups]
                if tok.value not in names:
                    raise Malformed(f"sort {tok.value!r}: not a column of the stats (they are {', '.join(names)})", start, start + len(tok.text))
                key: Any = tok.value
            else:
                key = self.expr(aggregates=False)
            descending = False
            if self.word("asc", "desc"):
                descending = self.take().text.lower() == "desc"
            keys.append((key, descending))
            if not self.op(","):
                return keys
            self.take()

    # ---------------------------------------------------------- expressions

    def expr(self, aggregates: bool) -> tuple:
        self.aggregates = aggregates
        return self.disjunction()

    def chain(self, operand: Callable[[], tuple], words: tuple[str, ...], ops: tuple[str, ...]) -> tuple:
        """``operand (op operand)*``, left to right: ``("and"|"or", l, r)``
        for the words, ``("arith", op, l, r)`` for the operators."""
        left = operand()
        while self.word(*words) or self.op(*ops):
            op = self.take().text
            right = operand()
            left = (op.lower(), left, right) if words else ("arith", op, left, right)
        return left

    def disjunction(self) -> tuple:
        return self.chain(self.conjunction, ("or",), ())

    def conjunction(self) -> tuple:
        return self.chain(self.negation, ("and",), ())

    def negation(self) -> tuple:
        if self.word("not"):
            self.take()
            return ("not", self.negation())
        return self.comparison()

    def comparison(self) -> tuple:
        left = self.additive()
        if self.op("=", "!=", "<", ">", "<=", ">="):
            op = self.take().text
            return ("cmp", "==" if op == "=" else op, left, self.additive())
        negated = False
        if self.word("not") and self.toks[self.i + 1].text.lower() == "like":
            self.take()
            negated = True
        if self.word("like") or self.op("=~"):
            self.take()
            tok = self.take()
            if tok.kind == "regex":
                pattern: tuple = ("regex", tok.value)
            elif tok.kind == "str":
                pattern = ("str", tok.value)
            else:
                self.i -= 1
                raise self.error('like takes "text" or /regex/')
            return ("like", left, pattern, negated)
        if negated:
            raise self.error("expected like after not")
        return left

    def additive(self) -> tuple:
        return self.chain(self.multiplicative, (), ("+", "-"))

    def multiplicative(self) -> tuple:
        return self.chain(self.unary, (), ("*", "/", "%"))

    def unary(self) -> tuple:
        if self.op("-"):
            self.take()
            return ("neg", self.unary())
        return self.primary()

    def primary(self) -> tuple:
        tok = self.tok
        if tok.kind == "num":
            self.take()
            return ("num", tok.value)
        if tok.kind == "str":
            self.take()
            return ("str", tok.value)
        if self.op("("):
            self.take()
            inner = self.disjunction()
            self.expect_op(")")
            return inner
        if tok.kind == "name":
            self.take()
            if self.op("("):
                return self.call(tok)
            return self.field(tok)
        raise self.error("expected a field, a number or a string")

    def field(self, tok: Token) -> tuple:
        name = tok.value
        if name in self.aliases:
            return self.aliases[name]
        if name not in FIELDS:
            raise Malformed(
                f"the field {name!r} at character {tok.at} is not one the local AWS discovers "
                f"(it knows {', '.join(FIELDS)} and the query's own aliases)",
                tok.at,
                tok.at + len(tok.text),
            )
        return ("field", name)

    def call(self, tok: Token) -> tuple:
        function = tok.text.lower()
        self.expect_op("(")
        if function == "ispresent":
            argument = self.disjunction()
            self.expect_op(")")
            return ("present", argument)
        if function in AGGREGATES:
            if not self.aggregates:
                raise Malformed(f"the aggregate {tok.text}() at character {tok.at} belongs in stats", tok.at)
            inner_aggregates = self.aggregates
            self.aggregates = False
            if function == "count" and self.op("*"):
                self.take()
                self.expect_op(")")
                self.aggregates = inner_aggregates
                return ("agg", "count", None, None)
            if function == "count" and self.op(")"):
                self.take()
                self.aggregates = inner_aggregates
                return ("agg", "count", None, None)
            argument = self.disjunction()
            percent = None
            if function == "pct":
                self.expect_op(",")
                num = self.take()
                if num.kind != "num" or not 0 <= num.value <= 100:
                    self.i -= 1
                    raise self.error("pct takes a percentile from 0 to 100")
                percent = num.value
            self.expect_op(")")
            self.aggregates = inner_aggregates
            return ("agg", function, argument, percent)
        raise Malformed(
            f"the function {tok.text}() at character {tok.at} is not supported by the local AWS "
            "(it answers ispresent and, in stats, count, min, max, avg, sum, pct)",
            tok.at,
            tok.at + len(tok.text),
        )


def parse(text: str) -> Query:
    """The query, or Malformed."""
    query = _Parser(text).query()
    if not query.aggregated and query.groups:
        raise Malformed("by without stats", 0)
    for f in query.filters:
        _kind(f)
    for out in query.fields:
        _kind(out.expr)
    for out in query.stats:
        if out.expr[2] is not None:
            kind = _kind(out.expr[2])
            if out.expr[1] in ("min", "max", "avg", "sum", "pct") and kind != "num":
                raise Malformed(f"{out.name}: {out.expr[1]} needs a number", 0)
    for _, expr, _ in query.groups:
        _kind(expr)
    return query


def _kind(expr: tuple) -> str:
    """The kind of ``expr`` ("num", "str", "bool"), or Malformed where
    kinds do not fit (the local AWS does not convert between them)."""
    tag = expr[0]
    if tag == "field":
        return FIELDS[expr[1]]
    if tag in ("num", "str"):
        return tag
    if tag in ("arith", "neg"):
        for part in expr[2:] if tag == "arith" else expr[1:]:
            if _kind(part) != "num":
                raise Malformed("arithmetic needs numbers", 0)
        return "num"
    if tag == "cmp":
        left, right = _kind(expr[2]), _kind(expr[3])
        if left != right:
            raise Malformed(f"comparing a {left} with a {right} is not supported by the local AWS", 0)
        return "bool"
    if tag == "like":
        if _kind(expr[1]) != "str":
            raise Malformed("like needs text on its left", 0)
        return "bool"
    if tag in ("and", "or"):
        _kind(expr[1])
        _kind(expr[2])
        return "bool"
    if tag in ("not", "present"):
        _kind(expr[1])
        return "bool"
    raise Malformed(f"unexpected {tag}", 0)


# ---------------------------------------------------------------- compiling


def fields_of(expr: Any, into: set[str]) -> set[str]:
    if isinstance(expr, tuple):
        if expr and expr[0] == "field":
            into.add(expr[1])
        else:
            for part in expr[1:]:
                fields_of(part, into)
    return into


class _Code:
    """Python source of expressions over row variables, and the
    constants they use."""

    def __init__(self, variables: dict[str, str]):
        self.variables = variables
        self.constants: dict[str, Any] = {}

    def const(self, value: Any) -> str:
        name = f"k{len(self.constants)}"
        self.constants[name] = value
        return name

    def value(self, expr: tuple) -> str:
        tag = expr[0]
        if tag == "field":
            return self.variables[expr[1]]
        if tag == "num":
            return repr(float(expr[1]))
        if tag == "str":
            return self.const(expr[1])
        if tag == "neg":
            return f"(-{self.value(expr[1])})"
        if tag == "bin":
            # Bins are floored to multiples of their length since the epoch.
            inner = self.value(expr[2])
            return f"({inner} - {inner} % {expr[1]})"
        if tag == "arith":
            left, right = self.value(expr[2]), self.value(expr[3])
            if expr[1] in ("/", "%") and not (expr[3][0] == "num" and expr[3][1] != 0):
                # By a field that may be 0: absent (NaN) rather than an error.
                return f"_div{'' if expr[1] == '/' else 'mod'}({left}, {right})"
            return f"({left} {expr[1]} {right})"
        return self.condition(expr)

    def condition(self, expr: tuple) -> str:
        tag = expr[0]
        if tag in ("and", "or"):
            return f"({self.condition(expr[1])} {tag} {self.condition(expr[2])})"
        if tag == "not":
            return f"(not {self.condition(expr[1])})"
        if tag == "present":
            inner = self.value(expr[1])
            # NaN != NaN; None is absent text.
            return f"({inner} is not None and {inner} == {inner})"
        if tag == "cmp":
            left, right = self.value(expr[2]), self.value(expr[3])
            # An absent side makes every comparison false, != included
            # (NaN compares false but for !=; None cannot be ordered).
            if _kind(expr[2]) == "str":
                guards = [f"{side} is not None" for side, e in ((left, expr[2]), (right, expr[3])) if e[0] != "str"]
            else:
                guards = [f"{side} == {side}" for side, e in ((left, expr[2]), (right, expr[3])) if e[0] != "num"]
            if expr[1] == "==" or not guards:
                return f"({left} {expr[1]} {right})"
            return f"({' and '.join(guards)} and {left} {expr[1]} {right})"
        if tag == "like":
            subject = self.value(expr[1])
            pattern = expr[2]
            if pattern[0] == "regex":
                test = f"{self.const(pattern[1].search)}({subject}) is not None"
            else:
                test = f"{self.const(pattern[1])} in {subject}"
            test = f"({subject} is not None and {test})"
            return f"(not {test})" if expr[3] else test
        if tag in ("field", "num", "str", "arith", "neg"):
            # A value as a condition: present and not zero or empty.
            inner = self.value(expr)
            return f"bool({inner} is not None and {inner} == {inner} and {inner})"
        raise Malformed(f"unexpected {tag}", 0)


def _div(a: float, b: float) -> float:
    return a / b if b else math.nan


def _divmod(a: float, b: float) -> float:
    return a % b if b else math.nan


# Fields whose value is the same for every event of a stream: a filter of
# them only is decided once per stream.
STREAM_FIELDS = {"@logStream", "@log"}


@dataclass
class Scan:
    """Compiled ``[projection for each row if condition]``: ``reads`` the
    fields whose columns ``run`` takes, in order (with none, ``run`` takes
    the number of rows)."""

    reads: list[str]
    run: Callable[..., list]
    # The projection is one field, unchanged, with no filter: its column
    # is the answer.
    plain: bool = False


def scan(projections: list[tuple], filters: list[tuple]) -> Scan:
    """A scan projecting ``projections`` (``("rowid",)``: the row's index)
    of the rows passing every one of ``filters``; a single projection
    gives values, several give tuples."""
    reads: set[str] = set()
    for expr in filters + projections:
        fields_of(expr, reads)
    ordered = sorted(reads)
    variables = {name: f"c{i}" for i, name in enumerate(ordered)}
    code = _Code(variables)
    condition = " and ".join(code.condition(f) for f in filters)
    parts = ["_i" if expr == ("rowid",) else code.value(expr) for expr in projections]
    if not parts:
        projection = "None"
    elif len(parts) == 1:
        projection = parts[0]
    else:
        projection = "(" + ", ".join(parts) + ",)"
    where = f" if {condition}" if condition else ""
    uses_row = ("rowid",) in projections
    columns = ", ".join(f"C{i}" for i in range(len(ordered)))
    names = ", ".join(variables[name] for name in ordered)
    if not ordered:
        source = f"lambda _n: [{projection} for _i in range(_n){where}]"
    else:
        iterate = "C0" if len(ordered) == 1 else f"zip({columns})"
        target = names if len(ordered) == 1 else f"({names})"
        if uses_row:
            iterate, target = f"enumerate({iterate})", f"_i, {target}"
        source = f"lambda {columns}: [{projection} for {target} in {iterate}{where}]"
    namespace: dict[str, Any] = {"_div": _div, "_divmod": _divmod, **code.constants}
    run = eval(compile(source, "<logs-insights-query>", "eval"), namespace)  # noqa: S307 - our own generated code
    plain = not filters and len(projections) == 1 and projections[0][0] == "field"
    return Scan(ordered, run, plain)


def conjuncts(expr: tuple) -> list[tuple]:
    if expr[0] == "and":
        return conjuncts(expr[1]) + conjuncts(expr[2])
    return [expr]


@dataclass
class Plan:
    """A query compiled.

    Without stats, ``records`` projects the matching rows: the fields, the
    sort keys and the row's index (``projected`` names them, "" for a
    sort key, and ``times`` says which are moments).

    With stats: ``per_stream`` (the filters of a stream's constant fields,
    run on one row) says whether a stream is read at all; ``matching``
    gives the indexes of the rows passing the other filters (None: every
    row), unless ``equal`` (the filter is one text field equal to a
    text: a count in C tells whether all rows or none pass);
    ``arguments`` gives the values of each distinct aggregate argument
    from the matching rows' columns, ``uses`` which one each aggregate
    takes (None for ``count(*)``) and ``numeric`` whether it is a number;
    ``keys`` the group keys of the rows (None when grouping only by one
    ``bin``, ``bin``: its length).
    """

    query: Query
    records: Optional[Scan] = None
    projected: list[str] = field(default_factory=list)
    times: list[bool] = field(default_factory=list)
    per_stream: Optional[Scan] = None
    matching: Optional[Scan] = None
    equal: Optional[tuple[str, str]] = None
    arguments: list[Scan] = field(default_factory=list)
    uses: list[Optional[int]] = field(default_factory=list)
    numeric: list[bool] = field(default_factory=list)
    keys: Optional[Scan] = None
    bin: Optional[int] = None


def compile_query(query: Query) -> Plan:
    plan = Plan(query)
    if not query.aggregated:
        outputs = query.fields or [Output(name, ("field", name)) for name in DEFAULT_FIELDS]
        projections = []
        for out in outputs:
            projections.append(out.expr)
            plan.projected.append(out.name)
            plan.times.append(is_time(out.expr))
        for key, _ in query.sort:
            projections.append(key)
            plan.projected.append("")
            plan.times.append(False)
        # @ptr: which stream and row, for the record pointer.
        projections.append(("rowid",))
        plan.projected.append("@ptr")
        plan.times.append(False)
        plan.records = scan(projections, query.filters)
        return plan
    every = [c for f in query.filters for c in conjuncts(f)]
    constant = [c for c in every if fields_of(c, set()) <= STREAM_FIELDS and fields_of(c, set())]
    per_row = [c for c in every if c not in constant]
    if constant:
        plan.per_stream = scan([("num", 1.0)], constant)
    if per_row:
        plan.matching = scan([("rowid",)], per_row)
        if len(per_row) == 1:
            tag, op, left, right = (per_row[0] + (None, None, None))[:4]
            if tag == "cmp" and op == "==" and left[0] == "field" and FIELDS[left[1]] == "str" and right[0] == "str":
                plan.equal = (left[1], right[1])
    distinct: list[tuple] = []
    for out in query.stats:
        argument = out.expr[2]
        if argument is None:
            plan.uses.append(None)
            continue
        if argument not in distinct:
            distinct.append(argument)
            plan.arguments.append(scan([argument], []))
            plan.numeric.append(_kind(argument) == "num")
        plan.uses.append(distinct.index(argument))
    if len(query.groups) == 1 and query.groups[0][2] is not None:
        plan.bin = query.groups[0][2]
    elif query.groups:
        plan.keys = scan([expr if length is None else ("bin", length, expr) for _, expr, length in query.groups], [])
    return plan


def is_time(expr: tuple) -> bool:
    """Whether ``expr`` is a moment (AWS writes those as dates)."""
    return expr in (("field", "@timestamp"), ("field", "@ingestionTime"))


# ---------------------------------------------------------------- aggregating


def present(values: Any) -> list:
    return [v for v in values if v is not None and v == v]


def aggregate(function: str, values: Optional[list], numeric: bool, percent: Optional[float], count: int, cache: dict) -> Optional[float]:
    """One aggregate of a group: None when it has no value (AWS leaves the
    field out of the row). ``values`` are those of the aggregate's
    argument (None for ``count(*)``), absent ones included; ``cache``
    keeps, per list of values, its present ones and those sorted, which
    the aggregates of one argument share."""
    if values is None:
        return float(count)
    key = id(values)
    if key not in cache:
        # NaN marks an absent number, None an absent text; filterfalse
        # runs in C, which matters at a million values.
        cache[key] = list(itertools.filterfalse(math.isnan, values)) if numeric else present(values)
    kept = cache[key]
    if function == "count":
        return float(len(kept))
    if not kept:
        return None
    if function == "pct":
        if ("sorted", key) not in cache:
            cache[("sorted", key)] = sorted(kept)
        ordered = cache[("sorted", key)]
        rank = max(1, math.ceil(percent / 100 * len(ordered)))  # type: ignore[operator]
        return ordered[rank - 1]
    if function == "min":
        return min(kept)
    if function == "max":
        return max(kept)
    if function == "sum":
        return math.fsum(kept)
    if function == "avg":
        return math.fsum(kept) / len(kept)
    raise Malformed(f"unknown aggregate {function}", 0)
