"""Real OTLP exporters (gRPC and HTTP) against a collector on loopback; rows checked in chDB."""

from __future__ import annotations

import gzip
import json
import os
import urllib.error
import urllib.request

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from lightspan.schemas import attributes as A

from .conftest import query, send_spans, wait_for


def _count(c, where: str = "1") -> int:
    return query(c, f"SELECT count() FROM otel_traces FINAL WHERE {where}")[0][0]


def _request(n: int, *, bad_ids: int = 0) -> ts.ExportTraceServiceRequest:
    req = ts.ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for i in range(n + bad_ids):
        s = ss.spans.add(
            name=f"span {i}",
            start_time_unix_nano=1_700_000_000_000_000_000,
            end_time_unix_nano=1_700_000_000_000_000_500,
        )
        s.trace_id = os.urandom(16)
        s.span_id = os.urandom(8) if i < n else b"\x01\x02"  # the extra ones carry a 2-byte span id
    return req


def _post(port: int, path: str, body: bytes, headers: dict) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def test_grpc_and_http_exporters_land_in_clickhouse_like_the_contrib_exporter(start_collector):
    c = start_collector()
    attrs = {
        A.GEN_AI_OPERATION_NAME: "chat",
        A.ROLLOUT_ID: "r-1",
        A.GEN_AI_USAGE_INPUT_TOKENS: 12,
        "f": 0.5,
        "b": True,
        "l": ["a", "b"],
    }
    send_spans(GrpcExporter(endpoint=f"127.0.0.1:{c.grpc_port}", insecure=True), 7, attrs)
    send_spans(HttpExporter(endpoint=f"http://127.0.0.1:{c.http_port}/v1/traces"), 5, attrs)
    assert wait_for(lambda: _count(c) == 12)
    row = query(
        c,
        "SELECT length(TraceId), length(SpanId), SpanKind, StatusCode, ServiceName, ScopeName, ScopeVersion,"
        " Duration > 0, SpanAttributes['f'], SpanAttributes['b'], SpanAttributes['l'], RolloutId, Operation,"
        " InputTokens, toYear(Timestamp) FROM otel_traces FINAL LIMIT 1",
    )[0]
    assert row[:7] == (32, 16, "Internal", "Unset", "test-agent", "tests", "1.2.3")
    assert row[7:] == (1, "0.5", "true", '["a","b"]', "r-1", "chat", 12, row[14])
    assert row[14] >= 2024


def test_http_json_gzip_and_empty_requests(start_collector):
    c = start_collector()
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "json span",
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000000001000",
                                "attributes": [{"key": "n", "value": {"intValue": "3"}}],
                                "status": {"code": 2, "message": "boom"},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    status, body, _ = _post(
        c.http_port,
        "/v1/traces",
        gzip.compress(json.dumps(doc).encode()),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert status == 200, body
    status, _, _ = _post(c.http_port, "/v1/traces", b"", {"Content-Type": "application/x-protobuf"})
    assert status == 200
    assert wait_for(lambda: _count(c, "SpanName = 'json span'") == 1)
    assert query(
        c,
        "SELECT TraceId, SpanKind, StatusCode, StatusMessage, Duration, SpanAttributes['n'], ServiceName"
        " FROM otel_traces FINAL",
    )[0] == ("5b8efff798038103d269b633813fc60c", "Server", "Error", "boom", 1000, "3", "js")


def test_malformed_request_is_rejected_and_the_good_one_next_to_it_stored(start_collector):
    c = start_collector()
    stub = TraceServiceStub(grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}"))
    status, body, _ = _post(
        c.http_port, "/v1/traces", b"\x0a\xff\xff\xff", {"Content-Type": "application/x-protobuf"}
    )
    assert status == 400
    status, body, _ = _post(c.http_port, "/v1/traces", b"{not json", {"Content-Type": "application/json"})
    assert status == 400 and b"not valid JSON" in body
    good = stub.Export(_request(3, bad_ids=2))
    assert good.partial_success.rejected_spans == 2
    assert "span_id 8 bytes (got 16 and 2)" in good.partial_success.error_message
    assert wait_for(lambda: _count(c) == 3)


def test_raw_malformed_grpc_gets_invalid_argument(start_collector):
    c = start_collector()
    channel = grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}")
    export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
    with pytest.raises(grpc.RpcError) as err:
        export(b"\x0a\xff\xff\xff")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ExportTraceServiceRequest" in err.value.details()


def test_oversized_requests_are_refused(start_collector):
    c = start_collector(max_request_bytes=4096)
    big = _request(100).SerializeToString()
    assert len(big) > 4096
    status, _, _ = _post(c.http_port, "/v1/traces", big, {"Content-Type": "application/x-protobuf"})
    assert status == 413
    status, body, _ = _post(
        c.http_port,
        "/v1/traces",
        gzip.compress(big),
        {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
    )
    assert status == 413 and b"after decompression" in body
    stub = TraceServiceStub(grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}"))
    with pytest.raises(grpc.RpcError) as err:
        stub.Export(_request(100))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    stub.Export(_request(2))
    assert wait_for(lambda: _count(c) == 2)


def test_bearer_token_required_when_configured(start_collector):
    c = start_collector(auth_token="s3cret")
    stub = TraceServiceStub(grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}"))
    with pytest.raises(grpc.RpcError) as err:
        stub.Export(_request(1))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:
        stub.Export(_request(1), metadata=[("authorization", "Bearer wrong")])
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    stub.Export(_request(1), metadata=[("authorization", "Bearer s3cret")])
    body = _request(1).SerializeToString()
    assert _post(c.http_port, "/v1/traces", body, {"Content-Type": "application/x-protobuf"})[0] == 401
    send_spans(
        HttpExporter(
            endpoint=f"http://127.0.0.1:{c.http_port}/v1/traces", headers={"authorization": "Bearer s3cret"}
        ),
        2,
    )
    assert wait_for(lambda: _count(c) == 3)


def test_no_token_configured_means_open(start_collector):
    c = start_collector()
    assert (
        _post(
            c.http_port,
            "/v1/traces",
            _request(1).SerializeToString(),
            {"Content-Type": "application/x-protobuf"},
        )[0]
        == 200
    )


def test_rewards_endpoint_validates_and_is_idempotent(start_collector):
    c = start_collector()
    ok = [
        {"rollout_id": "r-9", "value": 1.0, "task_id": "t"},
        {"rollout_id": "r-9", "value": 0.5, "name": "format", "step": 2},
    ]
    for _ in range(2):  # a retried post stores each reward once
        status, body, _ = _post(
            c.http_port, "/v1/rewards", json.dumps(ok).encode(), {"Content-Type": "application/json"}
        )
        assert status == 200 and json.loads(body) == {"accepted": 2}
    status, body, _ = _post(c.http_port, "/v1/rewards", b'{"value": 1}', {"Content-Type": "application/json"})
    assert status == 400 and b"rollout_id is required" in body
    status, body, _ = _post(c.http_port, "/v1/rewards", b'{"rollout_id": "r", "value": "high"}', {})
    assert status == 400 and b"value must be a finite number" in body
    sql = "SELECT Name, Value, Step, TaskId FROM lightspan_rewards FINAL ORDER BY Name"
    assert wait_for(lambda: len(query(c, sql)) == 2)
    assert query(c, sql) == [("format", 0.5, 2, ""), ("primary", 1.0, -1, "t")]


def test_health_ready_and_metrics(start_collector):
    c = start_collector()
    base = f"http://127.0.0.1:{c.http_port}"
    assert urllib.request.urlopen(base + "/healthz").status == 200
    assert json.loads(urllib.request.urlopen(base + "/readyz").read())["ready"] is True
    send_spans(GrpcExporter(endpoint=f"127.0.0.1:{c.grpc_port}", insecure=True), 3)
    assert wait_for(lambda: _count(c) == 3)
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    assert 'lightspan_spans_received_total{transport="grpc"} 3.0' in text
    assert "lightspan_spans_written_total 3.0" in text
    assert "lightspan_queue_spans" in text and "lightspan_batch_write_seconds_bucket" in text
    # Spans with no rollout id of their own (their trace stands in) are counted; one with an id is not.
    assert "lightspan_spans_without_rollout_total 3.0" in text
    send_spans(GrpcExporter(endpoint=f"127.0.0.1:{c.grpc_port}", insecure=True), 2, {A.ROLLOUT_ID: "r-1"})
    send_spans(GrpcExporter(endpoint=f"127.0.0.1:{c.grpc_port}", insecure=True), 1, {"session.id": "s-1"})
    assert wait_for(lambda: _count(c) == 6)
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    assert "lightspan_spans_without_rollout_total 3.0" in text and "lightspan_queue_bytes" in text
