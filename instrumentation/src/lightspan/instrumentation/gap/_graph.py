"""The plan graph: validation, Kahn levels, critical path, and its JSON form (the ``lightspan.gap.graph``
span attribute, which is also what converters rebuild from spans)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._task import Task

__all__ = ["Graph", "build_dag"]


@dataclass
class Graph:
    """A validated DAG of tasks, partitioned into execution levels.

    Level 0 holds the tasks without dependencies; a task's level is one more than the deepest of its
    dependencies, so every task of a level can run at the same time. Build one with :meth:`from_tasks`.
    """

    tasks: list[Task]
    levels: list[list[str]]
    by_id: dict[str, Task] = field(repr=False)
    dependents: dict[str, list[str]] = field(repr=False)

    @classmethod
    def from_tasks(cls, tasks: Iterable[Task]) -> Graph:
        """Validate ``tasks`` and sort them into levels (Kahn's algorithm); sets each ``task.level``.

        Raises ``ValueError`` naming the offending tasks for duplicate ids, self-dependencies, unknown
        dependency ids and cycles (the message names the cycle).
        """
        tasks = list(tasks)
        for task in tasks:
            if not isinstance(task, Task):
                raise ValueError(f"build_dag expects Task objects, got {type(task).__name__}: {task!r}")
        by_id: dict[str, Task] = {}
        duplicates: list[str] = []
        for task in tasks:
            if task.id in by_id and task.id not in duplicates:
                duplicates.append(task.id)
            by_id.setdefault(task.id, task)
        if duplicates:
            raise ValueError(f"Duplicate task ids: {', '.join(duplicates)}")
        selfdep = [t.id for t in tasks if t.id in t.dependencies]
        if selfdep:
            raise ValueError(
                "Circular dependencies detected: " + "; ".join(f"task {i} depends on itself" for i in selfdep)
            )
        unknown = [
            (t.id, sorted(t.dependencies - by_id.keys())) for t in tasks if t.dependencies - by_id.keys()
        ]
        if unknown:
            detail = "; ".join(f"{tid} depends on {', '.join(deps)}" for tid, deps in unknown)
            raise ValueError(f"Unknown dependency ids: {detail} (known tasks: {', '.join(by_id)})")

        dependents: dict[str, list[str]] = {t.id: [] for t in tasks}
        indegree = {t.id: len(t.dependencies) for t in tasks}
        for t in tasks:
            for dep in t.dependencies:
                dependents[dep].append(t.id)
        levels: list[list[str]] = []
        frontier = [t.id for t in tasks if indegree[t.id] == 0]
        while frontier:
            levels.append(frontier)
            nxt: list[str] = []
            for tid in frontier:
                by_id[tid].level = len(levels) - 1
                for child in dependents[tid]:
                    indegree[child] -= 1
                    if indegree[child] == 0:
                        nxt.append(child)
            order = {t.id: i for i, t in enumerate(tasks)}
            frontier = sorted(nxt, key=order.__getitem__)
        placed = sum(len(level) for level in levels)
        if placed != len(tasks):
            stuck = [t.id for t in tasks if indegree[t.id] > 0]
            cycle = _find_cycle(stuck, by_id)
            raise ValueError(
                f"Circular dependencies detected: {' -> '.join(cycle)} ('->' reads 'depends on'; "
                f"tasks that cannot run: {', '.join(stuck)})"
            )
        return cls(tasks=tasks, levels=levels, by_id=by_id, dependents=dependents)

    @property
    def edges(self) -> list[tuple[str, str]]:
        """``(dependency, dependent)`` pairs, in plan order."""
        return [(dep, t.id) for t in self.tasks for dep in sorted(t.dependencies)]

    def level_tasks(self) -> dict[int, list[Task]]:
        """The levels as the user guide's ``build_dag`` returns them: ``{level: [Task, ...]}``."""
        return {i: [self.by_id[tid] for tid in ids] for i, ids in enumerate(self.levels)}

    def critical_path(self, durations: Mapping[str, float] | None = None) -> tuple[float, list[str]]:
        """Longest path through the graph by duration: the lower bound on parallel wall time.

        ``durations`` maps task id to time (default: each task's ``execution_time_ms``). Returns the length
        and the ids on the path, dependencies first.
        """
        dur = durations if durations is not None else {t.id: t.execution_time_ms for t in self.tasks}
        finish: dict[str, float] = {}
        best_parent: dict[str, str | None] = {}
        for level in self.levels:
            for tid in level:
                deps = self.by_id[tid].dependencies
                parent = max(deps, key=finish.__getitem__) if deps else None
                finish[tid] = (finish[parent] if parent else 0.0) + float(dur.get(tid, 0.0))
                best_parent[tid] = parent
        if not finish:
            return 0.0, []
        end: str | None = max(finish, key=finish.__getitem__)
        length = finish[end]
        path: list[str] = []
        while end is not None:
            path.append(end)
            end = best_parent[end]
        return length, path[::-1]

    def to_dict(self) -> dict[str, Any]:
        """``{"nodes": [{"id", "description", "depends"}], "edges": [[from, to]], "levels": [[ids]]}``."""
        return {
            "nodes": [
                {"id": t.id, "description": t.description, "depends": sorted(t.dependencies)}
                for t in self.tasks
            ],
            "edges": [list(e) for e in self.edges],
            "levels": [list(level) for level in self.levels],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Graph:
        """Rebuild a graph from :meth:`to_dict`'s form (for example a ``lightspan.gap.graph`` attribute)."""
        try:
            nodes = data["nodes"]
            tasks = [
                Task(id=n["id"], description=n.get("description", ""), dependencies=set(n.get("depends", ())))
                for n in nodes
            ]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a GAP graph (need nodes with id and depends): {exc!r}") from None
        return cls.from_tasks(tasks)

    @classmethod
    def from_json(cls, text: str) -> Graph:
        return cls.from_dict(json.loads(text))


def build_dag(tasks: Iterable[Task]) -> dict[int, list[Task]]:
    """Sort tasks into execution levels with Kahn's algorithm: ``{0: [...], 1: [...], ...}``.

    Raises ``ValueError`` for duplicate ids, self-dependencies, unknown dependency ids and cycles.
    """
    return Graph.from_tasks(tasks).level_tasks()


def _find_cycle(stuck: list[str], by_id: Mapping[str, Task]) -> list[str]:
    """Walk dependencies among the unplaceable tasks until one repeats: that loop is a cycle."""
    stuck_set = set(stuck)
    path: list[str] = []
    seen: dict[str, int] = {}
    node = stuck[0]
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = sorted(d for d in by_id[node].dependencies if d in stuck_set)[0]
    return path[seen[node] :] + [node]
