"""Rows written the way the OpenTelemetry Collector's contrib `clickhouse` exporter writes them (its
22 otel_traces columns only, every attribute value as a string, no lightspan column) land in
lightspan's spans table with the RL columns filled by their DEFAULT expressions, collapse on a retried
export, and convert into a trajectory (deploy/otel-collector/clickhouse-exporter.yaml's promise)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from deploy_test_helpers import DEPLOY, chdb_client, load_docs

from lightspan.schemas import attributes as A
from lightspan.schemas import ddl
from lightspan.storage import apply_schema

DB = "deploy_exporter_rows"
#: The column list of the contrib exporter's traces INSERT (exporter/clickhouseexporter, traces_insert.sql).
EXPORTER_COLUMNS = [
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
]
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)
MESSAGES_IN = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "What is 6*7?"}]}])
MESSAGES_OUT = json.dumps(
    [{"role": "assistant", "parts": [{"type": "text", "content": "42"}], "finish_reason": "stop"}]
)


def _row(
    span_id: str,
    parent: str,
    name: str,
    kind: str,
    start_ms: int,
    dur_ms: int,
    attrs: dict[str, str],
    status: str = "Unset",
) -> list:
    """One row as the exporter builds it: SpanKindStr/StatusCodeStr names, AsString() attribute values."""
    rollout = {A.ROLLOUT_ID: "rollout-7", A.TASK_ID: "task-3", A.ATTEMPT: "2"}
    return [
        T0 + timedelta(milliseconds=start_ms),
        TRACE,
        span_id,
        parent,
        "",
        name,
        kind,
        "math-agent",
        {"service.name": "math-agent", "telemetry.sdk.language": "python"},
        "lightspan.instrumentation",
        "0.1.0",
        {**rollout, **attrs},
        dur_ms * 1_000_000,
        status,
        "",
        [],
        [],
        [],
        [],
        [],
        [],
        [],
    ]


ROWS = [
    _row(
        "a000000000000001",
        "",
        "invoke_agent math",
        "Internal",
        0,
        900,
        {A.GEN_AI_OPERATION_NAME: A.OP_INVOKE_AGENT, A.GEN_AI_AGENT_NAME: "math"},
    ),
    _row(
        "a000000000000002",
        "a000000000000001",
        "chat gpt-4o-mini",
        "Client",
        10,
        300,
        {
            A.GEN_AI_OPERATION_NAME: A.OP_CHAT,
            A.GEN_AI_PROVIDER_NAME: "openai",
            A.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
            A.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
            A.GEN_AI_RESPONSE_ID: "chatcmpl-1",
            A.GEN_AI_USAGE_INPUT_TOKENS: "12",
            A.GEN_AI_USAGE_OUTPUT_TOKENS: "3",
            A.GEN_AI_RESPONSE_FINISH_REASONS: '["tool_calls"]',
            A.GEN_AI_INPUT_MESSAGES: MESSAGES_IN,
            A.GEN_AI_OUTPUT_MESSAGES: json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [
                            {
                                "type": "tool_call",
                                "id": "call-1",
                                "name": "multiply",
                                "arguments": {"a": 6, "b": 7},
                            }
                        ],
                    }
                ]
            ),
            A.GAP_LEVEL: "0",
            A.GAP_NODE_ID: "n1",
            A.GEN_AI_AGENT_NAME: "math",
        },
    ),
    _row(
        "a000000000000003",
        "a000000000000001",
        "execute_tool multiply",
        "Internal",
        320,
        5,
        {
            A.GEN_AI_OPERATION_NAME: A.OP_EXECUTE_TOOL,
            A.GEN_AI_TOOL_NAME: "multiply",
            A.GEN_AI_TOOL_CALL_ID: "call-1",
            A.GEN_AI_TOOL_CALL_ARGUMENTS: '{"a": 6, "b": 7}',
            A.GEN_AI_TOOL_CALL_RESULT: "42",
        },
    ),
    # An older-convention LLM span (gen_ai.system, prompt/completion tokens), as a non-lightspan SDK sends.
    _row(
        "a000000000000004",
        "a000000000000001",
        "chat gpt-4o-mini",
        "Client",
        330,
        400,
        {
            A.GEN_AI_OPERATION_NAME: A.OP_CHAT,
            A.OLD_GEN_AI_SYSTEM: "openai",
            A.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
            A.OLD_GEN_AI_USAGE_PROMPT_TOKENS: "20",
            A.OLD_GEN_AI_USAGE_COMPLETION_TOKENS: "1",
            A.GEN_AI_INPUT_MESSAGES: MESSAGES_IN,
            A.GEN_AI_OUTPUT_MESSAGES: MESSAGES_OUT,
            A.GEN_AI_AGENT_NAME: "math",
        },
        status="Ok",
    ),
    _row(
        "a000000000000005",
        "a000000000000001",
        A.SPAN_REWARD,
        "Internal",
        800,
        1,
        {A.GEN_AI_OPERATION_NAME: A.OP_REWARD, A.REWARD_VALUE: "1.0", A.REWARD_NAME: "primary"},
    ),
]


@pytest.fixture(scope="module")
def store():
    client = chdb_client(DB)
    apply_schema(client, database=DB)
    client.insert(f"{DB}.{ddl.SPANS_TABLE}", ROWS, column_names=EXPORTER_COLUMNS)
    yield client
    client.command(f"DROP DATABASE IF EXISTS {DB}")


def _by_span(client) -> dict[str, dict]:
    cols = ["SpanId", *ddl.LIGHTSPAN_SPAN_COLUMNS]
    result = client.query(f"SELECT {', '.join(cols)} FROM {DB}.{ddl.SPANS_TABLE} FINAL")
    return {r[0]: dict(zip(cols, r, strict=True)) for r in result.result_rows}


def test_exporter_columns_are_the_otel_traces_columns():
    assert EXPORTER_COLUMNS == list(ddl.OTEL_TRACES_COLUMNS)


def test_the_otel_config_writes_to_this_table():
    (cfg,) = load_docs(DEPLOY / "otel-collector" / "clickhouse-exporter.yaml")
    exporter = cfg["exporters"]["clickhouse"]
    assert exporter["create_schema"] is False
    assert (exporter["database"], exporter["traces_table_name"]) == ("lightspan", ddl.SPANS_TABLE)


def test_defaults_fill_the_rl_columns(store):
    rows = _by_span(store)
    assert len(rows) == len(ROWS)
    for r in rows.values():
        assert (r["RolloutId"], r["TaskId"], r["Attempt"]) == ("rollout-7", "task-3", 2)
        assert r["IngestedAt"].year >= 2026
    chat = rows["a000000000000002"]
    assert (chat["Operation"], chat["ProviderName"], chat["RequestModel"]) == (
        "chat",
        "openai",
        "gpt-4o-mini",
    )
    assert (chat["ResponseModel"], chat["ResponseId"]) == ("gpt-4o-mini-2024-07-18", "chatcmpl-1")
    assert (chat["InputTokens"], chat["OutputTokens"]) == (12, 3)
    assert (chat["GapLevel"], chat["GapNodeId"], chat["AgentName"]) == (0, "n1", "math")
    tool = rows["a000000000000003"]
    assert (tool["Operation"], tool["ToolName"], tool["ToolCallId"]) == ("execute_tool", "multiply", "call-1")
    assert tool["GapLevel"] == -1 and tool["RewardValue"] is None
    old = rows["a000000000000004"]
    assert (old["ProviderName"], old["InputTokens"], old["OutputTokens"]) == ("openai", 20, 1)
    reward = rows["a000000000000005"]
    assert (reward["RewardValue"], reward["RewardName"]) == (1.0, "primary")


def test_agent_lightning_rollout_ids_are_recognized(store):
    row = _row("b000000000000001", "", "llm", "Client", 0, 1, {})
    row[11] = {A.AGL_ROLLOUT_ID: "agl-rollout-1", A.AGL_ATTEMPT_ID: "5"}
    row[1] = "5" * 32
    store.insert(f"{DB}.{ddl.SPANS_TABLE}", [row], column_names=EXPORTER_COLUMNS)
    got = store.query(
        f"SELECT RolloutId, Attempt FROM {DB}.{ddl.SPANS_TABLE} FINAL WHERE TraceId = '{'5' * 32}'"
    )
    assert got.result_rows == [("agl-rollout-1", 5)]
    store.command(f"DELETE FROM {DB}.{ddl.SPANS_TABLE} WHERE TraceId = '{'5' * 32}'")


def test_a_retried_export_collapses(store):
    """The exporter retries a failed INSERT whole; FINAL reads one row per (TraceId, SpanId)."""
    store.insert(f"{DB}.{ddl.SPANS_TABLE}", ROWS, column_names=EXPORTER_COLUMNS)
    raw = store.query(f"SELECT count() FROM {DB}.{ddl.SPANS_TABLE} WHERE TraceId = '{TRACE}'").result_rows[0][
        0
    ]
    final = store.query(f"SELECT count() FROM {DB}.{ddl.SPANS_TABLE} FINAL WHERE TraceId = '{TRACE}'")
    assert raw == 2 * len(ROWS)
    assert final.result_rows[0][0] == len(ROWS)


def _converters():
    try:
        from lightspan.converters import ConvertConfig, convert
    except ImportError as exc:
        pytest.skip(f"lightspan.converters has no ConvertConfig/convert yet ({exc})")
    return ConvertConfig, convert


def test_exporter_rows_convert_to_a_trajectory(store, tmp_path: Path):
    ConvertConfig, convert = _converters()
    from deploy_test_helpers import chdb_dir

    out = tmp_path / "out"
    convert(
        ConvertConfig(
            dsn=f"chdb://{chdb_dir()}?database={DB}", output_dir=str(out), formats=("trajectory-json",)
        )
    )
    files = sorted((out / "trajectory-json").glob("*.json"))
    assert len(files) == 1, files
    doc = json.loads(files[0].read_text())
    assert doc["final_reward"] == 1.0
    assert (doc["rollout_id"], doc["task_id"], doc["attempt"]) == ("rollout-7", "task-3", 2)
    assert [s["span_type"] for s in doc["spans"]] == ["llm_call", "tool_call", "llm_call"]
    first, tool, second = doc["spans"]
    assert first["input"]["prompt"] == "What is 6*7?" and first["metadata"]["tokens_used"] == 15
    assert tool["span_id"] == "a000000000000003"
    # The older-convention span converts too: its tokens came from gen_ai.usage.prompt/completion_tokens.
    assert second["output"]["response"] == "42" and second["metadata"]["tokens_used"] == 21
