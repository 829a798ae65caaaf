"""The unit of a GAP plan: one task (graph node), its status and its outcome."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["Task", "TaskStatus"]


class TaskStatus(str, Enum):
    """Lifecycle of a task; a ``str`` so ``task.status == "complete"`` reads as the user guide shows."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    #: Not run because a dependency failed or was skipped.
    SKIPPED = "skipped"

    def __str__(self) -> str:  # 3.11 changed str() of mixed-in enums; keep the plain value
        return self.value


@dataclass(eq=False)
class Task:
    """One node of the plan graph.

    ``dependencies`` holds the ids of the tasks whose results this one needs; ``level`` is filled in by
    :func:`build_dag` (0 for tasks without dependencies). Every field but ``id`` has a default so a plan can
    be written by hand: ``Task(id="task_2", dependencies={"task_1"})``.
    """

    id: str
    description: str = ""
    dependencies: set[str] = field(default_factory=set)
    result: Any | None = None
    status: TaskStatus = TaskStatus.PENDING
    error: str | None = None
    execution_time_ms: float = 0.0
    level: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise ValueError(f"Task id must be a non-empty string, got {self.id!r}")
        if isinstance(self.dependencies, str):
            self.dependencies = {self.dependencies}
        elif not isinstance(self.dependencies, set):
            self.dependencies = set(_as_iterable(self.dependencies, self.id))
        if isinstance(self.status, TaskStatus):
            return
        try:
            self.status = TaskStatus(self.status)
        except ValueError:
            allowed = ", ".join(s.value for s in TaskStatus)
            raise ValueError(
                f"Task {self.id}: status must be one of {allowed}, got {self.status!r}"
            ) from None

    def reset(self) -> None:
        """Forget a previous run's outcome so the task can run again."""
        self.result = None
        self.status = TaskStatus.PENDING
        self.error = None
        self.execution_time_ms = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The task as plain data (the ``tasks`` entries of ``execute_plan``'s result)."""
        return {
            "id": self.id,
            "description": self.description,
            "dependencies": sorted(self.dependencies),
            "level": self.level,
            "status": self.status.value,
            "result": self.result,
            "error": self.error,
            "execution_time_ms": self.execution_time_ms,
        }


def _as_iterable(value: Any, task_id: str) -> Iterable[str]:
    if value is None:
        return ()
    try:
        deps = list(value)
    except TypeError:
        raise ValueError(f"Task {task_id}: dependencies must be a set of task ids, got {value!r}") from None
    for dep in deps:
        if not isinstance(dep, str):
            raise ValueError(f"Task {task_id}: dependency ids must be strings, got {dep!r}")
    return deps
