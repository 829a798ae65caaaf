"""The demo agent: a GAP plan gathers facts with tools, the policy answers through the real openai client.

One rollout = one question: ``rollout(task_id, attempt)`` > ``plan kb-agent`` (GAP graph, levels, nodes,
``execute_tool lookup/hop`` spans) > ``chat policy`` (the policy's answer, with token ids and logprobs
from the server) > ``lightspan.reward``. The policy's call is the one LLM call per rollout that training
learns from.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any

from lightspan.demo import world as W

__all__ = [
    "AGENT_NAME",
    "EVAL_AGENT_NAME",
    "Episode",
    "make_tools",
    "run_episode",
    "run_episodes",
    "episode_seed",
]

AGENT_NAME = "kb-agent"
#: Evaluation rollouts run under their own agent name, so a converter selecting ``agent_name=AGENT_NAME``
#: never trains on held-out evaluations.
EVAL_AGENT_NAME = "kb-agent-eval"
TASK_TYPE = "multi-hop-kb"
MAX_ANSWER_TOKENS = 8


@dataclass
class Episode:
    """What one rollout did, as the agent saw it (the spans hold the same, for the pipeline)."""

    task_id: str
    attempt: int
    question: str
    expected: str
    answer: str
    reward: float
    messages: list[dict[str, str]] = field(default_factory=list)
    prompt_token_ids: list[int] | None = None
    completion_token_ids: list[int] | None = None
    completion_logprobs: list[float] | None = None
    tool_calls: int = 0
    error: str | None = None


def make_tools(kb: W.KB) -> dict[str, Any]:
    """The agent's two tools over ``kb``, as ``execute_tool`` spans."""
    from lightspan.instrumentation import tool

    @tool(name="lookup", description="Every fact about an entity (a person or a city).")
    def lookup(entity: str) -> str:
        return W.facts_about(kb, entity)

    @tool(name="hop", description="The entity a relation points to, read from a lookup's facts.")
    def hop(facts: str, relation: str) -> str:
        return W.follow(facts, relation)

    return {"lookup": lookup, "hop": hop}


def episode_seed(task_id: str, attempt: int, salt: int = 0) -> int:
    """A stable sampling seed per (task, attempt): before/after evaluations draw comparable samples."""
    digest = hashlib.sha256(f"{salt}:{task_id}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


async def run_episode(
    task: W.Task,
    *,
    client: Any,
    kb: W.KB,
    attempt: int = 0,
    model: str = "policy",
    temperature: float = 1.0,
    seed: int | None = None,
    planner: Any = None,
    agent_name: str = AGENT_NAME,
) -> Episode:
    """Run one rollout of ``task`` and emit its reward; ``client`` is an ``openai.AsyncOpenAI``."""
    from lightspan.instrumentation import emit_reward, rollout
    from lightspan.instrumentation.gap import GAPPlanner

    planner = planner or GAPPlanner(tools=make_tools(kb), agent_name=agent_name)
    with rollout(task_id=task.task_id, attempt=attempt, agent_name=agent_name, task_type=TASK_TYPE):
        result = await planner.execute_plan(task.question, plan_text=task.plan_text())
        observations = [
            str(t["result"])
            for t in result["tasks"]
            if str(t.get("description", "")).startswith("lookup(") and t.get("result") is not None
        ]
        messages = W.policy_messages(task.question, observations)
        episode = Episode(
            task.task_id,
            attempt,
            task.question,
            task.answer,
            answer="",
            reward=0.0,
            messages=messages,
            tool_calls=int(result.get("tool_calls", 0)),
        )
        if not result["success"]:
            episode.error = f"plan failed at {result['failed']}"
        else:
            resp = await client.chat.completions.create(
                model=model,
                messages=messages,
                temperature=temperature,
                max_tokens=MAX_ANSWER_TOKENS,
                seed=seed,
                logprobs=True,
                extra_body={"return_token_ids": True},
            )
            choice = resp.choices[0]
            episode.answer = choice.message.content or ""
            episode.prompt_token_ids = getattr(resp, "prompt_token_ids", None)
            episode.completion_token_ids = getattr(choice, "token_ids", None)
            if choice.logprobs is not None and choice.logprobs.content is not None:
                episode.completion_logprobs = [c.logprob for c in choice.logprobs.content]
            episode.reward = W.reward(episode.answer, task.answer)
        emit_reward(episode.reward)
    return episode


async def run_episodes(
    jobs: list[tuple[W.Task, int]],
    *,
    base_url: str,
    kb: W.KB,
    model: str = "policy",
    temperature: float = 1.0,
    seed_salt: int = 0,
    concurrency: int = 8,
    on_done: Any = None,
    agent_name: str = AGENT_NAME,
) -> list[Episode]:
    """Run ``(task, attempt)`` rollouts, ``concurrency`` at a time, against the server at ``base_url``."""
    import openai

    from lightspan.instrumentation.gap import GAPPlanner

    client = openai.AsyncOpenAI(base_url=base_url, api_key="lightspan-demo", max_retries=2, timeout=120)
    planner = GAPPlanner(tools=make_tools(kb), agent_name=agent_name)
    gate = asyncio.Semaphore(concurrency)

    async def one(task: W.Task, attempt: int) -> Episode:
        async with gate:
            ep = await run_episode(
                task,
                client=client,
                kb=kb,
                attempt=attempt,
                model=model,
                temperature=temperature,
                seed=episode_seed(task.task_id, attempt, seed_salt),
                planner=planner,
                agent_name=agent_name,
            )
        if on_done is not None:
            on_done(ep)
        return ep

    try:
        return list(await asyncio.gather(*(one(t, a) for t, a in jobs)))
    finally:
        planner.close()
        await client.close()
