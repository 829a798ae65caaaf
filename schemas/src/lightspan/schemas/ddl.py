"""ClickHouse DDL for lightspan's tables, as versioned migrations rendered for one node or a cluster.

The spans table is a column-compatible superset of the OpenTelemetry Collector ClickHouse exporter's
``otel_traces`` (same column names and types, see
https://github.com/open-telemetry/opentelemetry-collector-contrib/tree/main/exporter/clickhouseexporter),
so that exporter, Grafana's ClickHouse plugin and lightspan can share one table.

lightspan's RL columns are ``DEFAULT`` expressions over ``SpanAttributes``, the one definition of how
they derive from attributes: the lightspan collector writes the otel_traces columns (after mapping
foreign conventions into ``SpanAttributes``) and ClickHouse computes the RL columns, exactly as for rows
written by the contrib exporter. ``ReplacingMergeTree`` ordered by ``(RolloutId, TraceId, SpanId)``
makes a retried export collapse into one row (read with ``FINAL``) and makes "all spans of these
rollouts" a primary-key range read.

The same statements run on chDB (embedded) and on a ClickHouse server.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import attributes as A
from . import conventions

SPANS_TABLE = "otel_traces"
REWARDS_TABLE = "lightspan_rewards"
WATERMARKS_TABLE = "lightspan_watermarks"
LOGS_TABLE = "otel_logs"
MIGRATIONS_TABLE = "lightspan_schema_migrations"
POLICY_VERSIONS_TABLE = "lightspan_policy_versions"

#: Columns of the OpenTelemetry Collector's otel_traces table, name -> type, in its order.
OTEL_TRACES_COLUMNS: dict[str, str] = {
    "Timestamp": "DateTime64(9)",
    "TraceId": "String",
    "SpanId": "String",
    "ParentSpanId": "String",
    "TraceState": "String",
    "SpanName": "LowCardinality(String)",
    "SpanKind": "LowCardinality(String)",
    "ServiceName": "LowCardinality(String)",
    "ResourceAttributes": "Map(LowCardinality(String), String)",
    "ScopeName": "String",
    "ScopeVersion": "String",
    "SpanAttributes": "Map(LowCardinality(String), String)",
    "Duration": "UInt64",
    "StatusCode": "LowCardinality(String)",
    "StatusMessage": "String",
    "Events.Timestamp": "Array(DateTime64(9))",
    "Events.Name": "Array(LowCardinality(String))",
    "Events.Attributes": "Array(Map(LowCardinality(String), String))",
    "Links.TraceId": "Array(String)",
    "Links.SpanId": "Array(String)",
    "Links.TraceState": "Array(String)",
    "Links.Attributes": "Array(Map(LowCardinality(String), String))",
}


def _attr(key: str) -> str:
    return f"SpanAttributes['{key}']"


def _first(*keys: str) -> str:
    """SQL: the first non-empty attribute among ``keys``."""
    expr = _attr(keys[-1])
    for key in reversed(keys[:-1]):
        expr = f"if({_attr(key)} != '', {_attr(key)}, {expr})"
    return expr


def _metadata(key: str) -> str:
    """SQL: a scalar of OpenInference's ``metadata`` JSON as text (as ``conventions._metadata``)."""
    m, k = _attr(A.OI_METADATA), f"'{key}'"
    return (
        f"multiIf(JSONType({m}, {k}) = 'String', JSONExtractString({m}, {k}),"
        f" JSONType({m}, {k}) IN ('Int64', 'UInt64', 'Double', 'Bool'), JSONExtractRaw({m}, {k}), '')"
    )


def _chain(keys: tuple[str, ...], metadata_key: str | None, last: str) -> str:
    """SQL: the first non-empty of ``keys``, then the metadata key, else ``last``."""
    args = [f"{_attr(k)} != '', {_attr(k)}" for k in keys]
    if metadata_key:
        args.append(f"{_metadata(metadata_key)} != '', {_metadata(metadata_key)}")
    return f"multiIf({', '.join(args)}, {last})"


_MK = conventions.METADATA_KEYS
_SESSION = _chain(conventions.ROLLOUT_SESSION_KEYS, _MK["session"], "''")
_EXPLICIT = _chain(conventions.ROLLOUT_EXPLICIT_KEYS, _MK["explicit"], "''")
_ATTEMPT = _chain(conventions.ATTEMPT_KEYS, _MK["attempt"], "''")
_AGENT = _chain(
    conventions.AGENT_NAME_KEYS,
    None,
    f"if({_attr(A.OPENLLMETRY_SPAN_KIND)} IN {tuple(conventions.TRACELOOP_AGENT_KINDS)!r},"
    f" {_attr(A.OPENLLMETRY_ENTITY_NAME)}, '')",
)

#: SQL over ``SpanAttributes``: the span's session or conversation id ('' when none), as in the chain.
SESSION_ID_SQL = _SESSION

#: lightspan's RL columns: name -> (type, DEFAULT expression over SpanAttributes).
#: Rollout identity follows ``conventions.rollout_identity``: an explicit rollout id, else a session or
#: conversation id, else the trace id (``RolloutSource`` says which); docs/converters.md has the chain.
LIGHTSPAN_SPAN_COLUMNS: dict[str, tuple[str, str]] = {
    "RolloutId": ("String", f"if({_EXPLICIT} != '', {_EXPLICIT}, if({_SESSION} != '', {_SESSION}, TraceId))"),
    "TaskId": ("String", _chain(conventions.TASK_ID_KEYS, _MK["task"], "''")),
    "Attempt": ("UInt32", f"toUInt32OrZero({_ATTEMPT})"),
    "Operation": ("LowCardinality(String)", _attr(A.GEN_AI_OPERATION_NAME)),
    "AgentName": ("LowCardinality(String)", _AGENT),
    "ProviderName": ("LowCardinality(String)", _first(A.GEN_AI_PROVIDER_NAME, A.OLD_GEN_AI_SYSTEM)),
    "RequestModel": ("LowCardinality(String)", _attr(A.GEN_AI_REQUEST_MODEL)),
    "ResponseModel": ("LowCardinality(String)", _attr(A.GEN_AI_RESPONSE_MODEL)),
    "ResponseId": ("String", _attr(A.GEN_AI_RESPONSE_ID)),
    "ToolName": ("LowCardinality(String)", _attr(A.GEN_AI_TOOL_NAME)),
    "ToolCallId": ("String", _attr(A.GEN_AI_TOOL_CALL_ID)),
    "InputTokens": (
        "UInt64",
        f"toUInt64OrZero({_first(A.GEN_AI_USAGE_INPUT_TOKENS, A.OLD_GEN_AI_USAGE_PROMPT_TOKENS)})",
    ),
    "OutputTokens": (
        "UInt64",
        f"toUInt64OrZero({_first(A.GEN_AI_USAGE_OUTPUT_TOKENS, A.OLD_GEN_AI_USAGE_COMPLETION_TOKENS)})",
    ),
    # NaN/inf are not rewards: NULL, like a value that does not parse.
    "RewardValue": (
        "Nullable(Float64)",
        f"if(isFinite(ifNull(toFloat64OrNull({_attr(A.REWARD_VALUE)}), nan)), toFloat64OrNull({_attr(A.REWARD_VALUE)}), NULL)",
    ),
    "RewardName": ("LowCardinality(String)", _attr(A.REWARD_NAME)),
    "GapLevel": ("Int32", f"ifNull(toInt32OrNull({_attr(A.GAP_LEVEL)}), -1)"),
    "GapNodeId": ("String", _attr(A.GAP_NODE_ID)),
    "IngestedAt": ("DateTime64(6)", "now64(6)"),
    "RolloutSource": (
        "LowCardinality(String)",
        f"if({_EXPLICIT} != '', 'explicit', if({_SESSION} != '', 'session', 'trace'))",
    ),
}
#: The columns migration 6 gave their rollout-identity DEFAULTs (the fallback chain).
ROLLOUT_IDENTITY_COLUMNS = ("RolloutId", "TaskId", "Attempt", "AgentName", "RolloutSource")

# -- LLM content parsed once at insert (migration 7) -----------------------------------------------
# An LLM span's messages and token ids arrive as JSON text inside SpanAttributes; the converters used to
# parse them on every conversion (most of their CPU). These columns hold ClickHouse's parse, computed
# once when a row is inserted (MATERIALIZED: not part of ``SELECT *`` or of an exporter's INSERT, so the
# table stays otel_traces-compatible). ``LlmParsed`` says which parses are exact (what
# converters/mapping.py would produce); everything else stays text and is parsed in Python as before.
# Rows stored before migration 7 have no such columns on disk: ClickHouse computes them when read.

_IS_LLM = "Operation IN (" + ",".join(f"'{op}'" for op in sorted(A.LLM_OPERATIONS)) + ")"
_MSGS_TYPE = "Array(Tuple(role String, content String))"
_PARTS_TYPE = "Array(Tuple(role String, parts Array(Tuple(type String, content String)), content String))"
#: A JSON array of integers that fit Int64 (at most 18 digits, no leading zeros), nothing else: for such
#: text the non-nullable JSONExtract is exact, and RE2 checks it in one linear pass.
_WS = r"[ \t\n\r]*"
_INT = r"-?(0|[1-9][0-9]{0,17})"
INT_ARRAY_RE = f"^{_WS}\\[{_WS}({_INT}({_WS},{_WS}{_INT})*{_WS})?\\]{_WS}$"


def _sql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def llm_messages_sql(x: str, sys: str | None) -> tuple[str, str]:
    """(exact, messages) SQL for an LLM span's input (``sys``: system instructions) or output messages.

    One JSON parse into (role, parts, content) tuples (repeated text is one expression to ClickHouse);
    exact means valid JSON, every message has a role, only text parts, no content arrays or objects and
    no OpenAI ``tool_calls``: then the messages equal what mapping.py produces.
    """
    p = f"if({_IS_LLM} AND {x} != '', JSONExtract({x}, '{_PARTS_TYPE}'), [])"
    ok = (
        f"({x} = '' OR (length({p}) > 0 AND arrayAll(m -> m.1 != '' AND arrayAll(q -> q.1 = 'text', m.2),"
        f" {p}) AND NOT match({x}, '\"content\"\\s*:\\s*[\\[{{]') AND position({x}, '\"tool_calls\"') = 0))"
    )
    msgs = f"arrayMap(m -> tuple(m.1, if(empty(m.2), m.3, arrayStringConcat(arrayMap(q -> q.2, m.2)))), {p})"
    if sys is not None:
        sp = f"if({_IS_LLM} AND {sys} != '', JSONExtract({sys}, 'Array(Tuple(type String, content String))'), [])"
        ok = f"({ok} AND ({sys} = '' OR (length({sp}) > 0 AND arrayAll(q -> q.1 = 'text', {sp}))))"
        msgs = (
            f"if({sys} != '' AND (empty({p}) OR {p}[1].1 != 'system'),"
            f" arrayPushFront({msgs}, tuple('system', arrayStringConcat(arrayMap(q -> q.2, {sp})))), {msgs})"
        )
    return f"({_IS_LLM} AND {ok})", f"CAST(if({_IS_LLM}, {msgs}, []) AS {_MSGS_TYPE})"


def int_array_sql(x: str) -> tuple[str, str]:
    """(exact, parsed) SQL for token ids: the text is checked by :data:`INT_ARRAY_RE`, then parsed."""
    ok = f"({_IS_LLM} AND {x} != '' AND match({x}, {_sql_str(INT_ARRAY_RE)}))"
    return ok, f"if({ok}, JSONExtract({x}, 'Array(Int64)'), CAST([] AS Array(Int64)))"


def float_array_sql(x: str) -> tuple[str, str]:
    """(exact, parsed) SQL for logprobs. Nullable elements: a string or null inside the array sends the
    text to Python instead of a silent 0; JSONExtract gives [] for invalid JSON, so only a literal empty
    array is re-checked."""
    a = f"if({_IS_LLM} AND {x} != '', JSONExtract({x}, 'Array(Nullable(Float64))'), [])"
    ok = f"({_IS_LLM} AND {x} != '' AND ((length({a}) > 0 AND NOT has({a}, NULL)) OR match({x}, '^\\s*\\[\\s*\\]\\s*$')))"
    return ok, f"CAST(if({ok}, arrayMap(v -> assumeNotNull(v), {a}), []) AS Array(Float64))"


_IN_OK, _IN = llm_messages_sql(_attr(A.GEN_AI_INPUT_MESSAGES), _attr(A.GEN_AI_SYSTEM_INSTRUCTIONS))
_OUT_OK, _OUT = llm_messages_sql(_attr(A.GEN_AI_OUTPUT_MESSAGES), None)
_PIDS_OK, _PIDS = int_array_sql(_attr(A.LLM_PROMPT_TOKEN_IDS))
_RIDS_OK, _RIDS = int_array_sql(_attr(A.LLM_RESPONSE_TOKEN_IDS))
_LPS_OK, _LPS = float_array_sql(_attr(A.LLM_RESPONSE_LOGPROBS))

#: Bits of ``LlmParsed``: which of an LLM span's values ClickHouse parsed exactly (else the column is
#: empty and the text is parsed in Python), and whether both sides have text.
PARSED_INPUT, PARSED_OUTPUT, PARSED_PROMPT_IDS, PARSED_RESPONSE_IDS, PARSED_LOGPROBS, PARSED_HAS_TEXT = (
    1,
    2,
    4,
    8,
    16,
    32,
)

#: Migration 7's columns: name -> (type, MATERIALIZED expression, codec). Messages and token ids are
#: empty unless their ``LlmParsed`` bit is set. Delta suits prompt token ids (a conversation's prompt
#: repeats the previous one and grows): about half the size of plain ZSTD.
LLM_PARSED_COLUMNS: dict[str, tuple[str, str, str]] = {
    "LlmParsed": (
        "UInt8",
        f"toUInt8({_IN_OK}) + 2 * toUInt8({_OUT_OK}) + 4 * toUInt8({_PIDS_OK}) + 8 * toUInt8({_RIDS_OK})"
        f" + 16 * toUInt8({_LPS_OK}) + 32 * toUInt8({_IN_OK} AND {_OUT_OK}"
        f" AND arrayExists(m -> m.2 != '', {_IN}) AND arrayExists(m -> m.2 != '', {_OUT}))",
        "ZSTD(1)",
    ),
    "LlmInputMessages": (_MSGS_TYPE, f"if({_IN_OK}, {_IN}, [])", "ZSTD(1)"),
    "LlmOutputMessages": (_MSGS_TYPE, f"if({_OUT_OK}, {_OUT}, [])", "ZSTD(1)"),
    "LlmPromptTokenIds": ("Array(Int64)", _PIDS, "Delta, ZSTD(1)"),
    "LlmResponseTokenIds": ("Array(Int64)", _RIDS, "ZSTD(1)"),
    "LlmResponseLogprobs": ("Array(Float64)", _LPS, "ZSTD(1)"),
}


def _parsed_column_sql(name: str) -> str:
    typ, expr, codec = LLM_PARSED_COLUMNS[name]
    return f"`{name}` {typ} MATERIALIZED {expr} CODEC({codec})"


# -- what a conversion reads of SpanAttributes (migration 8) ---------------------------------------------
# After migration 7 a conversion still read the whole SpanAttributes map of every span (about 1 KB of
# messages per LLM span, already parsed into the Llm* columns) for a few small attributes and the
# foreign-span check. These columns hold those few attributes and a per-row mask of what else the
# converter needs from the map or the events, so the map is read only for the rows that need it (foreign
# spans, content ClickHouse could not parse exactly, evaluation events). MATERIALIZED as in migration 7:
# rows stored before migration 8 get the values computed on read.

#: The attributes the converters read of a lightspan (or mapped) span besides the parsed columns.
CONVERTER_ATTRIBUTE_KEYS: tuple[str, ...] = (
    A.LLM_SUPPRESSED,
    A.GEN_AI_TOOL_CALL_ARGUMENTS,
    A.GEN_AI_TOOL_CALL_RESULT,
    A.GAP_GRAPH,
    A.GAP_NODE_DEPENDS,
    A.GAP_NODE_STATUS,
    A.REWARD_STEP,
    A.REWARD_SPAN_ID,
    A.TASK_TYPE,
)
#: Foreign spans (stored unmapped, e.g. by the contrib exporter): the presence of one of these keys, a
#: span name among :data:`FOREIGN_SPAN_NAMES` or a key with one of these prefixes, on a span without
#: ``gen_ai.operation.name`` (:data:`FOREIGN_SQL`; the converters' reader uses it as is).
FOREIGN_MARKER_KEYS: tuple[str, ...] = (
    A.OPENINFERENCE_SPAN_KIND,
    A.OI_AGENT_NAME,
    A.AGENTOPS_TASK_OUTPUT,
    A.AGENTOPS_ENTITY_OUTPUT,
    A.OPENLLMETRY_REQUEST_TYPE,
    A.OPENLLMETRY_SPAN_KIND,
    A.OPENLLMETRY_PROMPT_PREFIX + "0.content",
    A.OI_LLM_INPUT_MESSAGES_PREFIX + "0.message.role",
)
FOREIGN_SPAN_NAMES: tuple[str, ...] = (A.AGL_ANNOTATION_SPAN, A.AGL_LEGACY_REWARD_SPAN, A.AGL_REWARD_PREFIX)
FOREIGN_MARKER_PREFIXES: tuple[str, ...] = (A.AGL_REWARD_PREFIX + ".",)


def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ",".join(_sql_str(v) for v in values) + ")"


#: SQL: a foreign span (what the converter maps from the whole attribute map).
FOREIGN_SQL = (
    "Operation = '' AND ("
    + " OR ".join(
        [f"mapContains(SpanAttributes, {_sql_str(k)})" for k in FOREIGN_MARKER_KEYS]
        + [f"SpanName IN {_sql_list(FOREIGN_SPAN_NAMES)}"]
        + [
            f"arrayExists(k -> startsWith(k, {_sql_str(p)}), mapKeys(SpanAttributes))"
            for p in FOREIGN_MARKER_PREFIXES
        ]
    )
    + ")"
)

#: Bits of ``SpanNeeds``: the row is a foreign span (the converter reads its whole map); some message or
#: token-id text is present that migration 7 did not parse exactly (the converter parses the text); the row
#: has an evaluation event (the converter reads its events). 0 for every plain lightspan span.
NEEDS_FOREIGN, NEEDS_TEXT, NEEDS_EVENTS = 1, 2, 4


def _unparsed(key: str, bit: int) -> str:
    return f"({_attr(key)} != '' AND bitAnd(LlmParsed, {bit}) = 0)"


_NEEDS_TEXT_SQL = " OR ".join(
    [
        _unparsed(A.GEN_AI_INPUT_MESSAGES, PARSED_INPUT),
        _unparsed(A.GEN_AI_SYSTEM_INSTRUCTIONS, PARSED_INPUT),
        _unparsed(A.GEN_AI_OUTPUT_MESSAGES, PARSED_OUTPUT),
        _unparsed(A.LLM_PROMPT_TOKEN_IDS, PARSED_PROMPT_IDS),
        _unparsed(A.LLM_RESPONSE_TOKEN_IDS, PARSED_RESPONSE_IDS),
        _unparsed(A.LLM_RESPONSE_LOGPROBS, PARSED_LOGPROBS),
    ]
)

#: Migration 8's columns: name -> (type, MATERIALIZED expression, codec).
SPAN_NEEDS_COLUMNS: dict[str, tuple[str, str, str]] = {
    "ConverterAttributes": (
        "Map(LowCardinality(String), String)",
        f"mapFilter((k, v) -> k IN {_sql_list(CONVERTER_ATTRIBUTE_KEYS)}, SpanAttributes)",
        "ZSTD(1)",
    ),
    "SpanNeeds": (
        "UInt8",
        f"{NEEDS_FOREIGN} * toUInt8({FOREIGN_SQL}) + {NEEDS_TEXT} * toUInt8({_NEEDS_TEXT_SQL})"
        f" + {NEEDS_EVENTS} * toUInt8(has(Events.Name, {_sql_str(A.GEN_AI_EVALUATION_RESULT)}))",
        "ZSTD(1)",
    ),
}


def _needs_column_sql(name: str) -> str:
    typ, expr, codec = SPAN_NEEDS_COLUMNS[name]
    return f"`{name}` {typ} MATERIALIZED {expr} CODEC({codec})"


#: Every column of the spans table, in insert order (Events/Links as their Nested sub-columns).
SPANS_COLUMNS: list[str] = [*OTEL_TRACES_COLUMNS, *LIGHTSPAN_SPAN_COLUMNS]

#: Columns of the rewards table (rewards posted after a rollout ended).
REWARDS_COLUMNS: dict[str, str] = {
    "RewardId": "String",
    "RolloutId": "String",
    "TaskId": "String",
    "Attempt": "UInt32",
    "Name": "LowCardinality(String)",
    "Value": "Float64",
    "Step": "Int32",
    "TargetSpanId": "String",
    "Source": "LowCardinality(String)",
    "Timestamp": "DateTime64(9)",
    "Attributes": "Map(LowCardinality(String), String)",
    "IngestedAt": "DateTime64(6)",
}

#: Columns of the OpenTelemetry Collector's otel_logs table, name -> type, in its order
#: (exporter/clickhouseexporter/internal/sqltemplates/logs_table.sql, with EventName).
OTEL_LOGS_COLUMNS: dict[str, str] = {
    "Timestamp": "DateTime64(9)",
    "TimestampTime": "DateTime",
    "TraceId": "String",
    "SpanId": "String",
    "TraceFlags": "UInt8",
    "SeverityText": "LowCardinality(String)",
    "SeverityNumber": "UInt8",
    "ServiceName": "LowCardinality(String)",
    "Body": "String",
    "ResourceSchemaUrl": "LowCardinality(String)",
    "ResourceAttributes": "Map(LowCardinality(String), String)",
    "ScopeSchemaUrl": "LowCardinality(String)",
    "ScopeName": "String",
    "ScopeVersion": "LowCardinality(String)",
    "ScopeAttributes": "Map(LowCardinality(String), String)",
    "LogAttributes": "Map(LowCardinality(String), String)",
    "EventName": "String",
}

#: lightspan's extra logs columns: name -> (type, DEFAULT expression). ``LogHash`` identifies a record so a
#: replayed export collapses (ReplacingMergeTree); the contrib exporter's rows get it from the DEFAULT too.
LIGHTSPAN_LOG_COLUMNS: dict[str, tuple[str, str]] = {
    "LogHash": (
        "UInt64",
        "cityHash64(Timestamp, TraceId, SpanId, SeverityNumber, SeverityText, Body, EventName,"
        " mapKeys(LogAttributes), mapValues(LogAttributes), mapKeys(ResourceAttributes),"
        " mapValues(ResourceAttributes), ScopeName)",
    ),
    "IngestedAt": ("DateTime64(6)", "now64(6)"),
}

#: Columns of the policy versions table: one row per policy published to a server (``lightspan publish``).
#: ``Name`` is the model name that serves the version (a LoRA adapter's ``<base>@v<N>``, else the server's
#: served model name); converters date an LLM call by the newest version of its model published before it.
POLICY_VERSIONS_COLUMNS: dict[str, str] = {
    "Version": "UInt32",
    "Name": "String",
    "BaseModel": "String",
    "Checkpoint": "String",
    "Mechanism": "LowCardinality(String)",
    "Server": "String",
    "PublishedAt": "DateTime64(6)",
    "ProbeMaxDiff": "Float64",
    "IngestedAt": "DateTime64(6)",
}

WATERMARKS_COLUMNS: dict[str, str] = {
    "Name": "String",
    "Watermark": "DateTime64(6)",
    "UpdatedAt": "DateTime64(6)",
}


@dataclass(frozen=True)
class Layout:
    """How the DDL is rendered: one node, or ``ON CLUSTER`` with Replicated + Distributed tables."""

    database: str = "lightspan"
    cluster: str | None = None
    ttl_days: int = 0

    def __post_init__(self) -> None:
        if not self.database.replace("_", "").isalnum():
            raise ValueError(f"database name must be alphanumeric or '_', got {self.database!r}")
        if self.cluster is not None and not self.cluster.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"cluster name must be alphanumeric, '-' or '_', got {self.cluster!r}")
        if self.ttl_days < 0:
            raise ValueError(f"ttl_days must be >= 0 (0 keeps data forever), got {self.ttl_days}")

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER '{self.cluster}'" if self.cluster else ""

    def local(self, table: str) -> str:
        """Name of the table that holds the data (``*_local`` under a Distributed table on a cluster)."""
        return f"{table}_local" if self.cluster else table


@dataclass(frozen=True)
class Table:
    name: str
    columns: str
    engine: str  # MergeTree family name without "Replicated"
    engine_args: str
    order_by: str
    partition_by: str | None = None
    ttl_column: str | None = None
    shard_key: str = "rand()"
    settings: str = "index_granularity = 8192"

    def statements(self, layout: Layout) -> list[str]:
        db = layout.database
        local = layout.local(self.name)
        if layout.cluster:
            zk = f"'/clickhouse/tables/{{shard}}/{db}/{local}', '{{replica}}'"
            args = f"{zk}, {self.engine_args}" if self.engine_args else zk
            engine = f"Replicated{self.engine}({args})"
        else:
            engine = f"{self.engine}({self.engine_args})"
        parts = [
            f"CREATE TABLE IF NOT EXISTS {db}.{local}{layout.on_cluster}\n(\n{self.columns}\n)",
            f"ENGINE = {engine}",
        ]
        if self.partition_by:
            parts.append(f"PARTITION BY {self.partition_by}")
        parts.append(f"ORDER BY {self.order_by}")
        if self.ttl_column and layout.ttl_days:
            parts.append(f"TTL toDateTime({self.ttl_column}) + toIntervalDay({layout.ttl_days})")
        settings = self.settings
        if self.ttl_column and layout.ttl_days:
            settings += ", ttl_only_drop_parts = 1"
        parts.append(f"SETTINGS {settings}")
        out = ["\n".join(parts)]
        if layout.cluster:
            out.append(
                f"CREATE TABLE IF NOT EXISTS {db}.{self.name}{layout.on_cluster} AS {db}.{local}\n"
                f"ENGINE = Distributed('{layout.cluster}', '{db}', '{local}', {self.shard_key})"
            )
        return out


def _spans_columns_sql() -> str:
    lines = [
        f"    `{name}` {typ} CODEC(ZSTD(1))" for name, typ in OTEL_TRACES_COLUMNS.items() if "." not in name
    ]
    lines[0] = "    `Timestamp` DateTime64(9) CODEC(Delta, ZSTD(1))"
    lines.append(
        "    `Events` Nested(`Timestamp` DateTime64(9), `Name` LowCardinality(String),"
        " `Attributes` Map(LowCardinality(String), String)) CODEC(ZSTD(1))"
    )
    lines.append(
        "    `Links` Nested(`TraceId` String, `SpanId` String, `TraceState` String,"
        " `Attributes` Map(LowCardinality(String), String)) CODEC(ZSTD(1))"
    )
    for name, (typ, default) in LIGHTSPAN_SPAN_COLUMNS.items():
        lines.append(f"    `{name}` {typ} DEFAULT {default} CODEC(ZSTD(1))")
    indexes = [
        "INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1",
        "INDEX idx_span_id SpanId TYPE bloom_filter(0.001) GRANULARITY 1",
        "INDEX idx_task_id TaskId TYPE bloom_filter(0.01) GRANULARITY 1",
        "INDEX idx_response_id ResponseId TYPE bloom_filter(0.01) GRANULARITY 1",
        "INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
        "INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
        "INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
        "INDEX idx_duration Duration TYPE minmax GRANULARITY 1",
        "INDEX idx_ingested IngestedAt TYPE minmax GRANULARITY 1",
    ]
    return ",\n".join(lines + [f"    {i}" for i in indexes])


SPANS = Table(
    name=SPANS_TABLE,
    columns=_spans_columns_sql(),
    engine="ReplacingMergeTree",
    engine_args="",
    partition_by="toDate(Timestamp)",
    order_by="(RolloutId, TraceId, SpanId)",
    ttl_column="Timestamp",
    # A rollout's spans live on one shard; spans outside any rollout spread by trace.
    shard_key="cityHash64(if(RolloutId != '', RolloutId, TraceId))",
    settings="index_granularity = 8192",
)

REWARDS = Table(
    name=REWARDS_TABLE,
    columns=",\n".join(
        [f"    `{n}` {t}" for n, t in REWARDS_COLUMNS.items() if n not in ("Name", "Step", "IngestedAt")]
        + [
            "    `Name` LowCardinality(String) DEFAULT 'primary'",
            "    `Step` Int32 DEFAULT -1",
            "    `IngestedAt` DateTime64(6) DEFAULT now64(6)",
            "    INDEX idx_task_id TaskId TYPE bloom_filter(0.01) GRANULARITY 1",
        ]
    ),
    engine="ReplacingMergeTree",
    engine_args="IngestedAt",
    order_by="(RolloutId, RewardId)",
    shard_key="cityHash64(RolloutId)",
)

WATERMARKS = Table(
    name=WATERMARKS_TABLE,
    columns=",\n".join(f"    `{n}` {t}" for n, t in WATERMARKS_COLUMNS.items()),
    engine="ReplacingMergeTree",
    engine_args="UpdatedAt",
    order_by="Name",
    shard_key="cityHash64(Name)",
)


def _logs_columns_sql() -> str:
    lines = []
    for name, typ in OTEL_LOGS_COLUMNS.items():
        if name == "Timestamp":
            lines.append("    `Timestamp` DateTime64(9) CODEC(Delta(8), ZSTD(1))")
        elif name == "TimestampTime":
            lines.append("    `TimestampTime` DateTime DEFAULT toDateTime(Timestamp)")
        elif typ in ("UInt8",):
            lines.append(f"    `{name}` {typ}")
        else:
            lines.append(f"    `{name}` {typ} CODEC(ZSTD(1))")
    for name, (typ, default) in LIGHTSPAN_LOG_COLUMNS.items():
        lines.append(f"    `{name}` {typ} DEFAULT {default}")
    indexes = [
        "INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1",
        "INDEX idx_span_id SpanId TYPE bloom_filter(0.001) GRANULARITY 1",
        "INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
        "INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
        "INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
        "INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
        "INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
        "INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
        "INDEX idx_body Body TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8",
    ]
    return ",\n".join(lines + [f"    {i}" for i in indexes])


LOGS = Table(
    name=LOGS_TABLE,
    columns=_logs_columns_sql(),
    # The exporter's table is a MergeTree; Replacing on LogHash makes replays idempotent, as for spans.
    engine="ReplacingMergeTree",
    engine_args="",
    partition_by="toDate(TimestampTime)",
    order_by="(ServiceName, TimestampTime, Timestamp, TraceId, SpanId, LogHash)",
    ttl_column="TimestampTime",
    shard_key="cityHash64(TraceId)",
    settings="index_granularity = 8192",
)


POLICY_VERSIONS = Table(
    name=POLICY_VERSIONS_TABLE,
    columns=",\n".join(
        [f"    `{n}` {t}" for n, t in POLICY_VERSIONS_COLUMNS.items() if n != "IngestedAt"]
        + ["    `IngestedAt` DateTime64(6) DEFAULT now64(6)"]
    ),
    engine="ReplacingMergeTree",
    engine_args="IngestedAt",
    order_by="Version",
    shard_key="Version",
)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    tables: tuple[Table, ...] = ()
    extra_sql: tuple[str, ...] = ()  # format strings with {db} and {on_cluster}
    #: ``(table, clause)``: ``ALTER TABLE`` clauses for an existing table (its local and, on a cluster,
    #: its Distributed table).
    alters: tuple[tuple[str, str], ...] = ()

    def statements(self, layout: Layout) -> list[str]:
        out: list[str] = []
        for table in self.tables:
            out.extend(table.statements(layout))
        out.extend(s.format(db=layout.database, on_cluster=layout.on_cluster) for s in self.extra_sql)
        for table, clause in self.alters:
            names = [layout.local(table)] + ([table] if layout.cluster else [])
            out.extend(f"ALTER TABLE {layout.database}.{n}{layout.on_cluster} {clause}" for n in names)
        return out


def _identity_alters() -> tuple[tuple[str, str], ...]:
    """Migration 6: the rollout-identity chain as the DEFAULTs of an existing spans table. Rows already
    stored keep their values (ClickHouse computes a DEFAULT at insert); ``RolloutSource`` is computed for
    them on read."""
    out = []
    for name in ROLLOUT_IDENTITY_COLUMNS:
        typ, default = LIGHTSPAN_SPAN_COLUMNS[name]
        verb = "ADD COLUMN IF NOT EXISTS" if name == "RolloutSource" else "MODIFY COLUMN"
        out.append((SPANS_TABLE, f"{verb} `{name}` {typ} DEFAULT {default} CODEC(ZSTD(1))"))
    return tuple(out)


def _parsed_alters() -> tuple[tuple[str, str], ...]:
    """Migration 7: LLM content parsed at insert (migration 1's table is left as released, so a new store
    gets the same columns the same way). Rows already stored get the values computed on read (the same
    expressions), so they read the same, only slower, until a merge or ``ALTER TABLE ... MATERIALIZE
    COLUMN`` stores them."""
    return tuple(
        (SPANS_TABLE, f"ADD COLUMN IF NOT EXISTS {_parsed_column_sql(n)}") for n in LLM_PARSED_COLUMNS
    )


def _needs_alters() -> tuple[tuple[str, str], ...]:
    """Migration 8: the converter's few attributes and the per-row ``SpanNeeds`` mask (rows already stored
    get them computed on read, as for migration 7)."""
    return tuple(
        (SPANS_TABLE, f"ADD COLUMN IF NOT EXISTS {_needs_column_sql(n)}") for n in SPAN_NEEDS_COLUMNS
    )


#: Ordered migrations. Append new ones; never edit a released one.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "spans table (otel_traces superset with RL columns)", (SPANS,)),
    Migration(2, "rewards posted after a rollout ended", (REWARDS,)),
    Migration(3, "converter watermarks for incremental conversion", (WATERMARKS,)),
    Migration(4, "OTLP logs table (otel_logs, column-compatible with the contrib exporter)", (LOGS,)),
    Migration(5, "policy versions published to a server (lightspan publish)", (POLICY_VERSIONS,)),
    Migration(6, "rollout identity fallback chain (explicit, session, trace id)", alters=_identity_alters()),
    Migration(
        7, "LLM messages and token ids parsed once at insert (MATERIALIZED columns)", alters=_parsed_alters()
    ),
    Migration(
        8,
        "converter attributes and a per-row mask of what else it reads (MATERIALIZED columns)",
        alters=_needs_alters(),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


def migrations_table(layout: Layout) -> list[str]:
    """DDL of the bookkeeping table that records applied migration versions."""
    table = Table(
        name=MIGRATIONS_TABLE,
        columns="    `Version` UInt32,\n    `Description` String,\n    `AppliedAt` DateTime64(3) DEFAULT now64(3)",
        engine="ReplacingMergeTree",
        engine_args="AppliedAt",
        order_by="Version",
        shard_key="Version",
    )
    return table.statements(layout)


def render(layout: Layout | None = None) -> str:
    """The full DDL for ``layout`` as one SQL script (what ``lightspan schema print`` shows)."""
    layout = layout or Layout()
    stmts = [f"CREATE DATABASE IF NOT EXISTS {layout.database}{layout.on_cluster}", *migrations_table(layout)]
    for m in MIGRATIONS:
        stmts.append(f"-- migration {m.version}: {m.description}")
        stmts.extend(m.statements(layout))
    return ";\n\n".join(s for s in stmts) + ";\n"


__all__ = [
    "SPANS_TABLE",
    "REWARDS_TABLE",
    "WATERMARKS_TABLE",
    "LOGS_TABLE",
    "MIGRATIONS_TABLE",
    "POLICY_VERSIONS_TABLE",
    "POLICY_VERSIONS_COLUMNS",
    "OTEL_TRACES_COLUMNS",
    "LIGHTSPAN_SPAN_COLUMNS",
    "ROLLOUT_IDENTITY_COLUMNS",
    "LLM_PARSED_COLUMNS",
    "SPAN_NEEDS_COLUMNS",
    "CONVERTER_ATTRIBUTE_KEYS",
    "FOREIGN_MARKER_KEYS",
    "FOREIGN_MARKER_PREFIXES",
    "FOREIGN_SPAN_NAMES",
    "FOREIGN_SQL",
    "INT_ARRAY_RE",
    "llm_messages_sql",
    "int_array_sql",
    "float_array_sql",
    "SESSION_ID_SQL",
    "SPANS_COLUMNS",
    "REWARDS_COLUMNS",
    "OTEL_LOGS_COLUMNS",
    "LIGHTSPAN_LOG_COLUMNS",
    "WATERMARKS_COLUMNS",
    "Layout",
    "Table",
    "Migration",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "migrations_table",
    "render",
]
