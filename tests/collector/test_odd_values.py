"""Odd but valid OTLP values never fail a batch insert (a failing batch would be retried forever)."""

from __future__ import annotations

import os

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

from lightspan.collector.otlp import flatten
from lightspan.collector.redact import Redactor
from lightspan.collector.writer import ClickHouseSink
from lightspan.schemas import attributes as A
from lightspan.storage import apply_schema, connect


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, bytes):
        return KeyValue(key=key, value=AnyValue(bytes_value=value))
    if isinstance(value, list):
        return KeyValue(
            key=key, value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=v) for v in value]))
        )
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _varied_request() -> ExportTraceServiceRequest:
    """Every column shape: events and links with attributes, odd values, two resources, edge timestamps."""
    req = ExportTraceServiceRequest()
    for r in range(2):
        rs = req.resource_spans.add()
        rs.resource.attributes.extend([_kv("service.name", f"svc-{r}"), _kv("host.ü", "ñ")])
        ss = rs.scope_spans.add()
        ss.scope.name, ss.scope.version = "scope", "1.0"
        for i, start in enumerate([0, 1500, 1_700_000_000_123_456_789, 1_800_000_000_000_000_000]):
            span = ss.spans.add(name=f"chat {i} 💬", kind=i + 1 if i < 3 else 9, trace_id=os.urandom(16),
                                span_id=os.urandom(8), start_time_unix_nano=start, end_time_unix_nano=start + 7)  # fmt: skip
            span.attributes.extend([
                _kv(A.GEN_AI_OPERATION_NAME, "chat"), _kv(A.GEN_AI_USAGE_INPUT_TOKENS, 12 + i),
                _kv(A.ROLLOUT_ID, f"ro-{r}"), _kv(A.ATTEMPT, "99999999999" if i == 1 else str(i)),
                _kv(A.GEN_AI_USAGE_OUTPUT_TOKENS, str(2**70) if i == 2 else "3"), _kv(A.REWARD_VALUE, 0.5 * i),
                _kv(A.GAP_LEVEL, str(2**40) if i == 3 else "1"), _kv("flag", True), _kv("blob", b"\x00\xff"),
                _kv("list", ["a", "b"]), _kv("temperature", 1e-7), _kv("empty", ""), _kv("text", "é" * 3000),
            ])  # fmt: skip
            span.status.code, span.status.message = (2, "boom") if i == 2 else (0, "")
            if i % 2:
                ev = span.events.add(time_unix_nano=start + 1, name="gen_ai.choice")
                ev.attributes.extend([_kv("index", 0), _kv("message", "done")])
                span.events.add(time_unix_nano=start + 2, name="second")
                link = span.links.add(trace_id=os.urandom(16), span_id=os.urandom(8), trace_state="k=v")
                link.attributes.append(_kv("why", "retry"))
    return req


def test_out_of_range_values_are_stored_like_the_default_expressions_or_rejected(tmp_path):
    req = _varied_request()
    late = (
        req.resource_spans[0]
        .scope_spans[0]
        .spans.add(name="late", trace_id=os.urandom(16), span_id=os.urandom(8))
    )
    late.start_time_unix_nano = 2**63 + 5  # past DateTime64(9): rejected with a reason, never a failing batch
    flat = flatten(req, Redactor(max_attribute_bytes=4096))
    assert (flat.rows, flat.rejected) == (8, 1) and "2262" in flat.error_message()
    client = connect(f"chdb://{tmp_path / 'store'}")
    try:
        apply_schema(client)
        ClickHouseSink(client, client.database).write_spans(flat.columns, flat.rows)
        rows = client.query("SELECT toUnixTimestamp64Nano(Timestamp), Attempt, OutputTokens, GapLevel, length(`Events.Name`),"
                            " length(`Links.SpanId`), SpanAttributes['flag'], SpanAttributes['temperature'],"
                            " SpanAttributes['list'], StatusCode, SpanKind"
                            " FROM lightspan.otel_traces FINAL WHERE ServiceName = 'svc-0' ORDER BY Timestamp").result_rows  # fmt: skip
        # Out-of-range numbers become what the table's DEFAULT expressions give (toUInt32OrZero: 0, GapLevel: -1).
        assert rows == [
            (0, 0, 3, 1, 0, 0, "true", "1e-7", '["a","b"]', "Unset", "Internal"),
            (1500, 0, 3, 1, 2, 1, "true", "1e-7", '["a","b"]', "Unset", "Server"),
            (1_700_000_000_123_456_789, 2, 0, 1, 0, 0, "true", "1e-7", '["a","b"]', "Error", "Client"),
            (1_800_000_000_000_000_000, 3, 3, -1, 2, 1, "true", "1e-7", '["a","b"]', "Unset", "Unspecified"),
        ]
        assert client.query("SELECT count() FROM lightspan.otel_traces FINAL").result_rows == [(8,)]
    finally:
        client.close()
