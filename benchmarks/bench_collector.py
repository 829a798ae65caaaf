"""Collector ingest benchmark: OTLP request -> committed rows, gRPC and HTTP, vs a direct insert ceiling.

Spans are realistic GenAI chat spans (~2 KB of message content each, 14 attributes). Senders run in a
separate process with pre-serialized requests, so the collector process's CPU time is the collector's
cost (it includes the embedded chDB engine, which runs in-process). Reported: wall-clock spans/s and
spans per collector CPU-second (= per core). The ceiling is the same rows inserted straight into chDB
(clickhouse-connect Native, and the alternatives tried: Arrow, JSONColumns) next to the engine's own
cost (INSERT ... SELECT), with decode and flatten costs per span. The overload phase sends from 2x the concurrency the
writer keeps up with and records peak RSS and how many spans were refused with 503/UNAVAILABLE.

    .venv/bin/python benchmarks/bench_collector.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

SPANS_PER_REQUEST = 512


def make_request(n: int = SPANS_PER_REQUEST, seed: int = 0) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    def kv(k: str, v: object) -> KeyValue:
        if isinstance(v, str):
            return KeyValue(key=k, value=AnyValue(string_value=v))
        if isinstance(v, int):
            return KeyValue(key=k, value=AnyValue(int_value=v))
        return KeyValue(key=k, value=AnyValue(double_value=v))

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([kv("service.name", "bench-agent"), kv("telemetry.sdk.language", "python")])
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "lightspan.instrumentation.openai", "0.1.0"
    words = "the agent looked up the capital of france and then verified it with a second tool call ".split()
    text = " ".join(words[i % len(words)] for i in range(170))  # ~900 chars
    inp = json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])
    out = json.dumps(
        [{"role": "assistant", "parts": [{"type": "text", "content": text[::-1]}], "finish_reason": "stop"}]
    )
    now = time.time_ns()
    for i in range(n):
        s = ss.spans.add(
            name="chat gpt-4o-mini",
            kind=3,
            start_time_unix_nano=now + i,
            end_time_unix_nano=now + i + 1_500_000,
        )
        s.trace_id, s.span_id, s.parent_span_id = os.urandom(16), os.urandom(8), os.urandom(8)
        s.attributes.extend([
            kv("gen_ai.operation.name", "chat"), kv("gen_ai.provider.name", "openai"),
            kv("gen_ai.request.model", "gpt-4o-mini"), kv("gen_ai.response.model", "gpt-4o-mini-2024"),
            kv("gen_ai.response.id", f"chatcmpl-{seed}-{i}"), kv("gen_ai.usage.input_tokens", 230),
            kv("gen_ai.usage.output_tokens", 180), kv("gen_ai.input.messages", inp), kv("gen_ai.output.messages", out),
            kv("lightspan.rollout.id", f"ro-{seed}-{i // 8}"), kv("lightspan.task.id", f"task-{i // 64}"),
            kv("lightspan.attempt", 0), kv("gen_ai.request.temperature", 0.7), kv("server.address", "api.openai.com"),
        ])  # fmt: skip
    return req.SerializeToString()


def sender(transport: str, port: int, requests: int, concurrency: int) -> None:
    """Child process: send ``requests`` exports with ``concurrency`` threads; print counts as JSON."""
    import threading
    import urllib.error
    import urllib.request

    import grpc

    bodies = [make_request(seed=s) for s in range(8)]
    stats = {"ok": 0, "refused": 0}
    lock = threading.Lock()
    todo = iter(range(requests))

    def work() -> None:
        export = grpc.insecure_channel(f"127.0.0.1:{port}").unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        )
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            body = bodies[i % len(bodies)]
            ok = True
            if transport == "grpc":
                try:
                    export(body, timeout=60)
                except grpc.RpcError:
                    ok = False
            else:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/traces", data=body, method="POST",
                                             headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
                try:
                    urllib.request.urlopen(req, timeout=60).read()
                except urllib.error.HTTPError:
                    ok = False
            with lock:
                stats["ok" if ok else "refused"] += 1

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(stats))


def _arrow_table(columns: dict[str, list], names: list[str]):  # noqa: ANN202 - pyarrow is optional here
    """Alternative tried: the batch as a pyarrow table built column-wise (maps as flat keys/values/offsets)."""
    from itertools import chain

    import numpy as np
    import pyarrow as pa

    s = pa.large_string()

    def offsets(lengths: list[int]):  # noqa: ANN202
        return pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))

    def ts(v: list[int]):  # noqa: ANN202
        return pa.array(np.array(v, dtype=np.uint64).view(np.int64), pa.timestamp("ns"))

    def map_(ds: list[dict]):  # noqa: ANN202
        return pa.MapArray.from_arrays(offsets([len(d) for d in ds]), pa.array(list(chain.from_iterable(ds)), s),
                                       pa.array(list(chain.from_iterable(map(dict.values, ds))), s))  # fmt: skip

    def list_(v: list[list], inner):  # noqa: ANN001, ANN202
        return pa.ListArray.from_arrays(offsets([len(x) for x in v]), inner(list(chain.from_iterable(v))))

    typed = {"Duration": pa.uint64(), "InputTokens": pa.uint64(), "OutputTokens": pa.uint64(), "Attempt": pa.uint32(),
             "GapLevel": pa.int32(), "RewardValue": pa.float64()}  # fmt: skip
    arrays = []
    for n in names:
        v = columns[n]
        if n == "Timestamp":
            arrays.append(ts(v))
        elif n == "Events.Timestamp":
            arrays.append(list_(v, ts))
        elif n in ("ResourceAttributes", "SpanAttributes"):
            arrays.append(map_(v))
        elif n in ("Events.Attributes", "Links.Attributes"):
            arrays.append(list_(v, map_))
        elif n.startswith(("Events.", "Links.")):
            arrays.append(list_(v, lambda x: pa.array(x, s)))
        else:
            arrays.append(pa.array(v, typed.get(n, s)))
    return pa.Table.from_arrays(arrays, names=names)


def ceiling(requests: int) -> dict:
    """The same rows, already flattened, inserted straight into chDB three ways, plus the engine alone.

    ``native``: clickhouse-connect column insert (what the collector does). ``arrow``: a pyarrow table
    built column-wise, ``insert_arrow``. ``json``: ``orjson.dumps`` of the columns, parsed by ClickHouse
    as JSONColumns through ``file()`` (integer ns converted in SQL). ``engine_floor``: ``INSERT ... SELECT``
    from an in-memory copy of the rows (no client work at all: sort, compress, indexes). Interleaved,
    best of 3 rounds, so machine load hits each alike. CPU seconds are the process's (chDB is in-process).
    """
    import orjson

    from lightspan.collector.otlp import COLUMNS, decode_protobuf, flatten
    from lightspan.collector.redact import Redactor
    from lightspan.schemas import ddl
    from lightspan.storage import apply_schema, connect

    bodies = [make_request(seed=99 + s) for s in range(max(requests, 2))]
    redactor = Redactor(max_attribute_bytes=65536)  # the collector's default limit
    cpu0 = time.process_time()
    reqs = [decode_protobuf(b) for b in bodies]
    decode_cpu = time.process_time() - cpu0
    flats = [flatten(r, redactor) for r in reqs]
    flatten_cpu = time.process_time() - cpu0 - decode_cpu
    flat = flats[0]
    for f in flats[1:]:
        flat.extend(f)
    d = tempfile.mkdtemp(prefix="ls-ceiling-")
    client = connect(f"chdb://{d}/data")
    apply_schema(client)
    table, batch = "lightspan.otel_traces", 10_000
    types = {**ddl.OTEL_TRACES_COLUMNS, **{k: v[0] for k, v in ddl.LIGHTSPAN_SPAN_COLUMNS.items()}}
    ns_cols = {"Timestamp": "Int64", "Events.Timestamp": "Array(Int64)"}
    structure = ", ".join(f"`{c}` {ns_cols.get(c, types[c])}" for c in COLUMNS)
    select = ", ".join({"Timestamp": "fromUnixTimestamp64Nano(`Timestamp`)",
                        "Events.Timestamp": "arrayMap(x -> fromUnixTimestamp64Nano(x), `Events.Timestamp`)"}.get(c, f"`{c}`")
                       for c in COLUMNS)  # fmt: skip
    names = ", ".join(f"`{c}`" for c in COLUMNS)
    json_path = f"{d}/batch.json"

    def part(lo: int, hi: int) -> dict[str, list]:
        return {c: flat.columns[c][lo:hi] for c in COLUMNS}

    def native(lo: int, hi: int) -> None:
        cols = part(lo, hi)
        client.insert(table, [cols[c] for c in COLUMNS], column_names=COLUMNS, column_oriented=True)

    def arrow(lo: int, hi: int) -> None:
        client.insert_arrow(table, _arrow_table(part(lo, hi), COLUMNS))

    def json_columns(lo: int, hi: int) -> None:
        with open(json_path, "wb") as fh:
            fh.write(orjson.dumps(part(lo, hi)))
        client.command(
            f"INSERT INTO {table} ({names}) SELECT {select} FROM file('{json_path}', 'JSONColumns', '{structure}')"
        )

    def engine(lo: int, hi: int) -> None:
        client.command(f"INSERT INTO {table} SELECT * FROM lightspan.ceiling_src LIMIT {hi - lo} OFFSET {lo}")

    native(0, min(batch, flat.rows))  # warm-up, and rows for the in-memory source of the engine floor
    client.command(f"CREATE TABLE lightspan.ceiling_src ENGINE = Memory AS SELECT * FROM {table}")
    out: dict = {"decode_us_per_span": round(decode_cpu / flat.rows * 1e6, 1),
                 "flatten_us_per_span": round(flatten_cpu / flat.rows * 1e6, 1)}  # fmt: skip
    for _ in range(3):
        for name, fn in (
            ("native", native),
            ("arrow", arrow),
            ("json", json_columns),
            ("engine_floor", engine),
        ):
            rows = flat.rows if name != "engine_floor" else min(batch, flat.rows)
            cpu0, t0 = time.process_time(), time.perf_counter()
            for i in range(0, rows, batch):
                fn(i, min(i + batch, rows))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
            if name not in out or cpu < out[name]["cpu_s"]:
                out[name] = {"rows": rows, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                             "rows_per_s": round(rows / wall), "rows_per_cpu_s": round(rows / cpu)}  # fmt: skip
    client.close()
    return out


def run_collector_phase(transport: str, requests: int, concurrency: int, **cfg: object) -> dict:
    from lightspan.collector import Collector, CollectorConfig

    d = tempfile.mkdtemp(prefix=f"ls-bench-{transport}-")
    config = CollectorConfig.load(data_dir=f"{d}/data", grpc_endpoint="127.0.0.1:0", http_endpoint="127.0.0.1:0",
                                  query_endpoint="off", **cfg)  # fmt: skip
    c = Collector(config).start()
    port = c.grpc_port if transport == "grpc" else c.http_port
    cpu0, t0 = time.process_time(), time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--sender", transport, str(port), str(requests), str(concurrency)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    c.stop(timeout=120)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    written = int(c.metrics.written._value.get())
    return {"transport": transport, "load_avg_1m": round(os.getloadavg()[0], 2), "spans_written": written, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "spans_per_s": round(written / wall), "spans_per_cpu_s": round(written / cpu), **stats,
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small run (about a minute)")
    ap.add_argument("--requests", type=int, default=None, help="exports per phase (512 spans each)")
    ap.add_argument("--sender", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--ceiling-only", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sender:
        transport, port, n, conc = args.sender
        return sender(transport, int(port), int(n), int(conc))
    if args.ceiling_only:
        print(json.dumps(ceiling(args.ceiling_only)))
        return None
    n = args.requests or (20 if args.quick else 100)
    results: dict = {"spans_per_request": SPANS_PER_REQUEST, "request_bytes": len(make_request()),
                     "load_avg_1m_start": round(os.getloadavg()[0], 2)}  # fmt: skip
    # In a child process, so the rows it holds do not count in the collector phases' peak RSS.
    out = subprocess.run(
        [sys.executable, __file__, "--ceiling-only", str(n)], capture_output=True, text=True, check=True
    )
    results["ceiling"] = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(results), flush=True)
    for transport in ("grpc", "http"):
        r = run_collector_phase(transport, n, 2)
        print(json.dumps(r), flush=True)
        results[transport] = r
    # 2x overload: twice the senders against a small queue; memory must stay bounded, extra load refused.
    r = run_collector_phase("grpc", n, 4, queue_max_spans=20_000, batch_max_spans=5_000)
    results["overload_2x"] = r
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
