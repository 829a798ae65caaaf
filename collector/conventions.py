"""Map foreign span conventions onto lightspan's contract keys, then derive the RL columns.

Mapping only fills keys that are missing (a span that already speaks the contract wins), and records
which conventions were applied in ``lightspan.mapped_from``. Detection is by a few exact trigger keys
so spans that already follow the contract pay one set intersection, not a scan of every key.
"""

from __future__ import annotations

import json
from typing import Any

from lightspan.schemas import attributes as A

_OLD_GENAI = frozenset({A.OLD_GEN_AI_SYSTEM, A.OLD_GEN_AI_USAGE_PROMPT_TOKENS, A.OLD_GEN_AI_USAGE_COMPLETION_TOKENS})
_OPENLLMETRY = frozenset(
    {
        A.OPENLLMETRY_SPAN_KIND,
        A.OPENLLMETRY_REQUEST_TYPE,
        f"{A.OPENLLMETRY_PROMPT_PREFIX}0.content",
        f"{A.OPENLLMETRY_PROMPT_PREFIX}0.role",
        f"{A.OPENLLMETRY_COMPLETION_PREFIX}0.content",
    }
)
_OPENINFERENCE = frozenset({A.OPENINFERENCE_SPAN_KIND})
_AGL = frozenset({A.AGL_ROLLOUT_ID, A.AGL_ATTEMPT_ID, f"{A.AGL_REWARD_PREFIX}.0.value"})
AGL_REWARD_SPANS = frozenset({A.AGL_ANNOTATION_SPAN, A.AGL_LEGACY_REWARD_SPAN})
TRIGGERS = _OLD_GENAI | _OPENLLMETRY | _OPENINFERENCE | _AGL

_OI_KIND_TO_OP = {"LLM": A.OP_CHAT, "TOOL": A.OP_EXECUTE_TOOL, "AGENT": A.OP_INVOKE_AGENT}
_TRACELOOP_KIND_TO_OP = {"tool": A.OP_EXECUTE_TOOL, "agent": A.OP_INVOKE_AGENT, "workflow": A.OP_INVOKE_AGENT}
_REQUEST_TYPE_TO_OP = {"chat": A.OP_CHAT, "completion": A.OP_TEXT_COMPLETION}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _indexed_messages(attrs: dict[str, str], prefix: str, role_key: str, content_key: str) -> list[dict]:
    """Collect ``{prefix}{i}.{role_key}`` / ``.{content_key}`` pairs into GenAI semconv messages."""
    messages = []
    i = 0
    while True:
        role = attrs.get(f"{prefix}{i}.{role_key}")
        content = attrs.get(f"{prefix}{i}.{content_key}")
        if role is None and content is None:
            break
        msg: dict[str, Any] = {"role": role or "user", "parts": []}
        if content:
            msg["parts"].append({"type": "text", "content": content})
        finish = attrs.get(f"{prefix}{i}.finish_reason")
        if finish:
            msg["finish_reason"] = finish
        messages.append(msg)
        i += 1
    return messages


def _map_old_genai(a: dict[str, str]) -> None:
    if A.OLD_GEN_AI_SYSTEM in a:
        a.setdefault(A.GEN_AI_PROVIDER_NAME, a[A.OLD_GEN_AI_SYSTEM])
    if A.OLD_GEN_AI_USAGE_PROMPT_TOKENS in a:
        a.setdefault(A.GEN_AI_USAGE_INPUT_TOKENS, a[A.OLD_GEN_AI_USAGE_PROMPT_TOKENS])
    if A.OLD_GEN_AI_USAGE_COMPLETION_TOKENS in a:
        a.setdefault(A.GEN_AI_USAGE_OUTPUT_TOKENS, a[A.OLD_GEN_AI_USAGE_COMPLETION_TOKENS])


def _map_openllmetry(a: dict[str, str]) -> None:
    _map_old_genai(a)
    op = _REQUEST_TYPE_TO_OP.get(a.get(A.OPENLLMETRY_REQUEST_TYPE, ""))
    kind = a.get(A.OPENLLMETRY_SPAN_KIND, "")
    op = op or _TRACELOOP_KIND_TO_OP.get(kind)
    if op:
        a.setdefault(A.GEN_AI_OPERATION_NAME, op)
    if A.GEN_AI_INPUT_MESSAGES not in a:
        msgs = _indexed_messages(a, A.OPENLLMETRY_PROMPT_PREFIX, "role", "content")
        if msgs:
            a[A.GEN_AI_INPUT_MESSAGES] = _dumps(msgs)
    if A.GEN_AI_OUTPUT_MESSAGES not in a:
        msgs = _indexed_messages(a, A.OPENLLMETRY_COMPLETION_PREFIX, "role", "content")
        if msgs:
            a[A.GEN_AI_OUTPUT_MESSAGES] = _dumps(msgs)
    name = a.get(A.OPENLLMETRY_ENTITY_NAME)
    if name and kind == "tool":
        a.setdefault(A.GEN_AI_TOOL_NAME, name)
        if A.OPENLLMETRY_ENTITY_INPUT in a:
            a.setdefault(A.GEN_AI_TOOL_CALL_ARGUMENTS, a[A.OPENLLMETRY_ENTITY_INPUT])
        if A.OPENLLMETRY_ENTITY_OUTPUT in a:
            a.setdefault(A.GEN_AI_TOOL_CALL_RESULT, a[A.OPENLLMETRY_ENTITY_OUTPUT])
    elif name and kind in ("agent", "workflow"):
        a.setdefault(A.GEN_AI_AGENT_NAME, name)


def _map_openinference(a: dict[str, str]) -> None:
    kind = a.get(A.OPENINFERENCE_SPAN_KIND, "").upper()
    op = _OI_KIND_TO_OP.get(kind)
    if op:
        a.setdefault(A.GEN_AI_OPERATION_NAME, op)
    if A.OI_LLM_MODEL_NAME in a:
        a.setdefault(A.GEN_AI_REQUEST_MODEL, a[A.OI_LLM_MODEL_NAME])
        a.setdefault(A.GEN_AI_RESPONSE_MODEL, a[A.OI_LLM_MODEL_NAME])
    provider = a.get(A.OI_LLM_PROVIDER) or a.get(A.OI_LLM_SYSTEM)
    if provider:
        a.setdefault(A.GEN_AI_PROVIDER_NAME, provider)
    if A.OI_LLM_TOKEN_COUNT_PROMPT in a:
        a.setdefault(A.GEN_AI_USAGE_INPUT_TOKENS, a[A.OI_LLM_TOKEN_COUNT_PROMPT])
    if A.OI_LLM_TOKEN_COUNT_COMPLETION in a:
        a.setdefault(A.GEN_AI_USAGE_OUTPUT_TOKENS, a[A.OI_LLM_TOKEN_COUNT_COMPLETION])
    if A.GEN_AI_INPUT_MESSAGES not in a:
        msgs = _indexed_messages(a, A.OI_LLM_INPUT_MESSAGES_PREFIX, "message.role", "message.content")
        if msgs:
            a[A.GEN_AI_INPUT_MESSAGES] = _dumps(msgs)
    if A.GEN_AI_OUTPUT_MESSAGES not in a:
        msgs = _indexed_messages(a, A.OI_LLM_OUTPUT_MESSAGES_PREFIX, "message.role", "message.content")
        if msgs:
            a[A.GEN_AI_OUTPUT_MESSAGES] = _dumps(msgs)
    if kind == "TOOL":
        if A.OI_TOOL_NAME in a:
            a.setdefault(A.GEN_AI_TOOL_NAME, a[A.OI_TOOL_NAME])
        args = a.get(A.OI_TOOL_PARAMETERS) or a.get(A.OI_INPUT_VALUE)
        if args:
            a.setdefault(A.GEN_AI_TOOL_CALL_ARGUMENTS, args)
        if A.OI_OUTPUT_VALUE in a:
            a.setdefault(A.GEN_AI_TOOL_CALL_RESULT, a[A.OI_OUTPUT_VALUE])
    if A.OI_AGENT_NAME in a:
        a.setdefault(A.GEN_AI_AGENT_NAME, a[A.OI_AGENT_NAME])
    if A.OI_SESSION_ID in a:
        a.setdefault(A.GEN_AI_CONVERSATION_ID, a[A.OI_SESSION_ID])


def _map_agentlightning(a: dict[str, str], span_name: str) -> None:
    if A.AGL_ROLLOUT_ID in a:
        a.setdefault(A.ROLLOUT_ID, a[A.AGL_ROLLOUT_ID])
    attempt = a.get(A.AGL_ATTEMPT_ID, "")
    if attempt.isdigit():
        a.setdefault(A.ATTEMPT, attempt)
    if span_name == A.AGL_LEGACY_REWARD_SPAN and A.AGL_LEGACY_REWARD_KEY in a:
        a.setdefault(A.REWARD_VALUE, a[A.AGL_LEGACY_REWARD_KEY])
    value = a.get(f"{A.AGL_REWARD_PREFIX}.0.value")
    if value is not None:
        a.setdefault(A.REWARD_VALUE, value)
        a.setdefault(A.REWARD_NAME, a.get(f"{A.AGL_REWARD_PREFIX}.0.name") or A.REWARD_DEFAULT_NAME)
    if A.REWARD_VALUE in a:
        a.setdefault(A.REWARD_NAME, A.REWARD_DEFAULT_NAME)
        a.setdefault(A.GEN_AI_OPERATION_NAME, A.OP_REWARD)


def map_conventions(attrs: dict[str, str], span_name: str) -> None:
    """Fill contract keys from foreign ones in place; a no-op for spans with no foreign trigger key."""
    if attrs.keys().isdisjoint(TRIGGERS) and span_name not in AGL_REWARD_SPANS:
        return
    applied = []
    keys = attrs.keys()
    if not keys.isdisjoint(_OPENINFERENCE):
        _map_openinference(attrs)
        applied.append("openinference")
    if not keys.isdisjoint(_OPENLLMETRY):
        _map_openllmetry(attrs)
        applied.append("openllmetry")
    if not keys.isdisjoint(_AGL) or span_name in AGL_REWARD_SPANS:
        _map_agentlightning(attrs, span_name)
        applied.append("agentlightning")
    if not keys.isdisjoint(_OLD_GENAI) and "openllmetry" not in applied:
        _map_old_genai(attrs)
        applied.append("gen_ai_legacy")
    if applied and A.MAPPED_FROM not in attrs:
        attrs[A.MAPPED_FROM] = ",".join(applied)
