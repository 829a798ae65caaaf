"""Content-capture settings shared by every instrumentor and decorator.

Resolved as: the argument given to :func:`lightspan.instrumentation.configure`, then the
environment (``LIGHTSPAN_CAPTURE_CONTENT``, falling back to the standard
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``; ``LIGHTSPAN_MAX_ATTRIBUTE_BYTES``), then
the defaults (capture on: prompts and completions are the RL training data; 64 KiB per attribute).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lightspan.schemas import env
from lightspan.schemas.settings import Parser, load_settings, parse_bool, parse_positive_int

#: ``redact(attribute_key, value) -> value``: called on every content value before it is serialized.
#: Return the (possibly edited) value, or ``None`` to drop the attribute. Errors drop the attribute.
RedactHook = Callable[[str, Any], Any]

#: Settings field -> environment variables, first set-and-valid wins.
_ENV: dict[str, tuple[str, ...]] = {
    "capture_content": (
        env.LIGHTSPAN_CAPTURE_CONTENT,
        env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT,
    ),
    "max_attribute_bytes": (env.LIGHTSPAN_MAX_ATTRIBUTE_BYTES,),
}
#: The settings ``configure()`` and the environment may set (``redact`` is a callable: argument only).
_PARSERS: dict[str, Parser | None] = {
    "capture_content": parse_bool,
    "max_attribute_bytes": parse_positive_int,
}


@dataclass
class Settings:
    """What the instrumentation records besides metadata."""

    capture_content: bool = True
    max_attribute_bytes: int = env.DEFAULT_MAX_ATTRIBUTE_BYTES
    redact: RedactHook | None = None


def settings_from_env() -> Settings:
    """Defaults, then the environment; a bad variable logs a warning and is skipped."""
    return Settings(**load_settings(_PARSERS, env=_ENV))


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
    explicit = {"capture_content": capture_content, "max_attribute_bytes": max_attribute_bytes}
    base = Settings(**load_settings(_PARSERS, env=_ENV, overrides=explicit))
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
