"""Serialize content attributes as JSON that stays valid when cut to the size limit.

Large values are shrunk by cutting the longest strings (keeping a marker) rather than the
JSON text, so a consumer can always ``json.loads`` what it reads.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from opentelemetry.trace import Span

from lightspan.schemas import attributes as A

from ._settings import get_settings

_log = logging.getLogger(__name__)

_MARK = "...[truncated]"
_DROP = object()


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def _cap_strings(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= cap else value[:cap] + _MARK
    if isinstance(value, dict):
        return {k: _cap_strings(v, cap) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_cap_strings(v, cap) for v in value]
    return value


def bounded_json(value: Any, limit: int) -> tuple[str, bool]:
    """``(text, truncated)`` with ``len(json_text.encode()) <= limit`` where at all possible.

    Strings are cut to the largest common length that fits (binary search); if even empty strings do
    not fit, trailing list items are dropped; the text always parses.
    """
    if isinstance(value, str):
        # A plain string (e.g. a tool result that is already text) is stored as is, not JSON-quoted.
        text = value
        if len(text) * 4 <= limit or len(text.encode()) <= limit:
            return text, False
        cut = text.encode()[: max(0, limit - len(_MARK.encode()))].decode(errors="ignore")
        return cut + _MARK, True
    dumped = _dumps(value)
    if len(dumped) * 4 <= limit or len(dumped.encode()) <= limit:  # UTF-8: at most 4 bytes a char
        return dumped, False
    lo, hi, best = 0, max(len(dumped), 1), None
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = _dumps(_cap_strings(value, mid))
        if len(candidate.encode()) <= limit:
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    if best is not None:
        return best, True
    shrunk = _cap_strings(value, 0)
    while isinstance(shrunk, list) and shrunk:
        shrunk = shrunk[:-1]
        candidate = _dumps(shrunk)
        if len(candidate.encode()) <= limit:
            return candidate, True
    return _dumps(None), True


def add_content(attrs: dict[str, Any], key: str, value: Any) -> None:
    """Put one content attribute (messages, tool arguments ...) into ``attrs`` if capture is on.

    Applies the redaction hook, then the size limit; adds ``lightspan.truncated`` when cut.
    Never raises: a failing hook or an unserializable value drops the attribute and logs.
    """
    settings = get_settings()
    if not settings.capture_content or value is None:
        return
    try:
        if settings.redact is not None:
            value = settings.redact(key, value)
            if value is None:
                return
        text, truncated = bounded_json(value, settings.max_attribute_bytes)
        attrs[key] = text
        if truncated:
            attrs[A.TRUNCATED] = True
    except Exception:  # never break the agent for telemetry
        _log.warning(
            "lightspan: dropped attribute %s (redaction or serialization failed)", key, exc_info=True
        )


def add_json(attrs: dict[str, Any], key: str, value: Any) -> None:
    """Put a non-content JSON attribute (token ids, logprobs) into ``attrs``: not redacted, not cut."""
    if value is None:
        return
    try:
        attrs[key] = _dumps(value)
    except Exception:
        _log.debug("lightspan: could not serialize %s", key, exc_info=True)


def set_content(span: Span, key: str, value: Any) -> None:
    """:func:`add_content` straight onto a span."""
    attrs: dict[str, Any] = {}
    add_content(attrs, key, value)
    if attrs:
        span.set_attributes(attrs)


def set_json(span: Span, key: str, value: Any) -> None:
    """:func:`add_json` straight onto a span."""
    attrs: dict[str, Any] = {}
    add_json(attrs, key, value)
    if attrs:
        span.set_attributes(attrs)
