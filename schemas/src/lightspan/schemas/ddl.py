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

SPANS_TABLE = "otel_traces"
REWARDS_TABLE = "lightspan_rewards"
WATERMARKS_TABLE = "lightspan_watermarks"
MIGRATIONS_TABLE = "lightspan_schema_migrations"

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


#: lightspan's RL columns: name -> (type, DEFAULT expression over SpanAttributes).
LIGHTSPAN_SPAN_COLUMNS: dict[str, tuple[str, str]] = {
    "RolloutId": ("String", _first(A.ROLLOUT_ID, A.AGL_ROLLOUT_ID)),
    "TaskId": ("String", _attr(A.TASK_ID)),
    "Attempt": ("UInt32", f"toUInt32OrZero({_first(A.ATTEMPT, A.AGL_ATTEMPT_ID)})"),
    "Operation": ("LowCardinality(String)", _attr(A.GEN_AI_OPERATION_NAME)),
    "AgentName": ("LowCardinality(String)", _attr(A.GEN_AI_AGENT_NAME)),
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
}

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


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    tables: tuple[Table, ...] = ()
    extra_sql: tuple[str, ...] = ()  # format strings with {db} and {on_cluster}

    def statements(self, layout: Layout) -> list[str]:
        out: list[str] = []
        for table in self.tables:
            out.extend(table.statements(layout))
        out.extend(s.format(db=layout.database, on_cluster=layout.on_cluster) for s in self.extra_sql)
        return out


#: Ordered migrations. Append new ones; never edit a released one.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "spans table (otel_traces superset with RL columns)", (SPANS,)),
    Migration(2, "rewards posted after a rollout ended", (REWARDS,)),
    Migration(3, "converter watermarks for incremental conversion", (WATERMARKS,)),
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
    "MIGRATIONS_TABLE",
    "OTEL_TRACES_COLUMNS",
    "LIGHTSPAN_SPAN_COLUMNS",
    "SPANS_COLUMNS",
    "REWARDS_COLUMNS",
    "WATERMARKS_COLUMNS",
    "Layout",
    "Table",
    "Migration",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "migrations_table",
    "render",
]
