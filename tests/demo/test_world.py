"""The toy world and its rewards: minimal plans have the documented shapes and answer the question,
the warm start's imperfect plans are valid but cost more, and the scores follow the documented formula."""

from __future__ import annotations

import asyncio
import random

import pytest

from lightspan.demo import world as W
from lightspan.demo.scoring import W_CORRECT, W_EFFICIENCY, W_VALID, score_plan
from lightspan.demo.warmstart import WarmStartConfig, imperfect_plan, sft_examples
from lightspan.instrumentation.gap import GAPPlanner, check_plan

SHAPES = {  # question type -> (tool calls, levels) of the minimal plan
    "job": (1, 1),
    "country": (2, 2),
    "friend_job": (2, 2),
    "cities": (2, 1),
    "jobs": (2, 1),
    "countries": (4, 2),
}


def _run(kb, task, plan):
    """Run ``plan`` for ``task`` through the real planner and tools (no LLM); -> (result, resolved answer)."""
    from lightspan.demo.agent import make_tools
    from lightspan.demo.prompts import resolve

    planner = GAPPlanner(tools=make_tools(kb, latency_s=0), on_invalid_plan="raise", scheduler="level")
    try:
        result = asyncio.run(planner.execute_plan(task.plan_question, plan_text=plan, inputs=task.inputs))
    finally:
        planner.close()
    done = {**task.inputs, **{t["id"]: t["result"] for t in result["tasks"]}}
    return result, resolve(task.answer_refs(), done)


def test_minimal_plans_have_the_documented_shapes_and_answer_the_question(world):
    seen = set()
    for task in world.train + world.held_out:
        if task.qtype in seen:
            continue
        seen.add(task.qtype)
        result, answer = _run(world.kb, task, W.render_plan(task.minimal_plan()))
        assert (
            (result["tool_calls"], result["level_count"])
            == SHAPES[task.qtype]
            == (task.min_calls, task.min_levels)
        )
        assert W.exact_match(answer, task.answer), task
    assert seen == set(W.QUESTION_TYPES)


def test_warm_start_plans_are_valid_but_cost_more_calls_or_levels(world):
    rng, cfg = random.Random(0), WarmStartConfig()
    worse = 0
    for task in world.train[:60]:
        plan = W.render_plan(imperfect_plan(task, rng, cfg))
        check = check_plan(plan, W.TOOL_NAMES, inputs=task.inputs)
        assert check.valid, (plan, check.message)
        result, answer = _run(world.kb, task, plan)
        assert W.exact_match(answer, task.answer)  # the answer still cites the right nodes
        assert result["tool_calls"] >= task.min_calls and result["level_count"] >= task.min_levels
        worse += (result["tool_calls"], result["level_count"]) != (task.min_calls, task.min_levels)
    assert 20 < worse < 60  # most traces are imperfect, not all


def test_sft_examples_teach_the_plan_the_answer_and_the_react_turns(world):
    task = next(t for t in world.train if t.qtype == "countries")
    examples = sft_examples(world.kb, task, random.Random(1), WarmStartConfig())
    (plan_prompt, plan), (answer_prompt, answer) = examples[:2]
    assert plan_prompt == [{"role": "user", "content": "plan: countries of {q1} and {q2} ?"}]
    assert answer_prompt[:2] == [*plan_prompt, {"role": "assistant", "content": plan}]  # one conversation
    assert answer == "{s3} {s4}"
    react = [c for _, c in examples[2:]]
    assert react == ["city({q1})", "city({q2})", "country({o1})", "country({o2})", "answer {o3} {o4}"]


def test_scores_follow_the_formula(world):
    task = next(t for t in world.train if t.qtype == "cities")
    needed = task.needed_calls(world.kb)
    best = score_plan(task, world.kb, valid=True, done_calls=needed, calls=2, levels=1, answer=task.answer)
    assert best.total == pytest.approx(1.0) and best.plan == pytest.approx(W_VALID + W_EFFICIENCY)
    seq = score_plan(task, world.kb, valid=True, done_calls=needed, calls=2, levels=2, answer=task.answer)
    assert seq.efficiency == pytest.approx(0.5) and seq.answer == pytest.approx(W_CORRECT)
    redundant = score_plan(task, world.kb, valid=True, done_calls=needed, calls=3, levels=1, answer="x")
    assert redundant.efficiency == pytest.approx(2 / 3) and not redundant.correct
    missing = score_plan(task, world.kb, valid=True, done_calls=set(), calls=1, levels=1, answer="")
    assert missing.efficiency == 0.0 and missing.total == pytest.approx(W_VALID)
    invalid = score_plan(task, world.kb, valid=False, done_calls=set(), calls=0, levels=0, answer="")
    assert invalid.total == 0.0


def test_split_is_seeded_disjoint_and_complete(world):
    train, held = W.split_tasks(world.kb, held_out=0.25, seed=0)
    assert [t.task_id for t in train] == [t.task_id for t in world.train]
    assert not {t.task_id for t in train} & {t.task_id for t in held}
    assert len(train) + len(held) == len(W.PEOPLE) * len(W.QUESTION_TYPES)
    assert [t.task_id for t in W.split_tasks(world.kb, seed=1)[1]] != [t.task_id for t in held]


def test_exact_match_and_bad_inputs():
    assert W.exact_match(" France. ", "france") and W.exact_match("paris rome", "paris rome")
    assert not W.exact_match("rome paris", "paris rome") and not W.exact_match(None, "paris")
    kb = W.build_kb(0)
    with pytest.raises(KeyError, match="nobody"):
        W.lookup(kb, "city", "nobody")
    with pytest.raises(ValueError, match="held_out"):
        W.split_tasks(kb, held_out=1.5)
