"""The policy's prompts, short enough for a tiny model: one conversation per rollout.

GAP agent (two LLM calls, one conversation, so the answer call's prompt extends the plan call's
prompt and response, the case the converters' merged rows join into one sequence)::

    user       plan: countries of {q1} and {q2} ?
    assistant  <graph><node id="s1">city({q1})</node>...</graph>           <- call 1: the plan
    user       obs: s1 city(alice) = paris ; s2 city(bob) = rome ; s3 country(paris) = france ; ...
    assistant  {s3} {s4}                                                   <- call 2: the answer

ReAct baseline (one LLM call per tool call, one tool per turn, then the answer)::

    user       react: countries of {q1} and {q2} ?
    assistant  city({q1})
    user       o1 = paris
    assistant  city({q2})
    ...
    assistant  answer {o3} {o4}

Citations (``{s3}``, ``{o1}``) and inputs (``{q1}``) are filled in by the agent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "Action",
    "answer_messages",
    "observation_line",
    "parse_action",
    "plan_messages",
    "react_messages",
    "resolve",
]

Messages = list[dict[str, str]]
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.-]+)\}")
_ACTION = re.compile(r"^\s*([a-z_]+)\((.*)\)\s*$")


def plan_messages(question: str, tools: Mapping[str, Any] | None = None) -> Messages:
    """The planning call's prompt (the tools are fixed and known to the policy, so not listed)."""
    del tools
    return [{"role": "user", "content": f"plan: {question}"}]


def resolve(text: str, results: Mapping[str, Any]) -> str:
    """A node text with ``{id}`` placeholders replaced by those nodes' results."""
    return _PLACEHOLDER.sub(lambda m: str(results[m.group(1)]) if m.group(1) in results else m.group(0), text)


def observation_line(node_id: str, call: str, result: Any, ok: bool) -> str:
    return f"{node_id} {call} = {result if ok else 'error'}"


def answer_messages(conversation: Messages, observations: list[str]) -> Messages:
    """The answer call's prompt: the planning conversation, then what the plan observed."""
    return [*conversation, {"role": "user", "content": "obs: " + " ; ".join(observations)}]


def react_messages(question: str) -> Messages:
    return [{"role": "user", "content": f"react: {question}"}]


class Action:
    """One ReAct turn as the policy wrote it: a tool call, the answer, or neither (``kind='invalid'``)."""

    def __init__(self, kind: str, tool: str = "", arg: str = "", answer: str = "") -> None:
        self.kind, self.tool, self.arg, self.answer = kind, tool, arg, answer

    def __repr__(self) -> str:
        return f"Action({self.kind!r}, {self.tool!r}, {self.arg!r}, {self.answer!r})"


def parse_action(text: str, tools: Mapping[str, Any]) -> Action:
    """``tool(arg)`` naming a known tool, ``answer <words>``, else invalid (``arg`` as written)."""
    text = text.strip()
    if text.startswith("answer"):
        return Action("answer", answer=text[len("answer") :].strip())
    m = _ACTION.match(text)
    if m and m.group(1) in tools and m.group(2).strip():
        return Action("call", m.group(1), m.group(2).strip())
    return Action("invalid")
