"""The GAP spans: plan > level > node > tool, their attributes, and rebuilding the graph from them."""

from __future__ import annotations

import json

import pytest
from opentelemetry.trace import StatusCode

from lightspan.instrumentation import rollout
from lightspan.instrumentation.gap import GAPPlanner
from lightspan.schemas import attributes as A

from .conftest import normalized, rebuild_graph

PLAN = """<plan><graph>
  <node id="s1">search("capital of France | capital of Germany")</node>
  <node id="s2">search("tallest mountain")</node>
  <node id="s3" depends="s1">search("population of {s1}")</node>
  <node id="s4" depends="s1,s2">search("{s1} vs {s2}")</node>
  <node id="s5" depends="s3,s4">search("summary of {s3} and {s4}")</node>
</graph></plan>"""


async def search(query: str) -> str:
    return f"<{query}>"


def lookup(query: str) -> str:
    return f"[{query}]"


def by_op(spans, op: str):
    return [s for s in spans if s.attributes.get(A.GEN_AI_OPERATION_NAME) == op]


@pytest.mark.parametrize("scheduler", ["dependency", "level", "sequential"])
async def test_span_tree_and_attributes(exporter, scheduler: str) -> None:
    planner = GAPPlanner(tools=[search], agent_name="geo", scheduler=scheduler)
    result = await planner.execute_plan("compare things", plan_text=PLAN)
    spans = exporter.get_finished_spans()
    assert len({s.context.trace_id for s in spans}) == 1

    (plan,) = by_op(spans, A.OP_PLAN)
    assert plan.name == "plan geo" and plan.parent is None
    assert plan.attributes[A.GEN_AI_AGENT_NAME] == "geo"
    assert plan.attributes[A.GAP_SCHEDULER] == scheduler
    assert plan.attributes[A.GAP_LEVEL_COUNT] == 3 and plan.attributes[A.GAP_NODE_COUNT] == 5
    assert plan.attributes[A.GAP_PLAN_SOURCE] == "given"
    assert plan.attributes[A.GAP_QUERY] == "compare things"
    graph = json.loads(plan.attributes[A.GAP_GRAPH])
    assert graph == result["graph"]
    assert graph["levels"] == [["s1", "s2"], ["s3", "s4"], ["s5"]]
    assert graph["edges"] == [["s1", "s3"], ["s1", "s4"], ["s2", "s4"], ["s3", "s5"], ["s4", "s5"]]

    levels = {s.attributes[A.GAP_LEVEL]: s for s in by_op(spans, A.OP_GAP_LEVEL)}
    assert sorted(levels) == [0, 1, 2]
    for index, span in levels.items():
        assert span.name == f"gap.level {index}" and span.parent.span_id == plan.context.span_id
        assert span.attributes[A.GAP_LEVEL_WIDTH] == len(graph["levels"][index])

    nodes = {s.attributes[A.GAP_NODE_ID]: s for s in by_op(spans, A.OP_GAP_NODE)}
    assert sorted(nodes) == ["s1", "s2", "s3", "s4", "s5"]
    for index, ids in enumerate(graph["levels"]):
        for node_id in ids:
            node = nodes[node_id]
            level = levels[index]
            assert node.name == f"gap.node {node_id}" and node.parent.span_id == level.context.span_id
            assert node.attributes[A.GAP_LEVEL] == index
            assert node.attributes[A.GAP_NODE_STATUS] == "complete"
            # a level span covers its nodes, also when levels overlap in time (dependency scheduler)
            assert level.start_time <= node.start_time and node.end_time <= level.end_time
    assert json.loads(nodes["s4"].attributes[A.GAP_NODE_DEPENDS]) == ["s1", "s2"]
    assert nodes["s3"].attributes[A.GAP_NODE_DESCRIPTION] == 'search("population of {s1}")'
    assert (
        nodes["s3"].attributes[A.GAP_NODE_RESULT]
        == "<population of <capital of France> | <capital of Germany>>"
    )

    tools = by_op(spans, A.OP_EXECUTE_TOOL)
    under = {
        node_id: [t for t in tools if t.parent.span_id == node.context.span_id]
        for node_id, node in nodes.items()
    }
    assert {k: len(v) for k, v in under.items()} == {"s1": 2, "s2": 1, "s3": 1, "s4": 1, "s5": 1}
    assert len(tools) == 6 == result["tool_calls"]
    assert all(t.name == "execute_tool search" for t in tools)
    assert sorted(t.attributes[A.GEN_AI_TOOL_CALL_RESULT] for t in under["s1"]) == [
        "<capital of France>",
        "<capital of Germany>",
    ]


@pytest.mark.parametrize("scheduler", ["dependency", "level"])
async def test_graph_rebuilds_from_the_spans_alone(exporter, scheduler: str) -> None:
    plan = (
        "<graph>"
        + "".join(f'<node id="r{i}">search("{i}")</node>' for i in range(3))
        + '<node id="m" depends="r0,r1">search("{r0}{r1}")</node>'
        + '<node id="n" depends="r2">search("{r2}")</node>'
        + '<node id="z" depends="m,n,r0">search("{m}{n}")</node>'
        + '<node id="lone">search("x")</node></graph>'
    )
    result = await GAPPlanner(tools=[search], scheduler=scheduler).execute_plan("q", plan_text=plan)
    spans = exporter.get_finished_spans()
    rebuilt = rebuild_graph(spans)
    assert rebuilt == normalized(result["graph"])
    assert rebuilt["levels"] == [["lone", "r0", "r1", "r2"], ["m", "n"], ["z"]]
    assert ["r0", "z"] in rebuilt["edges"]


async def test_failed_and_skipped_nodes_have_spans(exporter) -> None:
    async def flaky(query: str) -> str:
        raise KeyError(query)

    planner = GAPPlanner(tools=[search, flaky])
    result = await planner.execute_plan(
        "q",
        plan_text=(
            '<graph><node id="a">flaky("k")</node><node id="b" depends="a">search("{a}")</node></graph>'
        ),
    )
    spans = exporter.get_finished_spans()
    nodes = {s.attributes[A.GAP_NODE_ID]: s for s in by_op(spans, A.OP_GAP_NODE)}
    assert nodes["a"].status.status_code is StatusCode.ERROR
    assert (
        nodes["a"].attributes[A.ERROR_TYPE] == "KeyError"
        and nodes["a"].attributes[A.GAP_NODE_STATUS] == "failed"
    )
    assert [e.name for e in nodes["a"].events] == ["exception"]
    assert nodes["b"].attributes[A.GAP_NODE_STATUS] == "skipped"
    (tool_span,) = by_op(spans, A.OP_EXECUTE_TOOL)
    assert tool_span.parent.span_id == nodes["a"].context.span_id
    assert tool_span.status.status_code is StatusCode.ERROR
    assert rebuild_graph(spans) == normalized(result["graph"])


async def test_sync_tool_spans_stay_under_their_node_and_rollout(exporter) -> None:
    planner = GAPPlanner(tools={"lookup": lookup})
    with rollout(task_id="task-9", attempt=2, agent_name="geo") as handle:
        await planner.execute_plan(
            "q",
            plan_text='<graph><node id="a">lookup("x")</node>'
            '<node id="b" depends="a">lookup("{a}")</node></graph>',
        )
    spans = exporter.get_finished_spans()
    (agent,) = by_op(spans, A.OP_INVOKE_AGENT)
    (plan,) = by_op(spans, A.OP_PLAN)
    assert plan.parent.span_id == agent.context.span_id
    nodes = {s.attributes[A.GAP_NODE_ID]: s for s in by_op(spans, A.OP_GAP_NODE)}
    for tool_span in by_op(spans, A.OP_EXECUTE_TOOL):
        node_id = "a" if tool_span.attributes[A.GEN_AI_TOOL_CALL_RESULT] == "[x]" else "b"
        assert tool_span.parent.span_id == nodes[node_id].context.span_id
    gap_spans = [s for s in spans if s is not agent]
    assert len(gap_spans) == 1 + 2 + 2 + 2  # plan, levels, nodes, tools
    for span in gap_spans:
        assert span.attributes[A.ROLLOUT_ID] == handle.rollout_id
        assert span.attributes[A.TASK_ID] == "task-9" and span.attributes[A.ATTEMPT] == 2


@pytest.mark.parametrize("scheduler", ["dependency", "level"])
async def test_cancelling_a_plan_ends_every_span(exporter, scheduler: str) -> None:
    import asyncio

    started = asyncio.Event()

    async def stall(query: str) -> str:
        started.set()
        await asyncio.sleep(30)
        return query

    planner = GAPPlanner(tools=[stall, search], scheduler=scheduler)
    job = asyncio.ensure_future(
        planner.execute_plan(
            "q",
            plan_text=(
                '<graph><node id="a">stall("x")</node><node id="b">search("y")</node>'
                '<node id="c" depends="a">search("{a}")</node></graph>'
            ),
        )
    )
    await started.wait()
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    spans = exporter.get_finished_spans()
    names = sorted(s.name for s in spans)
    assert names == [
        "execute_tool search",
        "execute_tool stall",
        "gap.level 0",
        "gap.node a",
        "gap.node b",
        "plan gap",
    ]
    node_a = next(s for s in spans if s.name == "gap.node a")
    assert node_a.attributes[A.GAP_NODE_STATUS] == "failed" and node_a.status.status_code is StatusCode.ERROR
