"""lightspan.instrumentation: the agent side of lightspan.

>>> import lightspan.instrumentation as ls                      # doctest: +SKIP
>>> ls.configure(endpoint="http://localhost:4317", service_name="my-agent")
>>> with ls.rollout(task_id="q-17", attempt=0):
...     answer = my_agent(question)           # openai/anthropic/litellm calls become spans
...     ls.emit_reward(1.0 if answer == gold else 0.0)

Or, with no code at all: ``opentelemetry-instrument python agent.py``.
Importing this module is cheap: exporters and provider instrumentors load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .context import context_executor, with_context
from .processor import RolloutSpanProcessor
from .rewards import emit_reward
from .rollout import RolloutHandle, current_rollout, rollout
from .tools import tool, tool_call_id

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from ._settings import RedactHook


def configure(
    endpoint: str | None = None,
    service_name: str | None = None,
    *,
    protocol: str | None = None,
    headers: dict[str, str] | None = None,
    capture_content: bool | None = None,
    instrument: bool = True,
    max_attribute_bytes: int | None = None,
    redact: RedactHook | None = None,
    insecure: bool | None = None,
    resource_attributes: dict[str, Any] | None = None,
) -> TracerProvider:
    """Set up the global tracer provider: OTLP exporter, batching, rollout stamping; instrument.

    See :func:`lightspan.instrumentation.config.configure` for the parameters.
    """
    from .config import configure as _configure

    return _configure(
        endpoint,
        service_name,
        protocol=protocol,
        headers=headers,
        capture_content=capture_content,
        instrument=instrument,
        max_attribute_bytes=max_attribute_bytes,
        redact=redact,
        insecure=insecure,
        resource_attributes=resource_attributes,
    )


def instrument(**kwargs: Any) -> list[str]:
    """Instrument every provider library that is installed (patched when first imported)."""
    from .config import instrument as _instrument

    return _instrument(**kwargs)


def uninstrument() -> None:
    """Undo :func:`instrument`."""
    from .config import uninstrument as _uninstrument

    _uninstrument()


__all__ = [
    "RolloutHandle",
    "RolloutSpanProcessor",
    "configure",
    "context_executor",
    "current_rollout",
    "emit_reward",
    "instrument",
    "rollout",
    "tool",
    "tool_call_id",
    "uninstrument",
    "with_context",
]
