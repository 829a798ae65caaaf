"""How to read openai chat-completions and Responses calls (requests, responses, stream chunks).

Shared with litellm, whose requests and responses have the chat-completions shape.
"""

from __future__ import annotations

from typing import Any

from lightspan.schemas import attributes as A

from .._content import add_content, add_json
from .._llm import Accumulator, CallSpec, Request
from .._messages import (
    get,
    openai_input_messages,
    openai_tool_call_parts,
    openai_tool_definitions,
    parse_arguments,
    text_parts,
)
from .._settings import get_settings


def _server(instance: Any, attrs: dict[str, Any]) -> None:
    url = getattr(getattr(instance, "_client", None), "base_url", None)
    if url is not None and getattr(url, "host", None):
        attrs[A.SERVER_ADDRESS] = url.host
        if url.port:
            attrs[A.SERVER_PORT] = url.port


_REQUEST_KEYS = (
    ("temperature", A.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", A.GEN_AI_REQUEST_TOP_P),
    ("seed", A.GEN_AI_REQUEST_SEED),
)


def _wants_json(response_format: Any) -> bool:
    """Structured outputs: a pydantic class (``parse()``) or a ``json_schema`` / ``json_object`` format."""
    if isinstance(response_format, type):
        return True
    return (
        get(response_format, "type") in ("json_schema", "json_object")
        if isinstance(response_format, dict)
        else False
    )


def chat_request(
    instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], *, ask_usage: bool = True
) -> Request:
    attrs: dict[str, Any] = {}
    for key, attr in _REQUEST_KEYS:
        value = kwargs.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[attr] = value
    max_tokens = kwargs.get("max_completion_tokens") or kwargs.get("max_tokens")
    if isinstance(max_tokens, int):
        attrs[A.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    stop = kwargs.get("stop")
    if stop:
        attrs[A.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop] if isinstance(stop, str) else list(stop)
    n = kwargs.get("n")
    if isinstance(n, int) and n != 1:
        attrs[A.GEN_AI_REQUEST_CHOICE_COUNT] = n
    if _wants_json(kwargs.get("response_format")):
        attrs[A.GEN_AI_OUTPUT_TYPE] = "json"
    _server(instance, attrs)
    request = Request(model=kwargs.get("model"), attributes=attrs)
    request.content[A.GEN_AI_INPUT_MESSAGES] = openai_input_messages(kwargs.get("messages"))
    tools = openai_tool_definitions(kwargs.get("tools"))
    if tools:
        request.content[A.GEN_AI_TOOL_DEFINITIONS] = tools
    if ask_usage and kwargs.get("stream") is True and not kwargs.get("stream_options"):
        # Ask for the usage chunk; StreamProxy hides it from the caller, who did not ask.
        request.kwargs = {**kwargs, "stream_options": {"include_usage": True}}
        request.hide_usage_chunk = True
    return request


def _set_usage(attrs: dict[str, Any], usage: Any, input_key: str, output_key: str) -> None:
    if usage is None:
        return
    tin, tout = get(usage, input_key), get(usage, output_key)
    if isinstance(tin, int):
        attrs[A.GEN_AI_USAGE_INPUT_TOKENS] = tin
    if isinstance(tout, int):
        attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] = tout
    # Cached prompt tokens (already part of the input count): chat and Responses name the details apart.
    cached = get(get(usage, "prompt_tokens_details") or get(usage, "input_tokens_details"), "cached_tokens")
    if isinstance(cached, int) and cached > 0:
        attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cached


def _set_ids(attrs: dict[str, Any], response_id: Any, model: Any) -> None:
    if response_id:
        attrs[A.GEN_AI_RESPONSE_ID] = str(response_id)
    if model:
        attrs[A.GEN_AI_RESPONSE_MODEL] = str(model)


def _one_or_all(per_choice: list[Any]) -> Any:
    """A flat array for the usual single choice; one array per choice when ``n > 1``."""
    if not per_choice or all(v is None for v in per_choice):
        return None
    return per_choice[0] if len(per_choice) == 1 else per_choice


def set_token_data(
    attrs: dict[str, Any], prompt_ids: Any, response_ids: list[Any], logprobs: list[Any]
) -> None:
    """The RL attributes: prompt/response token ids and response logprobs (JSON arrays).

    Token ids decode back to the text, so they follow the content-capture switch.
    """
    if not get_settings().capture_content:
        return
    if prompt_ids:
        add_json(attrs, A.LLM_PROMPT_TOKEN_IDS, list(prompt_ids))
    add_json(attrs, A.LLM_RESPONSE_TOKEN_IDS, _one_or_all(response_ids))
    add_json(attrs, A.LLM_RESPONSE_LOGPROBS, _one_or_all(logprobs))


def _choice_logprobs(choice: Any) -> list[float] | None:
    content = get(get(choice, "logprobs"), "content")
    if not content:
        return None
    return [get(t, "logprob") for t in content]


def chat_response(attrs: dict[str, Any], response: Any) -> None:
    _set_ids(attrs, get(response, "id"), get(response, "model"))
    choices = get(response, "choices") or []
    attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] = [str(get(c, "finish_reason") or "") for c in choices]
    _set_usage(attrs, get(response, "usage"), "prompt_tokens", "completion_tokens")
    output = []
    for c in choices:
        msg = get(c, "message")
        parts = text_parts(get(msg, "content")) + openai_tool_call_parts(get(msg, "tool_calls"))
        reasoning = get(msg, "reasoning_content")
        if reasoning:
            parts.insert(0, {"type": "reasoning", "content": reasoning})
        output.append(
            {"role": get(msg, "role", "assistant"), "parts": parts, "finish_reason": get(c, "finish_reason")}
        )
    add_content(attrs, A.GEN_AI_OUTPUT_MESSAGES, output)
    prompt_ids = get(response, "prompt_token_ids") or (
        get(choices[0], "prompt_token_ids") if choices else None
    )
    set_token_data(
        attrs, prompt_ids, [get(c, "token_ids") for c in choices], [_choice_logprobs(c) for c in choices]
    )


class ChatStream(Accumulator):
    """Rebuilds the chat completion from chunks: text, tool calls, finish, usage, token ids, logprobs."""

    def __init__(self, request: Request) -> None:
        self.hide_usage = request.hide_usage_chunk
        self.id = self.model = self.usage = self.prompt_ids = None
        self.choices: dict[int, dict[str, Any]] = {}

    def _choice(self, index: int) -> dict[str, Any]:
        return self.choices.setdefault(
            index,
            {
                "text": [],
                "tools": {},
                "finish": None,
                "ids": [],
                "logprobs": [],
                "role": "assistant",
                "has_ids": False,
                "has_lp": False,
            },
        )

    def add(self, chunk: Any) -> bool:
        self.id = self.id or get(chunk, "id")
        self.model = self.model or get(chunk, "model")
        self.prompt_ids = self.prompt_ids or get(chunk, "prompt_token_ids")
        usage = get(chunk, "usage")
        if usage is not None:
            self.usage = usage
        choices = get(chunk, "choices") or []
        for c in choices:
            st = self._choice(get(c, "index", 0) or 0)
            delta = get(c, "delta")
            st["role"] = get(delta, "role") or st["role"]
            text = get(delta, "content")
            if text:
                st["text"].append(text)
            for tc in get(delta, "tool_calls") or ():
                slot = st["tools"].setdefault(
                    get(tc, "index", 0) or 0, {"id": None, "name": None, "args": []}
                )
                fn = get(tc, "function")
                slot["id"] = slot["id"] or get(tc, "id")
                slot["name"] = slot["name"] or get(fn, "name")
                if get(fn, "arguments"):
                    slot["args"].append(get(fn, "arguments"))
            st["finish"] = get(c, "finish_reason") or st["finish"]
            ids = get(c, "token_ids")
            if ids is not None:
                st["has_ids"] = True
                st["ids"].extend(ids)
            self.prompt_ids = self.prompt_ids or get(c, "prompt_token_ids")
            lps = _choice_logprobs(c)
            if lps is not None:
                st["has_lp"] = True
                st["logprobs"].extend(lps)
        return not (self.hide_usage and not choices and usage is not None)

    def finish(self, attrs: dict[str, Any]) -> None:
        _set_ids(attrs, self.id, self.model)
        ordered = [self.choices[i] for i in sorted(self.choices)]
        if ordered:
            attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] = [str(c["finish"] or "") for c in ordered]
        _set_usage(attrs, self.usage, "prompt_tokens", "completion_tokens")
        output = []
        for c in ordered:
            parts = text_parts("".join(c["text"])) if c["text"] else []
            for _, t in sorted(c["tools"].items()):
                parts.append(
                    {
                        "type": "tool_call",
                        "id": t["id"],
                        "name": t["name"],
                        "arguments": parse_arguments("".join(t["args"])),
                    }
                )
            output.append({"role": c["role"], "parts": parts, "finish_reason": c["finish"]})
        if output:
            add_content(attrs, A.GEN_AI_OUTPUT_MESSAGES, output)
        set_token_data(
            attrs,
            self.prompt_ids,
            [c["ids"] if c["has_ids"] else None for c in ordered],
            [c["logprobs"] if c["has_lp"] else None for c in ordered],
        )


# -- Responses API -------------------------------------------------------------


def _responses_input(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "parts": [{"type": "text", "content": value}]}]
    out = []
    for item in value or ():
        kind = get(item, "type")
        if kind == "function_call":
            out.append(
                {
                    "role": "assistant",
                    "parts": [
                        {
                            "type": "tool_call",
                            "id": get(item, "call_id"),
                            "name": get(item, "name"),
                            "arguments": parse_arguments(get(item, "arguments")),
                        }
                    ],
                }
            )
        elif kind == "function_call_output":
            out.append(
                {
                    "role": "tool",
                    "parts": [
                        {
                            "type": "tool_call_response",
                            "id": get(item, "call_id"),
                            "response": get(item, "output"),
                        }
                    ],
                }
            )
        else:
            out.append({"role": get(item, "role", "user"), "parts": text_parts(get(item, "content"))})
    return out


def responses_request(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
    attrs: dict[str, Any] = {}
    for key, attr in _REQUEST_KEYS[:2]:
        value = kwargs.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[attr] = value
    if isinstance(kwargs.get("max_output_tokens"), int):
        attrs[A.GEN_AI_REQUEST_MAX_TOKENS] = kwargs["max_output_tokens"]
    text_format = get(kwargs.get("text"), "format")
    if isinstance(kwargs.get("text_format"), type) or get(text_format, "type") in (
        "json_schema",
        "json_object",
    ):
        attrs[A.GEN_AI_OUTPUT_TYPE] = "json"
    _server(instance, attrs)
    request = Request(model=kwargs.get("model"), attributes=attrs)
    request.content[A.GEN_AI_INPUT_MESSAGES] = _responses_input(kwargs.get("input"))
    if isinstance(kwargs.get("instructions"), str):
        request.content[A.GEN_AI_SYSTEM_INSTRUCTIONS] = [{"type": "text", "content": kwargs["instructions"]}]
    tools = openai_tool_definitions(kwargs.get("tools"))
    if tools:
        request.content[A.GEN_AI_TOOL_DEFINITIONS] = tools
    return request


def responses_response(attrs: dict[str, Any], response: Any) -> None:
    _set_ids(attrs, get(response, "id"), get(response, "model"))
    _set_usage(attrs, get(response, "usage"), "input_tokens", "output_tokens")
    parts: list[dict[str, Any]] = []
    for item in get(response, "output") or ():
        kind = get(item, "type")
        if kind == "message":
            parts.extend(text_parts(get(item, "content")))
        elif kind == "function_call":
            parts.append(
                {
                    "type": "tool_call",
                    "id": get(item, "call_id"),
                    "name": get(item, "name"),
                    "arguments": parse_arguments(get(item, "arguments")),
                }
            )
        elif kind == "reasoning":
            summary = get(item, "summary") or []
            parts.append({"type": "reasoning", "content": "".join(get(s, "text", "") for s in summary)})
    status = get(response, "status")
    if any(p["type"] == "tool_call" for p in parts):
        finish = "tool_call"
    else:
        finish = "length" if status == "incomplete" else ("error" if status == "failed" else "stop")
    attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] = [finish]
    add_content(
        attrs, A.GEN_AI_OUTPUT_MESSAGES, [{"role": "assistant", "parts": parts, "finish_reason": finish}]
    )


class ResponsesStream(Accumulator):
    """The final ``response.completed`` (or incomplete/failed) event carries the whole response."""

    def __init__(self, request: Request) -> None:
        self.final = None

    def add(self, event: Any) -> bool:
        if get(event, "type") in ("response.completed", "response.incomplete", "response.failed"):
            self.final = get(event, "response")
        return True

    def finish(self, attrs: dict[str, Any]) -> None:
        if self.final is not None:
            responses_response(attrs, self.final)


CHAT = CallSpec(A.PROVIDER_OPENAI, A.OP_CHAT, chat_request, chat_response, ChatStream)
RESPONSES = CallSpec(A.PROVIDER_OPENAI, A.OP_CHAT, responses_request, responses_response, ResponsesStream)
