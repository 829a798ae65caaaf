"""What issue 18's cost changes must not change: stored rows, the size limit, and refusals under load.

The embedded store's inserts run single-threaded (``EMBEDDED_INSERT_SETTINGS``), the size limit has a
fast path for the common case, and a full queue refuses an export before decoding it. Each is checked
against the behaviour it replaces.
"""

from __future__ import annotations

import json
import os

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from lightspan.collector.ingest import BadRequest, Ingestor, Unavailable
from lightspan.collector.metrics import Metrics
from lightspan.collector.otlp import flatten
from lightspan.collector.otlp_logs import flatten_logs
from lightspan.collector.redact import Redactor
from lightspan.collector.spool import Spool
from lightspan.collector.writer import EMBEDDED_INSERT_SETTINGS, ClickHouseSink, MemorySink, Pipeline
from lightspan.schemas import attributes as A
from lightspan.storage import apply_schema, connect

from .test_receivers import _request


def _kv(key: str, value: object) -> KeyValue:
    v = AnyValue()
    if isinstance(value, bool):
        v.bool_value = value
    elif isinstance(value, int):
        v.int_value = value
    elif isinstance(value, float):
        v.double_value = value
    elif isinstance(value, bytes):
        v.bytes_value = value
    elif isinstance(value, list):
        v.array_value.values.extend(_kv("", x).value for x in value)
    elif isinstance(value, dict):
        v.kvlist_value.values.extend(_kv(k, x) for k, x in value.items())
    else:
        v.string_value = str(value)
    return KeyValue(key=key, value=v)


#: Span attribute sets covering the mapping step: GenAI, OpenInference, OpenLLMetry, old GenAI keys,
#: Agent Lightning rewards, odd values (arrays, maps, bytes, doubles, empty strings) and redaction.
CORPUS: list[tuple[str, dict]] = [
    ("chat gpt", {A.GEN_AI_OPERATION_NAME: "chat", A.ROLLOUT_ID: "r-1", A.GEN_AI_USAGE_INPUT_TOKENS: 12,
                  A.GEN_AI_INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]),
                  "f": 0.5, "b": True, "big": 1e21, "tiny": 1e-7})
    ,
    ("ChatCompletion", {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "session.id": "s-9",
                        "llm.input_messages.0.message.role": "user",
                        "llm.input_messages.0.message.content": "what is 2+2",
                        "llm.token_count.prompt": 7, "metadata": json.dumps({"task_id": "t-3", "attempt": 2})}),
    ("openai.chat", {"traceloop.span.kind": "agent", "traceloop.entity.name": "planner",
                     "gen_ai.system": "openai", "gen_ai.usage.prompt_tokens": 5, "gen_ai.prompt.0.role": "user",
                     "gen_ai.prompt.0.content": "plan it", "traceloop.association.properties.session_id": "s-1"}),
    (A.AGL_LEGACY_REWARD_SPAN, {A.AGL_LEGACY_REWARD_KEY: 1.0}),
    ("odd", {"arr": [1, "x", 2.5, True], "map": {"k": [1, 2], "n": {"z": None}}, "raw": b"\x00\xff",
             "empty": "", "user.email": "a@b.c", "secret": "s", "long": "é" * 40_000}),
]  # fmt: skip


def _corpus_request(repeat: int = 3) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([_kv("service.name", "corpus"), _kv("host.name", "h")])
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "tests", "1"
    for r in range(repeat):
        for i, (name, attrs) in enumerate(CORPUS):
            s = ss.spans.add(name=name, kind=(i % 6), start_time_unix_nano=1_700_000_000_000_000_000 + r * 10 + i,
                             end_time_unix_nano=1_700_000_000_000_001_000 + r)  # fmt: skip
            s.trace_id, s.span_id = os.urandom(16), os.urandom(8)
            s.attributes.extend(_kv(k, v) for k, v in attrs.items())
            s.status.code = (Status.STATUS_CODE_UNSET, Status.STATUS_CODE_OK, Status.STATUS_CODE_ERROR)[i % 3]
            if i % 2:
                ev = s.events.add(name="gen_ai.choice", time_unix_nano=1_700_000_000_000_000_500)
                ev.attributes.extend([_kv("index", 0), _kv("message", "ok")])
                ln = s.links.add(trace_id=os.urandom(16), span_id=os.urandom(8), trace_state="a=1")
                ln.attributes.extend([_kv("link.kind", "retry")])
    return req


def _logs_request() -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend([_kv("service.name", "corpus")])
    sl = rl.scope_logs.add()
    for i, body in enumerate(["plain", {"role": "assistant", "content": "x"}, [1, 2], 7, ""]):
        rec = sl.log_records.add(time_unix_nano=1_700_000_000_000_000_000 + i, severity_number=9,
                                 severity_text="INFO", event_name="gen_ai.choice" if i % 2 else "")  # fmt: skip
        rec.body.CopyFrom(_kv("", body).value)
        rec.attributes.extend([_kv("index", i), _kv("secret", "s")])
        if i % 2:
            rec.trace_id, rec.span_id = os.urandom(16), os.urandom(8)
    return req


def test_embedded_insert_settings_store_exactly_the_rows_of_a_default_insert(tmp_path):
    """Same flattened corpus through the sink with and without the embedded settings: identical rows,
    RL and parsed columns (the table's DEFAULT and MATERIALIZED expressions) included."""
    client = connect(f"chdb://{tmp_path / 'store'}")
    try:
        for db in ("a", "b"):
            client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
            apply_schema(client, database=db)
        redactor = Redactor(hash=["user.email"], drop=["secret"], max_attribute_bytes=4096)
        spans = flatten(_corpus_request(), redactor)
        logs = flatten_logs(_logs_request(), redactor)
        assert spans.rows == 3 * len(CORPUS) and logs.rows == 5 and not spans.rejected
        tuned = ClickHouseSink(client, "a", settings=EMBEDDED_INSERT_SETTINGS)
        plain = ClickHouseSink(client, "b")
        for sink in (tuned, plain):
            sink.write_spans(spans.columns, spans.rows)
            sink.write_logs(logs.columns, logs.rows)

        def rows(db: str, table: str, key: str) -> list:
            names = client.query(
                "SELECT name FROM system.columns WHERE database = %(db)s AND table = %(t)s "
                "AND name != 'IngestedAt' ORDER BY position",
                parameters={"db": db, "t": table},
            ).result_rows
            cols = ", ".join(f"toString(`{n}`)" for (n,) in names)
            return list(client.query(f"SELECT {cols} FROM {db}.{table} ORDER BY {key}").result_rows)

        for table, key in (("otel_traces", "SpanId"), ("otel_logs", "Timestamp")):
            a, b = rows("a", table, key), rows("b", table, key)
            assert len(a) == (spans.rows if table == "otel_traces" else logs.rows)
            assert a == b, f"{table}: the tuned insert stored different rows"
        mapped = client.query(
            "SELECT SpanName, RolloutId, TaskId, RolloutSource, AgentName FROM a.otel_traces "
            "WHERE SpanName IN ('ChatCompletion', 'openai.chat') ORDER BY SpanName LIMIT 1 BY SpanName"
        ).result_rows
        assert mapped == [
            ("ChatCompletion", "s-9", "t-3", "session", ""),
            ("openai.chat", "s-1", "", "session", "planner"),
        ]
    finally:
        client.close()


@pytest.mark.parametrize(
    "attrs",
    [
        {},
        {"a": "x" * 25, "b": "y"},  # all at most limit/4 characters: untouched, no truncation marker
        {"a": "é" * 60},  # 60 characters (> limit/4) but 120 bytes: untouched
        {"a": "é" * 51, "b": "ok"},  # 102 bytes: cut
        {"a": json.dumps(["z" * 200]), "b": "x" * 101},  # JSON stays JSON; plain text cut to the limit
    ],
)
def test_size_limit_fast_path_cuts_exactly_what_the_byte_check_cuts(attrs):
    limit = 100
    got = dict(attrs)
    Redactor(max_attribute_bytes=limit).limit(got)
    over = {k for k, v in attrs.items() if len(v.encode()) > limit}
    assert {k for k in attrs if got[k] != attrs[k]} == over
    assert all(len(got[k].encode()) <= limit for k in attrs)
    if over:
        assert set(got[A.TRUNCATED].split(",")) == over
        for k in over:
            if attrs[k].startswith("["):
                assert isinstance(json.loads(got[k]), str)
    else:
        assert got == attrs


def test_a_full_queue_refuses_an_export_before_decoding_it(tmp_path):
    """With no room for one more span, even an undecodable body is answered UNAVAILABLE (it was not
    parsed), counted as backpressure; once there is room the same body is a 400."""
    metrics = Metrics()
    pipeline = Pipeline(MemorySink(), metrics=metrics, queue_max_spans=10, batch_max_spans=10)
    spool = Spool(tmp_path / "spool", fsync=False)
    ing = Ingestor(pipeline, spool, metrics)
    try:
        assert ing.traces(_request(10).SerializeToString(), transport="grpc").accepted == 10
        assert pipeline.spans_full
        with pytest.raises(Unavailable, match="pipeline full"):
            ing.traces(b"\xff not protobuf", transport="grpc")
        assert metrics.exports_refused.labels("traces", "grpc", "backpressure")._value.get() == 1
        assert metrics.rejected.labels("grpc", "backpressure")._value.get() == 0  # spans: count unknown
        pipeline.start()
        assert pipeline.stop(timeout=10)
        assert not pipeline.spans_full
        with pytest.raises(BadRequest):
            ing.traces(b"\xff not protobuf", transport="grpc")
    finally:
        spool.close()
