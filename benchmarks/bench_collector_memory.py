"""Collector memory under 2x overload: peak RSS against the documented bound (docs/collector.md, "Memory").

Three processes: the store (`lightspan schema serve` over a chDB directory), the collector
(`lightspan collector --dsn http://...`, so the engine's memory is not the collector's), and this one,
which sends. Phase 1 measures what the writer sustains with GenAI spans (~2 KB each, 512 per export)
from 4 senders. Phase 2 offers twice that, mixed with the worst case for memory (exports near the size
limit made of tiny spans, over gRPC and HTTP, chunked and not), for ``--seconds``; the collector's RSS is
sampled every 0.2 s. Then the queue drains and every acknowledged span is counted in the store (FINAL).

    .venv/bin/python benchmarks/bench_collector_memory.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MiB = 1 << 20


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float = 60.0) -> bool:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if predicate():
                return True
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    return False


def _rss(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def genai_request(n: int = 512):  # noqa: ANN201
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "agent"
    ss = rs.scope_spans.add()
    ss.scope.name = "lightspan.instrumentation.openai"
    for i in range(n):
        s = ss.spans.add(name="chat tiny", kind=3, start_time_unix_nano=1_700_000_000_000_000_000 + i,
                         end_time_unix_nano=1_700_000_000_500_000_000 + i)  # fmt: skip
        s.trace_id, s.span_id = os.urandom(16), os.urandom(8)
        for key in (
            "gen_ai.operation.name",
            "gen_ai.request.model",
            "gen_ai.response.model",
            "gen_ai.response.id",
        ):
            s.attributes.add(key=key).value.string_value = "chat-" + key[-5:]
        s.attributes.add(key="gen_ai.input.messages").value.string_value = json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "x" * 1200}]}]
        )
        s.attributes.add(key="gen_ai.output.messages").value.string_value = json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": "y" * 600}]}]
        )
        s.attributes.add(key="lightspan.rollout.id").value.string_value = f"r-{i % 17}"
    return req


def tiny_request(nbytes: int):  # noqa: ANN201
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for _ in range(nbytes // 52):
        s = ss.spans.add(
            name="s",
            start_time_unix_nano=1_700_000_000_000_000_000,
            end_time_unix_nano=1_700_000_000_000_000_001,
        )
        s.trace_id, s.span_id = os.urandom(16), os.urandom(8)
    return req


class Sender(threading.Thread):
    """Sends pre-built exports at ``rate`` spans/s (0: as fast as answered); counts outcomes."""

    def __init__(
        self,
        transport: str,
        port: int,
        requests: list,
        rate: float,
        stop: threading.Event,
        chunked: bool = False,
    ):
        super().__init__(daemon=True)
        self.transport, self.port, self.requests, self.rate, self.stop_ = (
            transport,
            port,
            requests,
            rate,
            stop,
        )
        self.chunked = chunked
        self.accepted = self.refused = self.other = 0
        self.acked: set[int] = set()  # which pre-built exports (re-sent, so ids repeat) were acknowledged

    def run(self) -> None:
        import grpc
        import httpx

        call = grpc.insecure_channel(f"127.0.0.1:{self.port}").unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        )
        client = httpx.Client(timeout=60)
        i = 0
        started = time.monotonic()
        sent_spans = 0
        while not self.stop_.is_set():
            req, body, n = self.requests[i % len(self.requests)]
            i += 1
            if self.rate:
                ahead = sent_spans / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            sent_spans += n
            ok = False
            try:
                if self.transport == "grpc":
                    call(body, timeout=60)
                    ok = True
                else:
                    content = iter([body[: len(body) // 2], body[len(body) // 2 :]]) if self.chunked else body
                    r = client.post(f"http://127.0.0.1:{self.port}/v1/traces", content=content,
                                    headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
                    ok = r.status_code == 200
                    if r.status_code in (503, 413):
                        self.refused += 1
                    elif not ok:
                        self.other += 1
            except grpc.RpcError as err:
                if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                    self.refused += 1
                else:
                    self.other += 1
            except httpx.HTTPError:
                self.other += 1
            if ok:
                self.accepted += n
                self.acked.add(id(req))
            else:
                time.sleep(0.05)
        client.close()


def _prebuilt(factory, count: int) -> list:  # noqa: ANN001
    out = []
    for _ in range(count):
        req = factory()
        spans = sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
        out.append((req, req.SerializeToString(), spans))
    return out


def _metric(port: int, name: str) -> float:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    import yaml

    from lightspan.collector import CollectorConfig

    tmp = Path(tempfile.mkdtemp(prefix="ls-mem-"))
    store_port, grpc_port, http_port = _port(), _port(), _port()
    py = [sys.executable, "-m", "lightspan.cli"]
    store = subprocess.Popen([*py, "schema", "serve", "--data-dir", str(tmp / "store"), "--endpoint", f"127.0.0.1:{store_port}"],
                             stderr=open(tmp / "store.log", "wb"))  # fmt: skip  # noqa: SIM115
    settings = {
        "dsn": f"http://127.0.0.1:{store_port}/lightspan", "spool_dir": str(tmp / "spool"), "query_endpoint": "off",
        "grpc_endpoint": f"127.0.0.1:{grpc_port}", "http_endpoint": f"127.0.0.1:{http_port}",
        "queue_max_bytes": 64 * MiB, "max_request_bytes": 4 * MiB, "batch_max_bytes": 4 * MiB,
    }  # fmt: skip
    (tmp / "c.yaml").write_text(yaml.safe_dump(settings))
    config = CollectorConfig.load(tmp / "c.yaml")
    collector = None
    try:
        import httpx

        assert _wait(lambda: httpx.get(f"http://127.0.0.1:{store_port}/ping").status_code == 200), (
            "store did not start"
        )
        collector = subprocess.Popen([*py, "collector", "--config", str(tmp / "c.yaml"), "--log-format", "text"],
                                     stderr=open(tmp / "collector.log", "wb"))  # fmt: skip  # noqa: SIM115
        assert _wait(lambda: httpx.get(f"http://127.0.0.1:{http_port}/healthz").status_code == 200), (
            "collector did not start"
        )
        genai = _prebuilt(genai_request, 8)
        tiny = _prebuilt(lambda: tiny_request(config.max_request_bytes - 4096), 4)
        # Warm up: the first batch pays one-time costs (imports, buffers); the bound is over the idle size after it.
        httpx.post(
            f"http://127.0.0.1:{http_port}/v1/traces",
            content=genai[0][1],
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert _wait(lambda: _metric(http_port, "lightspan_spans_written_total") >= 512)
        time.sleep(1)
        baseline = _rss(collector.pid)

        stop = threading.Event()
        phase1 = [
            Sender("grpc" if i % 2 else "http", grpc_port if i % 2 else http_port, genai, 0, stop)
            for i in range(4)
        ]
        w0, t0 = _metric(http_port, "lightspan_spans_written_total"), time.monotonic()
        for s in phase1:
            s.start()
        time.sleep(args.seconds / 2)
        capacity = (_metric(http_port, "lightspan_spans_written_total") - w0) / (time.monotonic() - t0)
        stop.set()
        for s in phase1:
            s.join(60)

        stop = threading.Event()
        rate = 2 * capacity / 4
        overload = [Sender("grpc", grpc_port, genai, rate, stop), Sender("http", http_port, genai, rate, stop),
                    Sender("http", http_port, genai, rate, stop, chunked=True), Sender("grpc", grpc_port, genai, rate, stop)]  # fmt: skip
        overload += [Sender("grpc", grpc_port, tiny, 0, stop), Sender("http", http_port, tiny, 0, stop),
                     Sender("http", http_port, tiny, 0, stop, chunked=True)]  # fmt: skip
        peak, samples = 0, []
        for s in overload:
            s.start()
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            rss = _rss(collector.pid) - baseline
            peak = max(peak, rss)
            samples.append(rss)
            time.sleep(0.2)
        stop.set()
        for s in overload:
            s.join(60)
        hwm = _rss(collector.pid, "VmHWM") - baseline
        senders = phase1 + overload
        accepted = sum(s.accepted for s in senders) + 512
        acked_ids = set().union(*(s.acked for s in senders)) | {id(genai[0][0])}
        unique = {
            (sp.trace_id, sp.span_id)
            for req, _, _ in genai + tiny
            if id(req) in acked_ids
            for rs in req.resource_spans
            for ss in rs.scope_spans
            for sp in ss.spans
        }
        assert _wait(lambda: _metric(http_port, "lightspan_queue_spans") == 0, 300), "queue did not drain"
        import clickhouse_connect

        client = clickhouse_connect.get_client(dsn=settings["dsn"])
        stored = client.query(
            "SELECT count(), uniqExact(TraceId, SpanId) FROM otel_traces FINAL"
        ).result_rows[0]
        client.close()
        result = {
            "capacity_spans_per_s": round(capacity),
            "offered_genai_spans_per_s": round(2 * capacity),
            "peak_rss_above_idle_mib": round(max(peak, hwm) / MiB, 1),
            "documented_bound_mib": round(config.memory_bound_bytes / MiB, 1),
            "idle_rss_mib": round(baseline / MiB, 1),
            "median_rss_above_idle_mib": round(sorted(samples)[len(samples) // 2] / MiB, 1) if samples else 0,
            "exports_refused_503_or_unavailable": sum(s.refused for s in senders),
            "exports_failed_otherwise": sum(s.other for s in senders),
            "spans_acknowledged": accepted,
            "distinct_spans_acknowledged": len(unique),
            "stored_count_and_unique": list(stored),
            "load_average": os.getloadavg(),
            "settings": {k: settings[k] for k in ("queue_max_bytes", "max_request_bytes", "batch_max_bytes")},
        }
        print(json.dumps(result, indent=2))
        assert stored[0] == stored[1] == len(unique), "every acknowledged span stored exactly once"
    finally:
        for proc in (collector, store):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
