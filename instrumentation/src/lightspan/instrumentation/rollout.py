"""Rollouts: one agent run on one task, the unit RL learns from.

``with rollout(task_id="t1", attempt=0):`` (or ``@rollout(task_id=...)`` on a sync or async function)
opens an ``invoke_agent {agent_name}`` span and puts the rollout identity into the OTel Context and
W3C baggage; :class:`~lightspan.instrumentation.processor.RolloutSpanProcessor` then stamps it on
every span started inside, in this thread, in asyncio tasks created inside, in thread pools through
:func:`~lightspan.instrumentation.context.context_executor`, and in other processes that receive the
propagated baggage.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opentelemetry import baggage, context, trace
from opentelemetry.trace import Span, Status, StatusCode

from lightspan.schemas import attributes as A

from .processor import ROLLOUT_KEY, ensure_rollout_processor

F = TypeVar("F", bound=Callable[..., Any])

_TRACER_NAME = "lightspan.instrumentation"


@functools.lru_cache(maxsize=1)
def get_tracer() -> trace.Tracer:
    """lightspan's tracer on the global provider (a proxy until a provider is set, then that one's)."""
    from lightspan.instrumentation.version import __version__ as version

    return trace.get_tracer(_TRACER_NAME, version)


@dataclass
class RolloutHandle:
    """The active rollout: its identity and its ``invoke_agent`` span."""

    rollout_id: str
    task_id: str | None
    attempt: int
    agent_name: str
    task_type: str | None = None
    span: Span | None = None
    attributes: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        attrs: dict[str, Any] = {A.ROLLOUT_ID: self.rollout_id, A.ATTEMPT: self.attempt}
        if self.task_id is not None:
            attrs[A.TASK_ID] = self.task_id
        if self.task_type is not None:
            attrs[A.TASK_TYPE] = self.task_type
        self.attributes = attrs


def current_rollout() -> RolloutHandle | None:
    """The rollout the caller runs in, or ``None`` outside any rollout."""
    return context.get_value(ROLLOUT_KEY)


class rollout:  # noqa: N801 - used as a context manager and decorator, like contextlib's
    """Context manager and decorator that runs code as one rollout.

    >>> with rollout(task_id="q-17", attempt=2) as r:   # doctest: +SKIP
    ...     answer = agent(question)
    ...     emit_reward(1.0 if answer == gold else 0.0)

    ``rollout_id`` defaults to a fresh UUID4 hex for every entry (every call, as a decorator).
    The span is marked error (and the exception re-raised unchanged) when the body raises.
    """

    def __init__(
        self,
        task_id: str | None = None,
        *,
        rollout_id: str | None = None,
        attempt: int = 0,
        agent_name: str = "agent",
        task_type: str | None = None,
    ) -> None:
        if task_id is not None and not isinstance(task_id, str):
            raise TypeError(f"task_id must be a string or None, got {type(task_id).__name__}: {task_id!r}.")
        if rollout_id is not None and (not isinstance(rollout_id, str) or not rollout_id):
            raise TypeError(f"rollout_id must be a non-empty string or None, got {rollout_id!r}.")
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
            raise ValueError(f"attempt must be a non-negative integer, got {attempt!r}.")
        if not isinstance(agent_name, str) or not agent_name:
            raise ValueError(f"agent_name must be a non-empty string, got {agent_name!r}.")
        self._task_id = task_id
        self._rollout_id = rollout_id
        self._attempt = attempt
        self._agent_name = agent_name
        self._task_type = task_type
        self._stack: list[tuple[object, Span, RolloutHandle]] = []

    # -- context manager ---------------------------------------------------
    def __enter__(self) -> RolloutHandle:
        ensure_rollout_processor()
        handle = RolloutHandle(
            rollout_id=self._rollout_id or uuid.uuid4().hex,
            task_id=self._task_id,
            attempt=self._attempt,
            agent_name=self._agent_name,
            task_type=self._task_type,
        )
        ctx = context.set_value(ROLLOUT_KEY, handle)
        ctx = baggage.set_baggage(A.BAGGAGE_ROLLOUT_ID, handle.rollout_id, ctx)
        ctx = baggage.set_baggage(A.BAGGAGE_ATTEMPT, str(handle.attempt), ctx)
        if handle.task_id is not None:
            ctx = baggage.set_baggage(A.BAGGAGE_TASK_ID, handle.task_id, ctx)
        if handle.task_type is not None:
            ctx = baggage.set_baggage(A.BAGGAGE_TASK_TYPE, handle.task_type, ctx)
        attrs = {
            A.GEN_AI_OPERATION_NAME: A.OP_INVOKE_AGENT,
            A.GEN_AI_AGENT_NAME: handle.agent_name,
            **handle.attributes,
        }
        span = get_tracer().start_span(
            A.SPAN_INVOKE_AGENT.format(name=handle.agent_name), context=ctx, attributes=attrs
        )
        handle.span = span
        token = context.attach(trace.set_span_in_context(span, ctx))
        self._stack.append((token, span, handle))
        return handle

    def __exit__(self, exc_type, exc, tb) -> None:
        token, span, _handle = self._stack.pop()
        try:
            if exc is not None:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                span.set_attribute(A.ERROR_TYPE, type(exc).__qualname__)
            span.end()
        finally:
            context.detach(token)

    async def __aenter__(self) -> RolloutHandle:
        return self.__enter__()

    async def __aexit__(self, exc_type, exc, tb) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- decorator -----------------------------------------------------------
    def _fresh(self) -> rollout:
        return rollout(
            self._task_id,
            rollout_id=self._rollout_id,
            attempt=self._attempt,
            agent_name=self._agent_name,
            task_type=self._task_type,
        )

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._fresh():
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
