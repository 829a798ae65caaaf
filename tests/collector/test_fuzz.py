"""A fuzz corpus over both transports, interleaved with valid exports.

Every bad request gets 400 / INVALID_ARGUMENT, 413 / RESOURCE_EXHAUSTED or 415 with a message; the
collector keeps answering; every valid span is stored exactly once. The oracle for binary bodies is the
protobuf library itself: a body it parses is a valid export (possibly of nothing), one it cannot is a 400.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import zlib

import grpc
import httpx
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts

from .conftest import query, wait_for
from .test_receivers import _request

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}
LIMIT = 1 << 20


def _span(**over) -> dict:
    span = {"traceId": os.urandom(16).hex(), "spanId": os.urandom(8).hex(), "name": "s", "kind": 1,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000000000100",
            "attributes": [{"key": "a", "value": {"stringValue": "v"}}]}  # fmt: skip
    span.update(over)
    return span


def _doc(*spans: dict) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}).encode()


def _json_cases() -> list[tuple[str, bytes, int, str]]:
    """(what, body, expected status, a piece of the expected message)."""
    nest = '{"arrayValue":{"values":[' * 80 + "]}}" * 80
    deep_attr = (
        '{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"a","value":' + nest + "}]}]}]}]}"
    )
    return [
        ("string where an AnyValue belongs", _doc(_span(attributes=[{"key": "a", "value": "plain"}])), 400,
         "spans[0].attributes[0].value: expected an AnyValue object, got a string"),
        ("number as a key", _doc(_span(attributes=[{"key": 5, "value": {"stringValue": "x"}}])), 400,
         "attributes[0].key: expected a string, got a number"),
        ("two values in one AnyValue", _doc(_span(attributes=[{"key": "a", "value": {"stringValue": "x", "boolValue": True}}])),
         400, "an AnyValue holds one value"),
        ("bool as an int", _doc(_span(attributes=[{"key": "a", "value": {"intValue": True}}])), 400, "expected an integer"),
        ("int out of range", _doc(_span(attributes=[{"key": "a", "value": {"intValue": str(2**64)}}])), 400, "out of range"),
        ("non-hex trace id", _doc(_span(traceId="zz" * 16)), 400, "spans[0].traceId: expected a hex string"),
        ("id as a number", _doc(_span(spanId=12)), 400, "spans[0].spanId: expected a hex string, got a number"),
        ("unknown span kind", _doc(_span(kind=42)), 400, "unknown SpanKind 42"),
        ("bad timestamp", _doc(_span(startTimeUnixNano="soon")), 400, "startTimeUnixNano: expected an integer"),
        ("spans not an array", b'{"resourceSpans":[{"scopeSpans":[{"spans":{}}]}]}', 400, "expected an array"),
        ("body not an object", b"[1,2]", 400, "must be an object"),
        ("deep JSON", b"[" * 100_000, 400, "nested too deeply"),
        ("deep AnyValue", deep_attr.encode(), 400, "nested deeper than 64"),
        ("not JSON", b"{resourceSpans", 400, "not valid JSON"),
        ("not UTF-8", b'{"resourceSpans":"\xff"}', 400, "not valid JSON"),
    ]  # fmt: skip


def _message(resp: httpx.Response) -> str:
    if resp.headers.get("content-type", "").startswith("application/json"):
        return json.loads(resp.content)["message"]
    return status_pb2.Status.FromString(resp.content).message


def test_fuzz_corpus_over_http_and_grpc_interleaved_with_valid_exports(start_collector):
    c = start_collector(max_request_bytes=LIMIT, queue_max_bytes=16 * LIMIT)
    rng = random.Random(1234)
    url = f"http://127.0.0.1:{c.http_port}/v1/traces"
    http = httpx.Client(timeout=30)
    channel = grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}")
    raw_export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
    stored: set[tuple[str, str]] = set()
    outcomes: list[str] = []

    def valid(i: int) -> None:
        """One good export, by turns: protobuf, JSON, gzip, chunked HTTP, gRPC."""
        req = _request(3)
        ids = {(s.trace_id.hex(), s.span_id.hex()) for s in req.resource_spans[0].scope_spans[0].spans}
        body = req.SerializeToString()
        kind = i % 5
        if kind == 4:
            raw_export(body)
        else:
            if kind == 1:
                spans = [_span(traceId=t, spanId=s) for t, s in ids]
                ids = {(t, s) for t, s in ids}
                r = http.post(url, content=_doc(*spans), headers=JS)
            elif kind == 2:
                r = http.post(url, content=gzip.compress(body), headers={**PB, "Content-Encoding": "gzip"})
            elif kind == 3:
                r = http.post(url, content=iter([body[:7], body[7:]]), headers=PB)  # chunked
            else:
                r = http.post(url, content=body, headers=PB)
            assert r.status_code == 200, (kind, r.status_code, r.content[:200])
        stored.update(ids)

    def expect_http(what: str, resp: httpx.Response, status: int, piece: str) -> None:
        assert resp.status_code == status, (what, resp.status_code, resp.content[:300])
        message = _message(resp)
        assert piece in message, (what, message)
        outcomes.append(f"{what}: {status}")

    i = 0
    for what, body, status, piece in _json_cases():
        valid(i := i + 1)
        expect_http(what, http.post(url, content=body, headers=JS), status, piece)
        expect_http(what + " (chunked)", http.post(url, content=iter([body]), headers=JS), status, piece)

    good = _request(40).SerializeToString()
    binaries = [("random bytes", rng.randbytes(rng.randint(1, 4000))) for _ in range(30)]
    binaries += [("truncated protobuf", good[: rng.randint(1, len(good) - 1)]) for _ in range(30)]
    for what, body in binaries:
        valid(i := i + 1)
        try:
            parsed = ts.ExportTraceServiceRequest.FromString(body)
        except Exception:
            parsed = None
        r = http.post(url, content=body, headers=PB)
        try:
            raw_export(body)
            grpc_code = grpc.StatusCode.OK
        except grpc.RpcError as err:
            grpc_code, details = err.code(), err.details()
            assert details, what
        if parsed is None:
            expect_http(what, r, 400, "ExportTraceServiceRequest")
            assert grpc_code == grpc.StatusCode.INVALID_ARGUMENT, what
        else:  # the protobuf library reads it: a valid export, its storable spans stored like any other
            assert r.status_code == 200 and grpc_code == grpc.StatusCode.OK, what
            stored.update(
                (s.trace_id.hex(), s.span_id.hex())
                for rs in parsed.resource_spans
                for ss in rs.scope_spans
                for s in ss.spans
                if len(s.trace_id) == 16 and len(s.span_id) == 8 and any(s.trace_id)
                and s.start_time_unix_nano < 2**63 and all(e.time_unix_nano < 2**63 for e in s.events)
            )  # fmt: skip

    bad_ids = _request(2, bad_ids=3)
    r = http.post(url, content=bad_ids.SerializeToString(), headers=PB)
    assert r.status_code == 200
    partial = ts.ExportTraceServiceResponse.FromString(r.content).partial_success
    assert partial.rejected_spans == 3 and "span_id 8 bytes" in partial.error_message
    stored.update(
        (s.trace_id.hex(), s.span_id.hex()) for s in bad_ids.resource_spans[0].scope_spans[0].spans[:2]
    )

    bomb = gzip.compress(bytes(64 << 20))
    deflate_bomb = zlib.compress(bytes(64 << 20), 9)
    huge = _request(1)
    huge.resource_spans[0].scope_spans[0].spans[0].attributes.add(key="big").value.string_value = "x" * (
        2 * LIMIT
    )
    for what, body, headers, status, piece in [
        ("gzip bomb", bomb, {**PB, "Content-Encoding": "gzip"}, 413, "after decompression"),
        ("deflate bomb", deflate_bomb, {**PB, "Content-Encoding": "deflate"}, 413, "after decompression"),
        (
            "truncated gzip",
            gzip.compress(good)[:-9],
            {**PB, "Content-Encoding": "gzip"},
            400,
            "not valid gzip",
        ),
        ("unknown encoding", good, {**PB, "Content-Encoding": "snappy"}, 415, "unsupported Content-Encoding"),
        ("huge string", huge.SerializeToString(), PB, 413, "larger than the limit"),
        ("huge string, chunked", iter([huge.SerializeToString()]), PB, 413, "larger than the limit"),
        ("wrong content type", good, {"Content-Type": "text/plain"}, 415, "unsupported Content-Type"),
        ("no content type", good, {}, 415, "unsupported Content-Type"),
        ("JSON body as protobuf", _doc(_span()), PB, 400, "ExportTraceServiceRequest"),
        ("protobuf body as JSON", good, JS, 400, "not valid JSON"),
    ]:
        valid(i := i + 1)
        expect_http(what, http.post(url, content=body, headers=headers), status, piece)
    try:
        raw_export(huge.SerializeToString())
        raise AssertionError("a request over the limit was accepted over gRPC")
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and err.details()
    r = http.get(url)
    assert r.status_code == 405 and _message(r)
    r = http.post(f"http://127.0.0.1:{c.http_port}/v1/metrics", content=good, headers=PB)
    assert r.status_code == 404 and _message(r)
    valid(i := i + 1)

    assert http.get(f"http://127.0.0.1:{c.http_port}/healthz").status_code == 200
    sql = "SELECT count(), uniqExact(TraceId, SpanId) FROM otel_traces FINAL"
    assert wait_for(lambda: query(c, sql)[0][0] >= len(stored), 60)
    count, unique = query(c, sql)[0]
    got = set(query(c, "SELECT TraceId, SpanId FROM otel_traces FINAL"))
    assert got == stored and count == unique == len(stored)
    http.close()
    channel.close()
