"""``GAPPlanner``: plan (LLM or given text or heuristic) -> DAG -> parallel execution -> answer,
traced as ``plan {agent}`` > ``gap.level {i}`` > ``gap.node {id}`` > tool / LLM spans."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from lightspan.schemas import attributes as A

from .._content import set_content
from ..rollout import get_tracer
from ._chat import complete_reply, describe_llm
from ._check import check_plan
from ._graph import Graph, build_dag
from ._heuristic import heuristic_decompose
from ._parse import PlanError, parse_plan, render_result
from ._prompt import answer_messages, planning_messages
from ._run import RunState, current_run, use_run
from ._schedule import Scheduler, level_attributes
from ._task import Task, TaskStatus
from ._tools import build_registry

__all__ = ["GAPPlanner", "INVALID_PLAN_POLICIES"]

_log = logging.getLogger(__name__)

#: What ``GAPPlanner`` does with an LLM-written plan that cannot run (see ``on_invalid_plan``).
INVALID_PLAN_POLICIES = ("heuristic", "raise", "return")
Messages = list[dict[str, str]]
PlanPrompt = Callable[[str, Mapping[str, Any]], Messages]
AnswerPrompt = Callable[[str, list[Task], Messages], Messages]


@dataclass
class _Planned:
    """What planning produced: the tasks (empty when the plan is invalid) and how it got them."""

    tasks: list[Task]
    source: str
    messages: Messages = field(default_factory=list)  # the planning conversation, reply included
    reply: str | None = None
    tokens: int | None = None
    error: dict[str, str] | None = None  # {"kind", "message"} of an invalid plan


class GAPPlanner:
    """Graph-based Agent Planning: decompose a query into a task DAG and run independent tasks at once.

    >>> planner = GAPPlanner(tools=[search])                       # doctest: +SKIP
    >>> result = await planner.execute_plan("Compare Paris and London", plan_text=plan)  # doctest: +SKIP

    :param llm: chat client for planning, text nodes and the answer: ``openai.OpenAI``/``AsyncOpenAI``
        (or Anthropic) client, or a callable ``(messages) -> str`` (sync or async). ``None``: heuristic
        planning, text nodes echo their text, the answer is the last tasks' results.
    :param model: model name passed to the client (required for client objects).
    :param tools: dict name -> callable or list of callables (sync or async); plain ones are wrapped
        with ``lightspan.instrumentation.tool`` so each call is an ``execute_tool`` span.
    :param agent_name: names the ``plan {agent}`` span (``gen_ai.agent.name``).
    :param max_concurrency: most tool/LLM calls of one plan in flight at once (also the thread pool size
        for sync tools).
    :param node_timeout_s: per-node time limit (``None``: none); a node past it fails, its dependents are
        skipped. A sync tool cannot be interrupted: its thread finishes in the background.
    :param scheduler: ``"dependency"`` (start each node once its own dependencies are done; default),
        ``"level"`` (the paper's level-synchronous execution) or ``"sequential"`` (one call at a time).
    :param fanout_separator: ``search("A | B")`` calls the tool once per part, concurrently (``None``: off).
    :param llm_client: the user guide's name for ``llm``.
    :param history_limit: how many past results ``execution_history`` keeps (statistics count all).
    :param plan_prompt: ``(query, tools) -> messages`` for the planning call (default: the GAP prompt).
    :param answer_prompt: ``(query, tasks, conversation) -> messages`` for the answer call, where
        ``conversation`` is the planning messages plus the plan reply (``[]`` for a given plan); when set,
        the answer call is made for every valid plan, even one whose nodes all failed.
    :param on_invalid_plan: what an LLM plan that cannot run (see :func:`check_plan`) leads to:
        ``"heuristic"`` (fall back to the heuristic plan), ``"raise"`` (``PlanError``) or ``"return"``
        (no node runs and no answer call is made; the result says ``plan_valid=False`` and why). With
        ``"raise"``/``"return"`` every node must call a registered tool, and a given ``plan_text`` is
        checked the same way.
    """

    def __init__(
        self,
        llm: Any = None,
        *,
        model: str | None = None,
        tools: Mapping[str, Callable[..., Any]] | Iterable[Callable[..., Any]] | None = None,
        agent_name: str = "gap",
        max_concurrency: int = 8,
        node_timeout_s: float | None = 30.0,
        scheduler: str = "dependency",
        fanout_separator: str | None = "|",
        llm_client: Any = None,
        history_limit: int = 1000,
        plan_prompt: PlanPrompt | None = None,
        answer_prompt: AnswerPrompt | None = None,
        on_invalid_plan: str = "heuristic",
    ) -> None:
        if llm is not None and llm_client is not None:
            raise ValueError("pass llm or llm_client (its older name), not both")
        llm = llm if llm is not None else llm_client
        if llm is not None:
            describe_llm(llm)
        if scheduler not in A.GAP_SCHEDULERS:
            raise ValueError(f"scheduler must be one of {', '.join(A.GAP_SCHEDULERS)}, got {scheduler!r}")
        if not isinstance(max_concurrency, int) or isinstance(max_concurrency, bool) or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be a positive integer, got {max_concurrency!r}")
        if node_timeout_s is not None and not (
            isinstance(node_timeout_s, (int, float)) and node_timeout_s > 0
        ):
            raise ValueError(
                f"node_timeout_s must be a positive number of seconds or None, got {node_timeout_s!r}"
            )
        if not isinstance(agent_name, str) or not agent_name:
            raise ValueError(f"agent_name must be a non-empty string, got {agent_name!r}")
        if fanout_separator is not None and (
            not isinstance(fanout_separator, str) or not fanout_separator.strip()
        ):
            raise ValueError(f"fanout_separator must be a non-blank string or None, got {fanout_separator!r}")
        if on_invalid_plan not in INVALID_PLAN_POLICIES:
            raise ValueError(
                f"on_invalid_plan must be one of {', '.join(INVALID_PLAN_POLICIES)}, got {on_invalid_plan!r}"
            )
        self.llm = llm
        self.model = model
        self.plan_prompt = plan_prompt
        self.answer_prompt = answer_prompt
        self.on_invalid_plan = on_invalid_plan
        self.tools: dict[str, Any] = build_registry(tools)
        self.agent_name = agent_name
        self.max_concurrency = max_concurrency
        self.node_timeout_s = node_timeout_s
        self.scheduler = scheduler
        self.fanout_separator = fanout_separator
        self.execution_history: deque[dict[str, Any]] = deque(maxlen=history_limit)
        self._totals = {"speedup": 0.0, "tasks": 0.0, "levels": 0.0, "time_ms": 0.0, "n": 0}
        self._scheduler = Scheduler()  # runs the nodes; owns the thread pool for sync tools and clients

    # -- the user guide's API --------------------------------------------------------------------
    def parse_plan(self, plan_text: str) -> list[Task]:
        """Parse a ``<plan>``/``<graph>`` text into tasks (see :func:`parse_plan`)."""
        return parse_plan(plan_text)

    def build_dag(self, tasks: Iterable[Task]) -> dict[int, list[Task]]:
        """``{level: [Task, ...]}`` by Kahn's algorithm; ``ValueError`` on cycles and bad ids."""
        return build_dag(tasks)

    async def execute_level(self, level: list[Task], context: dict[str, Any]) -> dict[str, Any]:
        """Run one level's tasks concurrently under a ``gap.level`` span.

        ``context`` maps task id -> result of the tasks already done; the results of this level's
        completed tasks are added to it. Returns ``{task_id: {"result", "execution_time_ms", "status",
        "error"}}``. A task whose dependency is missing from ``context`` is skipped.
        """
        index = next((t.level for t in level if t.level is not None), 0)
        span = get_tracer().start_span(
            A.SPAN_GAP_LEVEL.format(index=index), attributes=level_attributes(index, len(level))
        )
        run = current_run(self)
        try:
            with (
                trace.use_span(span, end_on_exit=False),
                use_run(self, run or RunState(max_concurrency=self.max_concurrency)),
            ):
                if run is not None and not run.parallel:
                    results = [await self._scheduler.run_node(self, t, context, span) for t in level]
                else:
                    results = await asyncio.gather(
                        *(self._scheduler.run_node(self, t, context, span) for t in level)
                    )
        finally:
            span.end()
        return {t.id: obs for t, obs in zip(level, results, strict=True)}

    async def execute_task(self, task: Task, context: Mapping[str, Any]) -> Any:
        """A node's work: a registered tool call, else an LLM turn (when there is an LLM), else its text.

        Override to customize how one task runs; both schedulers call it. Raises on failure.
        """
        return await self._scheduler.run_task(self, current_run(self), task, context)

    async def execute_plan(
        self,
        query: str,
        plan_text: str | None = None,
        *,
        plan_options: Mapping[str, Any] | None = None,
        answer_options: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Plan, build the DAG, run it, synthesize the answer; see the module docs for the result keys.

        ``plan_options`` / ``answer_options``: extra request fields for the planning / answer call of a
        client object (``temperature``, ``seed``, ``max_tokens``, ``logprobs``, ``extra_body``, ...).
        ``inputs``: named values a node may use as ``{name}`` like a node's result (e.g. the entities
        of a delexicalized query: ``"city of {q1} ?"`` with ``inputs={"q1": "alice"}``).
        """
        inputs = dict(inputs or {})
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        started = time.perf_counter()
        attrs = {
            A.GEN_AI_OPERATION_NAME: A.OP_PLAN,
            A.GEN_AI_AGENT_NAME: self.agent_name,
            A.GAP_SCHEDULER: self._effective_scheduler(),
        }
        if self.model:
            attrs[A.GEN_AI_REQUEST_MODEL] = self.model
        with get_tracer().start_as_current_span(
            A.SPAN_GAP_PLAN.format(agent=self.agent_name), attributes=attrs
        ) as span:
            if span.is_recording():
                set_content(span, A.GAP_QUERY, query)
            run = RunState(
                query=query, max_concurrency=self.max_concurrency, parallel=self.scheduler != "sequential"
            )
            with use_run(self, run):
                planned = await self._plan(query, plan_text, span, plan_options, inputs)
                if planned.error is not None:
                    result = self._invalid_result(query, planned, run, started)
                    span.set_attributes(
                        {A.GAP_LEVEL_COUNT: 0, A.GAP_NODE_COUNT: 0, A.GAP_PLAN_SOURCE: planned.source}
                    )
                    self._record(result)
                    return result
                tasks, source = planned.tasks, planned.source
                graph = Graph.from_tasks(tasks)
                for task in graph.tasks:
                    task.reset()
                graph_dict = graph.to_dict()
                if span.is_recording():
                    span.set_attributes(
                        {
                            A.GAP_GRAPH: json.dumps(graph_dict, ensure_ascii=False, separators=(",", ":")),
                            A.GAP_LEVEL_COUNT: len(graph.levels),
                            A.GAP_NODE_COUNT: len(graph.tasks),
                            A.GAP_PLAN_SOURCE: source,
                        }
                    )
                exec_started = time.perf_counter()
                observations = await self._execute(graph, inputs)
                execution_ms = (time.perf_counter() - exec_started) * 1000.0
                answer, answer_tokens = await self._answer(query, graph, planned.messages, answer_options)
            result = self._result(query, graph, observations, answer, source, run, started, execution_ms)
            result["graph"] = graph_dict
            result.update(_plan_fields(planned, answer_tokens))
            if span.is_recording():
                set_content(span, A.GAP_ANSWER, answer)
                span.set_attribute(A.GAP_SPEEDUP, result["speedup_factor"])
        self._record(result)
        return result

    def get_statistics(self) -> dict[str, float]:
        """Averages over every ``execute_plan`` call of this planner."""
        n = self._totals["n"]
        if not n:
            return {
                "avg_speedup": 0.0,
                "avg_tasks": 0.0,
                "avg_levels": 0.0,
                "avg_time_ms": 0.0,
                "total_executions": 0,
            }
        return {
            "avg_speedup": self._totals["speedup"] / n,
            "avg_tasks": self._totals["tasks"] / n,
            "avg_levels": self._totals["levels"] / n,
            "avg_time_ms": self._totals["time_ms"] / n,
            "total_executions": n,
        }

    def close(self) -> None:
        """Shut down the thread pool used for sync tools and sync LLM clients."""
        self._scheduler.close()

    # -- internals --------------------------------------------------------------------------------
    def _effective_scheduler(self) -> str:
        # A subclass that overrides execute_level (the guide's customization hook) gets level-synchronous
        # execution, since that is the method it customizes.
        if self.scheduler == "dependency" and type(self).execute_level is not GAPPlanner.execute_level:
            return "level"
        return self.scheduler

    async def _plan(
        self,
        query: str,
        plan_text: str | None,
        span: trace.Span,
        options: Mapping[str, Any] | None,
        inputs: Mapping[str, Any],
    ) -> _Planned:
        strict = self.on_invalid_plan != "heuristic"
        if plan_text is not None:
            if strict:
                return self._checked(plan_text, "given", span, inputs)
            tasks = self.parse_plan(plan_text)
            if not tasks:
                raise PlanError(
                    "plan_text holds no plan: expected a <graph> of <node id=...> elements or "
                    "'Task <n>: <text> | Dependencies: ...' lines"
                )
            return _Planned(tasks, "given")
        if self.llm is not None:
            pool = self._scheduler.pool(self.max_concurrency)
            prompt = (self.plan_prompt or planning_messages)(query, self.tools)
            reply = await complete_reply(self.llm, self.model, prompt, pool, options)
            conversation = [*prompt, {"role": "assistant", "content": reply.text}]
            if strict:
                planned = self._checked(reply.text, "llm", span, inputs)
                planned.messages, planned.reply, planned.tokens = (
                    conversation,
                    reply.text,
                    reply.output_tokens,
                )
                return planned
            try:
                tasks = self.parse_plan(reply.text)
                Graph.from_tasks(tasks)
            except ValueError as exc:
                _log.warning("GAP: the LLM's plan was unusable (%s); using the heuristic plan", exc)
                span.add_event("gap.plan_rejected", {"reason": str(exc)})
            else:
                if tasks:
                    return _Planned(tasks, "llm", conversation, reply.text, reply.output_tokens)
                span.add_event("gap.plan_fallback", {"reason": "the LLM reply held no plan"})
        return _Planned(heuristic_decompose(query), "heuristic")

    def _checked(self, text: str, source: str, span: trace.Span, inputs: Mapping[str, Any]) -> _Planned:
        """Strict planning: the plan runs only if :func:`check_plan` passes it against the tools."""
        check = check_plan(text, self.tools, inputs=inputs)
        if check.valid:
            return _Planned(check.tasks, source)
        if self.on_invalid_plan == "raise":
            raise PlanError(f"invalid plan ({check.kind}): {check.message}")
        span.add_event("gap.plan_rejected", {"reason": check.message, "kind": check.kind})
        return _Planned([], source, error={"kind": check.kind, "message": check.message})

    def _invalid_result(self, query: str, planned: _Planned, run: RunState, started: float) -> dict[str, Any]:
        """The result of a plan that did not run: the usual keys, nothing executed."""
        return {
            "query": query,
            "answer": "",
            "observations": {},
            "total_time_ms": (time.perf_counter() - started) * 1000.0,
            "execution_time_ms": 0.0,
            "sequential_time_ms": 0.0,
            "critical_path_ms": 0.0,
            "critical_path": [],
            "speedup_factor": 1.0,
            "task_count": 0,
            "level_count": 0,
            "tool_calls": run.tool_calls,
            "success": False,
            "failed": [],
            "skipped": [],
            "plan_source": planned.source,
            "scheduler": self._effective_scheduler(),
            "tasks": [],
            "graph": {"nodes": [], "edges": [], "levels": []},
            **_plan_fields(planned, None),
        }

    async def _execute(self, graph: Graph, inputs: Mapping[str, Any]) -> dict[str, Any]:
        context: dict[str, Any] = dict(inputs)  # a node's result replaces an input of the same name
        scheduler = self._effective_scheduler()
        if scheduler == "dependency":
            return await self._scheduler.run_dependency(self, graph, context)
        observations: dict[str, Any] = {}
        for level in graph.level_tasks().values():
            observations.update(await self.execute_level(level, context))
        return observations

    async def _answer(
        self, query: str, graph: Graph, conversation: Messages, options: Mapping[str, Any] | None
    ) -> tuple[str, int | None]:
        done = [t for t in graph.tasks if t.status is TaskStatus.COMPLETE]
        pool = self._scheduler.pool(self.max_concurrency)
        if self.llm is not None and self.answer_prompt is not None:
            messages = self.answer_prompt(query, list(graph.tasks), list(conversation))
            reply = await complete_reply(self.llm, self.model, messages, pool, options)
            return reply.text, reply.output_tokens
        if self.llm is not None and done:
            observed = {t.id: (t.description, t.result) for t in done}
            reply = await complete_reply(
                self.llm, self.model, answer_messages(query, observed), pool, options
            )
            return reply.text, reply.output_tokens
        sinks = [t for t in done if not graph.dependents[t.id]]
        if len(sinks) == 1:
            return render_result(sinks[0].result), None
        return "\n".join(f"{t.id}: {render_result(t.result)}" for t in sinks), None

    def _result(
        self,
        query: str,
        graph: Graph,
        observations: dict[str, Any],
        answer: str,
        source: str,
        run: RunState,
        started: float,
        execution_ms: float,
    ) -> dict[str, Any]:
        sequential_ms = sum(t.execution_time_ms for t in graph.tasks)
        critical_ms, path = graph.critical_path()
        return {
            "query": query,
            "answer": answer,
            "observations": observations,
            "total_time_ms": (time.perf_counter() - started) * 1000.0,
            "execution_time_ms": execution_ms,
            "sequential_time_ms": sequential_ms,
            "critical_path_ms": critical_ms,
            "critical_path": path,
            "speedup_factor": sequential_ms / critical_ms if critical_ms > 0 else 1.0,
            "task_count": len(graph.tasks),
            "level_count": len(graph.levels),
            "tool_calls": run.tool_calls,
            "success": all(t.status is TaskStatus.COMPLETE for t in graph.tasks),
            "failed": [t.id for t in graph.tasks if t.status is TaskStatus.FAILED],
            "skipped": [t.id for t in graph.tasks if t.status is TaskStatus.SKIPPED],
            "plan_source": source,
            "scheduler": self._effective_scheduler(),
            "tasks": [t.to_dict() for t in graph.tasks],
        }

    def _record(self, result: dict[str, Any]) -> None:
        self.execution_history.append(result)
        totals = self._totals
        totals["n"] += 1
        totals["speedup"] += result["speedup_factor"]
        totals["tasks"] += result["task_count"]
        totals["levels"] += result["level_count"]
        totals["time_ms"] += result["total_time_ms"]


def _plan_fields(planned: _Planned, answer_tokens: int | None) -> dict[str, Any]:
    """The result keys about the plan itself: valid or why not, the LLM's reply and token counts."""
    return {
        "plan_valid": planned.error is None,
        "plan_error": planned.error,
        "plan_reply": planned.reply,
        "plan_tokens": planned.tokens,
        "answer_tokens": answer_tokens,
    }
