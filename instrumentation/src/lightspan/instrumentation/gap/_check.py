"""Is a plan runnable as written? :func:`check_plan` says why not, as one of a few kinds.

An LLM planner being trained writes broken plans; each kind of breakage is an outcome to reward, not an
exception to crash on. ``GAPPlanner(on_invalid_plan="return")`` runs only plans this check passes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ._graph import Graph
from ._parse import _PLACEHOLDER, PlanError, parse_call, parse_plan
from ._task import Task

__all__ = ["PLAN_ERROR_KINDS", "PlanCheck", "check_plan"]

#: Why a plan cannot run: no plan at all, text that does not parse, a dependency cycle (or a node that
#: depends on itself), a node that calls no registered tool, a ``{id}`` placeholder or ``depends`` id
#: that names no node of the plan.
PLAN_ERROR_KINDS = ("empty", "unparsable", "cyclic", "unknown_tool", "dangling_reference")


@dataclass
class PlanCheck:
    """The verdict on one plan text: ``kind`` is ``"valid"`` or one of :data:`PLAN_ERROR_KINDS`."""

    kind: str
    message: str = ""
    tasks: list[Task] = field(default_factory=list)
    graph: Graph | None = None

    @property
    def valid(self) -> bool:
        return self.kind == "valid"


def check_plan(
    plan_text: str, tools: Iterable[str] | None = None, *, inputs: Iterable[str] = ()
) -> PlanCheck:
    """Parse ``plan_text`` and check it can run: acyclic, every reference resolves (to a node or one of
    the ``inputs`` names) and, when ``tools`` (names) is given, every node is a call to one of them.
    Never raises for a bad plan."""
    try:
        tasks = parse_plan(plan_text)
    except PlanError as exc:
        return PlanCheck("unparsable", str(exc))
    if not tasks:
        return PlanCheck("empty", "the text holds no <graph> nodes and no 'Task <n>:' lines")
    ids = {t.id for t in tasks}
    names = ids | set(inputs)
    for task in tasks:
        dangling = sorted(d for d in task.dependencies if d not in ids) + sorted(
            ref for ref in _PLACEHOLDER.findall(task.description) if ref not in names
        )
        if dangling:
            return PlanCheck(
                "dangling_reference",
                f"node {task.id} refers to {', '.join(dangling)}, which no node is",
                tasks,
            )
    if tools is not None:
        known = set(tools)
        for task in tasks:
            call = parse_call(task.description)
            if call is None or call.name not in known:
                what = (
                    f"calls {call.name!r}"
                    if call is not None
                    else f"is not a tool call ({task.description!r})"
                )
                return PlanCheck(
                    "unknown_tool",
                    f"node {task.id} {what}; the tools are {', '.join(sorted(known)) or 'none'}",
                    tasks,
                )
    try:
        graph = Graph.from_tasks(tasks)
    except ValueError as exc:
        return PlanCheck("cyclic", str(exc), tasks)
    return PlanCheck("valid", "", tasks, graph)
