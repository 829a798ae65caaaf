"""GAP (Graph-based Agent Planning, arXiv:2510.25320): plan a query as a task DAG, run independent tasks
concurrently, and trace it as ``plan {agent}`` > ``gap.level {i}`` > ``gap.node {id}`` > tool/LLM spans.

    from lightspan.instrumentation.gap import GAPPlanner
    planner = GAPPlanner(tools=[search])
    result = await planner.execute_plan(query, plan_text=plan)

See ``docs/gap.md``.
"""

from ._check import PLAN_ERROR_KINDS, PlanCheck, check_plan
from ._graph import Graph, build_dag
from ._parse import PlanError, parse_plan
from ._planner import INVALID_PLAN_POLICIES, GAPPlanner
from ._prompt import FUNCTION_TYPES, GAP_SYSTEM_PROMPT, GAP_USER_PROMPT
from ._task import Task, TaskStatus

__all__ = [
    "FUNCTION_TYPES",
    "GAPPlanner",
    "GAP_SYSTEM_PROMPT",
    "GAP_USER_PROMPT",
    "Graph",
    "INVALID_PLAN_POLICIES",
    "PLAN_ERROR_KINDS",
    "PlanCheck",
    "PlanError",
    "Task",
    "TaskStatus",
    "build_dag",
    "check_plan",
    "parse_plan",
]
