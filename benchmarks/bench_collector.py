"""Collector ingest benchmark: CPU per stored span / log record against the engine's own insert cost.

Spans are realistic GenAI chat spans (~2 KB of message content each, 14 attributes), log records GenAI
events (~1 KB body, 8 attributes). Senders run in a separate process with pre-serialized requests, so
the collector process's CPU (from /proc: every thread, the in-process chDB engine's included) is the
collector's cost; it is split by thread kind (Python receivers and writer, engine threads, merges) and
the writer's time inside the insert call is reported. The floor, measured in the same run in a child
process: the same finished rows ``INSERT ... SELECT``ed inside the engine from an in-memory copy
(every stored column given), plus the same with the DEFAULT/MATERIALIZED columns left to the engine, and
the collector's own sink inserting the already flattened rows. Each phase reports its ratio to both
floors (issue 18's goal: at most 1.5x ``engine_floor``), rows per insert, load average; the run records
machine and date. The overload phase sends from 2x the concurrency against a small queue and records
peak RSS and how many exports were refused with UNAVAILABLE.

    .venv/bin/python benchmarks/bench_collector.py [--quick | --requests N] [--alternatives] [--no-overload]
        [--engine-parse [--ceiling-traces-only]]
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
from typing import Any

SPANS_PER_REQUEST = 512


_WORDS = "the agent looked up the capital of france and then verified it with a second tool call ".split()
#: the message text of every generated span and log record (~900 chars)
TEXT = " ".join(_WORDS[i % len(_WORDS)] for i in range(170))


def kv(k: str, v: str | float) -> Any:
    """One OTLP ``KeyValue`` (string, int or double), as the bench's exports carry them."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    if isinstance(v, str):
        return KeyValue(key=k, value=AnyValue(string_value=v))
    if isinstance(v, int):
        return KeyValue(key=k, value=AnyValue(int_value=v))
    return KeyValue(key=k, value=AnyValue(double_value=v))


def _describe(res: Any, scope: Any) -> None:
    """The bench agent's resource and instrumentation scope, the same for spans and logs."""
    res.attributes.extend([kv("service.name", "bench-agent"), kv("telemetry.sdk.language", "python")])
    scope.name, scope.version = "lightspan.instrumentation.openai", "0.1.0"


def make_request(n: int = SPANS_PER_REQUEST, seed: int = 0) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    ss = rs.scope_spans.add()
    _describe(rs.resource, ss.scope)
    inp = json.dumps([{"role": "user", "parts": [{"type": "text", "content": TEXT}]}])
    out = json.dumps(
        [{"role": "assistant", "parts": [{"type": "text", "content": TEXT[::-1]}], "finish_reason": "stop"}]
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


def make_logs_request(n: int = SPANS_PER_REQUEST, seed: int = 0) -> bytes:
    """GenAI events as log records (~1 KB body, 8 attributes each), as instrumentations send them."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    sl = rl.scope_logs.add()
    _describe(rl.resource, sl.scope)
    body = json.dumps({"content": TEXT, "role": "assistant"})
    now = time.time_ns()
    for i in range(n):
        r = sl.log_records.add(time_unix_nano=now + i, observed_time_unix_nano=now + i + 10, severity_number=9,
                               severity_text="INFO", event_name="gen_ai.choice", flags=1)  # fmt: skip
        r.trace_id, r.span_id = os.urandom(16), os.urandom(8)
        r.body.string_value = body
        r.attributes.extend([
            kv("gen_ai.system", "openai"), kv("gen_ai.response.id", f"chatcmpl-{seed}-{i}"), kv("index", 0),
            kv("finish_reason", "stop"), kv("lightspan.rollout.id", f"ro-{seed}-{i // 8}"),
            kv("lightspan.task.id", f"task-{i // 64}"), kv("gen_ai.request.model", "gpt-4o-mini"),
            kv("server.address", "api.openai.com"),
        ])  # fmt: skip
    return req.SerializeToString()


def sender(transport: str, port: int, requests: int, concurrency: int, signal: str = "traces") -> None:
    """Child process: send ``requests`` exports with ``concurrency`` threads; print counts as JSON."""
    import threading
    import urllib.error
    import urllib.request

    import grpc

    make = make_logs_request if signal == "logs" else make_request
    service = "logs.v1.LogsService" if signal == "logs" else "trace.v1.TraceService"
    bodies = [make(seed=s) for s in range(8)]
    stats = {"ok": 0, "refused": 0}
    lock = threading.Lock()
    todo = iter(range(requests))

    def work() -> None:
        export = grpc.insecure_channel(f"127.0.0.1:{port}").unary_unary(
            f"/opentelemetry.proto.collector.{service}/Export"
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
                req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/{signal}", data=body, method="POST",
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


# -- Engine parse (issue 18 prototype, --engine-parse): ClickHouse reads the OTLP request bytes itself ------
# The spooled ExportTraceServiceRequest bytes, length-delimited into one file per insert, are read by
# ClickHouse's Protobuf input format with a reduced OTLP schema (benchmarks/otlp_trace_min.proto), ARRAY
# JOINed to one row per span and mapped to the otel_traces columns the way otlp.flatten does. AnyValue's
# oneof is told apart by Nullable members (an absent member is NULL). What the SQL does not reproduce is
# routed to Python (left out of the INSERT; engine_parse_sql(routed=True) lists those spans): array/kvlist
# values (JSON), duplicate keys (a dict keeps the last value), foreign conventions (map_conventions), values
# over the size limit. Redaction rules are not expressed (the bench has none). docs/benchmarks/collector.md
# ("Tried: ClickHouse parses the OTLP bytes") has the measurements.

OTLP_PROTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "otlp_trace_min.proto")
_EP_VALUE = (
    "value Tuple(string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64), "
    "double_value Nullable(Float64), array_value Nullable(String), kvlist_value Nullable(String), "
    "bytes_value Nullable(String))"
)
_EP_KV = f"Array(Tuple(key String, {_EP_VALUE}))"
_EP_SPAN = (
    "Tuple(trace_id String, span_id String, trace_state String, parent_span_id String, name String, "
    f"kind Int32, start_time_unix_nano UInt64, end_time_unix_nano UInt64, attributes {_EP_KV}, "
    f"events Array(Tuple(time_unix_nano UInt64, name String, attributes {_EP_KV})), "
    f"links Array(Tuple(trace_id String, span_id String, trace_state String, attributes {_EP_KV})), "
    "status Tuple(message String, code Int32))"
)
#: The ClickHouse structure of one ExportTraceServiceRequest under otlp_trace_min.proto.
EP_STRUCTURE = (
    f"resource_spans Array(Tuple(resource Tuple(attributes {_EP_KV}), scope_spans Array(Tuple("
    f"scope Tuple(name String, version String), spans Array({_EP_SPAN})))))"
)
_MAX_NS = 2**63 - 1


def _sql_lit(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _sql_arr(xs: object) -> str:
    return "[" + ", ".join(_sql_lit(str(x)) for x in xs) + "]"  # type: ignore[union-attr]


def _ep_value(v: str) -> str:
    """SQL: an AnyValue as otlp.attrs_to_dict writes it (ints decimal, bools true/false, bytes base64,
    doubles as otlp.float_str: ``+ 0`` turns -0 into 0, and a positive exponent gets its ``+``)."""
    return (
        f"coalesce({v}.string_value, toString({v}.int_value), toString({v}.bool_value), "
        f"replaceRegexpOne(toString({v}.double_value + 0), 'e([0-9])', 'e+\\\\1'), base64Encode({v}.bytes_value), '')"
    )


def _ep_map(kvs: str) -> str:
    return f"mapFromArrays(arrayMap(kv -> kv.key, {kvs}), arrayMap(kv -> {_ep_value('kv.value')}, {kvs}))"


def _ep_python_only(kvs: str, limit: int = 0) -> str:
    """SQL: attributes the SQL mapping does not reproduce: JSON of arrays and maps, duplicate keys (a
    dict keeps the last value) and, with ``limit``, a value the size limit would cut (a bytes value's
    base64 is 4/3 its length). One lambda: each costs planning time on every insert."""
    over = (
        f" OR length(ifNull(kv.value.string_value, '')) > {limit}"
        f" OR length(ifNull(kv.value.bytes_value, '')) > {limit * 3 // 4}"
        if limit
        else ""
    )
    return (
        f"(arrayExists(kv -> kv.value.array_value IS NOT NULL OR kv.value.kvlist_value IS NOT NULL{over}, {kvs})"
        f" OR length(arrayDistinct(arrayMap(kv -> kv.key, {kvs}))) != length({kvs}))"
    )


def engine_parse_sql(
    path: str, table: str, limit: int = 65536, fmt: str = "Protobuf", routed: bool = False, route: bool = True
) -> str:
    """``INSERT INTO table`` of the spans in the length-delimited requests in ``path`` (``routed``: a
    ``SELECT`` of the SpanIds left to Python instead; ``route=False``: insert every valid span, nothing
    left to Python, to time what the routing conditions cost)."""
    from lightspan.collector.otlp import COLUMNS, SPAN_KINDS, STATUS_CODES
    from lightspan.schemas.conventions import AGL_REWARD_SPANS, TRIGGERS

    sel = {
        "Timestamp": "fromUnixTimestamp64Nano(toInt64(s.start_time_unix_nano))",
        "TraceId": "lower(hex(s.trace_id))",
        "SpanId": "lower(hex(s.span_id))",
        "ParentSpanId": "lower(hex(s.parent_span_id))",
        "TraceState": "s.trace_state",
        "SpanName": "s.name",
        "SpanKind": f"if(s.kind BETWEEN 0 AND 5, {_sql_arr(SPAN_KINDS)}[s.kind + 1], 'Unspecified')",
        "ServiceName": "res['service.name']",
        "ResourceAttributes": "res",
        "ScopeName": "ss.scope.name",
        "ScopeVersion": "ss.scope.version",
        "SpanAttributes": _ep_map("s.attributes"),
        "Duration": "if(s.end_time_unix_nano > s.start_time_unix_nano, s.end_time_unix_nano - s.start_time_unix_nano, 0)",
        "StatusCode": f"if(s.status.code BETWEEN 0 AND 2, {_sql_arr(STATUS_CODES)}[s.status.code + 1], 'Unset')",
        "StatusMessage": "s.status.message",
        "Events.Timestamp": "arrayMap(e -> fromUnixTimestamp64Nano(toInt64(e.time_unix_nano)), s.events)",
        "Events.Name": "arrayMap(e -> e.name, s.events)",
        "Events.Attributes": f"arrayMap(e -> {_ep_map('e.attributes')}, s.events)",
        "Links.TraceId": "arrayMap(l -> lower(hex(l.trace_id)), s.links)",
        "Links.SpanId": "arrayMap(l -> lower(hex(l.span_id)), s.links)",
        "Links.TraceState": "arrayMap(l -> l.trace_state, s.links)",
        "Links.Attributes": f"arrayMap(l -> {_ep_map('l.attributes')}, s.links)",
    }
    assert list(sel) == COLUMNS
    valid = (  # otlp._span_problem: what flatten rejects
        "length(s.trace_id) = 16 AND length(s.span_id) = 8 AND s.trace_id != repeat('\\0', 16)"
        f" AND s.start_time_unix_nano <= {_MAX_NS} AND arrayAll(e -> e.time_unix_nano <= {_MAX_NS}, s.events)"
    )
    python_only = (  # conditions on the parsed attributes, not on the maps (those are built once, for the SELECT)
        f"{_ep_python_only('s.attributes', limit)} OR res_python"
        f" OR arrayExists(e -> {_ep_python_only('e.attributes')}, s.events)"
        f" OR arrayExists(l -> {_ep_python_only('l.attributes')}, s.links)"
        f" OR hasAny(arrayMap(kv -> kv.key, s.attributes), {_sql_arr(sorted(TRIGGERS))})"
        f" OR s.name IN {_sql_arr(sorted(AGL_REWARD_SPANS))}"
    )
    source = (
        f"(SELECT {_ep_map('rs.resource.attributes')} AS res, {_ep_python_only('rs.resource.attributes', limit)} AS res_python,"
        f" rs.scope_spans AS scope_spans FROM file({_sql_lit(path)}, '{fmt}', {_sql_lit(EP_STRUCTURE)})"
        " ARRAY JOIN resource_spans AS rs)\nARRAY JOIN scope_spans AS ss ARRAY JOIN ss.spans AS s"
    )
    settings = f"SETTINGS format_schema = {_sql_lit(OTLP_PROTO + ':ExportTraceServiceRequest')}"
    if routed:
        return (
            f"SELECT lower(hex(s.span_id)) AS SpanId, {sel['SpanAttributes']} AS `SpanAttributes` FROM {source}\n"
            f"WHERE {valid} AND ({python_only})\n{settings}"
        )
    cols = ", ".join(f"`{c}`" for c in COLUMNS)
    exprs = ",\n  ".join(f"{e} AS `{c}`" for c, e in sel.items())
    return (
        f"INSERT INTO {table} ({cols})\nSELECT\n  {exprs}\nFROM {source}\n"
        f"WHERE {valid}{f' AND NOT ({python_only})' if route else ''}\n{settings}"
    )


def delimited(bodies: list[bytes]) -> bytes:
    """Requests as ClickHouse's ``Protobuf`` format reads them: each after its varint length."""
    out = bytearray()
    for b in bodies:
        n = len(b)
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        out += b
    return bytes(out)


def make_edge_request() -> bytes:
    """Spans that exercise every branch of the mapping: each AnyValue kind, doubles that format differently,
    events and links, kinds and codes out of range, invalid spans, and what is routed to Python."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    def kv(k: str, **v: object) -> KeyValue:
        return KeyValue(key=k, value=AnyValue(**v))  # type: ignore[arg-type]

    doubles = [0.7, 1.0, -0.0, 1e21, 1.5e20, 1e-7, 1e-5, 123456.789, 5e-324, 1.7976931348623157e308,
               float("nan"), float("inf"), float("-inf"), 0.1 + 0.2, 2.5e-6, 1e100, 1.234e-6, 9.99e-7, 1.234e20,
               -3.5e-300, 2.0**53 + 2, 1e16 / 3]  # fmt: skip
    scalars = [
        kv("s", string_value="text é ✓"), kv("empty", string_value=""), kv("i", int_value=-42), kv("zero", int_value=0),
        kv("big", int_value=2**63 - 1), kv("t", bool_value=True), kv("f", bool_value=False),
        kv("b", bytes_value=b"\x00\xffbin"), kv("none"),
        *[kv(f"d{i}", double_value=d) for i, d in enumerate(doubles)],
    ]  # fmt: skip
    req = ExportTraceServiceRequest()
    n = 0

    def span(ss, **kw: object):  # noqa: ANN001, ANN202
        nonlocal n
        n += 1
        s = ss.spans.add(name=kw.pop("name", f"span-{n}"), start_time_unix_nano=1_700_000_000_000_000_000 + n,
                         end_time_unix_nano=1_700_000_000_000_000_000 + n + 1000)  # fmt: skip
        s.trace_id, s.span_id = n.to_bytes(16, "big"), n.to_bytes(8, "big")
        for k, v in kw.items():
            if k == "attributes":
                s.attributes.extend(v)  # type: ignore[arg-type]
            else:
                setattr(s, k, v)
        return s

    rs = req.resource_spans.add()
    rs.resource.attributes.extend([kv("service.name", string_value="edge"), kv("host.cores", int_value=2)])
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "edge.scope", "1.2"
    span(ss, attributes=scalars, kind=2, trace_state="k=v")
    s = span(ss, kind=7, parent_span_id=b"\x01" * 8)  # kind out of range
    s.status.code, s.status.message = 2, "boom"  # pyright: ignore[reportAttributeAccessIssue]
    s = span(ss, kind=5)
    s.status.code = 9  # code out of range  # pyright: ignore[reportAttributeAccessIssue]
    s.end_time_unix_nano = s.start_time_unix_nano - 5  # end before start: Duration 0
    s = span(ss)
    ev = s.events.add(time_unix_nano=1_700_000_000_000_000_123, name="gen_ai.choice")
    ev.attributes.extend([kv("index", int_value=0), kv("p", double_value=0.25)])
    s.events.add(time_unix_nano=1_700_000_000_000_000_124, name="bare")
    ln = s.links.add(trace_id=b"\x02" * 16, span_id=b"\x03" * 8, trace_state="a=b")
    ln.attributes.extend([kv("link.kind", string_value="follows")])
    ss2 = rs.scope_spans.add()  # no scope: empty name and version
    span(ss2, attributes=[kv("gen_ai.operation.name", string_value="chat")])
    rs2 = req.resource_spans.add()  # a resource without service.name
    ss3 = rs2.scope_spans.add()
    span(ss3, attributes=[kv("k", string_value="v")])
    # Routed to Python: arrays and maps (JSON), duplicate keys, a foreign convention, a reward span, over limit.
    arr = AnyValue()
    arr.array_value.values.extend([AnyValue(int_value=1), AnyValue(string_value="x")])
    mp = AnyValue()
    mp.kvlist_value.values.extend([kv("a", bool_value=True)])
    span(ss3, attributes=[KeyValue(key="arr", value=arr)])
    span(ss3, attributes=[KeyValue(key="map", value=mp)])
    span(ss3, attributes=[kv("dup", string_value="first"), kv("dup", string_value="last")])
    span(ss3, attributes=[kv("gen_ai.system", string_value="openai")])
    span(ss3, name="reward", attributes=[kv("reward", double_value=1.0)])
    span(ss3, attributes=[kv("huge", string_value="x" * 70_000)])
    # Rejected by both (otlp._span_problem): a short trace id, an all-zero trace id, a start past int64.
    span(ss3).trace_id = b"\x01" * 4
    span(ss3).trace_id = bytes(16)
    span(ss3).start_time_unix_nano = 2**63
    return req.SerializeToString()


#: SpanIds of make_edge_request's spans that the SQL leaves to Python (and the Python path stores).
EDGE_ROUTED = {f"{i:016x}" for i in range(7, 13)}


def engine_parse_check(bodies: list[bytes], client: Any, work_dir: str) -> dict:
    """Store ``bodies`` both ways (otlp.flatten + the collector's sink; the engine-parse SQL) into two
    scratch databases of ``client`` (with the lightspan schema applied) and compare every stored column,
    the DEFAULT and MATERIALIZED ones included, span by span."""
    from lightspan.collector.otlp import decode_protobuf, flatten
    from lightspan.collector.redact import Redactor
    from lightspan.collector.writer import EMBEDDED_INSERT_SETTINGS, ClickHouseSink

    for db in ("ep_python", "ep_engine"):
        client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        client.command(f"CREATE TABLE IF NOT EXISTS {db}.otel_traces AS lightspan.otel_traces")
    sink = ClickHouseSink(client, "ep_python", settings=EMBEDDED_INSERT_SETTINGS)
    redactor = Redactor(max_attribute_bytes=65536)
    for b in bodies:
        f = flatten(decode_protobuf(b), redactor)
        sink.write_spans(f.columns, f.rows)
    path = f"{work_dir}/check.pb"
    with open(path, "wb") as fh:
        fh.write(delimited(bodies))
    client.command(engine_parse_sql(path, "ep_engine.otel_traces"), settings=EMBEDDED_INSERT_SETTINGS)
    routed = {r[0] for r in client.query(engine_parse_sql(path, "", routed=True)).result_rows}
    stored = [c for (c,) in client.query(
        "SELECT name FROM system.columns WHERE database = 'ep_python' AND table = 'otel_traces' "
        "AND default_kind != 'ALIAS' AND name NOT IN ('IngestedAt') ORDER BY position").result_rows]  # fmt: skip
    count = lambda db: int(str(client.command(f"SELECT count() FROM {db}.otel_traces")))  # noqa: E731
    out: dict = {"rows_python": count("ep_python"), "rows_engine": count("ep_engine"), "routed": sorted(routed),
                 "columns_compared": len(stored), "differences": {}}  # fmt: skip
    missing = client.query(
        "SELECT SpanId FROM ep_python.otel_traces WHERE SpanId NOT IN (SELECT SpanId FROM ep_engine.otel_traces)"
    ).result_rows
    out["missing_from_engine"] = sorted(r[0] for r in missing)
    out["extra_in_engine"] = sorted(r[0] for r in client.query(
        "SELECT SpanId FROM ep_engine.otel_traces WHERE SpanId NOT IN (SELECT SpanId FROM ep_python.otel_traces)").result_rows)  # fmt: skip
    for c in stored:
        rows = client.query(
            f"SELECT p.SpanId, ifNull(toString(p.`{c}`), 'NULL') AS a, ifNull(toString(e.`{c}`), 'NULL') AS b "
            f"FROM ep_python.otel_traces AS p INNER JOIN ep_engine.otel_traces AS e ON p.SpanId = e.SpanId "
            f"WHERE a != b LIMIT 5"
        ).result_rows
        if rows:
            out["differences"][c] = [list(r) for r in rows]
    for db in ("ep_python", "ep_engine"):
        client.command(f"DROP DATABASE {db} SYNC")
    return out


def cpu_s() -> float:
    """This process's CPU seconds (user + system, every thread, finished ones included) from /proc."""
    with open("/proc/self/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds of the live threads, by kind: ``python`` (receivers and writer, including the engine
    work chDB does in the calling thread), ``merges`` (the engine's MergeMutate pool), ``engine`` (its other
    threads: insert pipelines, background schedule, memory worker) and ``grpc`` (gRPC's C core)."""
    out = {"python": 0.0, "engine": 0.0, "merges": 0.0, "grpc": 0.0}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                text = fh.read()
        except OSError:  # the thread ended meanwhile
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        kind = ("python" if comm.startswith("python") else "merges" if "Merge" in comm
                else "grpc" if comm.startswith(("grpc", "event_engine", "default-execu", "resolver", "timer"))
                else "engine")  # fmt: skip
        out[kind] += (int(fields[11]) + int(fields[12])) / tick
    return out


def _per_row_us(cpu: float, rows: int) -> float:
    return round(cpu / max(rows, 1) * 1e6, 1)


def ceiling(
    requests: int, signal: str = "traces", alternatives: bool = False, engine_parse: bool = False
) -> dict:
    """The same rows, already flattened, inserted straight into chDB, next to the engine alone.

    ``native``: clickhouse-connect column insert of the finished Python columns (what the collector's
    sink does). ``engine_floor``: ``INSERT ... SELECT`` from an in-memory copy of the stored rows, every
    stored column given, MATERIALIZED ones included (no client work, nothing to compute: sort, compress,
    indexes, part write): the goal's floor. ``engine_floor_defaults``: the same with only the columns the
    collector sends, so the engine also computes the DEFAULT and MATERIALIZED columns (the RL and parsed
    LLM columns for spans; TimestampTime, LogHash for logs), as it must for the collector's rows
    (``engine_floor_materialized_only``: every column but the MATERIALIZED ones given). With ``alternatives`` (spans): ``arrow`` (a pyarrow table built
    column-wise, ``insert_arrow``) and ``json`` (``orjson.dumps`` of the columns, parsed by ClickHouse as
    JSONColumns through ``file()``). With ``engine_parse`` (spans): ``engine_parse``, the request bytes
    themselves, length-delimited into a file, parsed and mapped by ClickHouse (:func:`engine_parse_sql`,
    20 requests = 10,240 spans per insert, the file write included); ``engine_parse_unrouted``, the same
    without the conditions that leave spans to Python; ``engine_parse_probe``, the ``SELECT`` that finds
    those spans, over the same files (a second pass). Their rows are checked against the Python path's
    first (:func:`engine_parse_check`). Interleaved, best of 3 rounds, so machine load hits each alike. CPU
    seconds are the process's from /proc (chDB is in-process, its threads included).
    """
    from lightspan.collector.otlp import COLUMNS, decode_protobuf, flatten
    from lightspan.collector.otlp_logs import LOG_COLUMNS, decode_logs, flatten_logs
    from lightspan.collector.redact import Redactor
    from lightspan.collector.writer import EMBEDDED_INSERT_SETTINGS, ClickHouseSink
    from lightspan.schemas import ddl
    from lightspan.storage import apply_schema, connect

    logs = signal == "logs"
    make: Any
    decode: Any
    flat_fn: Any
    make, decode, flat_fn, cols, table = (
        (make_logs_request, decode_logs, flatten_logs, LOG_COLUMNS, f"lightspan.{ddl.LOGS_TABLE}")
        if logs
        else (make_request, decode_protobuf, flatten, COLUMNS, f"lightspan.{ddl.SPANS_TABLE}")
    )
    bodies = [make(seed=99 + s) for s in range(max(requests, 2))]
    redactor = Redactor(max_attribute_bytes=65536)  # the collector's default limit
    cpu0 = time.process_time()
    reqs = [decode(b) for b in bodies]
    decode_cpu = time.process_time() - cpu0
    flats = [flat_fn(r, redactor) for r in reqs]
    flatten_cpu = time.process_time() - cpu0 - decode_cpu
    flat = flats[0]
    for f in flats[1:]:
        flat.extend(f)
    del flats, reqs
    d = tempfile.mkdtemp(prefix="ls-ceiling-")
    client = connect(f"chdb://{d}/data")
    apply_schema(client)
    batch = 10_000

    def part(lo: int, hi: int) -> dict[str, list]:
        return {c: flat.columns[c][lo:hi] for c in cols}

    sink = ClickHouseSink(client, "lightspan", settings=EMBEDDED_INSERT_SETTINGS)  # what the collector uses

    def native(lo: int, hi: int) -> None:
        (sink.write_logs if logs else sink.write_spans)(part(lo, hi), hi - lo)

    native(0, min(batch, flat.rows))  # warm-up, and rows for the in-memory source of the engine floors
    db, name = table.split(".")
    stored = client.query(
        "SELECT name, default_kind FROM system.columns WHERE database = %(db)s AND table = %(t)s "
        "AND default_kind != 'ALIAS' ORDER BY position",
        parameters={"db": db, "t": name},
    ).result_rows
    q = lambda names: ", ".join(f"`{c}`" for c in names)  # noqa: E731
    every = q(c for c, _ in stored)  # MATERIALIZED columns included: the finished rows, nothing to compute
    not_materialized = q(c for c, kind in stored if kind != "MATERIALIZED")
    sent = q(cols)
    client.command(f"CREATE TABLE lightspan.ceiling_src ENGINE = Memory AS SELECT {every} FROM {table}")
    assert int(str(client.command("SELECT count() FROM lightspan.ceiling_src"))) == min(batch, flat.rows)

    def engine(lo: int, hi: int) -> None:
        client.command(f"INSERT INTO {table} ({every}) SETTINGS insert_allow_materialized_columns = 1 "
                       f"SELECT {every} FROM lightspan.ceiling_src LIMIT {hi - lo}")  # fmt: skip

    def engine_materialized(lo: int, hi: int) -> None:
        client.command(f"INSERT INTO {table} ({not_materialized}) SELECT {not_materialized} FROM lightspan.ceiling_src LIMIT {hi - lo}")  # fmt: skip

    def engine_defaults(lo: int, hi: int) -> None:
        client.command(f"INSERT INTO {table} ({sent}) SELECT {sent} FROM lightspan.ceiling_src LIMIT {hi - lo}")  # fmt: skip

    methods: list = [("native", native), ("engine_floor", engine), ("engine_floor_defaults", engine_defaults)]
    if any(kind == "MATERIALIZED" for _, kind in stored):
        methods.append(("engine_floor_materialized_only", engine_materialized))
    if alternatives and not logs:
        import orjson

        types = {**ddl.OTEL_TRACES_COLUMNS, **{k: v[0] for k, v in ddl.LIGHTSPAN_SPAN_COLUMNS.items()}}
        ns_cols = {"Timestamp": "Int64", "Events.Timestamp": "Array(Int64)"}
        structure = ", ".join(f"`{c}` {ns_cols.get(c, types[c])}" for c in cols)
        select = ", ".join({"Timestamp": "fromUnixTimestamp64Nano(`Timestamp`)",
                            "Events.Timestamp": "arrayMap(x -> fromUnixTimestamp64Nano(x), `Events.Timestamp`)"}.get(c, f"`{c}`")
                           for c in cols)  # fmt: skip
        json_path = f"{d}/batch.json"

        def arrow(lo: int, hi: int) -> None:
            client.insert_arrow(table, _arrow_table(part(lo, hi), cols))

        def json_columns(lo: int, hi: int) -> None:
            with open(json_path, "wb") as fh:
                fh.write(orjson.dumps(part(lo, hi)))
            client.command(
                f"INSERT INTO {table} ({sent}) SELECT {select} FROM file('{json_path}', 'JSONColumns', '{structure}')"
            )

        methods += [("arrow", arrow), ("json", json_columns)]
    out: dict = {"signal": signal, "decode_us_per_row": _per_row_us(decode_cpu, flat.rows),
                 "flatten_us_per_row": _per_row_us(flatten_cpu, flat.rows)}  # fmt: skip
    per_insert = max(1, round(batch / SPANS_PER_REQUEST))  # requests per engine-parse insert
    ep_chunks = [(i, min(i + per_insert, len(bodies))) for i in range(0, len(bodies), per_insert)]
    if engine_parse and not logs:
        from lightspan.collector.otlp import check_spans

        cpu0 = time.process_time()
        for b in bodies:  # what would stay in Python: the receiver's checking decode (admission, counts)
            check_spans(decode(b))
        out["check_decode_us_per_row"] = _per_row_us(time.process_time() - cpu0, flat.rows)
        out["engine_parse_check"] = engine_parse_check([make_edge_request(), bodies[0]], client, d)
        ep_path = lambda lo: f"{d}/ep-{lo}.pb"  # noqa: E731

        def ep_insert(lo: int, hi: int, route: bool = True) -> None:
            with open(ep_path(lo), "wb") as fh:
                fh.write(delimited(bodies[lo:hi]))
            client.command(
                engine_parse_sql(ep_path(lo), table, route=route), settings=EMBEDDED_INSERT_SETTINGS
            )

        def ep_probe(lo: int, hi: int) -> None:
            routed = client.query(
                engine_parse_sql(ep_path(lo), table, routed=True), settings=EMBEDDED_INSERT_SETTINGS
            )
            assert not routed.result_rows  # the bench's spans need no Python

        methods += [("engine_parse", ep_insert), ("engine_parse_unrouted", lambda lo, hi: ep_insert(lo, hi, False)),
                    ("engine_parse_probe", ep_probe)]  # fmt: skip
    # Rows stored since ``t`` (a replayed span replaces the older copy, so the newest rows all survive merges).
    since = lambda t: int(str(client.command(f"SELECT count() FROM {table} WHERE IngestedAt >= '{t}'")))  # noqa: E731
    for _ in range(3):
        for name, fn in methods:
            rows = flat.rows  # the engine floors repeat their 10,000-row source: same inserts, same sizes
            parse = name.startswith("engine_parse")
            chunks = ep_chunks if parse else [(i, min(i + batch, rows)) for i in range(0, rows, batch)]
            before = str(client.command("SELECT now64(6)")) if parse else ""
            cpu0, t0 = cpu_s(), time.perf_counter()
            for lo, hi in chunks:
                fn(lo, hi)
            cpu, wall = cpu_s() - cpu0, time.perf_counter() - t0
            if parse and name != "engine_parse_probe":  # nothing dropped: every span stored
                assert since(before) == rows, (name, since(before), rows)
            if name not in out or cpu < out[name]["cpu_s"]:
                out[name] = {"rows": rows, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                             "us_per_row": _per_row_us(cpu, rows), "rows_per_cpu_s": round(rows / max(cpu, 1e-9))}  # fmt: skip
    if "engine_parse" in out:
        floor = out["engine_floor_defaults"]["us_per_row"]
        out["engine_parse_ratio"] = {
            "vs_engine_floor": round(out["engine_parse"]["us_per_row"] / out["engine_floor"]["us_per_row"], 2),
            "vs_engine_floor_defaults": round(out["engine_parse"]["us_per_row"] / floor, 2),
            "with_check_decode_vs_engine_floor_defaults": round(
                (out["engine_parse"]["us_per_row"] + out["check_decode_us_per_row"]) / floor, 2),
        }  # fmt: skip
    client.close()
    return out


class _WriterClock:
    """Thread CPU the writer spends per batch, and the part of it inside the sink's insert call
    (clickhouse-connect's encoding plus the engine work chDB does in the calling thread)."""

    def __init__(self, pipeline: object) -> None:
        self.write_s = self.insert_s = 0.0
        self.inserts = 0
        write, sink = pipeline._write, pipeline.sink  # type: ignore[attr-defined]

        def timed_write(batch: list) -> bool:
            t0 = time.thread_time()
            try:
                return write(batch)
            finally:
                self.write_s += time.thread_time() - t0

        def timed(fn):  # noqa: ANN001, ANN202
            def call(*args: object) -> None:
                t0 = time.thread_time()
                try:
                    fn(*args)
                finally:
                    self.insert_s += time.thread_time() - t0
                    self.inserts += 1

            return call

        pipeline._write = timed_write  # type: ignore[attr-defined]
        for name in ("write_spans", "write_logs"):
            setattr(sink, name, timed(getattr(sink, name)))


def _engine_parse_writer(pipeline: Any, work_dir: str) -> None:
    """Bench-only: the pipeline's span batches go to the engine as request bytes (:func:`engine_parse_sql`)
    instead of being decoded and flattened in Python; receivers, admission, spool, batching and commits
    are the collector's own. Every span of the bench needs no Python (checked: each insert stores them all)."""
    chunks, sink = pipeline._chunks, pipeline.sink
    insert_spans = sink.write_spans
    path = f"{work_dir}/ep-batch.pb"

    def ep_chunks(kind: str, items: list) -> Any:
        if kind != "spans":
            return chunks(kind, items)
        return iter([({"bodies": [it.payload for it in items]}, sum(it.rows for it in items))])

    def write_spans(columns: dict, rows: int, /) -> None:
        if "bodies" not in columns:
            return insert_spans(columns, rows)
        with open(path, "wb") as fh:
            fh.write(delimited(columns["bodies"]))
        with sink.lock:
            sink.client.command(engine_parse_sql(path, sink.spans_table), settings=sink.settings)
        return None

    pipeline._chunks, sink.write_spans = ep_chunks, write_spans


def run_collector_phase(
    transport: str,
    requests: int,
    concurrency: int,
    signal: str = "traces",
    engine_parse: bool = False,
    **cfg: object,
) -> dict:
    """One collector (embedded chDB) fed by a sender process; CPU per stored row from /proc, split by thread
    kind. ``engine_parse``: the writer hands the request bytes to the engine (:func:`_engine_parse_writer`)."""
    from lightspan.collector import Collector, CollectorConfig

    d = tempfile.mkdtemp(prefix=f"ls-bench-{transport}-")
    config = CollectorConfig.load(data_dir=f"{d}/data", grpc_endpoint="127.0.0.1:0", http_endpoint="127.0.0.1:0",
                                  query_endpoint="off", **cfg)  # fmt: skip
    c = Collector(config).start()
    assert c.pipeline is not None
    if engine_parse:
        _engine_parse_writer(c.pipeline, d)
    clock = _WriterClock(c.pipeline)
    counter = c.metrics.logs_written if signal == "logs" else c.metrics.written
    port = c.grpc_port if transport == "grpc" else c.http_port
    threads0 = thread_cpu_s()
    cpu0, t0 = cpu_s(), time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--sender", transport, str(port), str(requests), str(concurrency), signal],
                         capture_output=True, text=True, check=True)  # fmt: skip
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    expected = stats["ok"] * SPANS_PER_REQUEST
    while counter._value.get() < expected and time.perf_counter() - t0 < 600:
        time.sleep(0.02)
    wall_written = time.perf_counter() - t0
    threads1 = thread_cpu_s()  # before stop: the receivers' and writer's threads end with it
    c.stop(timeout=120)
    wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    written = int(counter._value.get())
    by_kind = {k: round(threads1[k] - threads0[k], 2) for k in threads1}
    stored: dict = {}
    if (
        signal == "traces"
    ):  # after the timing: the distinct spans the table holds (the senders cycle 8 requests)
        from lightspan.storage import connect

        check = connect(f"chdb://{d}/data")
        stored["distinct_spans_stored"] = int(
            str(check.command("SELECT uniqExact(TraceId, SpanId) FROM lightspan.otel_traces"))
        )
        check.close()
    return {"signal": signal, "transport": transport, "engine_parse": engine_parse, **stored, "load_avg_1m": round(os.getloadavg()[0], 2), "rows_written": written,
            "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "rows_per_s": round(written / wall_written),
            "us_per_row": _per_row_us(cpu, written), "rows_per_cpu_s": round(written / cpu),
            "threads_cpu_s": by_kind, "writer_cpu_s": round(clock.write_s, 2), "writer_insert_call_cpu_s": round(clock.insert_s, 2),
        "inserts": clock.inserts, "rows_per_insert": round(written / max(clock.inserts, 1)),
            **stats, "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}  # fmt: skip


def _ratio(phase: dict, ceil: dict) -> dict:
    """The phase's CPU per stored row over the engine's own cost for the same finished rows (same run)."""
    return {"vs_engine_floor": round(phase["us_per_row"] / ceil["engine_floor"]["us_per_row"], 2),
            "vs_engine_floor_with_defaults": round(phase["us_per_row"] / ceil["engine_floor_defaults"]["us_per_row"], 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small run (a few minutes)")
    ap.add_argument(
        "--requests", type=int, default=None, help="exports per phase (512 spans or records each)"
    )
    ap.add_argument("--alternatives", action="store_true", help="also time the Arrow and JSONColumns inserts")
    ap.add_argument("--no-overload", action="store_true", help="skip the 2x overload phase")
    ap.add_argument(
        "--engine-parse",
        action="store_true",
        help="also time ClickHouse parsing the OTLP request bytes itself (issue 18 prototype)",
    )
    ap.add_argument("--ceiling-traces-only", action="store_true",
                    help="only the spans' floors (with --engine-parse: the prototype next to them), no collector phases")  # fmt: skip
    ap.add_argument("--sender", nargs=5, help=argparse.SUPPRESS)
    ap.add_argument("--ceiling-only", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sender:
        transport, port, n, conc, signal = args.sender
        return sender(transport, int(port), int(n), int(conc), signal)
    if args.ceiling_only:
        print(
            json.dumps(
                ceiling(int(args.ceiling_only[0]), args.ceiling_only[1], args.alternatives, args.engine_parse)
            )
        )
        return None
    n = args.requests or (20 if args.quick else 100)
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": _machine(),
                     "command": " ".join(["benchmarks/bench_collector.py", *sys.argv[1:]]),
                     "spans_per_request": SPANS_PER_REQUEST, "request_bytes": len(make_request()),
                     "logs_request_bytes": len(make_logs_request()), "load_avg_1m_start": round(os.getloadavg()[0], 2)}  # fmt: skip
    print(json.dumps(results), flush=True)
    for signal in ("traces",) if args.ceiling_traces_only else ("traces", "logs"):
        # In a child process, so the rows it holds do not count in the collector phases' peak RSS.
        extra = (["--alternatives"] if args.alternatives else []) + (
            ["--engine-parse"] if args.engine_parse else []
        )
        out = subprocess.run([sys.executable, __file__, "--ceiling-only", str(n), signal, *extra],
                             capture_output=True, text=True, check=True)  # fmt: skip
        results[f"ceiling_{signal}"] = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(results[f"ceiling_{signal}"]), flush=True)
    if args.ceiling_traces_only:
        print(json.dumps({"load_avg_1m_end": round(os.getloadavg()[0], 2)}), flush=True)
        return None
    phases: list[tuple[str, str, str, bool, dict]] = [
        ("grpc", "grpc", "traces", False, {}),
        ("http", "http", "traces", False, {}),
        ("logs_grpc", "grpc", "logs", False, {}),
    ]
    if args.engine_parse:  # the same gRPC phase with the writer handing the request bytes to the engine,
        # then both with batches of up to 20,000 spans (the engine-parse writer holds no rows in Python)
        big = {"batch_max_spans": 20_000, "batch_max_bytes": 48 << 20, "batch_timeout_s": 5.0}
        phases[1:1] = [("grpc_engine_parse", "grpc", "traces", True, {}), ("grpc_big_batches", "grpc", "traces", False, big),
                       ("grpc_engine_parse_big_batches", "grpc", "traces", True, big)]  # fmt: skip
    for name, transport, signal, parse, cfg in phases:
        r = run_collector_phase(transport, n, 2, signal, engine_parse=parse, **cfg)
        r["ratio"] = _ratio(r, results[f"ceiling_{signal}"])
        print(json.dumps(r), flush=True)
        results[name] = r
    if not args.no_overload:
        # 2x overload: twice the senders against a small queue; memory must stay bounded, extra load refused.
        r = run_collector_phase("grpc", n, 4, queue_max_spans=20_000, batch_max_spans=5_000)
        results["overload_2x"] = r
        print(json.dumps(r), flush=True)
    results["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps({"summary": {k: v["ratio"] for k, v in results.items() if isinstance(v, dict) and "ratio" in v},
                      "load_avg_1m_end": results["load_avg_1m_end"]}), flush=True)  # fmt: skip


def _machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}".strip(", ")


if __name__ == "__main__":
    main()
