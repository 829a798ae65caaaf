"""Decode OTLP log requests and flatten them into columns of ``otel_logs``, as the contrib exporter does.

Following ``exporter/clickhouseexporter`` (logs): ``Timestamp`` is the record's time, else its observed
time; hex ``TraceId``/``SpanId`` (empty outside a trace); ``TraceFlags`` the low byte of ``flags``;
``SeverityText``/``SeverityNumber`` as sent; ``ServiceName`` from the resource's ``service.name``;
``Body`` as a string (strings as they are, other values like attribute values: ints decimal, maps and
arrays as JSON); resource, scope and record attributes as string maps; ``EventName`` (GenAI events such
as ``gen_ai.evaluation.result`` travel as named log records). ``TimestampTime``, ``LogHash`` and
``IngestedAt`` are the table's DEFAULT expressions. Redaction and the attribute size limit apply to the
attribute maps as for spans; ``Body`` is kept whole (it is bounded by the request size).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from lightspan.schemas import ddl

from .otlp import _MAX_TIMESTAMP, Checked, Flattened, _slow_str, attrs_to_dict, parse_protobuf, window
from .redact import Redactor

#: What the collector writes to otel_logs; ClickHouse fills TimestampTime, LogHash and IngestedAt.
LOG_COLUMNS: list[str] = [c for c in ddl.OTEL_LOGS_COLUMNS if c != "TimestampTime"]


def decode_logs(body: bytes) -> ExportLogsServiceRequest:
    return parse_protobuf(body, ExportLogsServiceRequest())


def decode_logs_json(body: bytes) -> ExportLogsServiceRequest:
    """OTLP/JSON logs, checked strictly against the message's shapes (:mod:`.otlp_json`)."""
    from .otlp_json import parse

    return parse(body, ExportLogsServiceRequest())


def _record_problem(rec: Any) -> str | None:
    tid, sid = rec.trace_id, rec.span_id
    if tid and len(tid) != 16 or sid and len(sid) != 8:
        return f"log record: trace_id must be empty or 16 bytes and span_id empty or 8 bytes (got {len(tid)} and {len(sid)})"
    if max(rec.time_unix_nano, rec.observed_time_unix_nano) > _MAX_TIMESTAMP:
        return "log record: timestamps must be before 2262-04-11 (int64 nanoseconds)"
    return None


def check_logs(req: ExportLogsServiceRequest) -> Checked:
    """Count the storable records of ``req``; :func:`flatten_logs` skips the others the same way."""
    out = Checked()
    for rl in req.resource_logs:
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                out.add(_record_problem(rec))
    return out


def _body(v: Any) -> str:
    w = v.WhichOneof("value")
    return v.string_value if w == "string_value" else _slow_str(v, w)


def record_count(req: ExportLogsServiceRequest) -> int:
    return sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs)


def flatten_logs(
    req: ExportLogsServiceRequest, redactor: Redactor | None = None, skip: int = 0, take: int | None = None
) -> Flattened:
    """Rows of otel_logs for every storable record in ``req`` (or in records ``[skip, skip + take)``);
    the others are counted as rejected."""
    out = Flattened(LOG_COLUMNS)
    c = out.columns
    redact = redactor.apply if redactor is not None and redactor.active else None
    limit = redactor.limit if redactor is not None and redactor.max_attribute_bytes else None

    def clean(attrs: dict[str, str]) -> dict[str, str]:
        if redact:
            redact(attrs)
        if limit:
            limit(attrs)
        return attrs

    pos = 0
    for rl in req.resource_logs:
        if take is not None and pos >= skip + take:
            break
        res = clean(attrs_to_dict(rl.resource.attributes))
        service = res.get("service.name", "")
        for sl in rl.scope_logs:
            scope = sl.scope
            scope_attrs = clean(attrs_to_dict(scope.attributes))
            records = window(sl.log_records, pos, skip, take)
            pos += len(sl.log_records)
            for rec in records:
                problem = _record_problem(rec)
                if problem is not None:
                    out.rejected += 1
                    out.errors.append(problem)
                    continue
                c["Timestamp"].append(rec.time_unix_nano or rec.observed_time_unix_nano)
                c["TraceId"].append(rec.trace_id.hex())
                c["SpanId"].append(rec.span_id.hex())
                c["TraceFlags"].append(rec.flags & 0xFF)
                c["SeverityText"].append(rec.severity_text)
                c["SeverityNumber"].append(min(max(int(rec.severity_number), 0), 255))
                c["ServiceName"].append(service)
                c["Body"].append(_body(rec.body))
                c["ResourceSchemaUrl"].append(rl.schema_url)
                c["ResourceAttributes"].append(res)
                c["ScopeSchemaUrl"].append(sl.schema_url)
                c["ScopeName"].append(scope.name)
                c["ScopeVersion"].append(scope.version)
                c["ScopeAttributes"].append(scope_attrs)
                c["LogAttributes"].append(clean(attrs_to_dict(rec.attributes)))
                c["EventName"].append(rec.event_name)
    out.rows = len(c["Timestamp"])
    return out
