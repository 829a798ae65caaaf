"""Per-``execute_plan`` state (query, concurrency limit, counters), carried in a context variable so
concurrent plans on one planner never share it and asyncio tasks inherit it."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunState", "current_run", "use_run"]


@dataclass
class RunState:
    query: str = ""
    max_concurrency: int = 8
    #: False for the sequential scheduler: fan-out parts run one at a time too.
    parallel: bool = True
    tool_calls: int = 0
    _limit: asyncio.Semaphore | None = field(default=None, repr=False)

    def limit(self) -> asyncio.Semaphore:
        if self._limit is None:
            self._limit = asyncio.Semaphore(self.max_concurrency)
        return self._limit


_RUN: contextvars.ContextVar[tuple[Any, RunState] | None] = contextvars.ContextVar(
    "lightspan_gap_run", default=None
)


def current_run(planner: Any) -> RunState | None:
    """The run of ``planner`` this code executes in, if any."""
    entry = _RUN.get()
    return entry[1] if entry is not None and entry[0] is planner else None


@contextlib.contextmanager
def use_run(planner: Any, run: RunState) -> Iterator[RunState]:
    token = _RUN.set((planner, run))
    try:
        yield run
    finally:
        _RUN.reset(token)
