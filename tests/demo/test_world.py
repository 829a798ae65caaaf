"""The toy world: answers are recoverable from the facts the plan gathers, the split is stable, rewards exact."""

from __future__ import annotations

import pytest

from lightspan.demo import world as W
from lightspan.demo.warmstart import observations_for


def test_every_answer_is_in_the_gathered_facts(world):
    for task in world.train + world.held_out:
        facts = " ".join(observations_for(world.kb, task))
        assert f" {task.answer} ." in f" {facts}", task


def test_split_is_seeded_disjoint_and_complete(world):
    train, held = W.split_tasks(world.kb, held_out=0.25, seed=0)
    assert [t.task_id for t in train] == [t.task_id for t in world.train]
    ids = {t.task_id for t in train} | {t.task_id for t in held}
    assert not {t.task_id for t in train} & {t.task_id for t in held}
    assert len(ids) == len(W.make_tasks(world.kb)) == len(W.PEOPLE) * len(W.QUESTION_TYPES)
    assert [t.task_id for t in W.split_tasks(world.kb, seed=1)[1]] != [t.task_id for t in held]


def test_reward_reads_the_first_word():
    assert W.reward("france", "france") == 1.0
    assert W.reward(" France. it is", "france") == 1.0
    assert W.reward("lyon france", "france") == 0.0
    assert W.reward("", "france") == 0.0 and W.reward(None, "france") == 0.0


def test_plan_templates_parse_into_the_expected_graphs(world):
    from lightspan.instrumentation.gap import build_dag, parse_plan

    two_hop = next(t for t in world.train if t.qtype == "country")
    levels = build_dag(parse_plan(two_hop.plan_text()))
    assert [[t.id for t in level] for level in levels.values()] == [["s1"], ["s2"], ["s3"]]
    one_hop = next(t for t in world.train if t.qtype == "job")
    assert len(parse_plan(one_hop.plan_text())) == 1


def test_bad_inputs_are_refused_by_name(world):
    with pytest.raises(KeyError, match="nobody"):
        W.facts_about(world.kb, "nobody")
    with pytest.raises(ValueError, match="held_out"):
        W.split_tasks(world.kb, held_out=1.5)
