"""The converters' hard case, call by call: the demo's GAP agent (two LLM calls, tool observations
between them, a GAP graph, step-targeted rewards) through the real openai client, traced, stored, and
converted to call rows and merged rows (prefix merge with loss masks).

The policy is the local scripted LLM server (tests/support/llm_server.py), so each rollout writes a
known plan: the minimal one, a sequentialized one, a cyclic one and a graph with no nodes (both invalid). Its toy tokenizer gives
one id per word, so the answer call's prompt ids extend the plan call's prompt + response ids exactly.
"""

from __future__ import annotations

import asyncio

import pytest

from lightspan.converters import ConvertConfig, Selection, convert, iter_trajectories, load_rows
from lightspan.demo import world as W
from lightspan.demo.agent import AGENT_NAME, STEP_REWARD, episode_seed, run_episodes
from lightspan.demo.scoring import W_CORRECT, W_EFFICIENCY, W_VALID
from tests.converters.builder import rows_from_readable
from tests.support.llm_server import LLMServer, token_ids_for
from tests.support.spans import memory_exporter, memory_provider

MINIMAL, SEQUENTIAL, CYCLIC, NO_NODES = 0, 1, 2, 3


@pytest.fixture(scope="module")
def rollouts(world):
    """Four rollouts of one 'countries' question, traced in memory: (task, plans, episodes, spans)."""
    from lightspan.instrumentation import instrument

    memory_provider()
    instrument()
    exporter = memory_exporter()
    task = next(t for t in world.train if t.qtype == "countries")
    minimal = W.render_plan(task.minimal_plan())
    sequential = minimal.replace('<node id="s2">', '<node id="s2" depends="s1">')
    cyclic = minimal.replace('<node id="s1">', '<node id="s1" depends="s3">')
    plans = {MINIMAL: minimal, SEQUENTIAL: sequential, CYCLIC: cyclic, NO_NODES: "<graph></graph>"}
    by_seed = {episode_seed(task.task_id, a): plan for a, plan in plans.items()}

    def reply(body):
        last = body["messages"][-1]["content"]
        return by_seed[body["seed"]] if last.startswith("plan:") else "{s3} {s4}"

    with LLMServer(reply=reply) as server:
        episodes = asyncio.run(
            run_episodes([(task, a) for a in plans], base_url=server.openai_url, kb=world.kb, model="tiny")
        )
    spans = list(exporter.get_finished_spans())
    return task, plans, episodes, spans


def test_the_agent_plans_runs_the_graph_and_answers(rollouts):
    task, plans, episodes, spans = rollouts
    ok, seq, bad, no_nodes = episodes
    assert ok.valid and ok.correct and ok.reward == pytest.approx(1.0)
    assert (ok.tool_calls, ok.levels, ok.llm_calls) == (4, 2, 2) and ok.answer == task.answer
    assert seq.valid and seq.correct and (seq.tool_calls, seq.levels) == (4, 3)
    assert seq.score.efficiency == pytest.approx(2 / 3)  # 2 levels needed, 3 used
    assert not bad.valid and bad.error_kind == "cyclic" and bad.reward == 0.0
    assert (bad.tool_calls, bad.llm_calls) == (0, 1)  # an invalid plan runs nothing and is not answered
    assert not no_nodes.valid and no_nodes.error_kind == "unparsable" and no_nodes.reward == 0.0
    plan_spans = [s for s in spans if s.name == f"plan {AGENT_NAME}"]
    chats = [s for s in spans if s.name == "chat tiny"]
    assert len(plan_spans) == 4 and len(chats) == 6
    ids = {s.context.span_id for s in plan_spans}
    assert all(c.parent.span_id in ids for c in chats)  # both policy calls sit inside the plan span
    rejected = [e for s in plan_spans for e in s.events if e.name == "gap.plan_rejected"]
    assert [e.attributes["kind"] for e in rejected] == ["cyclic", "unparsable"]


def _store(store, spans):
    store.insert(rows_from_readable(spans))


def test_converted_rollout_call_by_call_with_step_rewards(rollouts, store, tmp_path):
    task, plans, episodes, spans = rollouts
    _store(store, spans)
    cfg = ConvertConfig(
        dsn=store.dsn,
        selection=Selection(agent_name=AGENT_NAME),
        credit="per_step",
        reward_name=STEP_REWARD,
        output_dir=str(tmp_path),
        formats=("rows-parquet", "merged", "trajectory-json"),
    )
    trajs = {t.attempt: t for t in iter_trajectories(cfg)}
    assert sorted(trajs) == [MINIMAL, SEQUENTIAL, CYCLIC, NO_NODES]
    t = trajs[MINIMAL]
    plan_call, answer_call = t.calls
    question = {"role": "user", "content": f"plan: {task.plan_question}"}
    assert plan_call.prompt == [question]
    assert plan_call.completion[0]["content"] == plans[MINIMAL]
    assert answer_call.prompt[:2] == [question, {"role": "assistant", "content": plans[MINIMAL]}]
    obs = answer_call.prompt[2]["content"]
    assert obs.startswith("obs: s1 city(") and obs.count(" ; ") == 3
    assert answer_call.completion[0]["content"] == "{s3} {s4}"
    # the tool observations between the calls, and the graph
    assert sorted(o.tool_name for o in t.tools) == ["city", "city", "country", "country"]
    assert all(plan_call.end_ns <= o.start_ns and o.end_ns <= answer_call.start_ns for o in t.tools)
    assert t.gap is not None and sorted(map(sorted, t.gap.levels)) == [["s1", "s2"], ["s3", "s4"]]
    assert sorted(map(tuple, t.gap.edges)) == [("s1", "s3"), ("s2", "s4")]
    # step rewards aimed at each call; the rollout reward is their sum
    ok = episodes[MINIMAL]
    assert [(r.step, r.value) for r in t.rewards if r.name == STEP_REWARD] == [
        (0, pytest.approx(W_VALID + W_EFFICIENCY)),
        (1, pytest.approx(W_CORRECT)),
    ]
    primary = [r.value for r in t.rewards if r.name == "primary"]
    assert primary == [pytest.approx(ok.reward)]
    # the rows: one per call, each with its own step's credit and the server's token ids
    report = convert(cfg)
    assert report.rollouts_converted == 4 and report.llm_calls == 6 and not report.skipped
    rows = sorted(load_rows(tmp_path / "rows-parquet").to_list(), key=lambda r: (r["attempt"], r["step"]))
    assert [(r["attempt"], r["step"], round(r["reward"], 4)) for r in rows] == [
        (MINIMAL, 0, round(W_VALID + W_EFFICIENCY, 4)),
        (MINIMAL, 1, W_CORRECT),
        (SEQUENTIAL, 0, round(W_VALID + W_EFFICIENCY * 2 / 3, 4)),
        (SEQUENTIAL, 1, W_CORRECT),
        (CYCLIC, 0, 0.0),
        (NO_NODES, 0, 0.0),
    ]
    p1 = token_ids_for(f"plan: {task.plan_question}")
    r1, r2 = token_ids_for(plans[MINIMAL]), token_ids_for("{s3} {s4}")
    assert rows[0]["prompt_token_ids"] == p1 and rows[0]["completion_token_ids"] == r1
    p2 = rows[1]["prompt_token_ids"]
    assert p2[: len(p1) + len(r1)] == p1 + r1 and rows[1]["completion_token_ids"] == r2
    # merged rows: the calls got different credit, so each is its own row (earlier tokens masked)
    merged = [m for m in load_rows(tmp_path / "merged").to_list() if m["rollout_id"] == t.rollout_id]
    assert [(m["input_ids"], m["loss_mask"], round(m["reward"], 4)) for m in merged] == [
        (p1 + r1, [0] * len(p1) + [1] * len(r1), round(W_VALID + W_EFFICIENCY, 4)),
        (p2 + r2, [0] * len(p2) + [1] * len(r2), W_CORRECT),
    ]


def test_merged_rows_join_the_two_calls_when_they_share_the_rollout_credit(rollouts, store, tmp_path):
    task, plans, episodes, spans = rollouts
    _store(store, spans)
    report = convert(
        ConvertConfig(
            dsn=store.dsn,
            selection=Selection(agent_name=AGENT_NAME),
            credit="grpo_rollout",
            output_dir=str(tmp_path),
            formats=("rows-parquet", "merged"),
        )
    )
    assert report.rollouts_converted == 4
    rows = sorted(load_rows(tmp_path / "rows-parquet").to_list(), key=lambda r: (r["attempt"], r["step"]))
    # GRPO over the task's four rollouts: both calls of a rollout share its advantage
    rewards = [e.reward for e in episodes]
    mean = sum(rewards) / 4
    std = (sum((x - mean) ** 2 for x in rewards) / 3) ** 0.5
    assert [round(r["advantage"], 4) for r in rows] == [
        round((rewards[a] - mean) / (std + 1e-6), 4) for a in (0, 0, 1, 1, 2, 3)
    ]
    p1 = token_ids_for(f"plan: {task.plan_question}")
    r1, r2 = token_ids_for(plans[MINIMAL]), token_ids_for("{s3} {s4}")
    p2 = rows[1]["prompt_token_ids"]
    obs = p2[len(p1) + len(r1) :]
    merged = {m["rollout_id"]: m for m in load_rows(tmp_path / "merged").to_list()}
    assert len(merged) == 4
    (m,) = [m for m in merged.values() if m["input_ids"][: len(p1) + len(r1)] == p1 + r1]
    # plan prompt (0) | plan (1) | observations (0) | answer (1): one sequence, one advantage
    assert m["input_ids"] == p1 + r1 + obs + r2
    assert m["loss_mask"] == [0] * len(p1) + [1] * len(r1) + [0] * len(obs) + [1] * len(r2)
    assert m["advantage"] == pytest.approx(rows[0]["advantage"])
