"""Agent rollouts through the real openai client, PolicyServer (real tokenizer), GAP planner and tools."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

from lightspan.demo.agent import AGENT_NAME, EVAL_AGENT_NAME, REACT_AGENT_NAME, STEP_REWARD, run_episodes
from lightspan.demo.run import DemoConfig, setup_tracing
from lightspan.schemas import attributes as A


def _by_rollout(spans):
    out: dict[str, list] = {}
    for span in spans:
        out.setdefault(span.attributes.get(A.ROLLOUT_ID), []).append(span)
    return out


def test_gap_rollouts_trace_one_plan_one_or_two_policy_calls_and_their_rewards(
    world, policy_server, tmp_path
):
    tracing = setup_tracing(DemoConfig(work_dir=tmp_path))
    tracing.memory.clear()
    jobs = [(t, a) for t in world.train[:4] for a in range(2)]
    episodes = asyncio.run(run_episodes(jobs, base_url=policy_server.base_url, kb=world.kb))
    tracing.flush()
    groups = _by_rollout(tracing.memory.get_finished_spans())
    assert None not in groups and len(groups) == len(jobs)
    for ep in episodes:
        (mine,) = [
            g
            for g in groups.values()
            if any(
                s.name == f"invoke_agent {AGENT_NAME}"
                and s.attributes[A.TASK_ID] == ep.task_id
                and s.attributes[A.ATTEMPT] == ep.attempt
                for s in g
            )
        ]
        names = Counter(s.name for s in mine)
        assert names[f"plan {AGENT_NAME}"] == 1 and names["chat policy"] == ep.llm_calls == (
            2 if ep.valid else 1
        )
        assert (
            names["execute_tool city"]
            + names["execute_tool job"]
            + names["execute_tool friend"]
            + names["execute_tool country"]
            == ep.tool_calls
        )
        for chat in (s for s in mine if s.name == "chat policy"):  # RL data on every policy call
            ids = json.loads(chat.attributes[A.LLM_RESPONSE_TOKEN_IDS])
            assert ids and len(json.loads(chat.attributes[A.LLM_RESPONSE_LOGPROBS])) == len(ids)
            assert json.loads(chat.attributes[A.LLM_PROMPT_TOKEN_IDS])
        rewards = {
            (s.attributes[A.REWARD_NAME], s.attributes.get(A.REWARD_STEP)): s.attributes[A.REWARD_VALUE]
            for s in mine
            if s.name == "lightspan.reward"
        }
        assert ep.score is not None
        expected = {(STEP_REWARD, 0): ep.score.plan, ("primary", None): ep.score.total}
        if ep.valid:
            expected[(STEP_REWARD, 1)] = ep.score.answer
        assert rewards == expected
        assert 0.0 <= ep.reward <= 1.0


def test_eval_and_baseline_rollouts_carry_their_own_agent_names(world, policy_server, tmp_path):
    tracing = setup_tracing(DemoConfig(work_dir=tmp_path))
    for react, name in ((False, EVAL_AGENT_NAME), (True, REACT_AGENT_NAME)):
        tracing.memory.clear()
        (ep,) = asyncio.run(
            run_episodes(
                [(world.held_out[0], 0)],
                base_url=policy_server.base_url,
                kb=world.kb,
                agent_name=name,
                react=react,
            )
        )
        tracing.flush()
        spans = tracing.memory.get_finished_spans()
        assert {s.attributes.get(A.GEN_AI_AGENT_NAME) for s in spans} - {None} == {name}
        chats = [s for s in spans if s.name == "chat policy"]
        assert len(chats) == ep.llm_calls >= 1
        if react:  # one policy call per turn, at most one tool call per turn
            assert ep.tool_calls <= ep.llm_calls and ep.levels == ep.tool_calls
