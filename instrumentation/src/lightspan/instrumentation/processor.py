"""The span processor that stamps rollout identity on every span started inside a rollout.

It reads the identity from the parent Context: first the in-process rollout handle that
:func:`lightspan.instrumentation.rollout` puts there, then W3C baggage (so a rollout continued in
another process through propagated headers stays whole). Works with spans of any tracer.
"""

from __future__ import annotations

import logging
import threading

from opentelemetry import baggage, trace
from opentelemetry.context import Context, create_key, get_current, get_value
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

from lightspan.schemas import attributes as A

_log = logging.getLogger(__name__)

#: Context key of the active :class:`~lightspan.instrumentation.rollout.RolloutHandle`.
ROLLOUT_KEY = create_key("lightspan-rollout")


class RolloutSpanProcessor(SpanProcessor):
    """Adds ``lightspan.rollout.id``, ``lightspan.task.id``, ``lightspan.attempt`` (and task type) on start."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        ctx = parent_context if parent_context is not None else get_current()
        handle = get_value(ROLLOUT_KEY, ctx)
        if handle is not None:
            span.set_attributes(handle.attributes)
            return
        rollout_id = baggage.get_baggage(A.BAGGAGE_ROLLOUT_ID, ctx)
        if rollout_id is None:
            return
        attrs = {A.ROLLOUT_ID: str(rollout_id)}
        task_id = baggage.get_baggage(A.BAGGAGE_TASK_ID, ctx)
        if task_id is not None:
            attrs[A.TASK_ID] = str(task_id)
        attempt = baggage.get_baggage(A.BAGGAGE_ATTEMPT, ctx)
        if attempt is not None:
            try:
                attrs[A.ATTEMPT] = int(attempt)
            except (TypeError, ValueError):
                _log.debug("lightspan: ignoring non-integer attempt baggage %r", attempt)
        task_type = baggage.get_baggage(A.BAGGAGE_TASK_TYPE, ctx)
        if task_type is not None:
            attrs[A.TASK_TYPE] = str(task_type)
        span.set_attributes(attrs)

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_lock = threading.Lock()


def has_rollout_processor(provider: TracerProvider) -> bool:
    multi = getattr(provider, "_active_span_processor", None)
    processors = getattr(multi, "_span_processors", ())
    return any(isinstance(p, RolloutSpanProcessor) for p in processors)


def ensure_rollout_processor(provider: object | None = None) -> bool:
    """Add the processor to ``provider`` (default: the global one) if it is an SDK provider without it.

    Returns whether the provider now stamps rollouts. Called by ``configure``, the distro and every
    instrumentor, so spans are stamped however the provider was set up.
    """
    provider = provider if provider is not None else trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        return False
    with _lock:
        if not has_rollout_processor(provider):
            provider.add_span_processor(RolloutSpanProcessor())
    return True
