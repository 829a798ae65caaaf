"""Pure reading of span content: message JSON, token-id arrays, and mapped foreign spans' contract keys.

Rows written straight by other exporters arrive unmapped: the converters map them with the collector's
own :mod:`lightspan.schemas.conventions`, then read the contract keys here.
No ClickHouse, no I/O: every function takes attribute values and returns plain Python values.
"""

from __future__ import annotations

import json
from typing import Any

from lightspan.schemas import attributes as A

try:  # orjson parses token-id arrays about 3x faster; the standard library is the fallback
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - depends on the install
    _loads = json.loads

Message = dict[str, str]


class MappingError(ValueError):
    """Span content that cannot be read (broken JSON, wrong shape); the message names the attribute."""


# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------
def _part_text(part: Any) -> str:
    """Text of one GenAI semconv message part; tool calls/responses become compact JSON text."""
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return json.dumps(part, ensure_ascii=False)
    kind = part.get("type", "text")
    if kind in ("text", "reasoning") or "content" in part and kind not in ("tool_call", "tool_call_response"):
        content = part.get("content", "")
        return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    if kind == "tool_call":
        call = {"name": part.get("name", ""), "arguments": part.get("arguments")}
        if part.get("id"):
            call["id"] = part["id"]
        return json.dumps({"tool_call": call}, ensure_ascii=False)
    if kind == "tool_call_response":
        resp = part.get("response", part.get("result", ""))
        return resp if isinstance(resp, str) else json.dumps(resp, ensure_ascii=False)
    return json.dumps(part, ensure_ascii=False)


def to_message(item: Any, default_role: str = "user") -> Message:
    """One message as ``{"role", "content"}`` from GenAI semconv (``parts``) or plain (``content``) form."""
    if isinstance(item, str):
        return {"role": default_role, "content": item}
    if not isinstance(item, dict):
        raise MappingError(f"message must be an object, got {type(item).__name__}")
    role = str(item.get("role") or default_role)
    parts = item.get("parts")
    if type(parts) is list and len(parts) == 1:  # the common case: one text part
        p = parts[0]
        if type(p) is dict and p.get("type") == "text" and type(p.get("content")) is str:
            return {"role": role, "content": p["content"]}
    if "parts" in item:
        parts = item["parts"] or []
        if not isinstance(parts, list):
            raise MappingError("message 'parts' must be a list")
        content = "".join(_part_text(p) for p in parts) if len(parts) != 1 else _part_text(parts[0])
    else:
        raw = item.get("content", "")
        if isinstance(raw, list):  # OpenAI content-part arrays
            content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in raw)
        elif raw is None:
            content = ""
        else:
            content = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
        if item.get("tool_calls"):
            calls = "".join(
                json.dumps(
                    {
                        "tool_call": {
                            "name": (c.get("function") or {}).get("name", c.get("name", "")),
                            "arguments": (c.get("function") or {}).get("arguments"),
                        }
                    },
                    ensure_ascii=False,
                )
                for c in item["tool_calls"]
                if isinstance(c, dict)
            )
            content = content + calls
    return {"role": role, "content": content}


def parse_messages(raw: str, key: str = A.GEN_AI_INPUT_MESSAGES, default_role: str = "user") -> list[Message]:
    """Messages from a JSON attribute value (a list of messages, or one message object)."""
    if not raw:
        return []
    try:
        data = _loads(raw)
    except ValueError as exc:
        raise MappingError(f"{key} is not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise MappingError(f"{key} must be a JSON list of messages, got {type(data).__name__}")
    try:
        return [to_message(m, default_role) for m in data]
    except MappingError as exc:
        raise MappingError(f"{key}: {exc}") from None


def system_message(raw: str) -> Message | None:
    """``gen_ai.system_instructions`` (a list of parts, a string, or JSON text) as one system message."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return {"role": "system", "content": raw}
    if isinstance(data, list):
        return {"role": "system", "content": "".join(_part_text(p) for p in data)}
    if isinstance(data, dict):
        return {"role": "system", "content": _part_text(data)}
    return {"role": "system", "content": str(data)}


def with_system(prompt: list[Message], system_raw: str) -> list[Message]:
    sys_msg = system_message(system_raw)
    if sys_msg is None or (prompt and prompt[0]["role"] == "system"):
        return prompt
    return [sys_msg, *prompt]


def parse_json_list(raw: str, key: str, kind: type = int) -> list[Any] | None:
    """A JSON array attribute (token ids, logprobs) or None when absent; bad JSON raises MappingError."""
    if not raw:
        return None
    try:
        data = _loads(raw)
    except ValueError as exc:
        raise MappingError(f"{key} is not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(data, list):
        raise MappingError(f"{key} must be a JSON array, got {type(data).__name__}")
    if not data or (type(data[0]) is kind and type(data[-1]) is kind):  # spot check; avoids a per-item loop
        return data
    try:
        return [kind(x) for x in data]
    except (TypeError, ValueError):
        raise MappingError(f"{key} must hold {kind.__name__} values") from None


def maybe_json(raw: str) -> Any:
    """Tool arguments/results: JSON when they parse, the text otherwise."""
    if not raw:
        return None
    try:
        return _loads(raw)
    except ValueError:
        return raw


# ---------------------------------------------------------------------------
# Foreign conventions: lightspan.schemas.conventions maps them (as the collector does on ingest); these
# read the mapped contract keys of an unmapped row's attributes.
# ---------------------------------------------------------------------------
# Which spans are foreign is decided in SQL (lightspan.schemas.ddl.FOREIGN_SQL and its marker lists; migration 8's
# ``SpanNeeds`` stores the check at insert).


def foreign_llm(attrs: dict[str, str]) -> dict[str, Any] | None:
    """An LLM call from mapped attributes (see :func:`lightspan.schemas.conventions.mapped`).

    Returns ``{"operation", "prompt", "completion", "model", "input_tokens", "output_tokens",
    "prompt_token_ids", "completion_token_ids", "mapped_from"}`` or None when the span is no LLM call.
    """
    op = attrs.get(A.GEN_AI_OPERATION_NAME, "")
    if op not in A.LLM_OPERATIONS:
        return None
    return {
        "operation": op,
        "prompt": with_system(
            parse_messages(attrs.get(A.GEN_AI_INPUT_MESSAGES, "")),
            attrs.get(A.GEN_AI_SYSTEM_INSTRUCTIONS, ""),
        ),
        "completion": parse_messages(
            attrs.get(A.GEN_AI_OUTPUT_MESSAGES, ""), A.GEN_AI_OUTPUT_MESSAGES, "assistant"
        ),
        "model": attrs.get(A.GEN_AI_RESPONSE_MODEL) or attrs.get(A.GEN_AI_REQUEST_MODEL, ""),
        "input_tokens": _int(attrs.get(A.GEN_AI_USAGE_INPUT_TOKENS)),
        "output_tokens": _int(attrs.get(A.GEN_AI_USAGE_OUTPUT_TOKENS)),
        "prompt_token_ids": parse_json_list(attrs.get(A.LLM_PROMPT_TOKEN_IDS, ""), A.LLM_PROMPT_TOKEN_IDS),
        "completion_token_ids": parse_json_list(
            attrs.get(A.LLM_RESPONSE_TOKEN_IDS, ""), A.LLM_RESPONSE_TOKEN_IDS
        ),
        "mapped_from": attrs.get(A.MAPPED_FROM, ""),
    }


def foreign_tool(attrs: dict[str, str]) -> dict[str, Any] | None:
    """A tool call from mapped attributes as ``{"tool_name", "arguments", "result"}`` (None otherwise)."""
    if attrs.get(A.GEN_AI_OPERATION_NAME) != A.OP_EXECUTE_TOOL:
        return None
    return {
        "tool_name": attrs.get(A.GEN_AI_TOOL_NAME, ""),
        "arguments": maybe_json(attrs.get(A.GEN_AI_TOOL_CALL_ARGUMENTS, "")),
        "result": maybe_json(attrs.get(A.GEN_AI_TOOL_CALL_RESULT, "")),
    }


# ---------------------------------------------------------------------------
# GenAI content sent as OTLP log records (``reader.LogEvent``): the newest conventions' one
# ``gen_ai.client.inference.operation.details`` event per call, or the older one event per message.
# ---------------------------------------------------------------------------
_ROLE_OF_EVENT = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


def messages_from_logs(events: list[Any]) -> tuple[list[Message], list[Message]]:
    """``(prompt, completion)`` from a span's log events (empty lists when they hold no content)."""
    prompt: list[Message] = []
    completion: list[Message] = []
    for ev in events:
        if ev.name == "gen_ai.client.inference.operation.details":
            a = ev.attributes
            prompt = prompt or with_system(
                parse_messages(a.get(A.GEN_AI_INPUT_MESSAGES, "")), a.get(A.GEN_AI_SYSTEM_INSTRUCTIONS, "")
            )
            completion = completion or parse_messages(
                a.get(A.GEN_AI_OUTPUT_MESSAGES, ""), A.GEN_AI_OUTPUT_MESSAGES, "assistant"
            )
        elif ev.name in _ROLE_OF_EVENT:
            body = maybe_json(ev.body)
            prompt.append(
                to_message(body if isinstance(body, dict | str) else str(body), _ROLE_OF_EVENT[ev.name])
            )
        elif ev.name == "gen_ai.choice":
            body = maybe_json(ev.body)
            msg = body.get("message", body) if isinstance(body, dict) else body
            completion.append(to_message(msg if isinstance(msg, dict | str) else str(msg), "assistant"))
    return prompt, completion


def has_text(messages: list[Message]) -> bool:
    """Whether any message has content (text, or a tool call rendered as text)."""
    return any(m.get("content") for m in messages)


def _int(raw: str | None) -> int:
    try:
        return int(float(raw)) if raw else 0
    except ValueError:
        return 0


__all__ = [
    "MappingError",
    "foreign_llm",
    "foreign_tool",
    "has_text",
    "messages_from_logs",
    "maybe_json",
    "parse_json_list",
    "parse_messages",
    "system_message",
    "to_message",
    "with_system",
]
