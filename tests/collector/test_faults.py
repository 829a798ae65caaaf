"""Faults: ClickHouse away then back, a full pipeline, and kill -9 mid-load. Nothing acked is lost or doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from lightspan.collector.writer import ClickHouseSink
from lightspan.storage import apply_schema, connect

from .conftest import free_port, query, wait_for
from .test_receivers import _request


class FlakySink:
    """The real ClickHouse sink behind a switch that makes it fail like an unreachable server."""

    def __init__(self, inner: ClickHouseSink):
        self.inner, self.down, self.failures = inner, True, 0

    def write_spans(self, columns, rows, /):
        if self.down:
            self.failures += 1
            raise ConnectionRefusedError("ClickHouse unreachable (simulated)")
        self.inner.write_spans(columns, rows)

    def write_rewards(self, columns, rows, /):
        self.inner.write_rewards(columns, rows)


def test_clickhouse_unavailable_then_back_loses_and_doubles_nothing(start_collector, tmp_path):
    client = connect(f"chdb://{tmp_path / 'store'}")
    apply_schema(client)
    sink = FlakySink(ClickHouseSink(client, client.database))
    try:
        c = start_collector(sink=sink, retry_initial_s=0.05, retry_max_s=0.2, query_endpoint="off")
        stub = TraceServiceStub(grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}"))
        for _ in range(5):
            stub.Export(_request(20))
        assert wait_for(lambda: sink.failures >= 2)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{c.http_port}/readyz")
        assert err.value.code == 503  # not ready while writes fail; the exports above were still acknowledged
        sink.down = False
        assert c.stop(timeout=20) is True
        total = client.query(
            "SELECT count(), uniqExact(TraceId, SpanId) FROM lightspan.otel_traces"
        ).result_rows[0]
        assert total == (100, 100)
    finally:
        client.close()


def test_full_pipeline_answers_unavailable_with_retry_delay(start_collector, tmp_path):
    from lightspan.collector.writer import MemorySink

    sink = MemorySink()
    sink.fail = True
    c = start_collector(
        sink=sink, queue_max_spans=30, batch_max_spans=10, retry_max_s=0.1, query_endpoint="off"
    )
    stub = TraceServiceStub(grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}"))
    stub.Export(_request(25))
    with pytest.raises(grpc.RpcError) as err:
        stub.Export(_request(25))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    details = dict(err.value.trailing_metadata()).get("grpc-status-details-bin")
    assert details, "UNAVAILABLE carries google.rpc.RetryInfo"
    req = urllib.request.Request(
        f"http://127.0.0.1:{c.http_port}/v1/traces",
        data=_request(25).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as herr:
        urllib.request.urlopen(req)
    assert herr.value.code == 503 and herr.value.headers["Retry-After"] == "1"
    sink.fail = False
    assert c.stop(timeout=10)
    assert len(sink.spans) == 25


def _run_collector(tmp_path, grpc_port: int, query_port: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "lightspan.cli",
        "collector",
        "--data-dir",
        str(tmp_path / "data"),
        "--grpc-endpoint",
        f"127.0.0.1:{grpc_port}",
        "--http-endpoint",
        "off",
        "--query-endpoint",
        f"127.0.0.1:{query_port}",
        "--batch-timeout",
        "0.5",
        "--log-format",
        "text",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "collector.log", "ab"))  # noqa: SIM115


def _ready(port: int) -> bool:
    try:
        grpc.channel_ready_future(grpc.insecure_channel(f"127.0.0.1:{port}")).result(timeout=0.5)
        return True
    except grpc.FutureTimeoutError:
        return False


@pytest.mark.slow
def test_sigkill_mid_load_then_restart_keeps_every_acknowledged_span_once(tmp_path):
    grpc_port, query_port = free_port(), free_port()
    proc = _run_collector(tmp_path, grpc_port, query_port)
    acked: list[str] = []
    stop = threading.Event()

    def load() -> None:
        stub = TraceServiceStub(grpc.insecure_channel(f"127.0.0.1:{grpc_port}"))
        while not stop.is_set():
            req = _request(50)
            try:
                stub.Export(req, timeout=5)
            except grpc.RpcError:
                continue
            acked.extend(s.span_id.hex() for s in req.resource_spans[0].scope_spans[0].spans)

    try:
        assert wait_for(lambda: _ready(grpc_port), 60), (tmp_path / "collector.log").read_text()
        sender = threading.Thread(target=load)
        sender.start()
        assert wait_for(lambda: len(acked) >= 2000, 60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        stop.set()
        sender.join(10)
        proc = _run_collector(tmp_path, grpc_port, query_port)
        assert wait_for(lambda: _ready(grpc_port), 60), (tmp_path / "collector.log").read_text()

        class Q:
            query_url = f"http://127.0.0.1:{query_port}/lightspan"

        sql = "SELECT count(), uniqExact(SpanId) FROM otel_traces FINAL"
        assert wait_for(lambda: query(Q, sql)[0][0] >= len(acked), 60)
        ids = {r[0] for r in query(Q, "SELECT SpanId FROM otel_traces FINAL")}
        count, unique = query(Q, sql)[0]
        assert count == unique, "no span is stored twice"
        assert set(acked) <= ids, f"{len(set(acked) - ids)} acknowledged spans are missing"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
