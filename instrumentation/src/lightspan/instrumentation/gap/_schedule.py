"""Running nodes: one node's span and outcome, what a node does, and the dependency-driven scheduler
(the level-synchronous one is ``GAPPlanner.execute_level`` in a loop).

The planner owns a :class:`Scheduler` (which owns the thread pool) and delegates to it, passing
itself as a :class:`SchedulerHost`: its public settings and its ``execute_task`` hook, all this module
needs, so it never imports the planner.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import time
from collections.abc import Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from lightspan.schemas import attributes as A

from .._content import set_content
from ..context import context_executor
from ..rollout import get_tracer
from ._chat import complete
from ._graph import Graph
from ._parse import Call, fill_placeholders, parse_call, placeholder_ref
from ._prompt import node_messages
from ._run import RunState
from ._task import Task, TaskStatus

__all__ = ["Scheduler", "SchedulerHost", "level_attributes", "node_attributes", "observation"]

#: Prompt-vocabulary functions that, with no tool or LLM behind them, just pass their text on.
_ECHO_FUNCTIONS = frozenset({"think", "plan", "observation", "reflection", "answer"})
_timeout = getattr(asyncio, "timeout", None)  # Python 3.11+


def level_attributes(index: int, width: int) -> dict[str, Any]:
    return {A.GEN_AI_OPERATION_NAME: A.OP_GAP_LEVEL, A.GAP_LEVEL: index, A.GAP_LEVEL_WIDTH: width}


def node_attributes(task: Task) -> dict[str, Any]:
    attrs = {
        A.GEN_AI_OPERATION_NAME: A.OP_GAP_NODE,
        A.GAP_NODE_ID: task.id,
        A.GAP_NODE_DEPENDS: json.dumps(sorted(task.dependencies)),
        A.GAP_NODE_DESCRIPTION: task.description,
    }
    if task.level is not None:
        attrs[A.GAP_LEVEL] = task.level
    return attrs


def observation(task: Task) -> dict[str, Any]:
    return {
        "result": task.result,
        "execution_time_ms": task.execution_time_ms,
        "status": task.status.value,
        "error": task.error,
    }


async def _with_timeout(coro: Any, seconds: float | None, task: Task) -> Any:
    if seconds is None:
        return await coro
    try:
        if _timeout is not None:
            async with _timeout(seconds):
                return await coro
        return await asyncio.wait_for(coro, seconds)
    except TimeoutError as exc:  # asyncio.TimeoutError is TimeoutError on 3.11+
        raise TimeoutError(f"node {task.id} timed out after {seconds:g} s") from exc
    except asyncio.TimeoutError as exc:  # Python 3.10
        raise TimeoutError(f"node {task.id} timed out after {seconds:g} s") from exc


def _resolve(value: Any, quoted: bool, context: Mapping[str, Any]) -> Any:
    ref = None if quoted else placeholder_ref(value)
    if ref is not None and ref in context:
        return context[ref]  # a bare {id} argument passes the dependency's result as it is
    return fill_placeholders(value, context) if isinstance(value, str) else value


class SchedulerHost(Protocol):
    """What scheduling reads from its planner: public settings (read live, so changing them on the
    planner still counts) and the ``execute_task`` hook (so a subclass's override runs every node)."""

    @property
    def llm(self) -> Any: ...
    @property
    def model(self) -> str | None: ...
    @property
    def tools(self) -> Mapping[str, Any]: ...
    @property
    def max_concurrency(self) -> int: ...
    @property
    def node_timeout_s(self) -> float | None: ...
    @property
    def fanout_separator(self) -> str | None: ...

    async def execute_task(self, task: Task, context: Mapping[str, Any]) -> Any: ...


class Scheduler:
    """Runs nodes for a host and owns the thread pool that sync tools and sync LLM clients run in.

    The host comes with each call rather than being stored: the planner holds its scheduler, so a
    reference back would be a cycle (keeping a dropped planner's threads alive until the garbage
    collector runs) and would tie a copied planner to the original's settings and ``execute_task``.
    """

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None

    def pool(self, workers: int) -> Executor:
        """The thread pool, started on first use with ``workers`` threads (the host's
        ``max_concurrency``), so a planner that only runs async work never starts threads."""
        if self._executor is None:
            self._executor = context_executor(workers, thread_name_prefix="lightspan-gap")
        return self._executor

    def close(self) -> None:
        """Shut the pool down without waiting (a timed-out sync tool may still hold a thread); the next
        use starts a fresh one."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def run_node(
        self, host: SchedulerHost, task: Task, context: dict[str, Any], level_span: Span | None
    ) -> dict[str, Any]:
        """Run one node under its ``gap.node`` span; never raises but for cancellation.

        Skips it when a dependency has no result in ``context``; on success adds its result there.
        """
        parent = trace.set_span_in_context(level_span) if level_span is not None else None
        span = get_tracer().start_span(A.SPAN_GAP_NODE.format(id=task.id), context=parent)
        recording = span.is_recording()
        if recording:
            span.set_attributes(node_attributes(task))
        missing = [d for d in task.dependencies if d not in context]
        if missing:
            task.status, task.result = TaskStatus.SKIPPED, None
            task.error = f"skipped: dependency {', '.join(sorted(missing))} did not complete"
            span.set_attribute(A.GAP_NODE_STATUS, task.status.value)
            span.end()
            return observation(task)
        task.status = TaskStatus.RUNNING
        started = time.perf_counter()
        token = otel_context.attach(trace.set_span_in_context(span))  # tool/LLM spans become its children
        try:
            result = await _with_timeout(host.execute_task(task, context), host.node_timeout_s, task)
        except BaseException as exc:
            task.execution_time_ms = (time.perf_counter() - started) * 1000.0
            task.status = TaskStatus.FAILED
            task.error = (
                "cancelled" if isinstance(exc, asyncio.CancelledError) else f"{type(exc).__name__}: {exc}"
            )
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, task.error))
            span.set_attributes({A.ERROR_TYPE: type(exc).__qualname__, A.GAP_NODE_STATUS: task.status.value})
            span.end()
            if not isinstance(exc, Exception):
                raise
            return observation(task)
        finally:
            otel_context.detach(token)
        task.execution_time_ms = (time.perf_counter() - started) * 1000.0
        task.result, task.status, task.error = result, TaskStatus.COMPLETE, None
        context[task.id] = result
        if recording:
            set_content(span, A.GAP_NODE_RESULT, result)
            span.set_attribute(A.GAP_NODE_STATUS, task.status.value)
        span.end()
        return observation(task)

    async def run_task(
        self, host: SchedulerHost, run: RunState | None, task: Task, context: Mapping[str, Any]
    ) -> Any:
        """What one node does: tool call (fanned out on ``|``), else LLM turn, else its filled-in text."""
        run = run or RunState(max_concurrency=host.max_concurrency)
        call = parse_call(task.description)
        tools = host.tools
        if call is not None and call.name in tools:
            return await self._call_tool(host, run, tools[call.name], call, context)
        text = fill_placeholders(task.description, context)
        if host.llm is not None:
            inputs = {d: context[d] for d in sorted(task.dependencies) if d in context}
            async with run.limit():
                messages = node_messages(run.query, text, inputs)
                return await complete(host.llm, host.model, messages, self.pool(host.max_concurrency))
        if call is not None and call.name not in _ECHO_FUNCTIONS:
            known = ", ".join(sorted(tools)) or "none"
            raise LookupError(
                f"no tool named {call.name!r} is registered (tools: {known}) and no llm to run {task.id}"
            )
        return text

    async def _call_tool(
        self, host: SchedulerHost, run: RunState, fn: Any, call: Call, context: Mapping[str, Any]
    ) -> Any:
        kwargs = {k: _resolve(v, quoted, context) for k, (v, quoted) in call.kwargs.items()}
        sep = host.fanout_separator
        if (
            sep
            and len(call.args) == 1
            and call.args[0][1]
            and isinstance(call.args[0][0], str)
            and sep in call.args[0][0]
        ):
            parts = [p.strip() for p in call.args[0][0].split(sep) if p.strip()]
            if len(parts) > 1:
                jobs = [(fill_placeholders(p, context),) for p in parts]
                if run.parallel:
                    return list(await asyncio.gather(*(self._invoke(host, run, fn, a, kwargs) for a in jobs)))
                return [await self._invoke(host, run, fn, a, kwargs) for a in jobs]
        args = tuple(_resolve(v, quoted, context) for v, quoted in call.args)
        return await self._invoke(host, run, fn, args, kwargs)

    async def _invoke(
        self, host: SchedulerHost, run: RunState, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        async with run.limit():
            run.tool_calls += 1
            if inspect.iscoroutinefunction(fn):
                return await fn(*args, **kwargs)
            loop = asyncio.get_running_loop()
            pool = self.pool(host.max_concurrency)
            result = await loop.run_in_executor(pool, functools.partial(fn, *args, **kwargs))
            return await result if inspect.isawaitable(result) else result

    async def run_dependency(
        self, host: SchedulerHost, graph: Graph, context: dict[str, Any]
    ) -> dict[str, Any]:
        """Start every node the moment its own dependencies are done (never slower than level by level).

        Each node's span still sits under the span of its level (levels come from the DAG); a level span
        opens when its first node starts and ends when its last node ends, so level spans may overlap.
        """
        tracer = get_tracer()
        parent = otel_context.get_current()
        loop = asyncio.get_running_loop()
        observations: dict[str, Any] = {}
        remaining = {t.id: len(t.dependencies) for t in graph.tasks}
        left = [len(level) for level in graph.levels]
        spans: dict[int, Span] = {}
        running: set[asyncio.Task[None]] = set()
        finished = loop.create_future()
        outstanding = len(graph.tasks)

        def level_span(index: int) -> Span:
            span = spans.get(index)
            if span is None:
                span = spans[index] = tracer.start_span(
                    A.SPAN_GAP_LEVEL.format(index=index),
                    context=parent,
                    attributes=level_attributes(index, len(graph.levels[index])),
                )
            return span

        async def node(task: Task | None, span: Span) -> None:
            nonlocal outstanding
            while task is not None:
                observations[task.id] = await self.run_node(host, task, context, span)
                left[task.level] -= 1
                if left[task.level] == 0:
                    spans.pop(task.level).end()
                ready = []
                for child in graph.dependents[task.id]:
                    remaining[child] -= 1
                    if remaining[child] == 0:
                        ready.append(graph.by_id[child])
                outstanding -= 1
                if outstanding == 0 and not finished.done():
                    finished.set_result(None)
                for other in ready[1:]:
                    launch(other)
                # Continue with one ready dependent in this task: no new task, no extra loop turn per hop.
                task = ready[0] if ready else None
                if task is not None:
                    span = level_span(task.level)

        def launch(task: Task) -> None:
            job = loop.create_task(node(task, level_span(task.level)))
            running.add(job)
            job.add_done_callback(settle)

        def settle(job: asyncio.Task[None]) -> None:
            running.discard(job)
            if not job.cancelled() and job.exception() is not None and not finished.done():
                finished.set_exception(job.exception())

        try:
            roots = [t for t in graph.tasks if not t.dependencies]
            for task in roots[1:]:
                launch(task)
            if roots:  # the first root runs in this task: one loop turn less before work starts
                await node(roots[0], level_span(roots[0].level))
            if outstanding or finished.done():
                await finished  # done already when the inline chain finished the graph (or failed it)
        finally:
            unfinished = [job for job in running if not job.done()]
            for job in unfinished:
                job.cancel()
            if unfinished:
                await asyncio.gather(*unfinished, return_exceptions=True)
            for span in spans.values():
                span.end()
        return {t.id: observations[t.id] for t in graph.tasks if t.id in observations}
