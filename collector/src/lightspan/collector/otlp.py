"""Decode OTLP trace requests and flatten them into columns of the spans table.

The flattening follows the OpenTelemetry Collector ClickHouse exporter (``exporter/clickhouseexporter``):
hex ``TraceId``/``SpanId``, ``Timestamp`` = start time in ns, ``Duration`` = end - start in ns,
``SpanKind`` as pdata names (``Server``, ``Client``, ``Internal``, ``Producer``, ``Consumer``,
``Unspecified``), ``StatusCode`` as ``Unset``/``Ok``/``Error``, ``ServiceName`` from the resource's
``service.name``, scope name/version in their own columns, attribute values as strings (ints in decimal,
doubles as JSON numbers, bools ``true``/``false``, bytes base64, arrays and maps as JSON), events and links
as Nested arrays. Then foreign conventions are mapped into ``SpanAttributes`` and redaction and the size
limit applied. The RL columns are not written here: the table's ``DEFAULT`` expressions derive them from
``SpanAttributes`` (``lightspan.schemas.ddl``).
"""

from __future__ import annotations

import base64
import json
import math
from decimal import Decimal
from typing import Any, TypeVar

from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from lightspan.schemas import ddl
from lightspan.schemas.conventions import AGL_REWARD_SPANS, TRIGGERS, map_conventions, rollout_source

from .redact import Redactor

#: What the collector writes: the otel_traces columns. ClickHouse fills the RL columns (RolloutId, tokens,
#: GapLevel, ...) from SpanAttributes, and IngestedAt, with the table's DEFAULT expressions, as for any other
#: writer.
COLUMNS: list[str] = list(ddl.OTEL_TRACES_COLUMNS)

SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")
_SERVICE_NAME = "service.name"
_ZERO_TRACE_ID = bytes(16)
_MAX_TIMESTAMP = 2**63 - 1  # DateTime64(9) is int64 ns; a later start could never be inserted


M = TypeVar("M", bound=Message)


class MalformedRequest(ValueError):
    """The request body is not a valid OTLP trace export; the message says what is wrong."""


def parse_protobuf(body: bytes, req: M) -> M:
    """Parse ``body`` into ``req`` (any OTLP export request), a decode error as :class:`MalformedRequest`."""
    try:
        req.ParseFromString(body)
    except Exception as exc:  # google.protobuf.message.DecodeError and upb variants
        raise MalformedRequest(f"body is not a protobuf {type(req).__name__}: {exc}") from None
    return req


def decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    return parse_protobuf(body, ExportTraceServiceRequest())


def decode_json(body: bytes) -> ExportTraceServiceRequest:
    """OTLP/JSON, checked strictly against the message's shapes (:mod:`.otlp_json`)."""
    from .otlp_json import parse

    return parse(body, ExportTraceServiceRequest())


class Checked:
    """What a request holds, counted at the door: storable items, rejected ones and why."""

    __slots__ = ("accepted", "rejected", "errors")

    def __init__(self) -> None:
        self.accepted = 0
        self.rejected = 0
        self.errors: list[str] = []

    def error_message(self) -> str:
        if not self.errors:
            return ""
        more = f" (and {len(self.errors) - 3} more)" if len(self.errors) > 3 else ""
        return "; ".join(self.errors[:3]) + more

    def add(self, problem: str | None) -> None:
        """Count one item: storable when ``problem`` is None, else rejected (the first 10 reasons kept)."""
        if problem is None:
            self.accepted += 1
        else:
            self.rejected += 1
            if len(self.errors) < 10:
                self.errors.append(problem)


def _span_problem(span: Any) -> str | None:
    trace_id, span_id = span.trace_id, span.span_id
    if len(trace_id) != 16 or len(span_id) != 8 or trace_id == _ZERO_TRACE_ID:
        return (
            f"span {span.name!r}: trace_id must be 16 bytes (not all zero) and span_id 8 bytes "
            f"(got {len(trace_id)} and {len(span_id)})"
        )
    events = span.events
    if span.start_time_unix_nano > _MAX_TIMESTAMP or (
        events and max(e.time_unix_nano for e in events) > _MAX_TIMESTAMP
    ):
        return f"span {span.name!r}: timestamps must be before 2262-04-11 (int64 nanoseconds)"
    return None


def check_spans(req: ExportTraceServiceRequest) -> Checked:
    """Count the storable spans of ``req`` (cheap: ids and timestamps only); :func:`flatten` skips the
    others the same way, so what is acknowledged is what is stored."""
    out = Checked()
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                out.add(_span_problem(span))
    return out


def float_str(f: float) -> str:
    """A double the way Go's JSON encoder (and so the contrib exporter) prints it: 1 not 1.0."""
    if math.isnan(f) or math.isinf(f):
        return str(f)
    if f == int(f) and abs(f) < 1e21:
        return str(int(f))
    r = repr(f)
    if "e" in r and 1e-6 <= abs(f) < 1e21:
        return format(Decimal(r), "f")
    if "e" in r:
        mant, exp = r.split("e")
        return f"{mant}e{exp[0]}{exp[1:].lstrip('0')}" if exp[0] == "-" else f"{mant}e+{exp.lstrip('+0')}"
    return r


def _raw(v: Any) -> Any:
    """An AnyValue as a plain Python value (for JSON encoding of arrays and maps)."""
    w = v.WhichOneof("value")
    if w == "string_value":
        return v.string_value
    if w == "int_value":
        return v.int_value
    if w == "double_value":
        return v.double_value
    if w == "bool_value":
        return v.bool_value
    if w == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    if w == "array_value":
        return [_raw(x) for x in v.array_value.values]
    if w == "kvlist_value":
        return {kv.key: _raw(kv.value) for kv in v.kvlist_value.values}
    return None


def _slow_str(v: Any, w: str | None) -> str:
    if w == "int_value":
        return str(v.int_value)
    if w == "bool_value":
        return "true" if v.bool_value else "false"
    if w == "double_value":
        return float_str(v.double_value)
    if w == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    if w in ("array_value", "kvlist_value"):
        return json.dumps(_raw(v), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return ""


def attrs_to_dict(kvs: Any) -> dict[str, str]:
    """Attribute values as strings. Strings (nearly all GenAI attributes) skip ``WhichOneof``: a
    non-empty ``string_value`` can only come from the string member of the oneof."""
    out = {}
    for kv in kvs:
        v = kv.value
        s = v.string_value
        if s:
            out[kv.key] = s
        else:
            w = v.WhichOneof("value")
            out[kv.key] = s if w == "string_value" else _slow_str(v, w)
    return out


class Flattened:
    """Columns for one insert: ``columns[name]`` lists, ``rows`` spans, plus what was rejected and why."""

    __slots__ = ("columns", "rows", "rejected", "errors", "no_rollout")

    def __init__(self, columns: list[str] | None = None) -> None:
        self.columns: dict[str, list] = {c: [] for c in (columns or COLUMNS)}
        self.rows = 0
        self.rejected = 0
        self.errors: list[str] = []
        self.no_rollout = 0  # spans with no rollout id of their own (their trace stands in)

    def extend(self, other: Flattened) -> None:
        for name, col in self.columns.items():
            col.extend(other.columns[name])
        self.rows += other.rows
        self.rejected += other.rejected
        self.no_rollout += other.no_rollout

    def error_message(self) -> str:
        if not self.errors:
            return ""
        more = f" (and {len(self.errors) - 3} more)" if len(self.errors) > 3 else ""
        return "; ".join(self.errors[:3]) + more


def window(items: Any, pos: int, skip: int, limit: int | None) -> Any:
    """The part of a repeated field (whose first element is item ``pos`` of the request) that falls in
    ``[skip, skip + limit)``: the writer flattens a large request in slices of ``batch_max_spans``."""
    if limit is None and not skip:
        return items
    n = len(items)
    lo = max(0, skip - pos)
    hi = n if limit is None else min(n, skip + limit - pos)
    if lo == 0 and hi == n:
        return items
    return items[lo:hi] if hi > lo else ()


def flatten(
    req: ExportTraceServiceRequest, redactor: Redactor | None = None, skip: int = 0, take: int | None = None
) -> Flattened:
    """Rows of the spans table for every storable span in ``req`` (or in spans ``[skip, skip + take)``);
    the others are counted as rejected."""
    out = Flattened()
    c = out.columns
    ts, tid, sid, psid, tstate = c["Timestamp"], c["TraceId"], c["SpanId"], c["ParentSpanId"], c["TraceState"]
    sname, skind, svc, rattr = c["SpanName"], c["SpanKind"], c["ServiceName"], c["ResourceAttributes"]
    scname, scver, sattr, dur = c["ScopeName"], c["ScopeVersion"], c["SpanAttributes"], c["Duration"]
    stcode, stmsg = c["StatusCode"], c["StatusMessage"]
    ev_ts, ev_name, ev_attr = c["Events.Timestamp"], c["Events.Name"], c["Events.Attributes"]
    ln_tid, ln_sid, ln_ts, ln_attr = (
        c["Links.TraceId"],
        c["Links.SpanId"],
        c["Links.TraceState"],
        c["Links.Attributes"],
    )
    redact = redactor.apply if redactor is not None and redactor.active else None
    limit = redactor.limit if redactor is not None and redactor.max_attribute_bytes else None
    errors = out.errors
    check_conventions = TRIGGERS.isdisjoint
    no_rollout = rollout_source
    empty: list = []  # shared by spans without events/links; never mutated
    pos = 0
    for rs in req.resource_spans:
        if take is not None and pos >= skip + take:
            break
        res = attrs_to_dict(rs.resource.attributes)
        if redact:
            redact(res)
        if limit:
            limit(res)
        service = res.get(_SERVICE_NAME, "")
        for ss in rs.scope_spans:
            scope = ss.scope
            scope_name, scope_version = scope.name, scope.version
            spans = window(ss.spans, pos, skip, take)
            pos += len(ss.spans)
            for span in spans:
                problem = _span_problem(span)
                if problem is not None:
                    out.rejected += 1
                    errors.append(problem)
                    continue
                trace_id, span_id = span.trace_id, span.span_id
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                name = span.name
                events = span.events
                a = attrs_to_dict(span.attributes)
                if not check_conventions(a) or name in AGL_REWARD_SPANS:
                    map_conventions(a, name)
                if no_rollout(a) == "trace":
                    out.no_rollout += 1
                if redact:
                    redact(a)
                if limit:
                    limit(a)
                ts.append(start)
                tid.append(trace_id.hex())
                sid.append(span_id.hex())
                psid.append(span.parent_span_id.hex())
                tstate.append(span.trace_state)
                sname.append(name)
                kind = span.kind
                skind.append(SPAN_KINDS[kind] if 0 <= kind < 6 else "Unspecified")
                svc.append(service)
                rattr.append(res)
                scname.append(scope_name)
                scver.append(scope_version)
                sattr.append(a)
                dur.append(end - start if end > start else 0)
                status = span.status
                code = status.code
                stcode.append(STATUS_CODES[code] if 0 <= code < 3 else "Unset")
                stmsg.append(status.message)
                if events:
                    ev_ts.append([e.time_unix_nano for e in events])
                    ev_name.append([e.name for e in events])
                    ev_attr.append([attrs_to_dict(e.attributes) for e in events])
                else:
                    ev_ts.append(empty)
                    ev_name.append(empty)
                    ev_attr.append(empty)
                links = span.links
                if links:
                    ln_tid.append([ln.trace_id.hex() for ln in links])
                    ln_sid.append([ln.span_id.hex() for ln in links])
                    ln_ts.append([ln.trace_state for ln in links])
                    ln_attr.append([attrs_to_dict(ln.attributes) for ln in links])
                else:
                    ln_tid.append(empty)
                    ln_sid.append(empty)
                    ln_ts.append(empty)
                    ln_attr.append(empty)
    out.rows = len(ts)
    return out


def span_count(req: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
