"""Map foreign span conventions onto lightspan's contract keys: the one implementation.

The collector applies :func:`map_conventions` to every span on ingest; the converters apply it to a copy
of the attributes of rows that other exporters wrote straight into ClickHouse (unmapped), then read the
contract keys as usual. Conventions: OpenInference (``openinference.span.kind``, ``llm.*``), OpenLLMetry
(``traceloop.*``, ``gen_ai.prompt.{i}.*``), Agent Lightning (``agentlightning.*`` incl. reward annotation
spans) and the older GenAI keys (``gen_ai.system``, ``gen_ai.usage.prompt_tokens``).

Mapping only fills keys that are missing (a span that already speaks the contract wins), and records
which conventions were applied in ``lightspan.mapped_from``. Detection is by a few exact trigger keys
so spans that already follow the contract pay one set intersection, not a scan of every key.
Pure: standard library and :mod:`lightspan.schemas.attributes` only.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lightspan.schemas import attributes as A

_OLD_GENAI = frozenset(
    {A.OLD_GEN_AI_SYSTEM, A.OLD_GEN_AI_USAGE_PROMPT_TOKENS, A.OLD_GEN_AI_USAGE_COMPLETION_TOKENS}
)
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
#: Span names that carry Agent Lightning rewards (mapped even without a trigger key).
AGL_REWARD_SPANS = frozenset({A.AGL_ANNOTATION_SPAN, A.AGL_LEGACY_REWARD_SPAN})
#: Attribute keys whose presence means :func:`map_conventions` has work to do.
TRIGGERS = _OLD_GENAI | _OPENLLMETRY | _OPENINFERENCE | _AGL

_OI_KIND_TO_OP = {"LLM": A.OP_CHAT, "TOOL": A.OP_EXECUTE_TOOL, "AGENT": A.OP_INVOKE_AGENT}
_TRACELOOP_KIND_TO_OP = {"tool": A.OP_EXECUTE_TOOL, "agent": A.OP_INVOKE_AGENT, "workflow": A.OP_INVOKE_AGENT}
_REQUEST_TYPE_TO_OP = {"chat": A.OP_CHAT, "completion": A.OP_TEXT_COMPLETION}
_INDEXED = re.compile(r"^(\d+)\.(.+)$")
#: (foreign key, contract key) pairs copied as they are when the contract key is missing.
_OLD_GENAI_COPIES = (
    (A.OLD_GEN_AI_SYSTEM, A.GEN_AI_PROVIDER_NAME),
    (A.OLD_GEN_AI_USAGE_PROMPT_TOKENS, A.GEN_AI_USAGE_INPUT_TOKENS),
    (A.OLD_GEN_AI_USAGE_COMPLETION_TOKENS, A.GEN_AI_USAGE_OUTPUT_TOKENS),
)
_OI_COPIES = (
    (A.OI_LLM_MODEL_NAME, A.GEN_AI_REQUEST_MODEL),
    (A.OI_LLM_MODEL_NAME, A.GEN_AI_RESPONSE_MODEL),
    (A.OI_LLM_TOKEN_COUNT_PROMPT, A.GEN_AI_USAGE_INPUT_TOKENS),
    (A.OI_LLM_TOKEN_COUNT_COMPLETION, A.GEN_AI_USAGE_OUTPUT_TOKENS),
)
_OI_NAME_COPIES = ((A.OI_AGENT_NAME, A.GEN_AI_AGENT_NAME), (A.OI_SESSION_ID, A.GEN_AI_CONVERSATION_ID))
#: (contract key, indexed prefix, default role, raw value an LLM span falls back to).
_OI_MESSAGES = (
    (A.GEN_AI_INPUT_MESSAGES, A.OI_LLM_INPUT_MESSAGES_PREFIX, "user", A.OI_INPUT_VALUE),
    (A.GEN_AI_OUTPUT_MESSAGES, A.OI_LLM_OUTPUT_MESSAGES_PREFIX, "assistant", A.OI_OUTPUT_VALUE),
)
_AGL_TOKEN_ID_COPIES = (
    (A.AGL_PROMPT_TOKEN_IDS, A.LLM_PROMPT_TOKEN_IDS),
    (A.AGL_RESPONSE_TOKEN_IDS, A.LLM_RESPONSE_TOKEN_IDS),
)


def _copy(a: dict[str, str], pairs: tuple[tuple[str, str], ...]) -> None:
    for src, dst in pairs:
        if src in a:
            a.setdefault(dst, a[src])


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def indexed_groups(attrs: dict[str, str], prefix: str) -> dict[int, dict[str, str]]:
    """``{prefix}{i}.{field}`` keys grouped as ``{i: {field: value}}`` (indices may have gaps)."""
    groups: dict[int, dict[str, str]] = {}
    plen = len(prefix)
    for key, value in attrs.items():
        if key.startswith(prefix):
            m = _INDEXED.match(key[plen:])
            if m:
                groups.setdefault(int(m.group(1)), {})[m.group(2)] = value
    return groups


#: Where each convention keeps a message's tool calls and a tool message's call id, inside one indexed
#: message group: (tool-calls prefix, {part field: key inside one call}, tool-call-id key).
_OI_TOOL_FIELDS = (
    A.OI_MESSAGE_TOOL_CALLS_PREFIX,
    {"id": "tool_call.id", "name": "tool_call.function.name", "arguments": "tool_call.function.arguments"},
    A.OI_MESSAGE_TOOL_CALL_ID,
)
_OPENLLMETRY_TOOL_FIELDS = (
    "tool_calls.",
    {"id": "id", "name": "name", "arguments": "arguments"},
    "tool_call_id",
)


def _tool_call_parts(group: dict[str, str], fields: tuple[str, dict[str, str], str]) -> list[dict[str, Any]]:
    """GenAI semconv ``tool_call`` parts from one message group's indexed tool-call keys."""
    prefix, names, _ = fields
    parts = []
    calls = indexed_groups(group, prefix)
    for j in sorted(calls):
        c = calls[j]
        if not c.get(names["name"]):
            continue
        part: dict[str, Any] = {"type": "tool_call", "name": c[names["name"]]}
        if c.get(names["id"]):
            part["id"] = c[names["id"]]
        raw = c.get(names["arguments"])
        if raw:
            try:
                part["arguments"] = json.loads(raw)
            except ValueError:
                part["arguments"] = raw
        parts.append(part)
    return parts


def _indexed_messages(
    attrs: dict[str, str],
    prefix: str,
    role_key: str,
    content_key: str,
    default_role: str,
    tool_fields: tuple[str, dict[str, str], str] | None = None,
) -> list[dict[str, Any]]:
    """Indexed role/content pairs (and tool calls) as GenAI semconv messages, in numeric index order."""
    groups = indexed_groups(attrs, prefix)
    messages = []
    for i in sorted(groups):
        g = groups[i]
        calls = _tool_call_parts(g, tool_fields) if tool_fields else []
        if role_key not in g and content_key not in g and not calls:
            continue
        msg: dict[str, Any] = {"role": g.get(role_key) or default_role, "parts": []}
        call_id = g.get(tool_fields[2]) if tool_fields else None
        if call_id and msg["role"] == "tool":  # a tool's result answering one call
            msg["parts"].append(
                {"type": "tool_call_response", "id": call_id, "response": g.get(content_key, "")}
            )
        elif g.get(content_key):
            msg["parts"].append({"type": "text", "content": g[content_key]})
        msg["parts"].extend(calls)
        if g.get("finish_reason"):
            msg["finish_reason"] = g["finish_reason"]
        messages.append(msg)
    return messages


def _tool_call_id(raw: str) -> str:
    obj = _json_object(raw)
    data = obj.get("data", obj) if obj is not None else None
    value = data.get("tool_call_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


def _tool_result(raw: str) -> str:
    """A tool span's result: OpenInference frameworks serialize the whole tool message (LangChain's
    ``{"type": "tool", "data": {"content": ...}}``, or ``{"content": ...}``); the observation is its content."""
    obj = _json_object(raw)
    if obj is None:
        return raw
    data = obj.get("data") if obj.get("type") == "tool" and isinstance(obj.get("data"), dict) else obj
    if (
        isinstance(data, dict)
        and "content" in data
        and ("tool_call_id" in data or data.get("type") == "tool")
    ):
        content = data["content"]
        return content if isinstance(content, str) else _dumps(content)
    return raw


def _text_message(role: str, content: str) -> str:
    return _dumps([{"role": role, "parts": [{"type": "text", "content": content}]}])


def _map_old_genai(a: dict[str, str]) -> None:
    _copy(a, _OLD_GENAI_COPIES)


def _map_openllmetry(a: dict[str, str]) -> None:
    _map_old_genai(a)
    op = _REQUEST_TYPE_TO_OP.get(a.get(A.OPENLLMETRY_REQUEST_TYPE, ""))
    kind = a.get(A.OPENLLMETRY_SPAN_KIND, "")
    op = op or _TRACELOOP_KIND_TO_OP.get(kind)
    prompt = None
    if A.GEN_AI_INPUT_MESSAGES not in a or (not op and A.OLD_GEN_AI_SYSTEM in a):
        prompt = _indexed_messages(
            a, A.OPENLLMETRY_PROMPT_PREFIX, "role", "content", "user", _OPENLLMETRY_TOOL_FIELDS
        )
    if not op and prompt and A.OLD_GEN_AI_SYSTEM in a:  # an LLM call that did not say which kind
        op = A.OP_CHAT
    if op:
        a.setdefault(A.GEN_AI_OPERATION_NAME, op)
    if A.GEN_AI_INPUT_MESSAGES not in a and prompt:
        a[A.GEN_AI_INPUT_MESSAGES] = _dumps(prompt)
    if A.GEN_AI_OUTPUT_MESSAGES not in a:
        msgs = _indexed_messages(
            a, A.OPENLLMETRY_COMPLETION_PREFIX, "role", "content", "assistant", _OPENLLMETRY_TOOL_FIELDS
        )
        for m in msgs:  # completions are the model's, whatever role the instrumentation wrote
            if m["role"] == "user":
                m["role"] = "assistant"
        if msgs:
            a[A.GEN_AI_OUTPUT_MESSAGES] = _dumps(msgs)
    _copy(a, _AGL_TOKEN_ID_COPIES)  # Agent Lightning's proxy adds token ids to these spans
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
    _copy(a, _OI_COPIES)
    provider = a.get(A.OI_LLM_PROVIDER) or a.get(A.OI_LLM_SYSTEM)
    if provider:
        a.setdefault(A.GEN_AI_PROVIDER_NAME, provider)
    for key, prefix, role, raw_key in _OI_MESSAGES:
        if key not in a:
            msgs = _indexed_messages(a, prefix, "message.role", "message.content", role, _OI_TOOL_FIELDS)
            if msgs:
                a[key] = _dumps(msgs)
            elif kind == "LLM" and a.get(raw_key):  # no structured messages: the raw value is the message
                a[key] = _text_message(role, a[raw_key])
    if kind == "TOOL":
        if A.OI_TOOL_NAME in a:
            a.setdefault(A.GEN_AI_TOOL_NAME, a[A.OI_TOOL_NAME])
        # The call's arguments: tool_call.function.arguments, else the span's input (``tool.parameters``
        # is the tool's JSON schema, not what it was called with).
        args = a.get(A.OI_TOOL_CALL_FUNCTION_ARGUMENTS) or a.get(A.OI_INPUT_VALUE)
        if args:
            a.setdefault(A.GEN_AI_TOOL_CALL_ARGUMENTS, args)
        if A.OI_OUTPUT_VALUE in a:
            a.setdefault(A.GEN_AI_TOOL_CALL_RESULT, _tool_result(a[A.OI_OUTPUT_VALUE]))
        call_id = a.get(A.OI_TOOL_CALL_ID) or _tool_call_id(a.get(A.OI_OUTPUT_VALUE, ""))
        if call_id:
            a.setdefault(A.GEN_AI_TOOL_CALL_ID, call_id)
    _copy(a, _OI_NAME_COPIES)


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
        # Agent Lightning trains on its first reward whatever its label: it is the rollout's primary
        # reward here too (the label stays in agentlightning.reward.0.name).
        a.setdefault(A.REWARD_NAME, A.REWARD_DEFAULT_NAME)
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


def mapped(attrs: dict[str, str], span_name: str) -> dict[str, str]:
    """``attrs`` with the conventions mapped; the same dict when no trigger key is present, else a copy."""
    if attrs.keys().isdisjoint(TRIGGERS) and span_name not in AGL_REWARD_SPANS:
        return attrs
    out = dict(attrs)
    map_conventions(out, span_name)
    return out


def _float(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if value == value else None  # NaN is no reward


def agl_rewards(span_name: str, attrs: dict[str, str]) -> list[tuple[str, float]]:
    """Every reward in an Agent Lightning span, as ``[(name, value)]``; the first is named ``primary``.

    Agent Lightning 0.3 emits ``agentlightning.annotation`` spans with flattened
    ``agentlightning.reward.{i}.name`` / ``.value`` attributes, the first being the primary reward
    (whatever its name); its ``get_reward_value`` reads any span with such keys. Older releases put
    ``{"type": "reward", "value": v}`` JSON in ``agentops.task.output`` / ``agentops.entity.output``,
    or emitted a span named ``reward`` with a ``reward`` attribute. (The span's reward columns, which
    hold one value, come from :func:`map_conventions`.)
    """
    out: list[tuple[str, float]] = []
    groups = indexed_groups(attrs, A.AGL_REWARD_PREFIX + ".")
    for n, i in enumerate(sorted(groups)):
        value = _float(groups[i].get("value"))
        if value is not None:
            out.append((A.REWARD_DEFAULT_NAME if n == 0 else (groups[i].get("name") or f"reward_{i}"), value))
    if out:
        return out
    for key in (A.AGENTOPS_TASK_OUTPUT, A.AGENTOPS_ENTITY_OUTPUT):
        obj = _json_object(attrs.get(key, ""))
        if obj is not None and obj.get("type") == "reward" and _float(obj.get("value")) is not None:
            return [(A.REWARD_DEFAULT_NAME, float(obj["value"]))]
    if span_name == A.AGL_LEGACY_REWARD_SPAN and A.AGL_LEGACY_REWARD_KEY in attrs:
        raw = attrs[A.AGL_LEGACY_REWARD_KEY]
        value = _float(raw)
        if value is None:
            obj = _json_object(raw)
            value = _float(obj.get("value")) if obj is not None else None
        if value is not None:
            out.append((A.REWARD_DEFAULT_NAME, value))
    return out


def _json_object(raw: str) -> dict | None:
    try:
        obj = json.loads(raw) if raw else None
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


# ---------------------------------------------------------------------------
# Rollout identity: which rollout, task, attempt and agent a span belongs to, for spans from any
# instrumentation. ``lightspan.schemas.ddl`` renders the same chains as the spans table's DEFAULT
# expressions (so rows of every writer get them); these functions are the Python twin (same answers).
# ---------------------------------------------------------------------------
_TL = A.TRACELOOP_ASSOCIATION_PREFIX
#: Rollout id sources, in order; the first non-empty attribute wins. OpenInference ``metadata`` JSON
#: keys (:data:`METADATA_KEYS`) come after each source's attributes.
ROLLOUT_EXPLICIT_KEYS = (A.ROLLOUT_ID, A.AGL_ROLLOUT_ID, _TL + "rollout_id")
ROLLOUT_SESSION_KEYS = (
    A.OI_SESSION_ID,
    A.GEN_AI_CONVERSATION_ID,
    _TL + "session_id",
    _TL + "conversation_id",
    _TL + "thread_id",
    _TL + "chat_id",
)
TASK_ID_KEYS = (A.TASK_ID, _TL + "task_id")
ATTEMPT_KEYS = (A.ATTEMPT, A.AGL_ATTEMPT_ID, _TL + "attempt")
AGENT_NAME_KEYS = (A.GEN_AI_AGENT_NAME, A.OI_AGENT_NAME)
#: OpenLLMetry span kinds whose ``traceloop.entity.name`` is an agent's name.
TRACELOOP_AGENT_KINDS = ("agent", "workflow")
#: Keys read from OpenInference's ``metadata`` JSON object, per field.
METADATA_KEYS = {"explicit": "rollout_id", "session": "session_id", "task": "task_id", "attempt": "attempt"}
#: Values of :func:`rollout_source`, in the order the chain tries them.
ROLLOUT_SOURCES = ("explicit", "session", "trace")


def _metadata(attrs: dict[str, str], key: str) -> str:
    """A scalar of the OpenInference ``metadata`` JSON as text (strings as they are, numbers as JSON)."""
    raw = attrs.get(A.OI_METADATA, "")
    obj = _json_object(raw) if raw else None
    if obj is None:
        return ""
    value = obj.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return ""


def _first_of(attrs: dict[str, str], keys: tuple[str, ...], metadata_key: str | None = None) -> str:
    for key in keys:
        value = attrs.get(key)
        if value:
            return value
    return _metadata(attrs, metadata_key) if metadata_key else ""


def rollout_identity(attrs: dict[str, str], trace_id: str) -> tuple[str, str]:
    """``(rollout id, source)`` of a span: an explicit rollout id, else a session or conversation id,
    else the trace id; ``source`` is ``"explicit"``, ``"session"`` or ``"trace"``."""
    rid = _first_of(attrs, ROLLOUT_EXPLICIT_KEYS, METADATA_KEYS["explicit"])
    if rid:
        return rid, "explicit"
    rid = _first_of(attrs, ROLLOUT_SESSION_KEYS, METADATA_KEYS["session"])
    if rid:
        return rid, "session"
    return trace_id, "trace"


def rollout_source(attrs: dict[str, str]) -> str:
    """Where a span's rollout id comes from: ``"explicit"``, ``"session"`` or ``"trace"`` (no id of its own)."""
    return rollout_identity(attrs, "")[1]


def task_id_of(attrs: dict[str, str]) -> str:
    """The span's task id (``lightspan.task.id``, a traceloop association property, ``metadata.task_id``)."""
    return _first_of(attrs, TASK_ID_KEYS, METADATA_KEYS["task"])


def attempt_of(attrs: dict[str, str]) -> int:
    """The span's attempt number (0 when absent or not a non-negative integer)."""
    raw = _first_of(attrs, ATTEMPT_KEYS, METADATA_KEYS["attempt"])
    return int(raw) if raw.isdigit() and len(raw) <= 9 else 0


def agent_name_of(attrs: dict[str, str]) -> str:
    """``gen_ai.agent.name``, OpenInference ``agent.name``, or an OpenLLMetry agent/workflow entity name."""
    name = _first_of(attrs, AGENT_NAME_KEYS)
    if name:
        return name
    if attrs.get(A.OPENLLMETRY_SPAN_KIND) in TRACELOOP_AGENT_KINDS:
        return attrs.get(A.OPENLLMETRY_ENTITY_NAME, "")
    return ""


__all__ = [
    "AGENT_NAME_KEYS",
    "AGL_REWARD_SPANS",
    "ATTEMPT_KEYS",
    "METADATA_KEYS",
    "ROLLOUT_EXPLICIT_KEYS",
    "ROLLOUT_SESSION_KEYS",
    "ROLLOUT_SOURCES",
    "TASK_ID_KEYS",
    "TRACELOOP_AGENT_KINDS",
    "TRIGGERS",
    "agent_name_of",
    "agl_rewards",
    "attempt_of",
    "indexed_groups",
    "map_conventions",
    "mapped",
    "rollout_identity",
    "rollout_source",
    "task_id_of",
]
