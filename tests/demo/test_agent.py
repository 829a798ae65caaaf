"""One agent rollout through the real openai client, GAP planner and tools, traced in-process."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

from lightspan.demo.agent import run_episodes
from lightspan.demo.run import DemoConfig, setup_tracing
from lightspan.schemas import attributes as A


def test_rollouts_emit_one_consistent_trace_each(world, policy_server, tmp_path):
    tracing = setup_tracing(DemoConfig(work_dir=tmp_path))
    tracing.memory.clear()
    two_hop = next(t for t in world.train if t.qtype == "friend_job")
    jobs = [(two_hop, 0), (two_hop, 1), (world.train[0], 0)]
    episodes = asyncio.run(run_episodes(jobs, base_url=policy_server.base_url, kb=world.kb))
    tracing.flush()
    spans = tracing.memory.get_finished_spans()
    by_rollout: dict[str, list] = {}
    for span in spans:
        by_rollout.setdefault(span.attributes.get(A.ROLLOUT_ID), []).append(span)
    assert None not in by_rollout and len(by_rollout) == 3

    ep = episodes[0]
    mine = next(
        group
        for group in by_rollout.values()
        if any(
            s.name == "invoke_agent kb-agent"
            and s.attributes[A.ATTEMPT] == 0
            and s.attributes[A.TASK_ID] == two_hop.task_id
            for s in group
        )
    )
    names = Counter(s.name for s in mine)
    assert (
        names["plan kb-agent"] == 1 and names["execute_tool lookup"] == 2 and names["execute_tool hop"] == 1
    )
    assert names["gap.level 2"] == 1 and names["chat policy"] == 1 and names["lightspan.reward"] == 1
    chat = next(s for s in mine if s.name == "chat policy")
    assert json.loads(chat.attributes[A.LLM_PROMPT_TOKEN_IDS]) == ep.prompt_token_ids
    assert json.loads(chat.attributes[A.LLM_RESPONSE_TOKEN_IDS]) == ep.completion_token_ids
    assert len(json.loads(chat.attributes[A.LLM_RESPONSE_LOGPROBS])) == len(ep.completion_token_ids)
    reward = next(s for s in mine if s.name == "lightspan.reward")
    assert reward.attributes[A.REWARD_VALUE] == ep.reward
    # The policy saw both hops' facts, as the plan gathered them.
    friend = world.kb.facts[two_hop.who]["knows"]
    assert f"{two_hop.who} knows {friend}" in ep.messages[0]["content"]
    assert f"{friend} works as {two_hop.answer}" in ep.messages[0]["content"]


def test_eval_rollouts_carry_their_own_agent_name(world, policy_server, tmp_path):
    from lightspan.demo.agent import EVAL_AGENT_NAME

    tracing = setup_tracing(DemoConfig(work_dir=tmp_path))
    tracing.memory.clear()
    asyncio.run(
        run_episodes(
            [(world.held_out[0], 0)], base_url=policy_server.base_url, kb=world.kb, agent_name=EVAL_AGENT_NAME
        )
    )
    tracing.flush()
    agents = {s.attributes.get(A.GEN_AI_AGENT_NAME) for s in tracing.memory.get_finished_spans()} - {None}
    assert agents == {EVAL_AGENT_NAME}
