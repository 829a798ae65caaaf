"""Planning, text nodes and answer synthesis through an LLM: callables and the real openai client."""

from __future__ import annotations

import json

import openai
import pytest
from opentelemetry.trace import StatusCode

from lightspan.instrumentation.gap import GAPPlanner
from lightspan.schemas import attributes as A

PLAN_REPLY = """<think>two capitals, then their populations</think>
<plan>
<graph>
  <node id="s1">search("capital of France")</node>
  <node id="s2">search("capital of Germany")</node>
  <node id="s3" depends="s1">search("population of {s1}")</node>
  <node id="s4" depends="s2">search("population of {s2}")</node>
</graph>
</plan>"""
FACTS = {
    "capital of France": "Paris",
    "capital of Germany": "Berlin",
    "population of Paris": "2.1 million",
    "population of Berlin": "3.9 million",
}


async def search(query: str) -> str:
    """Look something up."""
    return FACTS.get(query, "unknown")


def is_planning(messages: list[dict]) -> bool:
    return "FUNCTION VOCABULARY" in messages[0]["content"]


def by_op(spans, op: str):
    return [s for s in spans if s.attributes.get(A.GEN_AI_OPERATION_NAME) == op]


async def test_callable_llm_plans_and_answers(exporter) -> None:
    seen: list[list[dict]] = []

    def llm(messages: list[dict]) -> str:
        seen.append(messages)
        return PLAN_REPLY if is_planning(messages) else "Paris 2.1M, Berlin 3.9M"

    planner = GAPPlanner(llm, tools=[search], agent_name="geo")
    result = await planner.execute_plan("What are the populations of the capitals of France and Germany?")
    assert result["plan_source"] == "llm" and result["graph"]["levels"] == [["s1", "s2"], ["s3", "s4"]]
    assert result["observations"]["s4"]["result"] == "3.9 million"
    assert result["answer"] == "Paris 2.1M, Berlin 3.9M"

    system, user = seen[0]
    for function in ("think()", "plan()", "search(query)", "observation()", "reflection()", "answer()"):
        assert function in system["content"]
    assert "<graph>" in system["content"] and "{s1}" in system["content"]
    assert "- search(...): Look something up." in system["content"]  # registered tools are listed
    assert "USER QUERY: What are the populations" in user["content"]
    assert (
        's3 (search("population of {s1}")): 2.1 million' in seen[1][1]["content"]
    )  # answer sees observations

    spans = exporter.get_finished_spans()
    (plan,) = by_op(spans, A.OP_PLAN)
    chats = by_op(spans, A.OP_CHAT)
    assert len(chats) == 2 and all(c.parent.span_id == plan.context.span_id for c in chats)
    assert json.loads(chats[0].attributes[A.GEN_AI_INPUT_MESSAGES])[0]["role"] == "user"
    assert plan.attributes[A.GAP_ANSWER] == "Paris 2.1M, Berlin 3.9M"
    assert plan.attributes[A.GAP_PLAN_SOURCE] == "llm"


async def test_text_nodes_go_to_the_llm_with_their_inputs(exporter) -> None:
    prompts: list[str] = []

    async def llm(messages: list[dict]) -> str:
        prompts.append(messages[-1]["content"])
        return f"done({len(prompts)})"

    planner = GAPPlanner(llm)
    result = await planner.execute_plan(
        "Summarize",
        plan_text=(
            "<plan>Task 1: Fetch data | Dependencies: none\nTask 2: Summarize it | Dependencies: Task 1</plan>"
        ),
    )
    assert result["observations"]["task_2"]["result"] == "done(2)"
    assert "Sub-task: Summarize it" in prompts[1] and "- task_1: done(1)" in prompts[1]
    spans = exporter.get_finished_spans()
    nodes = {s.attributes[A.GAP_NODE_ID]: s for s in by_op(spans, A.OP_GAP_NODE)}
    node_chats = [c for c in by_op(spans, A.OP_CHAT) if c.parent.span_id == nodes["task_2"].context.span_id]
    assert len(node_chats) == 1


@pytest.mark.parametrize(
    ("reply", "event"),
    [
        ("I would just search the web.", "gap.plan_fallback"),
        (
            '<graph><node id="a" depends="b">x</node><node id="b" depends="a">y</node></graph>',
            "gap.plan_rejected",
        ),
    ],
)
async def test_unusable_plan_falls_back_to_the_heuristic(exporter, reply: str, event: str) -> None:
    async def llm(messages: list[dict]) -> str:
        return reply if is_planning(messages) else "answer"

    result = await GAPPlanner(llm).execute_plan("Find A and then B")
    assert result["plan_source"] == "heuristic" and result["task_count"] == 2
    (plan,) = by_op(exporter.get_finished_spans(), A.OP_PLAN)
    assert [e.name for e in plan.events] == [event]
    if event == "gap.plan_rejected":
        assert "Circular dependencies detected: a -> b -> a" in plan.events[0].attributes["reason"]


async def test_llm_failure_during_planning_is_raised_and_recorded(exporter) -> None:
    def llm(messages: list[dict]) -> str:
        raise ConnectionError("model server unreachable")

    with pytest.raises(ConnectionError, match="unreachable"):
        await GAPPlanner(llm).execute_plan("q")
    spans = exporter.get_finished_spans()
    (plan,) = by_op(spans, A.OP_PLAN)
    assert plan.status.status_code is StatusCode.ERROR
    (chat,) = by_op(spans, A.OP_CHAT)
    assert chat.status.status_code is StatusCode.ERROR and chat.attributes[A.ERROR_TYPE] == "ConnectionError"


def test_client_objects_need_a_model(server) -> None:
    client = openai.OpenAI(base_url=server.openai_url, api_key="test", max_retries=0)
    planner = GAPPlanner(client)
    import asyncio

    with pytest.raises(ValueError, match=r"GAPPlanner\(model=...\) is required"):
        asyncio.run(planner.execute_plan("q"))


@pytest.mark.parametrize("client_cls", [openai.OpenAI, openai.AsyncOpenAI])
async def test_real_openai_client_against_a_local_server(exporter, server, instrumented, client_cls) -> None:
    def reply(body: dict) -> str:
        return PLAN_REPLY if is_planning(body["messages"]) else "Paris and Berlin"

    server.reply = reply
    client = client_cls(base_url=server.openai_url, api_key="test", max_retries=0)
    planner = GAPPlanner(client, model="tiny-planner", tools={"search": search})
    result = await planner.execute_plan("Populations of the capitals of France and Germany?")
    assert result["plan_source"] == "llm" and result["success"] and result["answer"] == "Paris and Berlin"
    assert [r.json["model"] for r in server.requests] == ["tiny-planner", "tiny-planner"]

    spans = exporter.get_finished_spans()
    (plan,) = by_op(spans, A.OP_PLAN)
    chats = by_op(spans, A.OP_CHAT)
    assert [c.name for c in chats] == ["chat tiny-planner", "chat tiny-planner"]
    assert all(c.parent.span_id == plan.context.span_id for c in chats)
    assert plan.attributes[A.GEN_AI_REQUEST_MODEL] == "tiny-planner"


@pytest.mark.parametrize("async_client", [False, True])
async def test_real_anthropic_client_against_a_local_server(
    exporter, server, instrumented, async_client
) -> None:
    import anthropic

    server.reply = lambda body: (
        PLAN_REPLY if "FUNCTION VOCABULARY" in body.get("system", "") else "Berlin is bigger"
    )
    cls = anthropic.AsyncAnthropic if async_client else anthropic.Anthropic
    planner = GAPPlanner(
        cls(base_url=server.url, api_key="test", max_retries=0), model="claude-tiny", tools=[search]
    )
    result = await planner.execute_plan("Which capital is bigger?")
    assert (
        result["plan_source"] == "llm"
        and result["task_count"] == 4
        and result["answer"] == "Berlin is bigger"
    )
    first = server.requests[0].json
    assert first["model"] == "claude-tiny" and [m["role"] for m in first["messages"]] == ["user"]
    (plan,) = by_op(exporter.get_finished_spans(), A.OP_PLAN)
    chats = [
        s
        for s in exporter.get_finished_spans()
        if s.parent is not None and s.parent.span_id == plan.context.span_id and s.name.startswith("chat")
    ]
    assert len(chats) == 2
