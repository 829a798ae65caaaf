"""Content-capture settings shared by every instrumentor and decorator.

Resolved as: the argument given to :func:`lightspan.instrumentation.configure`, then the
environment (``LIGHTSPAN_CAPTURE_CONTENT``, falling back to the standard
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``; ``LIGHTSPAN_MAX_ATTRIBUTE_BYTES``), then
the defaults (capture on: prompts and completions are the RL training data; 64 KiB per attribute).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lightspan.schemas import env

_log = logging.getLogger(__name__)

#: ``redact(attribute_key, value) -> value``: called on every content value before it is serialized.
#: Return the (possibly edited) value, or ``None`` to drop the attribute. Errors drop the attribute.
RedactHook = Callable[[str, Any], Any]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _env_bool(name: str) -> bool | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    _log.warning("%s=%r is not a boolean (true/false); using the default", name, raw)
    return None


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
        if value <= 0:
            raise ValueError
        return value
    except ValueError:
        _log.warning("%s=%r is not a positive integer; using %d", name, raw, default)
        return default


@dataclass
class Settings:
    """What the instrumentation records besides metadata."""

    capture_content: bool = True
    max_attribute_bytes: int = env.DEFAULT_MAX_ATTRIBUTE_BYTES
    redact: RedactHook | None = None


def settings_from_env() -> Settings:
    capture = _env_bool(env.LIGHTSPAN_CAPTURE_CONTENT)
    if capture is None:
        capture = _env_bool(env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)
    return Settings(
        capture_content=True if capture is None else capture,
        max_attribute_bytes=_env_int(env.LIGHTSPAN_MAX_ATTRIBUTE_BYTES, env.DEFAULT_MAX_ATTRIBUTE_BYTES),
    )


_current: Settings | None = None


def get_settings() -> Settings:
    """The active settings (read from the environment on first use)."""
    global _current
    if _current is None:
        _current = settings_from_env()
    return _current


def update_settings(
    *,
    capture_content: bool | None = None,
    max_attribute_bytes: int | None = None,
    redact: RedactHook | None = None,
) -> Settings:
    """Override settings; ``None`` keeps the environment's (or default) value."""
    global _current
    base = settings_from_env()
    if capture_content is not None:
        base.capture_content = bool(capture_content)
    if max_attribute_bytes is not None:
        if not isinstance(max_attribute_bytes, int) or max_attribute_bytes <= 0:
            raise ValueError(f"max_attribute_bytes must be a positive integer, got {max_attribute_bytes!r}.")
        base.max_attribute_bytes = max_attribute_bytes
    if redact is not None:
        if not callable(redact):
            raise TypeError(f"redact must be a callable redact(key, value) -> value, got {redact!r}.")
        base.redact = redact
    _current = base
    return base


def reset_settings() -> None:
    """Forget overrides; the next use reads the environment again (tests use this)."""
    global _current
    _current = None
