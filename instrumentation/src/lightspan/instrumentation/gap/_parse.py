"""Plan text -> tasks. Two formats, one result:

* the paper's XML graph, possibly inside ``<plan>`` with ``<think>``/``<reflection>``/``<answer>`` around it::

      <graph><node id="s1">search("capital of France")</node>
             <node id="s3" depends="s1">search("population of {s1}")</node></graph>

* the user guide's task lines::

      <plan>
      Task 1: Fetch data | Dependencies: none
      Task 2: Process data | Dependencies: Task 1
      </plan>

Also here: the tool-call syntax of a node's text (``name("arg", {s1})``) and ``{id}`` placeholders.
"""

from __future__ import annotations

import ast
import functools
import html
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._task import Task

__all__ = ["PlanError", "parse_plan", "Call", "parse_call", "fill_placeholders", "render_result"]


class PlanError(ValueError):
    """A plan that cannot be read; the message says which node or line and why."""


_GRAPH_OPEN = re.compile(r"<graph\b[^>]*>", re.I)
_GRAPH_CLOSE = re.compile(r"</graph\s*>", re.I)
_NODE = re.compile(r"<node\b([^>]*)>(.*?)</node\s*>", re.I | re.S)
_NODE_OPEN = re.compile(r"<node\b", re.I)
_ATTR = re.compile(r"""([A-Za-z_][\w.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_PLAN = re.compile(r"<plan\b[^>]*>(.*?)(?:</plan\s*>|\Z)", re.I | re.S)
_TASK_LINE = re.compile(r"^\s*(?:[-*]\s*|\d+[.)]\s*)?task\s+([A-Za-z0-9_.-]+?)\s*[:.)]\s*(.*)$", re.I)
_TASK_START = re.compile(r"^\s*(?:[-*]\s*|\d+[.)]\s*)?task\b", re.I)
_DEPS = re.compile(r"\|\s*(?:dependencies|dependency|depends on|depends|deps)\s*:\s*(.*)$", re.I)
_DEP_TOKEN = re.compile(r"^(?:task[\s_#-]*)?#?([A-Za-z0-9_.-]+)$", re.I)
_NO_DEPS = {"", "none", "no", "-", "n/a", "na", "nothing", "[]"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.-]+)\}")
_ONE_STRING = re.compile(r"""^\s*"([^"\\]*)"\s*$""")
_DEP_SPLIT = re.compile(r"[\s,;]+")
_KWARG = re.compile(r"^([A-Za-z_]\w*)\s*=(?!=)\s*(.*)$", re.S)
_CALL = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*\((.*)\)\s*$", re.S)


def parse_plan(plan_text: str) -> list[Task]:
    """Parse a plan in either format into tasks (in plan order); ``[]`` when the text holds no plan.

    XML ids are kept as written (``s1``); task lines get ids ``task_<n>``. A ``{id}`` placeholder naming
    another task adds that task as a dependency (its result is needed). With several ``<graph>`` blocks the
    last one wins (a ``<reflection>`` may revise the plan). Raises :class:`PlanError` for malformed plans.
    """
    if not isinstance(plan_text, str):
        raise PlanError(f"plan_text must be a string, got {type(plan_text).__name__}")
    if _GRAPH_OPEN.search(plan_text):
        tasks = _parse_graph(plan_text)
    else:
        tasks = _parse_task_lines(plan_text)
    ids = [t.id for t in tasks]
    dups = sorted(i for i, n in Counter(ids).items() if n > 1)
    if dups:
        raise PlanError(f"Duplicate task ids in plan: {', '.join(dups)}")
    known = set(ids)
    for task in tasks:
        task.dependencies |= {ref for ref in _PLACEHOLDER.findall(task.description) if ref in known} - {
            task.id
        }
    return tasks


def _parse_graph(text: str) -> list[Task]:
    opens = list(_GRAPH_OPEN.finditer(text))
    start = opens[-1].end()
    close = _GRAPH_CLOSE.search(text, start)
    if close is None:
        raise PlanError("Malformed plan: <graph> is never closed with </graph>")
    body = text[start : close.start()]
    nodes = list(_NODE.finditer(body))
    opened = len(_NODE_OPEN.findall(body))
    if len(nodes) != opened:
        raise PlanError(
            f"Malformed plan: {opened - len(nodes)} of {opened} <node> elements are not closed with </node>"
        )
    if not nodes:
        raise PlanError("Malformed plan: <graph> holds no <node> elements")
    tasks = []
    for n, match in enumerate(nodes, 1):
        attrs = {}
        for m in _ATTR.finditer(match.group(1)):
            _, dq, sq, bare = m.groups()
            attrs[m.group(1).lower()] = dq if dq is not None else sq if sq is not None else bare
        node_id = _unescape(attrs.get("id", "")).strip()
        if not node_id:
            raise PlanError(f"Malformed plan: node #{n} has no id attribute: <node{match.group(1)}>")
        description = _unescape(match.group(2)).strip()
        if not description:
            raise PlanError(f"Malformed plan: node {node_id} is empty (it needs a tool call or a task text)")
        depends = attrs.get("depends", attrs.get("depends_on", ""))
        deps = set(_DEP_SPLIT.split(_unescape(depends))) - {""} if depends else set()
        tasks.append(Task(id=node_id, description=description, dependencies=deps))
    return tasks


def _unescape(text: str) -> str:
    return html.unescape(text) if "&" in text else text


def _parse_task_lines(text: str) -> list[Task]:
    blocks = _PLAN.findall(text)
    body = blocks[-1] if blocks else text
    tasks = []
    for raw in body.splitlines():
        line = raw.strip()
        if not _TASK_START.match(line):
            continue
        match = _TASK_LINE.match(line)
        if match is None:
            raise PlanError(
                f"Malformed plan line (expected 'Task <n>: <text> | Dependencies: ...'): {line!r}"
            )
        task_id = f"task_{match.group(1).lower()}"
        rest = match.group(2)
        deps_match = _DEPS.search(rest)
        deps: set[str] = set()
        if deps_match:
            description = rest[: deps_match.start()].strip()
            deps = _parse_deps(deps_match.group(1), line)
        else:
            description = rest.strip()
        if not description:
            raise PlanError(f"Malformed plan line, the task has no text: {line!r}")
        tasks.append(Task(id=task_id, description=description, dependencies=deps))
    if blocks and not tasks and body.strip():
        raise PlanError(f"Malformed plan: <plan> holds no 'Task <n>: ...' lines: {body.strip()[:80]!r}")
    return tasks


def _parse_deps(text: str, line: str) -> set[str]:
    text = text.strip().rstrip(".")
    if text.lower() in _NO_DEPS:
        return set()
    deps = set()
    for token in re.split(r"\s*(?:,|;|&|\band\b)\s*", text, flags=re.I):
        if not token:
            continue
        match = _DEP_TOKEN.match(token.strip())
        if match is None:
            raise PlanError(
                f"Malformed dependency {token!r} (expected 'Task <n>' or 'none') in line {line!r}"
            )
        deps.add(f"task_{match.group(1).lower()}")
    return deps


@dataclass
class Call:
    """A node text of the form ``name(arg, ...)``: each arg is (value, quoted)."""

    name: str
    args: list[tuple[Any, bool]] = field(default_factory=list)
    kwargs: dict[str, tuple[Any, bool]] = field(default_factory=dict)


@functools.lru_cache(maxsize=4096)
def parse_call(text: str) -> Call | None:
    """``search("a", {s1}, k=3)`` -> Call; ``None`` when the text is not a call (plain task text).

    Cached: the same node text parses once (treat the result as read-only).
    """
    match = _CALL.match(text)
    if match is None:
        return None
    single = _ONE_STRING.match(match.group(2))
    if single is not None:  # the common node: tool("text")
        return Call(name=match.group(1), args=[(single.group(1), True)])
    try:
        pieces = _split_args(match.group(2))
    except ValueError:
        return None
    call = Call(name=match.group(1))
    for piece in pieces:
        key, value = _split_kwarg(piece)
        parsed = _parse_arg(value)
        if key is None:
            if call.kwargs:
                return None  # positional after keyword: not a call we understand
            call.args.append(parsed)
        else:
            call.kwargs[key] = parsed
    return call


def _split_args(text: str) -> list[str]:
    """Split on top-level commas, respecting quotes and brackets."""
    pieces, current, depth, quote, escaped = [], [], 0, "", False
    for ch in text:
        if quote:
            current.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if quote or depth:
        raise ValueError("unbalanced quotes or brackets")
    tail = "".join(current).strip()
    if tail or pieces:
        pieces.append(tail)
    if any(not p for p in pieces):
        raise ValueError("empty argument")
    return pieces


def _split_kwarg(piece: str) -> tuple[str | None, str]:
    match = _KWARG.match(piece)
    return (match.group(1), match.group(2)) if match else (None, piece)


def _parse_arg(piece: str) -> tuple[Any, bool]:
    if piece[:1] in "\"'" and piece[-1:] == piece[:1] and len(piece) >= 2:
        inner = piece[1:-1]
        if "\\" not in inner and piece[0] not in inner:
            return inner, True  # the common case, without compiling a literal
        try:
            return ast.literal_eval(piece), True
        except (ValueError, SyntaxError):
            return piece[1:-1], True
    if _PLACEHOLDER.fullmatch(piece):
        return piece, False
    try:
        return ast.literal_eval(piece), False
    except (ValueError, SyntaxError):
        return piece, False


def fill_placeholders(text: str, results: Mapping[str, Any]) -> str:
    """Replace ``{id}`` with the rendered result of task ``id``; other braces are left alone."""
    return _PLACEHOLDER.sub(
        lambda m: render_result(results[m.group(1)]) if m.group(1) in results else m.group(0), text
    )


def placeholder_ref(value: Any) -> str | None:
    """The task id when ``value`` is exactly ``{id}``, else ``None``."""
    match = _PLACEHOLDER.fullmatch(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def render_result(value: Any) -> str:
    """A result as text for placeholders and prompts: fan-out lists joined with `` | ``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return " | ".join(render_result(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
