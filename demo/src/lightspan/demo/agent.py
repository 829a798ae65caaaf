"""The demo agents: the GAP agent (the policy plans, the planner runs the graph, the policy answers)
and the sequential ReAct baseline, both through the real openai client and traced as rollouts.

GAP rollout, one per question::

    invoke_agent kb-agent                     rollout(task_id, attempt)
    └── plan kb-agent                         the graph (lightspan.gap.graph), levels, nodes
        ├── chat policy                       call 0: the policy writes the plan (token ids, logprobs)
        ├── gap.level 0 > gap.node s1 > execute_tool city    (a level's nodes run concurrently)
        ├── gap.level 1 > ...
        └── chat policy                       call 1: the policy answers from the observations
    lightspan.reward x3                       step reward aimed at call 0 (plan), at call 1 (answer),
                                              and the rollout's reward (see scoring.py)

An invalid plan (unparsable, cyclic, unknown tool, dangling reference) runs nothing and ends the rollout
after call 0, with reward 0: an outcome, not an error.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lightspan.demo import prompts as P
from lightspan.demo import world as W
from lightspan.demo.scoring import Score, score_plan

__all__ = [
    "AGENT_NAME",
    "EVAL_AGENT_NAME",
    "REACT_AGENT_NAME",
    "STEP_REWARD",
    "Episode",
    "episode_seed",
    "make_planner",
    "make_tools",
    "run_episode",
    "run_episodes",
    "run_react_episode",
]

AGENT_NAME = "kb-agent"
#: Evaluation rollouts run under their own agent names, so a converter selecting ``agent_name=AGENT_NAME``
#: never trains on held-out evaluations or on the baseline.
EVAL_AGENT_NAME = "kb-agent-eval"
REACT_AGENT_NAME = "kb-agent-react"
TASK_TYPE = "gap-kb"
#: The name of the step-targeted rewards (``--credit per_step`` converts with ``reward_name=STEP_REWARD``;
#: the rollout reward is the default ``primary``, their sum).
STEP_REWARD = "step"
MAX_PLAN_TOKENS = 64
MAX_ANSWER_TOKENS = 8
MAX_REACT_TOKENS = 8
#: A lookup's latency: the knowledge base stands in for a remote search API.
TOOL_LATENCY_S = 0.02
#: The current rollout's inputs (q1 -> alice), for rendering observations in the answer prompt.
_INPUTS: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("demo_inputs", default={})  # noqa: B039


@dataclass
class Episode:
    """What one rollout did, as the agent saw it (the spans hold the same, for the pipeline)."""

    task_id: str
    qtype: str
    attempt: int
    question: str
    expected: str
    agent: str = "gap"
    plan: str = ""
    answer: str = ""
    valid: bool = False
    error_kind: str | None = None
    tool_calls: int = 0
    levels: int = 0
    llm_calls: int = 0
    response_tokens: int = 0  # every token the policy generated in this rollout
    plan_tokens: int = 0  # the planning call's tokens (the whole response, for ReAct)
    wall_s: float = 0.0
    score: Score | None = None
    messages: list[dict[str, str]] = field(default_factory=list)

    @property
    def reward(self) -> float:
        return self.score.total if self.score else 0.0

    @property
    def correct(self) -> bool:
        return bool(self.score and self.score.correct)


def make_tools(kb: W.KB, latency_s: float = TOOL_LATENCY_S) -> dict[str, Any]:
    """The four lookups over ``kb``, async, each an ``execute_tool`` span."""
    from lightspan.instrumentation import tool

    def one(relation: str) -> Any:
        async def fn(entity: str) -> str:
            await asyncio.sleep(latency_s)
            return W.lookup(kb, relation, entity)

        fn.__name__ = relation
        fn.__doc__ = f"The {relation} of an entity."
        return tool(fn, name=relation)

    return {name: one(name) for name in W.TOOL_NAMES}


def episode_seed(task_id: str, attempt: int, salt: int = 0) -> int:
    """A stable sampling seed per (task, attempt): before/after evaluations draw comparable samples."""
    digest = hashlib.sha256(f"{salt}:{task_id}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _answer_prompt(
    question: str, tasks: list[Any], conversation: list[dict[str, str]]
) -> list[dict[str, str]]:
    results = {**_INPUTS.get(), **{t.id: t.result for t in tasks if t.status.value == "complete"}}
    lines = [
        P.observation_line(t.id, P.resolve(t.description, results), t.result, t.status.value == "complete")
        for t in tasks
    ]
    return P.answer_messages(conversation, lines)


def make_planner(client: Any, kb: W.KB, *, agent_name: str = AGENT_NAME, model: str = "policy") -> Any:
    """The GAP planner the policy plans for: strict (an invalid plan is an outcome), level by level."""
    from lightspan.instrumentation.gap import GAPPlanner

    return GAPPlanner(
        client,
        model=model,
        tools=make_tools(kb),
        agent_name=agent_name,
        scheduler="level",
        fanout_separator=None,
        plan_prompt=P.plan_messages,
        answer_prompt=_answer_prompt,
        on_invalid_plan="return",
    )


def _options(temperature: float, seed: int | None, max_tokens: int) -> dict[str, Any]:
    return {
        "temperature": temperature,
        "seed": seed,
        "max_tokens": max_tokens,
        "logprobs": True,
        "extra_body": {"return_token_ids": True},
    }


async def run_episode(
    task: W.Task,
    *,
    planner: Any,
    kb: W.KB,
    attempt: int = 0,
    temperature: float = 1.0,
    seed: int | None = None,
    agent_name: str = AGENT_NAME,
) -> Episode:
    """One GAP rollout of ``task``: plan call, graph run, answer call, rewards."""
    from lightspan.instrumentation import emit_reward, rollout

    started = time.perf_counter()
    with rollout(task_id=task.task_id, attempt=attempt, agent_name=agent_name, task_type=TASK_TYPE):
        token = _INPUTS.set(task.inputs)
        try:
            result = await planner.execute_plan(
                task.plan_question,
                plan_options=_options(temperature, seed, MAX_PLAN_TOKENS),
                answer_options=_options(temperature, seed, MAX_ANSWER_TOKENS),
                inputs=task.inputs,
            )
        finally:
            _INPUTS.reset(token)
        valid = bool(result["plan_valid"])
        done = {**task.inputs, **{t["id"]: t["result"] for t in result["tasks"] if t["status"] == "complete"}}
        calls = {
            (t["description"].split("(", 1)[0].strip(), _arg(t["description"], done))
            for t in result["tasks"]
            if t["status"] == "complete"
        }
        ep = Episode(
            task.task_id,
            task.qtype,
            attempt,
            task.question,
            task.answer,
            plan=result["plan_reply"] or "",
            answer=P.resolve(result["answer"], done) if valid else "",
            valid=valid,
            error_kind=(result["plan_error"] or {}).get("kind"),
            tool_calls=int(result["tool_calls"]),
            levels=int(result["level_count"]),
            llm_calls=2 if valid else 1,
            plan_tokens=int(result["plan_tokens"] or 0),
        )
        ep.response_tokens = ep.plan_tokens + int(result["answer_tokens"] or 0)
        ep.score = score_plan(
            task, kb, valid=valid, done_calls=calls, calls=ep.tool_calls, levels=ep.levels, answer=ep.answer
        )
        emit_reward(ep.score.plan, name=STEP_REWARD, step=0)
        if valid:
            emit_reward(ep.score.answer, name=STEP_REWARD, step=1)
        emit_reward(ep.score.total)
    ep.wall_s = time.perf_counter() - started
    return ep


def _arg(description: str, results: dict[str, Any]) -> str:
    """The resolved argument of a ``tool(arg)`` node text."""
    inner = description.split("(", 1)[1].rsplit(")", 1)[0] if "(" in description else ""
    return P.resolve(inner, results).strip().lower()


async def run_react_episode(
    task: W.Task,
    *,
    client: Any,
    tools: dict[str, Any],
    kb: W.KB,
    attempt: int = 0,
    temperature: float = 1.0,
    seed: int | None = None,
    model: str = "policy",
    agent_name: str = REACT_AGENT_NAME,
    max_turns: int = 6,
) -> Episode:
    """The sequential baseline: each turn the policy writes one action (``tool(arg)`` or ``answer ...``),
    the tool runs, its result is the next user turn; at most ``max_turns`` turns."""
    from lightspan.instrumentation import emit_reward, rollout

    started = time.perf_counter()
    messages = P.react_messages(task.plan_question)
    context: dict[str, str] = dict(task.inputs)
    ep = Episode(task.task_id, task.qtype, attempt, task.question, task.answer, agent="react", valid=True)
    done_calls: set[tuple[str, str]] = set()
    with rollout(task_id=task.task_id, attempt=attempt, agent_name=agent_name, task_type=TASK_TYPE):
        for turn in range(max_turns):
            resp = await client.chat.completions.create(
                model=model,
                messages=messages,
                **_options(temperature, None if seed is None else seed + turn, MAX_REACT_TOKENS),
            )
            text = resp.choices[0].message.content or ""
            ep.llm_calls += 1
            ep.response_tokens += int(getattr(resp.usage, "completion_tokens", 0) or 0)
            action = P.parse_action(text, tools)
            if action.kind == "answer":
                ep.answer = P.resolve(action.answer, context)
                break
            if action.kind == "invalid":
                ep.valid = False
                obs = "invalid action"
            else:
                ep.tool_calls += 1
                arg = P.resolve(action.arg, context).strip().lower()
                try:
                    value = await tools[action.tool](arg)
                except KeyError:
                    obs = f"o{ep.tool_calls} = error"
                else:
                    done_calls.add((action.tool, arg))
                    context[f"o{ep.tool_calls}"] = value
                    obs = f"o{ep.tool_calls} = {value}"
            messages = [*messages, {"role": "assistant", "content": text}, {"role": "user", "content": obs}]
        ep.messages = messages
        ep.plan_tokens = ep.response_tokens
        ep.levels = ep.tool_calls  # one tool per turn: every call is its own level
        ep.score = score_plan(
            task,
            kb,
            valid=True,
            done_calls=done_calls,
            calls=ep.tool_calls,
            levels=ep.levels,
            answer=ep.answer,
        )
        ep.valid = ep.valid and bool(ep.answer)
        emit_reward(ep.score.total)
    ep.wall_s = time.perf_counter() - started
    return ep


async def run_episodes(
    jobs: list[tuple[W.Task, int]],
    *,
    base_url: str,
    kb: W.KB,
    model: str = "policy",
    temperature: float = 1.0,
    seed_salt: int = 0,
    concurrency: int = 8,
    on_done: Callable[[Episode], object] | None = None,
    agent_name: str = AGENT_NAME,
    react: bool = False,
) -> list[Episode]:
    """Run ``(task, attempt)`` rollouts, ``concurrency`` at a time, against the server at ``base_url``
    (GAP agent, or the ReAct baseline with ``react=True``)."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="lightspan-demo", max_retries=2, timeout=120)
    planner = make_planner(client, kb, agent_name=agent_name, model=model)
    tools = make_tools(kb)
    gate = asyncio.Semaphore(concurrency)

    async def one(task: W.Task, attempt: int) -> Episode:
        seed = episode_seed(task.task_id, attempt, seed_salt)
        async with gate:
            if react:
                ep = await run_react_episode(
                    task,
                    client=client,
                    tools=tools,
                    kb=kb,
                    attempt=attempt,
                    temperature=temperature,
                    seed=seed,
                    model=model,
                    agent_name=agent_name,
                )
            else:
                ep = await run_episode(
                    task,
                    planner=planner,
                    kb=kb,
                    attempt=attempt,
                    temperature=temperature,
                    seed=seed,
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
