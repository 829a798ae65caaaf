"""Execution: real concurrency, placeholders, fan-out, failures, timeouts, limits, schedulers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from lightspan.instrumentation import tool
from lightspan.instrumentation.gap import GAPPlanner, PlanError

# A wait that only ends when the other side shows up: a run that does not overlap the two calls
# fails with a TimeoutError instead of passing slowly.
RENDEZVOUS_S = 5.0


def paired_async_tool():
    barrier = asyncio.Barrier(2)

    async def search(query: str) -> str:
        async with asyncio.timeout(RENDEZVOUS_S):
            await barrier.wait()
        return f"result of {query}"

    return search


@pytest.mark.parametrize("scheduler", ["dependency", "level"])
async def test_independent_async_tools_run_overlapped(scheduler: str) -> None:
    planner = GAPPlanner(tools=[paired_async_tool()], scheduler=scheduler)
    result = await planner.execute_plan(
        "q", plan_text='<graph><node id="a">search("x")</node><node id="b">search("y")</node></graph>'
    )
    assert result["success"], result["tasks"]
    assert result["observations"]["a"]["result"] == "result of x"


async def test_sync_tools_run_overlapped_in_threads() -> None:
    barrier = threading.Barrier(2, timeout=RENDEZVOUS_S)

    def lookup(key: str) -> str:
        barrier.wait()
        return key.upper()

    planner = GAPPlanner(tools={"lookup": lookup})
    result = await planner.execute_plan(
        "q", plan_text='<graph><node id="a">lookup("x")</node><node id="b">lookup("y")</node></graph>'
    )
    assert [t["result"] for t in result["tasks"]] == ["X", "Y"]


async def test_sequential_scheduler_never_overlaps() -> None:
    in_flight, peak = 0, 0

    async def search(query: str) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return query

    planner = GAPPlanner(tools=[search], scheduler="sequential")
    result = await planner.execute_plan(
        "q", plan_text='<graph><node id="a">search("x | y | z")</node><node id="b">search("w")</node></graph>'
    )
    assert result["success"] and result["tool_calls"] == 4 and peak == 1


async def test_concurrency_limit_caps_calls_in_flight() -> None:
    in_flight, peak = 0, 0
    barrier = asyncio.Barrier(2)

    async def search(query: str) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        async with asyncio.timeout(RENDEZVOUS_S):
            await barrier.wait()  # pairs up: proves two do run at once
        in_flight -= 1
        return query

    planner = GAPPlanner(tools=[search], max_concurrency=2)
    plan = "<graph>" + "".join(f'<node id="n{i}">search("{i}")</node>' for i in range(6)) + "</graph>"
    result = await planner.execute_plan("q", plan_text=plan)
    assert result["success"] and peak == 2


async def test_dependency_scheduler_starts_a_node_when_its_own_dependencies_finish() -> None:
    # a -> b, and c (same level as a) only finishes once b has run: level-by-level execution
    # would wait for c before starting b and never get there.
    b_done = asyncio.Event()

    async def step(name: str) -> str:
        if name == "b":
            b_done.set()
        if name == "c":
            async with asyncio.timeout(RENDEZVOUS_S):
                await b_done.wait()
        return name

    plan = (
        '<graph><node id="a">step("a")</node><node id="c">step("c")</node>'
        '<node id="b" depends="a">step("b")</node></graph>'
    )
    result = await GAPPlanner(tools=[step]).execute_plan("q", plan_text=plan)
    assert result["success"], result["tasks"]

    b_done.clear()
    level = await GAPPlanner(tools=[step], scheduler="level", node_timeout_s=0.2).execute_plan(
        "q", plan_text=plan
    )
    assert (
        level["failed"] == ["c"]
        and level["tasks"][1]["error"] == "TimeoutError: node c timed out after 0.2 s"
    )
    assert level["tasks"][2]["status"] == "complete"  # b ran, but only after c gave up


async def test_placeholders_fill_strings_and_pass_bare_results_as_objects() -> None:
    @tool
    async def search(query: str) -> str:
        return {"capital of France": "Paris"}.get(query, f"<{query}>")

    def compare_values(*values: object) -> str:
        return f"{len(values)} values: {values!r}"

    async def count(items: list) -> int:
        return len(items)

    planner = GAPPlanner(tools={"search": search, "compare_values": compare_values, "count": count})
    result = await planner.execute_plan(
        "q",
        plan_text="""
        <graph>
          <node id="s1">search("capital of France")</node>
          <node id="s2" depends="s1">search("population of {s1}")</node>
          <node id="s3">search("x | y")</node>
          <node id="s4" depends="s2,s3">compare_values({s2}, "{s3}")</node>
          <node id="s5" depends="s3">count({s3})</node>
        </graph>""",
    )
    obs = {k: v["result"] for k, v in result["observations"].items()}
    assert obs["s2"] == "<population of Paris>"
    assert obs["s3"] == ["<x>", "<y>"]  # fan-out: one call per part
    assert obs["s4"] == "2 values: ('<population of Paris>', '<x> | <y>')"
    assert obs["s5"] == 2
    assert result["tool_calls"] == 6


async def test_failure_skips_dependents_and_reports_it() -> None:
    async def search(query: str) -> str:
        if query == "boom":
            raise RuntimeError("backend down")
        return query

    plan = """<graph>
      <node id="ok">search("fine")</node>
      <node id="bad">search("boom")</node>
      <node id="child" depends="bad">search("{bad}")</node>
      <node id="grandchild" depends="child,ok">search("{child} {ok}")</node>
      <node id="sibling" depends="ok">search("after {ok}")</node>
    </graph>"""
    for scheduler in ("dependency", "level", "sequential"):
        result = await GAPPlanner(tools=[search], scheduler=scheduler).execute_plan("q", plan_text=plan)
        status = {t["id"]: t["status"] for t in result["tasks"]}
        assert status == {
            "ok": "complete",
            "bad": "failed",
            "child": "skipped",
            "grandchild": "skipped",
            "sibling": "complete",
        }, scheduler
        assert result["success"] is False and result["failed"] == ["bad"]
        assert result["skipped"] == ["child", "grandchild"]
        errors = {t["id"]: t["error"] for t in result["tasks"]}
        assert errors["bad"] == "RuntimeError: backend down"
        assert errors["child"] == "skipped: dependency bad did not complete"
        assert result["answer"] == "after fine"


async def test_node_timeout_fails_the_node_not_the_plan() -> None:
    async def slow(query: str) -> str:
        await asyncio.sleep(RENDEZVOUS_S)
        return query

    async def fast(query: str) -> str:
        return query

    planner = GAPPlanner(tools=[slow, fast], node_timeout_s=0.05)
    result = await planner.execute_plan(
        "q",
        plan_text='<graph><node id="a">slow("x")</node><node id="b">fast("y")</node>'
        '<node id="c" depends="a">fast("{a}")</node></graph>',
    )
    status = {t["id"]: (t["status"], t["error"]) for t in result["tasks"]}
    assert status["a"] == ("failed", "TimeoutError: node a timed out after 0.05 s")
    assert status["b"] == ("complete", None) and status["c"][0] == "skipped"


async def test_unknown_tool_fails_with_the_registered_names() -> None:
    async def search(query: str) -> str:
        return query

    result = await GAPPlanner(tools=[search]).execute_plan(
        "q", plan_text='<graph><node id="a">calculator("1+1")</node></graph>'
    )
    assert result["tasks"][0]["error"] == (
        "LookupError: no tool named 'calculator' is registered (tools: search) and no llm to run a"
    )


async def test_text_nodes_without_llm_pass_their_filled_text_on() -> None:
    result = await GAPPlanner().execute_plan(
        "q",
        plan_text=(
            "<plan>Task 1: Fetch data | Dependencies: none\n"
            "Task 2: Process {task_1} | Dependencies: Task 1</plan>"
        ),
    )
    assert result["answer"] == "Process Fetch data"


async def test_heuristic_fallback_is_sequential() -> None:
    planner = GAPPlanner()
    result = await planner.execute_plan("Fetch the data, then clean it and also write a report.")
    assert result["plan_source"] == "heuristic"
    assert [t["description"] for t in result["tasks"]] == ["Fetch the data", "clean it", "write a report"]
    assert result["graph"]["levels"] == [["task_1"], ["task_2"], ["task_3"]]
    assert result["level_count"] == 3 and result["task_count"] == 3


async def test_explicit_plan_errors_are_raised() -> None:
    planner = GAPPlanner()
    with pytest.raises(PlanError, match="plan_text holds no plan"):
        await planner.execute_plan("q", plan_text="just prose")
    with pytest.raises(ValueError, match="Circular dependencies detected: a -> b -> a"):
        await planner.execute_plan(
            "q", plan_text='<graph><node id="a" depends="b">x</node><node id="b" depends="a">y</node></graph>'
        )


async def test_result_speedup_and_statistics_are_consistent() -> None:
    async def search(query: str) -> str:
        await asyncio.sleep(0.002)
        return query

    planner = GAPPlanner(tools=[search])
    plan = (
        '<graph><node id="a">search("1")</node><node id="b">search("2")</node>'
        '<node id="c" depends="a,b">search("{a}{b}")</node></graph>'
    )
    first = await planner.execute_plan("q", plan_text=plan)
    second = await planner.execute_plan("q", plan_text=plan)
    times = {t["id"]: t["execution_time_ms"] for t in first["tasks"]}
    assert first["sequential_time_ms"] == pytest.approx(sum(times.values()))
    assert first["critical_path_ms"] == pytest.approx(max(times["a"], times["b"]) + times["c"])
    assert first["speedup_factor"] == pytest.approx(first["sequential_time_ms"] / first["critical_path_ms"])
    stats = planner.get_statistics()
    assert stats["total_executions"] == 2 and stats["avg_tasks"] == 3 and stats["avg_levels"] == 2
    assert stats["avg_speedup"] == pytest.approx((first["speedup_factor"] + second["speedup_factor"]) / 2)
    assert len(planner.execution_history) == 2


async def test_execute_level_directly_updates_context() -> None:
    async def search(query: str) -> str:
        return query * 2

    planner = GAPPlanner(tools=[search])
    tasks = planner.parse_plan(
        '<graph><node id="a">search("x")</node><node id="b" depends="a">search("{a}")</node>'
        '<node id="c" depends="zz">search("y")</node></graph>'.replace(' depends="zz"', "")
    )
    dag = planner.build_dag(tasks)
    context: dict = {}
    first = await planner.execute_level(dag[0], context)
    second = await planner.execute_level(dag[1], context)
    assert first["a"]["result"] == "xx" and second["b"]["result"] == "xxxx"
    assert context == {"a": "xx", "c": "yy", "b": "xxxx"}


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="scheduler must be one of dependency, level, sequential"):
        GAPPlanner(scheduler="fast")
    with pytest.raises(ValueError, match="max_concurrency must be a positive integer"):
        GAPPlanner(max_concurrency=0)
    with pytest.raises(ValueError, match="node_timeout_s must be"):
        GAPPlanner(node_timeout_s=-1)
    with pytest.raises(TypeError, match="llm must be an OpenAI-style client"):
        GAPPlanner(llm=42)
    with pytest.raises(TypeError, match="tools must be a dict"):
        GAPPlanner(tools="search")
    with pytest.raises(ValueError, match="tool name must be an identifier"):
        GAPPlanner(tools={"web search": lambda q: q})
