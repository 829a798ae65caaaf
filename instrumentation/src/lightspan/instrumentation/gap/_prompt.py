"""The GAP prompts: planning (the paper's six functions, graph format and rules), node execution and
answer synthesis, as chat messages any client can take."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._parse import render_result

__all__ = [
    "FUNCTION_TYPES",
    "GAP_SYSTEM_PROMPT",
    "GAP_USER_PROMPT",
    "planning_messages",
    "node_messages",
    "answer_messages",
]

#: The function vocabulary of the GAP prompt.
FUNCTION_TYPES: dict[str, str] = {
    "think": "Reasoning before taking actions",
    "plan": "Break down the question into sub-tasks with explicit dependencies",
    "search": "Execute search queries (use | separator for parallel searches)",
    "observation": "Return search results from environment",
    "reflection": "Evaluate current plan and modify if needed",
    "answer": "Provide final response to user query",
}

GAP_SYSTEM_PROMPT = """\
You are an intelligent task planner with parallel execution capabilities.
Your goal is to decompose user queries into executable task graphs that maximize parallelization.

FUNCTION VOCABULARY:
1. think() - Reason about the query before taking actions
2. plan() - Break down the question into sub-tasks with explicit dependencies
3. search(query) - Execute a search query (use | separator for parallel: search("A | B | C"))
4. observation() - Receive and process search results from the environment
5. reflection() - Evaluate the current plan and modify if needed
6. answer() - Provide the final response to the user query
{tools}
GRAPH FORMAT:
Use XML-style encoding with dependency markers:
<graph>
  <node id="s1">search("independent query 1")</node>
  <node id="s2">search("independent query 2")</node>
  <node id="s3" depends="s1">search("query using result from s1: {{s1}}")</node>
  <node id="s4" depends="s1,s2">search("query using results from s1 and s2: {{s1}}, {{s2}}")</node>
</graph>

DEPENDENCY RULES:
- A task depends on another if it requires that task's output as input
- Independent tasks (no dependencies) execute in parallel
- Tasks with same dependencies execute in parallel
- Use {{node_id}} syntax to reference outputs from prior tasks

EXECUTION STRATEGY:
- Group tasks by dependency level (topological sort)
- Execute all tasks in a level concurrently
- Pass outputs to dependent tasks

EXAMPLE:
User: "What are the populations of the capitals of France and Germany?"

<think>
This requires:
1. Finding capital of France (independent)
2. Finding capital of Germany (independent)
3. Finding population of France's capital (depends on 1)
4. Finding population of Germany's capital (depends on 2)

Tasks 1 and 2 are independent -> execute in parallel (Level 0)
Tasks 3 and 4 depend on 1 and 2 respectively -> execute in parallel after Level 0 (Level 1)
</think>

<plan>
<graph>
  <node id="s1">search("capital of France")</node>
  <node id="s2">search("capital of Germany")</node>
  <node id="s3" depends="s1">search("population of {{s1}}")</node>
  <node id="s4" depends="s2">search("population of {{s2}}")</node>
</graph>
</plan>

Answer with <think> and <plan> blocks only; the tasks are executed for you and you will be asked for
the <answer> once the observations are in.
"""

GAP_USER_PROMPT = """\
USER QUERY: {query}

Generate the task graph:
"""

_NODE_SYSTEM = "You carry out one sub-task of a larger plan. Reply with the sub-task's result only, briefly."
_ANSWER_SYSTEM = (
    "You answer the user's query from the observations gathered by executing a task graph. "
    "Reply with the final answer only."
)


def planning_messages(query: str, tools: Mapping[str, Any] | None = None) -> list[dict[str, str]]:
    """System + user messages asking for a GAP plan for ``query``; lists the registered tools."""
    listing = ""
    if tools:
        lines = [f"- {name}(...)" + (f": {_doc(fn)}" if _doc(fn) else "") for name, fn in tools.items()]
        listing = (
            '\nAVAILABLE TOOLS (call them as node text, e.g. name("argument")):\n' + "\n".join(lines) + "\n"
        )
    return [
        {"role": "system", "content": GAP_SYSTEM_PROMPT.format(tools=listing)},
        {"role": "user", "content": GAP_USER_PROMPT.format(query=query)},
    ]


def node_messages(query: str, task_text: str, inputs: Mapping[str, Any]) -> list[dict[str, str]]:
    """Messages for a node that is task text (no tool): the sub-task plus its dependencies' results."""
    parts = [f"Overall query: {query}", f"Sub-task: {task_text}"]
    if inputs:
        parts.append("Results of the sub-tasks it depends on:")
        parts += [f"- {tid}: {render_result(value)}" for tid, value in inputs.items()]
    return [{"role": "system", "content": _NODE_SYSTEM}, {"role": "user", "content": "\n".join(parts)}]


def answer_messages(query: str, observations: Mapping[str, tuple[str, Any]]) -> list[dict[str, str]]:
    """Messages for answer synthesis; ``observations`` maps task id -> (task text, result)."""
    lines = [f"USER QUERY: {query}", "", "<observation>"]
    lines += [f"{tid} ({text}): {render_result(result)}" for tid, (text, result) in observations.items()]
    lines += ["</observation>", "", "Give the <answer>."]
    return [{"role": "system", "content": _ANSWER_SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def _doc(fn: Any) -> str:
    desc = getattr(fn, "tool_description", None) or (fn.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(desc.split())
