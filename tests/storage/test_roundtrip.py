"""The spans table on the real engine: otel_traces compatibility, exact round trips, idempotent writes."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lightspan.schemas import attributes as A
from lightspan.schemas import ddl
from lightspan.storage import apply_schema, connect
from lightspan.storage.http_interface import ClickHouseHTTPInterface

TS = datetime(2026, 11, 23, 10, 11, 12, 345678, tzinfo=timezone.utc)


def _row(span_id: str = "00f067aa0ba902b7", **attrs: str) -> dict:
    span_attrs = {
        A.ROLLOUT_ID: "rollout-1",
        A.TASK_ID: "task-9",
        A.ATTEMPT: "2",
        A.GEN_AI_OPERATION_NAME: "chat",
        A.GEN_AI_REQUEST_MODEL: "tiny",
        A.GEN_AI_USAGE_INPUT_TOKENS: "17",
        A.GEN_AI_USAGE_OUTPUT_TOKENS: "5",
        A.GAP_LEVEL: "1",
        A.GAP_NODE_ID: "s2",
        **attrs,
    }
    return {
        "Timestamp": TS,
        "TraceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "SpanId": span_id,
        "ParentSpanId": "53995c3f42cd8ad8",
        "TraceState": "k=v",
        "SpanName": "chat tiny",
        "SpanKind": "Client",
        "ServiceName": "agent",
        "ResourceAttributes": {"service.name": "agent", "host.name": "h1"},
        "ScopeName": "lightspan.instrumentation.openai",
        "ScopeVersion": "0.1.0",
        "SpanAttributes": span_attrs,
        "Duration": 123456789,
        "StatusCode": "Error",
        "StatusMessage": "boom",
        "Events.Timestamp": [TS, TS],
        "Events.Name": ["exception", "retry"],
        "Events.Attributes": [{"exception.type": "ValueError"}, {}],
        "Links.TraceId": ["0af7651916cd43dd8448eb211c80319c"],
        "Links.SpanId": ["b7ad6b7169203331"],
        "Links.TraceState": [""],
        "Links.Attributes": [{"link": "yes"}],
    }


def _insert(client, rows: list[dict]) -> None:
    cols = list(ddl.OTEL_TRACES_COLUMNS)
    client.insert(f"lightspan.{ddl.SPANS_TABLE}", [[r[c] for c in cols] for r in rows], column_names=cols)


def test_spans_table_has_every_otel_traces_column_with_its_type(ch_client):
    described = {
        name: typ
        for name, typ in ch_client.query(
            "SELECT name, type FROM system.columns WHERE database = 'lightspan' AND table = {t:String}",
            parameters={"t": ddl.SPANS_TABLE},
        ).result_rows
    }
    for name, typ in ddl.OTEL_TRACES_COLUMNS.items():
        assert described.get(name) == typ, f"{name}: {described.get(name)} != {typ}"
    for name, (typ, _) in ddl.LIGHTSPAN_SPAN_COLUMNS.items():
        assert described[name] == typ


def test_every_column_round_trips_exactly(ch_client):
    row = _row()
    _insert(ch_client, [row])
    cols = list(ddl.OTEL_TRACES_COLUMNS)
    got = ch_client.query(f"SELECT {', '.join(cols)} FROM lightspan.otel_traces FINAL").result_rows
    assert len(got) == 1
    for name, value in zip(cols, got[0], strict=False):
        expected = row[name]
        if name in ("Timestamp",):
            assert value.replace(tzinfo=timezone.utc) == expected
        elif name == "Events.Timestamp":
            assert [v.replace(tzinfo=timezone.utc) for v in value] == expected
        else:
            assert value == expected, name


def test_nanosecond_timestamps_survive(ch_client):
    ch_client.command(
        "INSERT INTO lightspan.otel_traces (Timestamp, TraceId, SpanId) "
        "VALUES (fromUnixTimestamp64Nano(toInt64(1763892672123456789)), 't', 's')"
    )
    ns = ch_client.query("SELECT toUnixTimestamp64Nano(Timestamp) FROM lightspan.otel_traces").result_rows[0][
        0
    ]
    assert ns == 1763892672123456789


def test_rl_columns_are_filled_from_attributes(ch_client):
    _insert(ch_client, [_row()])
    got = ch_client.query(
        "SELECT RolloutId, TaskId, Attempt, Operation, RequestModel, InputTokens, OutputTokens, GapLevel, GapNodeId "
        "FROM lightspan.otel_traces FINAL"
    ).result_rows[0]
    assert got == ("rollout-1", "task-9", 2, "chat", "tiny", 17, 5, 1, "s2")


def test_agent_lightning_rollout_id_maps_when_ours_is_absent(ch_client):
    row = _row(span_id="1111111111111111")
    row["SpanAttributes"] = {A.AGL_ROLLOUT_ID: "agl-7", A.AGL_ATTEMPT_ID: "3"}
    _insert(ch_client, [row])
    assert ch_client.query("SELECT RolloutId, Attempt, GapLevel FROM lightspan.otel_traces").result_rows == [
        ("agl-7", 3, -1)
    ]


def test_duplicate_trace_and_span_id_collapses(ch_client):
    _insert(ch_client, [_row()])
    _insert(ch_client, [_row()])  # a retried export
    _insert(ch_client, [_row(span_id="aaaaaaaaaaaaaaaa")])
    assert ch_client.query("SELECT count() FROM lightspan.otel_traces FINAL").result_rows[0][0] == 2
    ch_client.command("OPTIMIZE TABLE lightspan.otel_traces FINAL")
    assert ch_client.query("SELECT count() FROM lightspan.otel_traces").result_rows[0][0] == 2


def test_rollout_read_uses_the_primary_key(ch_client):
    _insert(ch_client, [_row()])
    plan = "\n".join(
        r[0]
        for r in ch_client.query(
            "EXPLAIN indexes = 1 SELECT * FROM lightspan.otel_traces WHERE RolloutId IN ('a', 'b')"
        ).result_rows
    )
    assert "PrimaryKey" in plan and "RolloutId" in plan


def test_same_ddl_and_round_trip_over_the_http_interface(tmp_path, closing):
    embedded = closing(connect(f"chdb://{tmp_path / 'store'}"))
    with ClickHouseHTTPInterface(embedded, port=0, database="lightspan") as server:
        remote = connect(server.url)
        assert apply_schema(remote, database="lightspan") == [m.version for m in ddl.MIGRATIONS]
        assert apply_schema(remote, database="lightspan") == []
        row = _row()
        _insert(remote, [row, row])
        got = remote.query(
            "SELECT SpanId, SpanAttributes, Events.Name, Links.Attributes, RolloutId FROM lightspan.otel_traces FINAL"
        ).result_rows
        assert got == [
            (row["SpanId"], row["SpanAttributes"], row["Events.Name"], row["Links.Attributes"], "rollout-1")
        ]
        with pytest.raises(Exception, match="UNKNOWN_TABLE|Unknown table"):
            remote.query("SELECT * FROM lightspan.nope")
        remote.close()
    # The embedded owner sees what was written over HTTP.
    assert embedded.query("SELECT count() FROM lightspan.otel_traces FINAL").result_rows[0][0] == 1


def test_reward_column_is_null_unless_the_value_is_a_finite_number(ch_client):
    values = {
        "aaaaaaaaaaaaaaa1": "0.75",
        "aaaaaaaaaaaaaaa2": "nan",
        "aaaaaaaaaaaaaaa3": "inf",
        "aaaaaaaaaaaaaaa4": "x",
    }
    _insert(ch_client, [_row(span_id=sid, **{A.REWARD_VALUE: v}) for sid, v in values.items()])
    got = dict(ch_client.query("SELECT SpanId, RewardValue FROM lightspan.otel_traces FINAL").result_rows)
    assert got == {
        "aaaaaaaaaaaaaaa1": 0.75,
        "aaaaaaaaaaaaaaa2": None,
        "aaaaaaaaaaaaaaa3": None,
        "aaaaaaaaaaaaaaa4": None,
    }
