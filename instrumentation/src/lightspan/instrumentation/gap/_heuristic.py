"""Plan without an LLM: split the query into clauses, each depending on the one before (the user
guide's fallback; safe, never parallel)."""

from __future__ import annotations

import re

from ._task import Task

__all__ = ["heuristic_decompose"]

_SPLIT = re.compile(r"\b(?:and|then|also)\b|[.?!;]+(?:\s|$)", re.I)
_TRIM = " \t\r\n,;:.-"


def heuristic_decompose(query: str) -> list[Task]:
    """``"Fetch A, then process it and report."`` -> task_1 <- task_2 <- task_3 (sequential)."""
    clauses = [c.strip(_TRIM) for c in _SPLIT.split(query)]
    clauses = [c for c in clauses if c]
    if not clauses:
        clauses = [query.strip() or "(empty query)"]
    tasks = []
    for n, clause in enumerate(clauses, 1):
        deps = {f"task_{n - 1}"} if n > 1 else set()
        tasks.append(Task(id=f"task_{n}", description=clause, dependencies=deps))
    return tasks
