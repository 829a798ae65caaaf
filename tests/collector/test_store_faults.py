"""The store as its own process, killed and frozen under load; the collector as its own process too.

The store is `lightspan schema serve` (the query interface over a chDB directory), the collector
`lightspan collector --dsn http://...` in front of it. Senders are the official OTLP exporters (gRPC and
HTTP) and a chunked HTTP sender (httpx with a generator body). A span counts as acknowledged only when its
export succeeded; every acknowledged span must be stored exactly once, counted by (TraceId, SpanId) with
FINAL. The collector's peak RSS is checked against the bound docs/collector.md states.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
from opentelemetry.sdk.trace.export import SpanExportResult

from lightspan.collector import CollectorConfig

from .conftest import free_port, wait_for

pytestmark = pytest.mark.slow

MiB = 1 << 20


class Store:
    """`lightspan schema serve` over one chDB directory: start, SIGKILL, SIGSTOP/SIGCONT, restart."""

    def __init__(self, tmp_path: Path):
        self.dir, self.port = tmp_path / "store", free_port()
        self.log = tmp_path / "store.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/lightspan"

    def start(self) -> None:
        cmd = [sys.executable, "-m", "lightspan.cli", "schema", "serve", "--data-dir", str(self.dir),
               "--endpoint", f"127.0.0.1:{self.port}"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))  # noqa: SIM115
        assert wait_for(self.up, 60), self.log.read_text()

    def up(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/ping", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)
        if sig == signal.SIGKILL:
            self.proc.wait(10)

    def query(self, sql: str) -> Any:
        import clickhouse_connect

        client = clickhouse_connect.get_client(dsn=self.url)
        try:
            return client.query(sql).result_rows
        finally:
            client.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)


class CollectorProcess:
    """`lightspan collector` writing to the store's URL, configured by a YAML file."""

    def __init__(self, tmp_path: Path, store: Store, **settings):
        self.grpc_port, self.http_port = free_port(), free_port()
        self.settings = {"dsn": store.url, "spool_dir": str(tmp_path / "spool"), "query_endpoint": "off",
                         "grpc_endpoint": f"127.0.0.1:{self.grpc_port}", "http_endpoint": f"127.0.0.1:{self.http_port}",
                         "batch_timeout_s": 0.2, "retry_initial_s": 0.1, "retry_max_s": 1.0, **settings}  # fmt: skip
        self.config_path = tmp_path / "collector.yaml"
        self.config_path.write_text(yaml.safe_dump(self.settings))
        self.log = tmp_path / "collector.log"
        cmd = [
            sys.executable,
            "-m",
            "lightspan.cli",
            "collector",
            "--config",
            str(self.config_path),
            "--log-format",
            "text",
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))  # noqa: SIM115
        assert wait_for(lambda: self.get("/healthz") == 200, 60), self.log.read_text()

    @property
    def config(self) -> CollectorConfig:
        return CollectorConfig.load(self.config_path)

    def get(self, path: str) -> int:
        try:
            return httpx.get(f"http://127.0.0.1:{self.http_port}{path}", timeout=2).status_code
        except httpx.HTTPError:
            return 0

    def memory(self, field: str) -> int:
        """VmRSS (now) or VmHWM (peak) of the process, in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(field)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    s = Store(tmp_path)
    s.start()
    yield s
    s.close()


class Recording:
    """Wraps an official exporter; remembers the (trace id, span id) of every batch it got SUCCESS for."""

    def __init__(self, inner, acked: set):
        self.inner, self.acked, self.lock = inner, acked, threading.Lock()

    def export(self, spans):
        result = self.inner.export(spans)
        if result == SpanExportResult.SUCCESS:
            with self.lock:
                self.acked.update((f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}") for s in spans)
        return result


def _official(exporter, acked: set, stop: threading.Event, batch: int = 50) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    rec = Recording(exporter, acked)
    tracer = TracerProvider().get_tracer("faults")
    while not stop.is_set():
        spans = []
        for i in range(batch):
            with tracer.start_as_current_span(f"chat {i}", attributes={"i": i}) as span:
                pass
            spans.append(span)
        rec.export(spans)


def _raw_request(n: int, attr_bytes: int = 0) -> ts.ExportTraceServiceRequest:
    req = ts.ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for _ in range(n):
        s = ss.spans.add(
            name="s",
            start_time_unix_nano=1_700_000_000_000_000_000,
            end_time_unix_nano=1_700_000_000_000_000_001,
        )
        s.trace_id, s.span_id = os.urandom(16), os.urandom(8)
        if attr_bytes:
            s.attributes.add(key="a").value.string_value = "x" * attr_bytes
    return req


def _ids(req: ts.ExportTraceServiceRequest) -> set[tuple[str, str]]:
    return {(s.trace_id.hex(), s.span_id.hex()) for s in req.resource_spans[0].scope_spans[0].spans}


def _chunked(port: int, acked: set, stop: threading.Event, n: int = 50, outcomes: list | None = None) -> None:
    """Protobuf exports with Transfer-Encoding: chunked (a generator body), as Go/Java senders do."""
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            req = _raw_request(n)
            body = req.SerializeToString()
            try:
                r = client.post(f"http://127.0.0.1:{port}/v1/traces", content=iter([body[:100], body[100:]]),
                                headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            if outcomes is not None:
                outcomes.append(r.status_code)
            if r.status_code == 200:
                acked.update(_ids(req))
            else:
                time.sleep(0.05)


def _grpc_flood(port: int, acked: set, stop: threading.Event, req_bytes: int, outcomes: list) -> None:
    """Requests near the size limit, of tiny spans (the worst case for memory: ~20x when flattened)."""
    stub_call = grpc.insecure_channel(f"127.0.0.1:{port}").unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    )
    n = req_bytes // 52
    while not stop.is_set():
        req = _raw_request(n)
        try:
            stub_call(req.SerializeToString(), timeout=30)
            acked.update(_ids(req))
            outcomes.append("OK")
        except grpc.RpcError as err:
            outcomes.append(err.code().name)
            time.sleep(0.05)


def _http_flood(port: int, acked: set, stop: threading.Event, req_bytes: int, outcomes: list) -> None:
    n = req_bytes // 52
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            req = _raw_request(n)
            try:
                r = client.post(f"http://127.0.0.1:{port}/v1/traces", content=req.SerializeToString(),
                                headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
            except httpx.HTTPError:
                continue
            outcomes.append(r.status_code)
            if r.status_code == 200:
                acked.update(_ids(req))
            else:
                time.sleep(0.05)


def _stored_exactly_once(store: Store, acked: set) -> None:
    sql = "SELECT count(), uniqExact(TraceId, SpanId) FROM otel_traces FINAL"
    assert wait_for(lambda: store.query(sql)[0][1] >= len(acked), 120), (store.query(sql), len(acked))
    count, unique = store.query(sql)[0]
    assert count == unique, "no span is stored twice"
    got = set(store.query("SELECT TraceId, SpanId FROM otel_traces FINAL"))
    missing = acked - got
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged spans are missing"


def test_store_sigkilled_mid_load_and_restarted_loses_and_doubles_nothing(tmp_path, store):
    collector = CollectorProcess(tmp_path, store, insert_timeout_s=3)
    acked: set = set()
    stop = threading.Event()
    senders = [
        threading.Thread(target=_official, args=(GrpcExporter(endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True), acked, stop)),
        threading.Thread(target=_official, args=(HttpExporter(endpoint=f"http://127.0.0.1:{collector.http_port}/v1/traces"), acked, stop)),
        threading.Thread(target=_chunked, args=(collector.http_port, acked, stop)),
    ]  # fmt: skip
    try:
        for t in senders:
            t.start()
        assert wait_for(lambda: len(acked) >= 1500, 60)
        store.signal(signal.SIGKILL)  # mid-load: inserts in flight die with it
        at_kill = len(acked)
        assert wait_for(lambda: len(acked) >= at_kill + 500, 60)  # acknowledged while the store is away
        assert wait_for(lambda: collector.get("/readyz") == 503, 30)
        store.start()
        assert wait_for(lambda: collector.get("/readyz") == 200, 60), collector.log.read_text()[-3000:]
        stop.set()
        for t in senders:
            t.join(60)
        _stored_exactly_once(store, acked)
        assert collector.stop() == 0
    finally:
        stop.set()
        if collector.proc.poll() is None:
            collector.proc.kill()


def test_store_frozen_under_2x_overload_memory_stays_bounded_and_nothing_is_lost(tmp_path, store):
    req_bytes = 2 * MiB
    collector = CollectorProcess(
        tmp_path, store, insert_timeout_s=2, ready_stall_s=2, max_request_bytes=req_bytes, queue_max_bytes=16 * MiB,
        batch_max_bytes=1 * MiB, queue_max_spans=200_000, batch_max_spans=20_000, grpc_workers=4, http_workers=4,
    )  # fmt: skip
    config = collector.config
    acked: set = set()
    outcomes: list = []
    stop = threading.Event()
    warm = _raw_request(2000)
    assert httpx.post(f"http://127.0.0.1:{collector.http_port}/v1/traces", content=warm.SerializeToString(),
                      headers={"Content-Type": "application/x-protobuf"}).status_code == 200  # fmt: skip
    acked.update(_ids(warm))
    # The bound is over the warmed-up idle size: after the first batch is written (the insert path's
    # imports and buffers are one-time costs).
    assert wait_for(lambda: store.query("SELECT count() FROM otel_traces")[0][0] >= 2000, 30)
    time.sleep(1)
    baseline = collector.memory("VmRSS")
    store.signal(signal.SIGSTOP)
    senders = [
        threading.Thread(target=_grpc_flood, args=(collector.grpc_port, acked, stop, req_bytes, outcomes))
        for _ in range(4)
    ]
    senders += [
        threading.Thread(target=_http_flood, args=(collector.http_port, acked, stop, req_bytes, outcomes))
        for _ in range(4)
    ]
    senders += [threading.Thread(target=_chunked, args=(collector.http_port, acked, stop, 50, outcomes))]
    senders += [threading.Thread(target=_official, args=(GrpcExporter(endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True), acked, stop))]  # fmt: skip
    try:
        for t in senders:
            t.start()
        # Readiness falls within seconds of the writer standing still, and the senders are pushed back.
        assert wait_for(lambda: collector.get("/readyz") == 503, 30)
        assert wait_for(lambda: outcomes.count(503) + outcomes.count("UNAVAILABLE") >= 20, 60)
        time.sleep(3)  # keep the overload on a while
        store.signal(signal.SIGCONT)
        assert wait_for(lambda: collector.get("/readyz") == 200, 60)
        time.sleep(1)
        stop.set()
        for t in senders:
            t.join(60)
        peak = collector.memory("VmHWM") - baseline
        bound = config.memory_bound_bytes
        tally = Counter(map(str, outcomes))
        print(
            f"\npeak RSS above baseline {peak / MiB:.1f} MiB; documented bound {bound / MiB:.1f} MiB; {dict(tally)}"
        )
        assert peak <= bound, f"peak RSS {peak / MiB:.1f} MiB above baseline, bound {bound / MiB:.1f} MiB"
        _stored_exactly_once(store, acked)
        assert collector.stop() == 0
    finally:
        stop.set()
        store.signal(signal.SIGCONT)
        if collector.proc.poll() is None:
            collector.proc.kill()
