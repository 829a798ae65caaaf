"""OTLP logs on both transports into otel_logs, as the contrib ClickHouse exporter would store them."""

from __future__ import annotations

import json
import os

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as ls
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub

from lightspan.schemas import ddl

from .conftest import query, wait_for
from .test_receivers import _post


def _count(c) -> int:
    return query(c, "SELECT count() FROM otel_logs FINAL")[0][0]


def send_logs(exporter, n: int, *, in_span: bool = True) -> None:
    """Emit ``n`` GenAI evaluation events through the real OTel logs SDK, inside a span when asked."""
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    lp = LoggerProvider(resource=Resource.create({"service.name": "judge"}))
    lp.add_log_record_processor(BatchLogRecordProcessor(exporter))
    logger = lp.get_logger("tests.judge", "0.3")
    tracer = TracerProvider().get_tracer("t")
    for i in range(n):
        with tracer.start_as_current_span("chat m"):
            logger.emit(
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                body={"explanation": f"fine {i}"},
                attributes={"gen_ai.evaluation.name": "accuracy", "gen_ai.evaluation.score.value": 0.5 + i},
                event_name="gen_ai.evaluation.result",
            )
    assert lp.force_flush(10_000)
    lp.shutdown()


def test_logs_table_has_the_contrib_exporters_columns(start_collector):
    c = start_collector(http_endpoint="off", grpc_endpoint="off")
    got = dict(
        query(c, "SELECT name, type FROM system.columns WHERE database = 'lightspan' AND table = 'otel_logs'")
    )
    for name, typ in ddl.OTEL_LOGS_COLUMNS.items():
        assert got[name] == typ, name
    assert ddl.LOGS_TABLE == "otel_logs"


def test_grpc_and_http_log_exporters_land_in_otel_logs(start_collector):
    c = start_collector()
    send_logs(GrpcLogExporter(endpoint=f"127.0.0.1:{c.grpc_port}", insecure=True), 3)
    send_logs(HttpLogExporter(endpoint=f"http://127.0.0.1:{c.http_port}/v1/logs"), 2)
    assert wait_for(lambda: _count(c) == 5)
    rows = query(
        c,
        "SELECT length(TraceId), length(SpanId), SeverityText, SeverityNumber, ServiceName, Body, ScopeName,"
        " ScopeVersion, LogAttributes['gen_ai.evaluation.name'], LogAttributes['gen_ai.evaluation.score.value'],"
        " EventName, toYear(TimestampTime) >= 2024 FROM otel_logs FINAL ORDER BY Body",
    )
    assert rows[0] == (32, 16, "INFO", 9, "judge", '{"explanation":"fine 0"}', "tests.judge", "0.3", "accuracy", "0.5",
                       "gen_ai.evaluation.result", 1)  # fmt: skip
    assert sorted(r[9] for r in rows) == ["0.5", "0.5", "1.5", "1.5", "2.5"]


def test_logs_json_partial_success_and_strict_shapes(start_collector):
    c = start_collector()
    rec = {"timeUnixNano": "1700000000000000001", "severityNumber": 9, "body": {"stringValue": "hello"},
           "traceId": os.urandom(16).hex(), "spanId": os.urandom(8).hex(), "eventName": "e",
           "attributes": [{"key": "k", "value": {"intValue": "7"}}]}  # fmt: skip
    bad_id = {**rec, "spanId": "abcd"}  # hex, but not 8 bytes: rejected, the others stored
    doc = {
        "resourceLogs": [
            {"scopeLogs": [{"logRecords": [rec, bad_id, {**rec, "body": {"stringValue": "two"}}]}]}
        ]
    }
    status, body, _ = _post(
        c.http_port, "/v1/logs", json.dumps(doc).encode(), {"Content-Type": "application/json"}
    )
    assert status == 200
    partial = json.loads(body)["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1" and "span_id empty or 8 bytes" in partial["errorMessage"]
    wrong = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{**rec, "body": "plain"}]}]}]}
    status, body, _ = _post(
        c.http_port, "/v1/logs", json.dumps(wrong).encode(), {"Content-Type": "application/json"}
    )
    assert status == 400
    assert json.loads(body)["message"] == (
        "resourceLogs[0].scopeLogs[0].logRecords[0].body: expected an AnyValue object, got a string"
    )
    assert wait_for(lambda: _count(c) == 2)
    assert query(c, "SELECT Body, LogAttributes['k'], EventName FROM otel_logs FINAL ORDER BY Body") == [
        ("hello", "7", "e"), ("two", "7", "e"),
    ]  # fmt: skip


def test_logs_grpc_malformed_and_replayed_exports_store_once(start_collector, tmp_path):
    c = start_collector()
    stub = LogsServiceStub(grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}"))
    req = ls.ExportLogsServiceRequest()
    sl = req.resource_logs.add().scope_logs.add()
    for i in range(4):
        sl.log_records.add(
            time_unix_nano=1_700_000_000_000_000_000 + i, severity_text="WARN"
        ).body.string_value = f"r{i}"
    for _ in range(3):  # a client retrying the same export
        stub.Export(req)
    channel = grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}")
    export = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
    with pytest.raises(grpc.RpcError) as err:
        export(b"\x0a\xff\xff\xff")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ExportLogsServiceRequest" in (err.value.details() or "")
    assert wait_for(lambda: _count(c) == 4)


def test_acknowledged_logs_survive_a_store_outage_through_the_spool(tmp_path):
    from lightspan.collector import Collector
    from lightspan.collector.writer import MemorySink

    from .conftest import local_config

    down = MemorySink()
    down.fail = True
    first = Collector(local_config(tmp_path, retry_max_s=0.1), sink=down).start()
    send_logs(HttpLogExporter(endpoint=f"http://127.0.0.1:{first.http_port}/v1/logs"), 3)
    assert first.stop(timeout=1) is False  # nothing written: the spool keeps the acknowledged records
    with Collector(local_config(tmp_path)) as again:  # replays the spool into the real store
        assert wait_for(lambda: _count(again) == 3)
