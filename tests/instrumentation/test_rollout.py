"""Rollout context: the invoke_agent span and rollout stamping across threads, tasks and processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

import pytest
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator

import lightspan.instrumentation
from lightspan.instrumentation import context_executor, current_rollout, rollout, with_context
from lightspan.schemas import attributes as A

OTHER = trace.get_tracer("someone.else")


def _stamp(span):
    a = span.attributes
    return a.get(A.ROLLOUT_ID), a.get(A.TASK_ID), a.get(A.ATTEMPT)


def test_context_manager_opens_invoke_agent_span_and_yields_handle(exporter):
    with rollout("task-1", attempt=3, agent_name="solver", task_type="math") as r:
        assert current_rollout() is r
        assert (r.task_id, r.attempt) == ("task-1", 3)
        assert len(r.rollout_id) == 32
        assert r.span.get_span_context().is_valid
    assert current_rollout() is None
    (span,) = exporter.get_finished_spans()
    assert span.name == "invoke_agent solver"
    assert span.attributes[A.GEN_AI_OPERATION_NAME] == A.OP_INVOKE_AGENT
    assert span.attributes[A.GEN_AI_AGENT_NAME] == "solver"
    assert _stamp(span) == (r.rollout_id, "task-1", 3)
    assert span.attributes[A.TASK_TYPE] == "math"


def test_spans_of_any_tracer_inside_are_stamped_and_children(exporter):
    with rollout("t", rollout_id="r-fixed") as r:
        with OTHER.start_as_current_span("inner"):
            with OTHER.start_as_current_span("deeper"):
                pass
    with OTHER.start_as_current_span("outside"):
        pass
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert _stamp(spans["inner"]) == ("r-fixed", "t", 0)
    assert _stamp(spans["deeper"]) == ("r-fixed", "t", 0)
    assert spans["inner"].parent.span_id == r.span.get_span_context().span_id
    assert A.ROLLOUT_ID not in spans["outside"].attributes


def test_asyncio_tasks_and_context_executor_carry_the_rollout(exporter):
    async def work(i):
        await asyncio.sleep(0)
        with OTHER.start_as_current_span(f"task-{i}"):
            pass

    def in_thread(i):
        with OTHER.start_as_current_span(f"thread-{i}"):
            return current_rollout().rollout_id

    async def main():
        async with rollout("t-async") as r:
            await asyncio.gather(*(asyncio.create_task(work(i)) for i in range(3)))
            with context_executor(max_workers=2) as pool:
                ids = list(pool.map(in_thread, range(4)))
            t = threading.Thread(target=with_context(in_thread), args=(99,))
            t.start()
            t.join()
            return r, ids

    r, ids = asyncio.run(main())
    assert ids == [r.rollout_id] * 4
    spans = [s for s in exporter.get_finished_spans() if not s.name.startswith("invoke_agent")]
    assert sorted(s.name for s in spans) == sorted(
        [f"task-{i}" for i in range(3)] + [f"thread-{i}" for i in range(4)] + ["thread-99"]
    )
    assert {_stamp(s) for s in spans} == {(r.rollout_id, "t-async", 0)}


def test_plain_thread_pool_does_not_carry_context(exporter):
    """Why context_executor exists: a bare ThreadPoolExecutor loses the rollout."""
    from concurrent.futures import ThreadPoolExecutor

    with rollout("t"):
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(current_rollout).result() is None


def test_decorator_sync_and_async_fresh_rollout_per_call(exporter):
    @rollout(task_id="dec", attempt=1, agent_name="deco")
    def run(x):
        """Doc kept."""
        return current_rollout().rollout_id, x

    @rollout(task_id="dec-async")
    async def arun():
        return current_rollout().rollout_id

    (id1, x), (id2, _) = run(5), run(6)
    id3 = asyncio.run(arun())
    assert x == 5 and id1 != id2 and len({id1, id2, id3}) == 3
    assert run.__name__ == "run" and run.__doc__ == "Doc kept."
    names = [s.name for s in exporter.get_finished_spans()]
    assert names == ["invoke_agent deco", "invoke_agent deco", "invoke_agent agent"]


def test_nested_rollout_inner_identity_wins_then_outer_restored(exporter):
    with rollout("outer") as outer:
        with rollout("inner"):
            with OTHER.start_as_current_span("in-inner"):
                pass
        with OTHER.start_as_current_span("in-outer"):
            pass
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["in-inner"].attributes[A.TASK_ID] == "inner"
    assert spans["in-outer"].attributes[A.ROLLOUT_ID] == outer.rollout_id


def test_exception_marks_span_error_and_propagates(exporter):
    with pytest.raises(KeyError, match="boom"):
        with rollout("t"):
            raise KeyError("boom")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is trace.StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == "KeyError"
    assert current_rollout() is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"attempt": -1}, "attempt must be a non-negative integer"),
        ({"attempt": "2"}, "attempt must be a non-negative integer"),
        ({"task_id": 7}, "task_id must be a string"),
        ({"agent_name": ""}, "agent_name must be a non-empty string"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        rollout(**kwargs)


def test_agent_api_is_exported_from_the_instrumentation_part():
    assert lightspan.instrumentation.rollout is rollout
    assert callable(lightspan.instrumentation.configure)


_CHILD = """
import sys
sys.path.insert(0, {repo!r})
from opentelemetry import context, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from tests.support.spans import memory_exporter
exp = memory_exporter()
ctx = W3CBaggagePropagator().extract({{"baggage": sys.argv[1]}})
token = context.attach(ctx)
with trace.get_tracer("child").start_as_current_span("remote-work"):
    pass
context.detach(token)
(span,) = exp.get_finished_spans()
a = span.attributes
print(a["lightspan.rollout.id"], a["lightspan.task.id"], a["lightspan.attempt"])
"""


def test_other_process_stamped_from_propagated_baggage(exporter):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with rollout("t-proc", attempt=4) as r:
        carrier: dict[str, str] = {}
        W3CBaggagePropagator().inject(carrier)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD.format(repo=repo), carrier["baggage"]],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.split() == [r.rollout_id, "t-proc", "4"]
