"""Read rollouts out of ClickHouse in bounded chunks: select ids page by page, then fetch their spans.

Only plain clickhouse-connect features are used (``query``, ``query_arrow``, ``insert``), so the same
code runs on embedded chDB and on an ``http://`` ClickHouse-compatible endpoint. Every read of the
spans and rewards tables uses ``FINAL`` (ReplacingMergeTree dedup of retried exports).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from lightspan.schemas import attributes as A
from lightspan.schemas import ddl

from .config import Selection

if TYPE_CHECKING:  # pragma: no cover
    from clickhouse_connect.driver.client import Client


def q(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _qlist(values: list[str]) -> str:
    return "(" + ",".join(q(v) for v in values) + ")" if values else "('')"


def _qarray(values: list[str]) -> str:
    return "[" + ",".join(q(v) for v in values) + "]"


def _dt(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return f"toDateTime64({q(value.isoformat(sep=' '))}, 9, 'UTC')"


def _attr(key: str) -> str:
    return f"SpanAttributes[{q(key)}]"


_IS_LLM = "Operation IN (" + ",".join(q(op) for op in sorted(A.LLM_OPERATIONS)) + ")"


def _bit(mask: int) -> str:
    return f"bitAnd(LlmParsed, {mask}) != 0"


#: ClickHouse parsed an LLM span's messages and token ids once, at insert (migration 7's
#: ``ddl.LLM_PARSED_COLUMNS``); the ``*_ok`` bits say where that parse is exact, and only for the rest
#: does the raw text come over, which mapping.py parses (and reports when broken).
_RAW = {
    "in_msgs": (A.GEN_AI_INPUT_MESSAGES, "in_ok"),
    "sys": (A.GEN_AI_SYSTEM_INSTRUCTIONS, "in_ok"),
    "out_msgs": (A.GEN_AI_OUTPUT_MESSAGES, "out_ok"),
    "p_ids": (A.LLM_PROMPT_TOKEN_IDS, "p_ok"),
    "r_ids": (A.LLM_RESPONSE_TOKEN_IDS, "r_ok"),
    "lps": (A.LLM_RESPONSE_LOGPROBS, "l_ok"),
}


def _raw(alias: str) -> str:
    key, ok = _RAW[alias]
    # in_msgs/sys/out_msgs come over unless parsed; token ids and logprobs only when present.
    if alias in ("in_msgs", "sys", "out_msgs"):
        return f"if({ok}, '', {_attr(key)})"
    return f"if({_attr(key)} != '' AND NOT {ok}, {_attr(key)}, '')"


#: On a store without migration 7 the same columns are these expressions, computed by the query (what
#: ClickHouse also does for rows stored before the migration).
PARSED_WITH: list[tuple[str, str]] = [(name, expr) for name, (_, expr, _) in ddl.LLM_PARSED_COLUMNS.items()]

#: alias -> the attribute the rebuild reads (migration 8 keeps them in ``ConverterAttributes``).
_ATTRS = {
    "suppressed": A.LLM_SUPPRESSED,
    "tool_args": A.GEN_AI_TOOL_CALL_ARGUMENTS,
    "tool_result": A.GEN_AI_TOOL_CALL_RESULT,
    "gap_graph": A.GAP_GRAPH,
    "gap_depends": A.GAP_NODE_DEPENDS,
    "gap_status": A.GAP_NODE_STATUS,
    "r_step": A.REWARD_STEP,
    "r_span": A.REWARD_SPAN_ID,
    "task_type": A.TASK_TYPE,
}
assert set(_ATTRS.values()) <= set(ddl.CONVERTER_ATTRIBUTE_KEYS)

#: Columns that stay Arrow arrays (parsed by ClickHouse); rebuild refers to their rows.
ARROW_COLUMNS = ("in_arr", "out_arr", "p_arr", "r_arr", "l_arr")

#: (alias, SQL expression) of every value the rebuild reads, in order.
SPAN_SELECT: list[tuple[str, str]] = [
    ("rid", "RolloutId"),
    ("trace", "TraceId"),
    ("sid", "SpanId"),
    ("pid", "ParentSpanId"),
    ("start", "toUnixTimestamp64Nano(Timestamp)"),
    ("dur", "Duration"),
    ("name", "SpanName"),
    ("svc", "ServiceName"),
    ("op", "Operation"),
    ("agent", "AgentName"),
    ("task", "TaskId"),
    ("attempt", "Attempt"),
    ("model", "if(ResponseModel != '', ResponseModel, RequestModel)"),
    ("resp_id", "ResponseId"),
    ("tool", "ToolName"),
    ("in_tok", "InputTokens"),
    ("out_tok", "OutputTokens"),
    ("rval", "RewardValue"),
    ("rname", "RewardName"),
    ("gap_level", "GapLevel"),
    ("gap_node", "GapNodeId"),
    ("status", "StatusCode"),
    ("status_msg", "StatusMessage"),
    ("in_ok", _bit(ddl.PARSED_INPUT)),
    ("in_arr", "LlmInputMessages"),
    ("in_msgs", _raw("in_msgs")),
    ("sys", _raw("sys")),
    ("out_ok", _bit(ddl.PARSED_OUTPUT)),
    ("out_arr", "LlmOutputMessages"),
    ("out_msgs", _raw("out_msgs")),
    ("p_ok", _bit(ddl.PARSED_PROMPT_IDS)),
    ("p_arr", "LlmPromptTokenIds"),
    ("p_ids", _raw("p_ids")),
    ("r_ok", _bit(ddl.PARSED_RESPONSE_IDS)),
    ("r_arr", "LlmResponseTokenIds"),
    ("r_ids", _raw("r_ids")),
    ("l_ok", _bit(ddl.PARSED_LOGPROBS)),
    ("l_arr", "LlmResponseLogprobs"),
    ("lps", _raw("lps")),
    *((alias, _attr(key)) for alias, key in _ATTRS.items()),
    ("foreign", f"if({ddl.FOREIGN_SQL}, SpanAttributes, map())"),
    ("rsrc", "RolloutSource"),
    ("scope", "ScopeName"),
    ("evals", f"arrayFilter((a, n) -> n = {q(A.GEN_AI_EVALUATION_RESULT)}, Events.Attributes, Events.Name)"),
    (
        "eval_ts",
        f"arrayMap(t -> toUnixTimestamp64Nano(t), arrayFilter((t, n) -> n = {q(A.GEN_AI_EVALUATION_RESULT)},"
        " Events.Timestamp, Events.Name))",
    ),
    # An LLM span ClickHouse parsed whose prompt or completion has no text: the rebuild decides (content
    # may come from logs, or the call is skipped for missing content).
    ("no_io", f"{_IS_LLM} AND in_ok AND out_ok AND NOT {_bit(ddl.PARSED_HAS_TEXT)}"),
]

#: Values that come out of ``SpanAttributes`` or ``Events`` whole: on a store with migration 8 they are read
#: by a second query, only for the rows whose ``SpanNeeds`` is set (every other row has them empty: its
#: content was parsed exactly, it is no foreign span, it has no evaluation event).
NEEDS_ALIASES = ("in_msgs", "sys", "out_msgs", "p_ids", "r_ids", "lps", "foreign", "evals", "eval_ts")

#: The span query on a store with migration 8: no ``SpanAttributes`` or ``Events`` read, the converter's
#: attributes from ``ConverterAttributes``, and ``SpanNeeds`` saying which rows the second query completes.
SPAN_SELECT_NEEDS: list[tuple[str, str]] = [
    (alias, f"ConverterAttributes[{q(_ATTRS[alias])}]" if alias in _ATTRS else expr)
    for alias, expr in SPAN_SELECT
    if alias not in NEEDS_ALIASES
] + [("needs", "SpanNeeds")]

#: The second query's columns: the row's key (sort key and start, unique after ``FINAL``) and the values.
NEEDS_SELECT: list[tuple[str, str]] = [
    ("k_rid", "RolloutId"),
    ("k_trace", "TraceId"),
    ("k_sid", "SpanId"),
    ("k_start", "toUnixTimestamp64Nano(Timestamp)"),
    *((alias, expr) for alias, expr in SPAN_SELECT if alias in NEEDS_ALIASES or alias.endswith("_ok")),
]

#: Log events (OTLP log records, ``EventName`` or the older ``event.name`` attribute) joined into
#: trajectories by trace and span id: evaluations and GenAI message content.
LOG_EVENT_EVALUATION = A.GEN_AI_EVALUATION_RESULT
LOG_EVENT_DETAILS = "gen_ai.client.inference.operation.details"
LOG_EVENT_MESSAGES = (
    "gen_ai.system.message",
    "gen_ai.user.message",
    "gen_ai.assistant.message",
    "gen_ai.tool.message",
    "gen_ai.choice",
)
LOG_EVENTS = (LOG_EVENT_EVALUATION, LOG_EVENT_DETAILS, *LOG_EVENT_MESSAGES)


def _pylist(col: Any) -> list[Any]:
    """A column as a Python list; a column holding one value throughout (most of the rarely used
    attribute columns: all empty, all null, all 0) becomes that value repeated, without converting each."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(col)
    if n and col.null_count == n:
        return [None] * n
    nested = pa.types.is_list(col.type) or pa.types.is_map(col.type)
    if n and col.null_count == 0 and not nested and not pa.types.is_floating(col.type):  # -0.0 == 0.0
        mm = pc.min_max(col)
        first = mm["min"].as_py()
        if first == mm["max"].as_py():
            return [first] * n
    return col.to_pylist()


def _empty_column(typ: Any, n: int) -> Any:
    """``n`` empty strings, maps or lists of Arrow type ``typ``."""
    import pyarrow as pa

    if pa.types.is_list(typ) or pa.types.is_map(typ):
        offsets = pa.array([0] * (n + 1), type=pa.int32())
        if pa.types.is_map(typ):
            return pa.MapArray.from_arrays(
                offsets, pa.array([], typ.key_type), pa.array([], typ.item_type), type=typ
            )
        return pa.ListArray.from_arrays(offsets, pa.array([], typ.value_type), type=typ)
    return pa.repeat(pa.scalar("", type=typ), n)


@dataclass
class SpanColumns:
    """One chunk of spans as column lists (sorted by rollout, then start time) plus rollout segments."""

    cols: dict[str, list[Any]]
    segments: list[tuple[str, int, int]]  # (rollout id, first row, end row)
    table: Any = None  # the same small columns as an Arrow table (sorted), for the chunk-wide fast path
    arrays: dict[str, Any] | None = None  # the parsed Arrow columns (``ARROW_COLUMNS``, read order)
    adopted: dict[str, str] = field(default_factory=dict)  # trace id -> rollout its id-less spans joined

    def trace_ids(self) -> list[str]:
        if self.table is None or not self.num_rows:
            return []
        return [str(t) for t in self.table.column("trace").unique().to_pylist()]

    @property
    def num_rows(self) -> int:
        return self.table.num_rows if self.table is not None else len(self.cols["rid"])


class _LazyColumns(dict):  # type: ignore[type-arg]
    """``SpanColumns.cols`` that converts an Arrow column to a Python list on first access."""

    def __init__(self, light: Any, arrays: dict[str, Any], has_foreign: bool):
        super().__init__(arrays)
        self._light = light
        self._has_foreign = has_foreign

    def __missing__(self, key: str) -> list[Any]:
        if key == "foreign":
            if self._has_foreign:
                value: list[Any] = [dict(m) if m else None for m in self._light.column("foreign").to_pylist()]
            else:
                value = [None] * self._light.num_rows
        elif key == "agent":
            value = _pylist(self._light.column("agent"))
            if self._has_foreign:  # OpenAI Agents SDK / OpenInference agent spans name their agent
                for i, m in enumerate(self["foreign"]):
                    if m is not None and not value[i] and m.get(A.OI_AGENT_NAME):
                        value[i] = m[A.OI_AGENT_NAME]
        else:
            value = _pylist(self._light.column(key))
        self[key] = value
        return value


@dataclass
class PostedReward:
    rollout_id: str
    name: str
    value: float
    step: int
    target_span_id: str
    source: str
    timestamp_ns: int
    posted_for: str = ""  # the id it was posted with when that was a trace or session id


@dataclass
class LogEvent:
    """One GenAI log record attached to a span: its event name, attributes and body (text)."""

    name: str
    timestamp_ns: int
    attributes: dict[str, str]
    body: str


def rollout_aliases(
    cols: dict[str, list[Any]],
    segments: list[tuple[str, int, int]],
    sessions: list[tuple[str, str, int]] | None = None,
) -> dict[str, str]:
    """Trace and session ids -> the rollout they name, for rewards posted by those ids.

    A trace id belongs to the rollout holding the trace's earliest span; a session id (``sessions``:
    ``(session id, rollout id, earliest start)``) to the rollout holding the earliest span that carries it:
    one id, one rollout, so a reward is never counted twice.
    """
    first: dict[str, tuple[int, str]] = {}
    trace, start = cols["trace"], cols["start"]
    found = [(trace[i], rid, start[i]) for rid, a, b in segments for i in range(a, b)]
    for alias, rid, ts in [*found, *(sessions or ())]:
        if alias and alias != rid:
            seen = first.get(alias)
            if seen is None or ts < seen[0]:
                first[alias] = (ts, rid)
    return {alias: rid for alias, (_, rid) in first.items()}


#: ``FINAL`` without merging across partitions: the spans table is partitioned by day of ``Timestamp``
#: and every copy of a span (a retried export) has the same timestamp, so duplicates never cross a
#: partition, and a partition already merged to one part is read without any FINAL work.
FINAL_SETTINGS = "do_not_merge_across_partitions_select_final = 1"
#: ClickHouse compresses Arrow output with LZ4 by default; in process (chDB) or over a local socket that
#: is CPU spent twice (compress, then decompress in pyarrow) for nothing.
ARROW_SETTINGS = "output_format_arrow_compression_method = 'none'"


class SpanReader:
    """Pages through the selected rollouts and fetches their spans and posted rewards."""

    def __init__(self, client: Client, database: str, selection: Selection, *, group_by_task: bool = False):
        self.client = client
        self.db = database
        self.sel = selection
        self.group_by_task = group_by_task
        self.spans = f"{database}.{ddl.SPANS_TABLE}"
        self.rewards = f"{database}.{ddl.REWARDS_TABLE}"
        self.watermarks = f"{database}.{ddl.WATERMARKS_TABLE}"
        self.logs = f"{database}.{ddl.LOGS_TABLE}"
        self._has_trace: bool | None = None
        self._has_logs: bool | None = None
        self._has_rewards: bool | None = None
        self._session_ids: list[str] | None = None
        self._version: int | None = None
        self._needs_empty: dict[str, Any] | None = None
        self._needs_types: dict[str, Any] | None = None
        self._mostly_marked = False

    # -- identity ------------------------------------------------------------------
    @property
    def has_trace_rollouts(self) -> bool:
        """Whether any span has no rollout id of its own (its rollout is its trace, or the one rollout
        its trace belongs to); when none does, the adoption queries are skipped."""
        if self._has_trace is None:
            rows = self.client.query(
                f"SELECT count() FROM (SELECT 1 FROM {self.spans} WHERE RolloutSource = 'trace' LIMIT 1)"
            ).result_rows
            self._has_trace = bool(rows and rows[0][0])
        return self._has_trace

    @property
    def owned_traces_sql(self) -> str:
        """SQL: trace ids that belong to exactly one explicit or session rollout (their id-less spans join it)."""
        return (
            f"(SELECT TraceId FROM {self.spans} WHERE RolloutSource != 'trace' AND RolloutId != ''"
            " GROUP BY TraceId HAVING uniqExact(RolloutId) = 1)"
        )

    def adopted(self, rollout_ids: list[str]) -> dict[str, str]:
        """Trace id -> rollout id, for the traces of ``rollout_ids`` whose id-less spans join that rollout."""
        if not self.has_trace_rollouts:
            return {}
        sql = (
            f"SELECT TraceId, any(RolloutId) FROM {self.spans} WHERE TraceId IN"
            f" (SELECT TraceId FROM {self.spans} WHERE RolloutId IN {_qlist(rollout_ids)})"
            " AND RolloutSource != 'trace' AND RolloutId != '' GROUP BY TraceId HAVING uniqExact(RolloutId) = 1"
        )
        wanted = set(rollout_ids)
        return {str(t): str(r) for t, r in self.client.query(sql).result_rows if r in wanted}

    # -- watermark ---------------------------------------------------------------
    def read_watermark(self) -> datetime | None:
        rows = self.client.query(
            f"SELECT argMax(Watermark, UpdatedAt) FROM {self.watermarks} FINAL WHERE Name = {q(self.sel.watermark_name)}"
            " GROUP BY Name"
        ).result_rows
        return rows[0][0] if rows else None

    def current_high_water(self) -> datetime | None:
        """The newest ``IngestedAt`` over spans and posted rewards right now (the next watermark)."""
        rows = self.client.query(
            f"SELECT max(m) FROM (SELECT max(IngestedAt) AS m FROM {self.spans}"
            f" UNION ALL SELECT max(IngestedAt) AS m FROM {self.rewards})"
        ).result_rows
        value = rows[0][0] if rows else None
        if value is None or value.year <= 1970:
            return None
        return value

    def write_watermark(self, value: datetime) -> None:
        self.client.insert(
            self.watermarks,
            [[self.sel.watermark_name, value, datetime.now(timezone.utc).replace(tzinfo=None)]],
            column_names=["Name", "Watermark", "UpdatedAt"],
        )

    # -- selection ---------------------------------------------------------------
    def _where_having(self, watermark: datetime | None) -> tuple[list[str], list[str]]:
        s = self.sel
        where = ["RolloutId != ''"]
        having: list[str] = []
        if set(s.rollout_sources) != {"explicit", "session", "trace"}:
            where.append(f"RolloutSource IN {_qlist(list(s.rollout_sources))}")
        trace = self.has_trace_rollouts
        if trace and "trace" in s.rollout_sources:  # id-less spans of a trace that has its rollout join it
            where.append(f"NOT (RolloutSource = 'trace' AND TraceId IN {self.owned_traces_sql})")
        if s.rollout_ids is not None:
            where.append(f"RolloutId IN {_qlist(s.rollout_ids)}")
        if s.task_ids is not None:
            where.append(f"TaskId IN {_qlist(s.task_ids)}")
        if s.since is not None:
            having.append(f"min(Timestamp) >= {_dt(s.since)}")
        if s.until is not None:
            having.append(f"min(Timestamp) < {_dt(s.until)}")
        if s.service:
            having.append(f"countIf(ServiceName = {q(s.service)}) > 0")
        if s.agent_name:
            having.append(f"countIf(AgentName = {q(s.agent_name)}) > 0")
        if s.finished_only:
            ended = ""
            if trace:  # the trace's root span may be an id-less span (an episode span around a session)
                ended = (
                    f" OR countIf(TraceId IN (SELECT TraceId FROM {self.spans}"
                    " WHERE ParentSpanId = '' AND RolloutSource = 'trace')) > 0"
                )
            having.append(
                "(countIf(ParentSpanId = '') > 0 OR countIf(RewardValue IS NOT NULL) > 0"
                f" OR RolloutId IN (SELECT RolloutId FROM {self.rewards} FINAL)"
                f" OR countIf(TraceId IN (SELECT RolloutId FROM {self.rewards} FINAL)) > 0{ended})"
            )
        if s.incremental and watermark is not None:
            wm = f"toDateTime64({q(watermark.isoformat(sep=' '))}, 6)"
            new_rewards = f"(SELECT RolloutId FROM {self.rewards} WHERE IngestedAt > {wm})"
            by_trace = ""
            if trace:  # rewards posted by trace id, and new id-less spans of an adopted trace
                by_trace = (
                    f" UNION DISTINCT SELECT RolloutId FROM {self.spans} WHERE TraceId IN {new_rewards}"
                    f" UNION DISTINCT SELECT RolloutId FROM {self.spans} WHERE RolloutSource != 'trace'"
                    f" AND TraceId IN (SELECT TraceId FROM {self.spans} WHERE IngestedAt > {wm}"
                    " AND RolloutSource = 'trace')"
                )
            changed = (
                f"(SELECT RolloutId FROM {self.spans} WHERE IngestedAt > {wm}"
                f" UNION DISTINCT SELECT RolloutId FROM {new_rewards}{by_trace})"
            )
            if self.group_by_task:
                # GRPO and DPO need the whole task group: a new rollout re-converts its task's rollouts.
                where.append(
                    f"(RolloutId IN {changed} OR (TaskId != '' AND TaskId IN "
                    f"(SELECT TaskId FROM {self.spans} WHERE RolloutId IN {changed} AND TaskId != '')))"
                )
            else:
                where.append(f"RolloutId IN {changed}")
        return where, having

    def iter_id_pages(
        self, watermark: datetime | None, page_size: int = 20000
    ) -> Iterator[list[tuple[str, str]]]:
        """Pages of ``(task id, rollout id)`` ordered by task then rollout (keyset paging in ClickHouse)."""
        where, having = self._where_having(watermark)
        last: tuple[str, str] | None = None
        while True:
            hv = list(having)
            if last is not None:
                hv.append(f"(task, RolloutId) > ({q(last[0])}, {q(last[1])})")
            sql = (
                f"SELECT anyIf(TaskId, TaskId != '') AS task, RolloutId FROM {self.spans} FINAL"
                f" WHERE {' AND '.join(where)} GROUP BY RolloutId"
                + (f" HAVING {' AND '.join(hv)}" if hv else "")
                + f" ORDER BY task, RolloutId LIMIT {int(page_size)}"
            )
            rows = [(str(t), str(r)) for t, r in self.client.query(sql).result_rows]
            if not rows:
                return
            yield rows
            if len(rows) < page_size:
                return
            last = rows[-1]

    def iter_chunks(self, watermark: datetime | None, chunk_rollouts: int) -> Iterator[list[tuple[str, str]]]:
        """Chunks of about ``chunk_rollouts`` rollouts; with ``group_by_task`` a task is never split."""
        pending: list[tuple[str, str]] = []
        page_size = max(chunk_rollouts * 10, 1000)
        for page in self.iter_id_pages(watermark, page_size=page_size):
            pending.extend(page)
            while len(pending) >= chunk_rollouts:
                cut = self._cut(pending, chunk_rollouts)
                if cut is None:
                    break  # the trailing task may continue on the next page
                yield pending[:cut]
                pending = pending[cut:]
        if pending:
            yield pending

    def _cut(self, ids: list[tuple[str, str]], n: int) -> int | None:
        if not self.group_by_task:
            return n
        task = ids[n - 1][0]
        i = n
        while i < len(ids) and ids[i][0] == task and task != "":
            i += 1
        return i if i < len(ids) else None

    # -- content -------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        if self._version is None:
            from lightspan.storage import current_version

            self._version = current_version(self.client, self.db)
        return self._version

    @property
    def has_parsed_columns(self) -> bool:
        """Whether the spans table has migration 7's parsed columns (else the query computes them)."""
        return self.schema_version >= 7

    @property
    def has_needs_columns(self) -> bool:
        """Whether the spans table has migration 8's ``ConverterAttributes`` and ``SpanNeeds`` (else the span
        query reads ``SpanAttributes`` and ``Events`` of every row)."""
        return self.schema_version >= 8

    def fetch_spans(self, rollout_ids: list[str], *, whole: bool = False) -> SpanColumns:
        """The spans of ``rollout_ids`` (and of the traces they adopt), sorted by rollout, start, span id.

        With migration 8 (unless ``whole``) the span query reads no attribute map or events; the values
        only they hold come from a second query for the rows ``SpanNeeds`` marks, when the chunk has any.
        """
        import numpy as np
        import pyarrow.compute as pc

        adopted = self.adopted(rollout_ids)
        split = self.has_needs_columns and not whole and not self._mostly_marked
        exprs = list(SPAN_SELECT_NEEDS if split else SPAN_SELECT)
        ids = list(rollout_ids)
        if adopted:  # id-less spans of a trace that belongs to one rollout are that rollout's spans
            traces = list(adopted)
            exprs[0] = (
                "rid",
                f"if(RolloutSource = 'trace', transform(RolloutId, {_qarray(traces)},"
                f" {_qarray([adopted[t] for t in traces])}, RolloutId), RolloutId)",
            )
            ids += traces
            if split:
                exprs.append(("k_rid", "RolloutId"))
        if self.has_needs_columns and not split:  # still counted, to go back to two queries when it pays
            exprs.append(("needs", "SpanNeeds"))
        select = ", ".join(f"{expr} AS {alias}" for alias, expr in exprs)
        withs = (
            ""
            if self.has_parsed_columns
            else "WITH " + ", ".join(f"{e} AS {a}" for a, e in PARSED_WITH) + " "
        )
        # No ORDER BY: sorting in ClickHouse moves every message and token-id array; here only the small
        # columns are permuted, and the parsed arrays stay in read order (``row`` maps a sorted row to them).
        sql = (
            f"{withs}SELECT {select} FROM {self.spans} FINAL WHERE RolloutId IN {_qlist(ids)}"
            f" SETTINGS {FINAL_SETTINGS}, {ARROW_SETTINGS}"
        )
        table = self.client.query_arrow(sql)
        order = pc.sort_indices(
            table.select(["rid", "start", "sid"]),
            sort_keys=[("rid", "ascending"), ("start", "ascending"), ("sid", "ascending")],
        )
        light = table.select([a for a, _ in exprs if a not in ARROW_COLUMNS]).take(order)
        arrays = {alias: table.column(alias).combine_chunks() for alias in ARROW_COLUMNS}
        light = light.append_column("row", order)
        if self.has_needs_columns and light.num_rows:
            # A store of mostly marked rows (foreign spans stored unmapped) reads faster in one query that
            # takes the map of every row (two queries: +13% query CPU measured with every row marked):
            # the next chunk of this reader does that.
            marks = int(np.count_nonzero(light.column("needs").to_numpy()))
            self._mostly_marked = 2 * marks > light.num_rows
        if split:
            needed = self._needed(light, ids)
            # None: a marked row the second query did not find (rewritten meanwhile): read again, whole
            if needed is None:
                return self.fetch_spans(rollout_ids, whole=True)
            for alias in NEEDS_ALIASES:
                light = light.append_column(alias, needed[alias])
        # Columns become Python lists only when the per-rollout rebuild reads them (the fast path reads
        # the Arrow table), and the foreign maps only when some span has one.
        foreign = light.column("foreign")
        has_foreign = any(len(ch) and ch.offsets[-1].as_py() > ch.offsets[0].as_py() for ch in foreign.chunks)
        cols = _LazyColumns(light, arrays, has_foreign)
        rid = light.column("rid").combine_chunks()
        n = len(rid)
        if n:
            change = pc.not_equal(rid.slice(1), rid.slice(0, n - 1)).to_numpy(zero_copy_only=False)
            firsts = [0, *(change.nonzero()[0] + 1).tolist()]
        else:
            firsts = []
        ends = [*firsts[1:], n]
        names = rid.take(firsts).to_pylist() if firsts else []
        segments = list(zip(names, firsts, ends, strict=True))
        return SpanColumns(cols=cols, segments=segments, table=light, arrays=arrays, adopted=adopted)

    def _needs_query(self, where: str) -> str:
        select = ", ".join(f"{expr} AS {alias}" for alias, expr in NEEDS_SELECT)
        return f"SELECT {select} FROM {self.spans} FINAL {where} SETTINGS {FINAL_SETTINGS}, {ARROW_SETTINGS}"

    def _needed(self, light: Any, ids: list[str]) -> dict[str, Any] | None:
        """The :data:`NEEDS_ALIASES` columns of the sorted chunk ``light``: empty, except for the rows its
        ``needs`` marks, whose values a second query reads (``PREWHERE`` on ``SpanNeeds``: the map and
        events are read only for granules holding such rows). None if a marked row is not found."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        n = light.num_rows
        if self._needs_empty is None or len(self._needs_empty["foreign"]) < n:
            # Empty values for a chunk are slices of one column per alias, grown as chunks need (an empty
            # map or list column is built slot by slot, ~10 ms per 20k rows; a slice costs nothing).
            if self._needs_types is None:
                schema = self.client.query_arrow(self._needs_query("WHERE 0")).schema
                self._needs_types = {alias: schema.field(alias).type for alias in NEEDS_ALIASES}
            self._needs_empty = {
                alias: _empty_column(t, max(n, 1 << 15)) for alias, t in self._needs_types.items()
            }
        empty = {alias: col.slice(0, n) for alias, col in self._needs_empty.items()}
        marked = np.flatnonzero(light.column("needs").to_numpy() != 0) if n else np.zeros(0, dtype=np.int64)
        if not len(marked):
            return empty
        # PREWHERE before FINAL may keep an older copy of a span whose newest copy is not marked; only the
        # rows the main (FINAL) query marks are looked up, and for those the newest copy is marked too.
        extra = self.client.query_arrow(
            self._needs_query(f"PREWHERE RolloutId IN {_qlist(ids)} AND SpanNeeds != 0")
        )
        keys = list(
            zip(*(extra.column(c).to_pylist() for c in ("k_rid", "k_trace", "k_sid", "k_start")), strict=True)
        )
        at = {k: j for j, k in enumerate(keys)}
        kr = "k_rid" if "k_rid" in light.column_names else "rid"
        take = pa.array(marked)
        wanted = zip(
            *(light.column(c).take(take).to_pylist() for c in (kr, "trace", "sid", "start")), strict=True
        )
        found: list[int] = []
        for k in wanted:
            j = at.get(k)
            if j is None:
                return None
            found.append(j)
        index = np.full(n, -1, dtype=np.int64)
        index[marked] = np.array(found, dtype=np.int64)
        hit = index >= 0
        taken = pa.array(index, mask=~hit)
        cond = pa.array(hit)
        if_else = pc.if_else  # pyright: ignore[reportAttributeAccessIssue]
        return {
            alias: if_else(cond, extra.column(alias).take(taken), empty[alias]) for alias in NEEDS_ALIASES
        }

    def fetch_posted_rewards(
        self, rollout_ids: list[str], spans: SpanColumns | None = None
    ) -> dict[str, list[PostedReward]]:
        """Posted rewards of ``rollout_ids``: those posted by rollout id, and, given the chunk's ``spans``,
        those posted by the trace or session id of one of its spans (see :func:`rollout_aliases`)."""
        if not self.has_posted_rewards:
            return {}
        wanted = set(rollout_ids)
        cond = f"RolloutId IN {_qlist(rollout_ids)}"
        chunk = f"RolloutId IN {_qlist(rollout_ids + list(spans.adopted))}" if spans is not None else ""
        session_ids = self.session_reward_ids() if spans is not None and spans.num_rows else []
        if spans is not None and spans.num_rows:  # the chunk's traces: what ``chunk`` selects, already read
            cond += f" OR RolloutId IN {_qlist(spans.trace_ids())}"
        sessions: list[tuple[str, str, int]] = []
        if session_ids:  # rewards posted by session id exist: which name this chunk's spans
            s_sql = ddl.SESSION_ID_SQL
            sessions = [
                (str(sid), str(rid), int(ts))
                for sid, rid, ts in self.client.query(
                    f"SELECT {s_sql} AS s, RolloutId, min(toUnixTimestamp64Nano(Timestamp)) FROM {self.spans}"
                    f" WHERE {chunk} AND s IN {_qlist(session_ids)} GROUP BY s, RolloutId"
                ).result_rows
            ]
            if sessions:
                cond += f" OR RolloutId IN {_qlist(sorted({s for s, _, _ in sessions}))}"
        sql = (
            f"SELECT RolloutId, Name, Value, Step, TargetSpanId, Source, toUnixTimestamp64Nano(Timestamp)"
            f" FROM {self.rewards} FINAL WHERE {cond} ORDER BY Timestamp, RewardId"
        )
        result = self.client.query(sql).result_rows
        aliases: dict[str, str] = {}
        if spans is not None and any(r[0] not in wanted for r in result):
            aliases = rollout_aliases(spans.cols, spans.segments, sessions)
        out: dict[str, list[PostedReward]] = {}
        for rid, name, value, step, target, source, ts in result:
            owner = rid if rid in wanted else aliases.get(rid, "")
            if not owner:
                continue
            out.setdefault(owner, []).append(
                PostedReward(
                    owner,
                    name or A.REWARD_DEFAULT_NAME,
                    float(value),
                    int(step),
                    target,
                    source,
                    int(ts),
                    posted_for="" if owner == rid else rid,
                )
            )
        return out

    @property
    def has_posted_rewards(self) -> bool:
        """Whether the rewards table held any row when this reader first looked (once per run: an empty
        table costs no query per chunk; a reward posted during the run is newer than the run's watermark,
        so the next incremental run converts it)."""
        if self._has_rewards is None:
            self._has_rewards = bool(
                self.client.query(f"SELECT count() FROM {self.rewards}").result_rows[0][0]
            )
        return self._has_rewards

    def session_reward_ids(self) -> list[str]:
        """Ids of rewards posted by session id that name no rollout directly (read once per reader: a
        handful, so the per-chunk session lookup runs only when there are any)."""
        if self._session_ids is None:
            target = q(A.REWARD_TARGET)
            self._session_ids = [
                str(r[0])
                for r in self.client.query(
                    f"SELECT DISTINCT RolloutId FROM {self.rewards} WHERE Attributes[{target}] = 'session'"
                    f" AND RolloutId NOT IN (SELECT RolloutId FROM {self.spans})"
                ).result_rows
            ]
        return self._session_ids

    # -- logs ------------------------------------------------------------------------
    @property
    def has_logs(self) -> bool:
        """Whether the logs table exists and held a GenAI event when this reader first looked (once per
        run, as :attr:`has_posted_rewards`)."""
        if self._has_logs is None:
            self._has_logs = str(self.client.command(f"EXISTS TABLE {self.logs}")).strip() == "1"
            if self._has_logs:
                ev = f"if(EventName != '', EventName, LogAttributes[{q('event.name')}])"
                self._has_logs = bool(
                    self.client.query(
                        f"SELECT count() FROM (SELECT 1 FROM {self.logs} WHERE SpanId != ''"
                        f" AND {ev} IN {_qlist(list(LOG_EVENTS))} LIMIT 1)"
                    ).result_rows[0][0]
                )
        return self._has_logs

    def fetch_logs(self, trace_ids: list[str]) -> dict[str, list[LogEvent]]:
        """GenAI log events of these traces, by span id, in time order (duplicates of a replayed export once)."""
        if not trace_ids or not self.has_logs:
            return {}
        ev = f"if(EventName != '', EventName, LogAttributes[{q('event.name')}])"
        sql = (
            f"SELECT SpanId, {ev} AS ev, toUnixTimestamp64Nano(Timestamp), LogAttributes, Body FROM {self.logs}"
            f" WHERE TraceId IN {_qlist(trace_ids)} AND SpanId != '' AND ev IN {_qlist(list(LOG_EVENTS))}"
            " ORDER BY Timestamp"
        )
        out: dict[str, list[LogEvent]] = {}
        seen: set[tuple[Any, ...]] = set()
        for sid, name, ts, attrs, body in self.client.query(sql).result_rows:
            key = (sid, name, ts, body, tuple(sorted(attrs.items())))
            if key in seen:
                continue
            seen.add(key)
            out.setdefault(sid, []).append(LogEvent(name, int(ts), dict(attrs), body or ""))
        return out

    # -- what is left out ------------------------------------------------------------
    def spans_without_rollout(self, watermark: datetime | None) -> dict[str, int]:
        """Spans of the selection's time window that no converted rollout can hold, by why: ``no_id``
        (stored before the identity chain, no rollout id) or the rollout source the selection leaves out
        (an id-less span of a trace that belongs to a rollout is not counted)."""
        s = self.sel
        where = ["1"]
        if s.since is not None:
            where.append(f"Timestamp >= {_dt(s.since)}")
        if s.until is not None:
            where.append(f"Timestamp < {_dt(s.until)}")
        if s.service:
            where.append(f"ServiceName = {q(s.service)}")
        if s.incremental and watermark is not None:
            where.append(f"IngestedAt > toDateTime64({q(watermark.isoformat(sep=' '))}, 6)")
        left_out = [src for src in ("explicit", "session", "trace") if src not in s.rollout_sources]
        cond = ["RolloutId = ''"]
        if left_out:
            cond.append(f"RolloutSource IN {_qlist(left_out)}")
        trace_owned = ""
        if "trace" in left_out and self.has_trace_rollouts:
            trace_owned = f" AND NOT (RolloutSource = 'trace' AND TraceId IN {self.owned_traces_sql})"
        sql = (
            f"SELECT if(RolloutId = '', 'no_id', RolloutSource) AS why, count() FROM {self.spans}"
            f" WHERE {' AND '.join(where)} AND ({' OR '.join(cond)}){trace_owned} GROUP BY why"
        )
        return {str(w): int(n) for w, n in self.client.query(sql).result_rows}

    def unmatched_rewards(self, limit: int = 5) -> tuple[int, list[str]]:
        """Posted rewards whose id names no rollout, trace or session in the spans table: (count, examples).

        The rewards table is small: its ids are looked up in the spans table (primary key, then the trace
        id's bloom index, then sessions of explicit rollouts), never the other way round."""
        rows = self.client.query(f"SELECT RolloutId FROM {self.rewards} FINAL").result_rows
        ids = [str(r[0]) for r in rows]
        left = sorted(set(ids))
        for sql in (
            "SELECT DISTINCT RolloutId FROM {spans} WHERE RolloutId IN {ids}",
            "SELECT DISTINCT TraceId FROM {spans} WHERE TraceId IN {ids}",
            "SELECT DISTINCT {sess} AS s FROM {spans} WHERE RolloutSource = 'explicit' AND s IN {ids}",
        ):
            if not left:
                break
            query = sql.format(spans=self.spans, ids=_qlist(left), sess=ddl.SESSION_ID_SQL)
            found = {str(r[0]) for r in self.client.query(query).result_rows}
            left = [i for i in left if i not in found]
        missing = set(left)
        return sum(1 for i in ids if i in missing), left[:limit]


__all__ = ["LogEvent", "PostedReward", "SPAN_SELECT", "SpanColumns", "SpanReader", "q", "rollout_aliases"]
