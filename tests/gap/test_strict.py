"""Strict planning (``on_invalid_plan``), ``check_plan``, inputs, custom prompts and per-call options:
what a planner being trained by RL needs, where a broken plan is an outcome to reward, not a crash."""

from __future__ import annotations

import asyncio

import pytest

from lightspan.instrumentation.gap import PLAN_ERROR_KINDS, GAPPlanner, PlanError, check_plan

TOOLS = ("city", "country")


def _planner(replies, **kw):
    calls: list[list[dict]] = []

    def llm(messages):
        calls.append(messages)
        return replies[len(calls) - 1]

    tools = {"city": lambda p: {"alice": "paris"}[p], "country": lambda c: {"paris": "france"}[c]}
    return GAPPlanner(llm, model="m", tools=tools, on_invalid_plan="return", **kw), calls


@pytest.mark.parametrize(
    ("plan", "kind"),
    [
        ('<graph><node id="s1">city({q1})</node>', "unparsable"),
        ("no plan here", "empty"),
        (
            '<graph><node id="a" depends="b">city({q1})</node><node id="b" depends="a">city({q1})</node></graph>',
            "cyclic",
        ),
        ('<graph><node id="s1" depends="s1">city({q1})</node></graph>', "cyclic"),
        ('<graph><node id="s1">weather({q1})</node></graph>', "unknown_tool"),
        ('<graph><node id="s1">look it up</node></graph>', "unknown_tool"),
        ('<graph><node id="s1">country({s9})</node></graph>', "dangling_reference"),
        ('<graph><node id="s1" depends="s7">city({q1})</node></graph>', "dangling_reference"),
        ('<graph><node id="s1">city({q2})</node></graph>', "dangling_reference"),
    ],
)
def test_check_plan_names_each_kind_of_broken_plan(plan, kind):
    check = check_plan(plan, TOOLS, inputs=["q1"])
    assert not check.valid and check.kind == kind and check.kind in PLAN_ERROR_KINDS and check.message


def test_check_plan_passes_a_runnable_plan_with_inputs():
    check = check_plan(
        '<graph><node id="s1">city({q1})</node><node id="s2">country({s1})</node></graph>',
        TOOLS,
        inputs=["q1"],
    )
    assert check.valid and check.graph is not None and check.graph.levels == [["s1"], ["s2"]]


def test_an_invalid_llm_plan_is_an_outcome_no_node_runs_and_no_answer_is_asked(exporter):
    planner, calls = _planner(
        ['<graph><node id="s1">weather({q1})</node></graph>'], answer_prompt=lambda *a: []
    )
    result = asyncio.run(planner.execute_plan("city of {q1} ?", inputs={"q1": "alice"}))
    assert result["plan_valid"] is False and result["plan_error"]["kind"] == "unknown_tool"
    assert result["tool_calls"] == 0 and result["tasks"] == [] and result["answer"] == ""
    assert len(calls) == 1 and result["plan_reply"].startswith("<graph>")
    spans = exporter.get_finished_spans()
    (plan,) = [s for s in spans if s.name == "plan gap"]
    (event,) = [e for e in plan.events if e.name == "gap.plan_rejected"]
    assert event.attributes["kind"] == "unknown_tool"
    assert not [s for s in spans if s.name.startswith(("gap.node", "execute_tool"))]


def test_a_valid_plan_runs_with_inputs_and_the_answer_prompt_continues_the_conversation(exporter):
    plan = '<graph><node id="s1">city({q1})</node><node id="s2">country({s1})</node></graph>'
    seen = {}

    def answer_prompt(query, tasks, conversation):
        seen["tasks"] = [(t.id, t.result) for t in tasks]
        return [*conversation, {"role": "user", "content": "obs"}]

    planner, calls = _planner(
        [plan, "{s2}"],
        plan_prompt=lambda q, tools: [{"role": "user", "content": f"plan: {q}"}],
        answer_prompt=answer_prompt,
        scheduler="level",
    )
    result = asyncio.run(planner.execute_plan("country of {q1} ?", inputs={"q1": "alice"}))
    assert result["plan_valid"] is True and result["plan_error"] is None and result["answer"] == "{s2}"
    assert seen["tasks"] == [("s1", "paris"), ("s2", "france")] and result["tool_calls"] == 2
    assert calls[0] == [{"role": "user", "content": "plan: country of {q1} ?"}]
    assert calls[1] == [*calls[0], {"role": "assistant", "content": plan}, {"role": "user", "content": "obs"}]


def test_raise_and_bad_settings():
    planner, _ = _planner(["<graph>"])
    planner.on_invalid_plan = "raise"
    with pytest.raises(PlanError, match="unparsable"):
        asyncio.run(planner.execute_plan("q"))
    with pytest.raises(ValueError, match="on_invalid_plan must be one of"):
        GAPPlanner(on_invalid_plan="ignore")


def test_plan_and_answer_options_reach_the_openai_client(server, instrumented, exporter):
    import openai

    plan = '<graph><node id="s1">city({q1})</node></graph>'
    server.queue(plan, "{s1}")
    client = openai.AsyncOpenAI(base_url=server.openai_url, api_key="t", max_retries=0)
    planner = GAPPlanner(
        client,
        model="m",
        tools={"city": lambda p: "paris"},
        on_invalid_plan="return",
        answer_prompt=lambda q, tasks, conv: [*conv, {"role": "user", "content": "obs"}],
    )
    result = asyncio.run(
        planner.execute_plan(
            "city of {q1} ?",
            inputs={"q1": "alice"},
            plan_options={"max_tokens": 64, "seed": 7},
            answer_options={"max_tokens": 8, "temperature": 0.0},
        )
    )
    first, second = (r.json for r in server.requests[-2:])
    assert (first["max_tokens"], first["seed"]) == (64, 7)
    assert (second["max_tokens"], second["temperature"]) == (8, 0.0)
    assert result["plan_tokens"] == len(plan.split()) and result["answer_tokens"] == 1
