"""Carry the caller's context (OTel span, rollout, baggage) into thread pools.

asyncio tasks copy ``contextvars`` by themselves; threads do not. ``context_executor()`` is a
``ThreadPoolExecutor`` whose submitted callables run in a copy of the submitter's context, and
``with_context(fn)`` binds the current context to one callable (for ``threading.Thread``,
``loop.run_in_executor`` or foreign pools).
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def with_context(fn: Callable[P, R]) -> Callable[P, R]:
    """Bind the current context to ``fn``: each call runs in a fresh copy of it, wherever it runs."""
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        # A copy per call: one Context cannot be entered by two threads at once.
        return ctx.copy().run(fn, *args, **kwargs)

    return bound


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` that runs every task in a copy of its submitter's context."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        ctx = contextvars.copy_context()
        return super().submit(ctx.run, fn, *args, **kwargs)


def context_executor(max_workers: int | None = None, **kwargs: Any) -> ThreadPoolExecutor:
    """A thread pool whose tasks see the submitter's OTel context, so rollout stamping carries over.

    Extra keyword arguments go to ``ThreadPoolExecutor`` (``thread_name_prefix``, ``initializer`` ...).
    """
    if max_workers is not None and (not isinstance(max_workers, int) or max_workers <= 0):
        raise ValueError(f"max_workers must be a positive integer or None, got {max_workers!r}.")
    return ContextThreadPoolExecutor(max_workers=max_workers, **kwargs)
