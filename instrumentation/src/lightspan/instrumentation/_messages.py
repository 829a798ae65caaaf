"""Convert provider messages to the OpenTelemetry GenAI message shape.

Input/output messages are ``{"role": ..., "parts": [...]}`` (output ones add ``finish_reason``);
parts are ``{"type": "text", "content"}``, ``{"type": "tool_call", "id", "name", "arguments"}``,
``{"type": "tool_call_response", "id", "response"}``, ``{"type": "reasoning", "content"}``,
or ``{"type": <other>, ...}`` for media. Tool definitions are ``{"type": "function", "name",
"description", "parameters"}``. Objects may be dicts or SDK (pydantic) models.
"""

from __future__ import annotations

import json
from typing import Any


def get(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` otherwise (pydantic extras included)."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        value = obj.get(key)
    else:
        # Fast path for pydantic models: fields live in __dict__, unknown server fields (vLLM's
        # token ids) in __pydantic_extra__; plain getattr on a missing name costs an exception.
        fields = getattr(obj, "__dict__", None)
        if fields is not None and key in fields:
            value = fields[key]
        else:
            extra = getattr(obj, "__pydantic_extra__", None)
            value = extra.get(key) if extra is not None else getattr(obj, key, None)
    return default if value is None else value


def parse_arguments(raw: Any) -> Any:
    """Tool-call arguments as an object when they are JSON text, else as given."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def text_parts(content: Any) -> list[dict[str, Any]]:
    """Parts for an OpenAI/Anthropic ``content`` (a string or a list of typed blocks)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts = []
    for block in content if isinstance(content, (list, tuple)) else [content]:
        if isinstance(block, str):
            parts.append({"type": "text", "content": block})
            continue
        kind = get(block, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append({"type": "text", "content": get(block, "text", "")})
        elif kind in ("thinking", "reasoning"):
            parts.append({"type": "reasoning", "content": get(block, "thinking") or get(block, "text", "")})
        elif kind == "tool_use":
            parts.append(
                {
                    "type": "tool_call",
                    "id": get(block, "id"),
                    "name": get(block, "name"),
                    "arguments": get(block, "input"),
                }
            )
        elif kind == "tool_result":
            parts.append(
                {
                    "type": "tool_call_response",
                    "id": get(block, "tool_use_id"),
                    "response": _plain(get(block, "content")),
                }
            )
        else:
            parts.append({"type": kind or "unknown"})
    return parts


def _plain(content: Any) -> Any:
    if isinstance(content, list):
        texts = [get(b, "text") for b in content]
        if all(isinstance(t, str) for t in texts):
            return "".join(texts)
    return content


def openai_tool_call_parts(tool_calls: Any) -> list[dict[str, Any]]:
    parts = []
    for call in tool_calls or ():
        fn = get(call, "function")
        parts.append(
            {
                "type": "tool_call",
                "id": get(call, "id"),
                "name": get(fn, "name"),
                "arguments": parse_arguments(get(fn, "arguments")),
            }
        )
    return parts


def openai_input_messages(messages: Any) -> list[dict[str, Any]]:
    """Chat-completions ``messages`` (also litellm's) to GenAI input messages."""
    out = []
    for m in messages or ():
        role = get(m, "role", "user")
        if role == "tool":
            out.append(
                {
                    "role": "tool",
                    "parts": [
                        {
                            "type": "tool_call_response",
                            "id": get(m, "tool_call_id"),
                            "response": _plain(get(m, "content")),
                        }
                    ],
                }
            )
            continue
        parts = text_parts(get(m, "content")) + openai_tool_call_parts(get(m, "tool_calls"))
        out.append({"role": role, "parts": parts})
    return out


def openai_tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    """Chat-completions or Responses ``tools`` to GenAI tool definitions."""
    if not tools:
        return None
    out = []
    for t in tools:
        fn = get(t, "function") or t  # Responses API tools are flat
        out.append(
            {
                "type": get(t, "type", "function"),
                "name": get(fn, "name"),
                "description": get(fn, "description"),
                "parameters": get(fn, "parameters"),
            }
        )
    return out


def anthropic_tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    if not tools:
        return None
    return [
        {
            "type": "function",
            "name": get(t, "name"),
            "description": get(t, "description"),
            "parameters": get(t, "input_schema"),
        }
        for t in tools
    ]
