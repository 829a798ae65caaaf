"""Strict OTLP/JSON: check a decoded JSON document against the protobuf shapes and build the message.

The OTLP/JSON encoding is proto3's JSON mapping with two exceptions (trace and span ids are hex, not
base64; enums are integers, though names are accepted here too). What this checks, walking the
message's descriptor, so traces and logs share one walker:

- every known field has its type: strings are strings, ``AnyValue`` is an object with at most one
  member, messages are objects, repeated fields are arrays, booleans are booleans;
- integers are JSON numbers or decimal strings, in range (int64 may be quoted, as proto3 JSON asks);
  doubles are numbers or ``"NaN"``/``"Infinity"``/``"-Infinity"``;
- ``traceId``/``spanId``/``parentSpanId`` are hex (their length is checked later, per span, as for
  protobuf: a span with a wrong-length id is rejected in ``partial_success``, the others stored);
  ``bytesValue`` is base64; enum values are known;
- nesting (``AnyValue`` in arrays and maps) stops at :data:`MAX_DEPTH`.

Unknown fields are ignored, as the OTLP spec requires of receivers. A violation raises
:class:`~lightspan.collector.otlp.MalformedRequest` naming the JSON path:
``resourceSpans[0].scopeSpans[0].spans[2].attributes[0].value: expected an AnyValue object, got a string``.
Field names are the lowerCamelCase the spec uses; the original snake_case names are accepted too
(proto3 JSON parsers accept both).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from .otlp import MalformedRequest

#: Deepest nesting of messages accepted (a span's AnyValue arrays/maps count one level each).
MAX_DEPTH = 64

_HEX_FIELDS = frozenset({"trace_id", "span_id", "parent_span_id"})
_INT_RANGES = {
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
}
_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class _Bad(Exception):
    """A violation on its way up; each level prefixes its part of the path."""

    def __init__(self, path: str, message: str):
        self.path, self.message = path, message


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _int(value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise _Bad("", "expected an integer, got a boolean")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise _Bad("", f"expected an integer, got {value!r}")
        n = int(value)
    elif isinstance(value, str):
        try:
            n = int(value.strip(), 10) if value.strip().lstrip("-").isdigit() else int(float(value))
        except (ValueError, OverflowError):
            raise _Bad("", f"expected an integer, got {value[:40]!r}") from None
    else:
        raise _Bad("", f"expected an integer, got {_kind(value)}")
    if not lo <= n <= hi:
        raise _Bad("", f"integer {n} is out of range [{lo}, {hi}]")
    return n


def _double(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        if value in _FLOATS:
            return _FLOATS[value]
        try:
            return float(value)
        except ValueError:
            pass
    raise _Bad("", f"expected a number, got {_kind(value)}")


def _enum(value: Any, field: FieldDescriptor) -> int:
    enum = field.enum_type
    assert enum is not None  # an enum field
    if isinstance(value, str) and not value.lstrip("-").isdigit():
        known = enum.values_by_name.get(value)
        if known is None:
            raise _Bad("", f"unknown {enum.name} {value[:40]!r}")
        return known.number
    n = _int(value, -(2**31), 2**31 - 1)
    if n not in enum.values_by_number:
        raise _Bad("", f"unknown {enum.name} {n} (expected one of {sorted(enum.values_by_number)})")
    return n


_Plan = dict[str, tuple[FieldDescriptor, bool]]
_PLANS: dict[str, _Plan] = {}


def _plan(desc: Descriptor) -> _Plan:
    """JSON key -> (field, is repeated), for both spellings of every field; computed once per message."""
    plan = _PLANS.get(desc.full_name)
    if plan is None:
        plan = {}
        for f in desc.fields:
            repeated = bool(f.is_repeated)
            plan[f.json_name] = (f, repeated)
            plan[f.name] = (f, repeated)
        _PLANS[desc.full_name] = plan
    return plan


def _scalar(field: FieldDescriptor, value: Any) -> Any:
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            raise _Bad("", f"expected a string, got {_kind(value)}")
        return value
    if t == FieldDescriptor.TYPE_BYTES:
        if not isinstance(value, str):
            raise _Bad(
                "",
                f"expected a {'hex' if field.name in _HEX_FIELDS else 'base64'} string, got {_kind(value)}",
            )
        if field.name in _HEX_FIELDS:
            try:
                return bytes.fromhex(value)
            except ValueError:
                raise _Bad("", f"expected a hex string, got {value[:40]!r}") from None
        try:
            return (
                base64.b64decode(value, validate=True)
                if "-" not in value and "_" not in value
                else (base64.urlsafe_b64decode(value))
            )
        except (binascii.Error, ValueError):
            raise _Bad("", f"expected a base64 string, got {value[:40]!r}") from None
    if t == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise _Bad("", f"expected true or false, got {_kind(value)}")
        return value
    if t == FieldDescriptor.TYPE_ENUM:
        return _enum(value, field)
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return _double(value)
    lo_hi = _INT_RANGES.get(t)
    if lo_hi is None:  # pragma: no cover - OTLP uses no other scalar type
        raise _Bad("", f"unsupported field type {t}")
    return _int(value, *lo_hi)


_KEYVALUE = "opentelemetry.proto.common.v1.KeyValue"


def _string_kv(target: Any, item: Any) -> bool:
    """The common attribute ``{"key": "k", "value": {"stringValue": "v"}}`` added without the general
    walk (about half of the JSON path's cost); False leaves anything else to :func:`_fill`."""
    if type(item) is not dict or len(item) != 2:
        return False
    key, value = item.get("key"), item.get("value")
    if type(key) is not str or type(value) is not dict or len(value) != 1:
        return False
    text = value.get("stringValue")
    if type(text) is not str:
        return False
    target.add(key=key).value.string_value = text
    return True


def _fill(msg: Any, doc: Any, depth: int) -> None:
    """Check ``doc`` against ``msg``'s type and copy it in; raise :class:`_Bad` on the first violation."""
    desc = msg.DESCRIPTOR
    if not isinstance(doc, dict):
        raise _Bad(
            "",
            f"expected {'an AnyValue object' if desc.name == 'AnyValue' else 'an object'}, got {_kind(doc)}",
        )
    if depth > MAX_DEPTH:
        raise _Bad("", f"nested deeper than {MAX_DEPTH} levels")
    plan = _plan(desc)
    oneof_seen: str | None = None
    for key, value in doc.items():
        entry = plan.get(key)
        if entry is None or value is None:
            continue  # unknown fields are ignored (OTLP spec); null means the default, as in proto3 JSON
        field, repeated = entry
        try:
            if field.containing_oneof is not None:
                if oneof_seen is not None and oneof_seen != field.name:
                    raise _Bad("", f"has both {oneof_seen!r} and {field.name!r}; an AnyValue holds one value")
                oneof_seen = field.name
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if repeated:
                    if not isinstance(value, list):
                        raise _Bad("", f"expected an array, got {_kind(value)}")
                    target = getattr(msg, field.name)
                    keyvalues = field.message_type is not None and field.message_type.full_name == _KEYVALUE
                    for i, item in enumerate(value):
                        if keyvalues and _string_kv(target, item):
                            continue
                        try:
                            _fill(target.add(), item, depth + 1)
                        except _Bad as exc:
                            raise _Bad(f"[{i}]{exc.path}", exc.message) from None
                else:
                    sub = getattr(msg, field.name)
                    _fill(sub, value, depth + 1)
                    sub.SetInParent()
            elif repeated:
                if not isinstance(value, list):
                    raise _Bad("", f"expected an array, got {_kind(value)}")
                target = getattr(msg, field.name)
                for i, item in enumerate(value):
                    try:
                        target.append(_scalar(field, item))
                    except _Bad as exc:
                        raise _Bad(f"[{i}]{exc.path}", exc.message) from None
            else:
                setattr(msg, field.name, _scalar(field, value))
        except _Bad as exc:
            raise _Bad(f".{key}{exc.path}", exc.message) from None


def parse(body: bytes, message: Any) -> Any:
    """Parse the OTLP/JSON ``body`` into the empty protobuf ``message``; return it."""
    try:
        doc = json.loads(body)
    except RecursionError:
        raise MalformedRequest("body is not usable JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise MalformedRequest(f"OTLP/JSON body must be an object, got {_kind(doc)}")
    try:
        _fill(message, doc, 0)
    except _Bad as exc:
        raise MalformedRequest(f"{exc.path.lstrip('.')}: {exc.message}") from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH stops well before Python's limit
        raise MalformedRequest(f"body is nested deeper than {MAX_DEPTH} levels") from None
    return message
