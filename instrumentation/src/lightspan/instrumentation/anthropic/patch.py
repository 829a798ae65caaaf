"""How to read anthropic ``messages.create`` / ``messages.stream`` calls (requests, responses, events)."""

from __future__ import annotations

import logging
from typing import Any

import wrapt
from opentelemetry import context

from lightspan.schemas import attributes as A

from .._content import add_content
from .._llm import Accumulator, CallSpec, Request, Telemetry, begin
from .._messages import anthropic_tool_definitions, get, parse_arguments, text_parts
from ..openai.patch import _server

_log = logging.getLogger(__name__)


def messages_request(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
    attrs: dict[str, Any] = {}
    for key, attr in (
        ("temperature", A.GEN_AI_REQUEST_TEMPERATURE),
        ("top_p", A.GEN_AI_REQUEST_TOP_P),
        ("max_tokens", A.GEN_AI_REQUEST_MAX_TOKENS),
    ):
        value = kwargs.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[attr] = value
    if kwargs.get("stop_sequences"):
        attrs[A.GEN_AI_REQUEST_STOP_SEQUENCES] = list(kwargs["stop_sequences"])
    _server(instance, attrs)
    request = Request(model=kwargs.get("model"), attributes=attrs)
    request.content[A.GEN_AI_INPUT_MESSAGES] = [
        {"role": get(m, "role", "user"), "parts": text_parts(get(m, "content"))}
        for m in kwargs.get("messages") or ()
    ]
    system = kwargs.get("system")
    if system:
        request.content[A.GEN_AI_SYSTEM_INSTRUCTIONS] = text_parts(system)
    tools = anthropic_tool_definitions(kwargs.get("tools"))
    if tools:
        request.content[A.GEN_AI_TOOL_DEFINITIONS] = tools
    return request


def _input_tokens(usage: Any) -> int | None:
    """Input tokens including cache reads and writes (Anthropic reports them apart)."""
    base = get(usage, "input_tokens")
    if not isinstance(base, int):
        return None
    return (
        base + (get(usage, "cache_read_input_tokens") or 0) + (get(usage, "cache_creation_input_tokens") or 0)
    )


def _cache_tokens(attrs: dict[str, Any], usage: Any) -> None:
    for key, attr in (
        ("cache_read_input_tokens", A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
        ("cache_creation_input_tokens", A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS),
    ):
        value = get(usage, key)
        if isinstance(value, int) and value > 0:
            attrs[attr] = value


def _finish(
    attrs: dict[str, Any], msg_id: Any, model: Any, stop: Any, tin: Any, tout: Any, blocks: list[Any]
) -> None:
    if msg_id:
        attrs[A.GEN_AI_RESPONSE_ID] = str(msg_id)
    if model:
        attrs[A.GEN_AI_RESPONSE_MODEL] = str(model)
    if stop:
        attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] = [str(stop)]
    if isinstance(tin, int):
        attrs[A.GEN_AI_USAGE_INPUT_TOKENS] = tin
    if isinstance(tout, int):
        attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] = tout
    add_content(
        attrs,
        A.GEN_AI_OUTPUT_MESSAGES,
        [{"role": "assistant", "parts": text_parts(blocks), "finish_reason": stop}],
    )


def messages_response(attrs: dict[str, Any], message: Any) -> None:
    usage = get(message, "usage")
    _cache_tokens(attrs, usage)
    _finish(
        attrs,
        get(message, "id"),
        get(message, "model"),
        get(message, "stop_reason"),
        _input_tokens(usage),
        get(usage, "output_tokens"),
        list(get(message, "content") or ()),
    )


class MessagesStream(Accumulator):
    """Rebuilds the message from raw SSE events (text, tool_use input JSON, thinking)."""

    def __init__(self, request: Request) -> None:
        self.id = self.model = self.stop = self.tin = self.tout = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.cache: dict[str, Any] = {}

    def add(self, event: Any) -> bool:
        kind = get(event, "type")
        if kind == "message_start":
            msg = get(event, "message")
            self.id, self.model = get(msg, "id"), get(msg, "model")
            self.tin = _input_tokens(get(msg, "usage"))
            _cache_tokens(self.cache, get(msg, "usage"))
            self.tout = get(get(msg, "usage"), "output_tokens")
        elif kind == "content_block_start":
            block = get(event, "content_block")
            self.blocks[get(event, "index", 0)] = {
                "type": get(block, "type"),
                "id": get(block, "id"),
                "name": get(block, "name"),
                "text": [get(block, "text") or ""],
                "json": [],
            }
        elif kind == "content_block_delta":
            slot = self.blocks.setdefault(get(event, "index", 0), {"type": "text", "text": [], "json": []})
            delta = get(event, "delta")
            dtype = get(delta, "type")
            if dtype == "text_delta":
                slot["text"].append(get(delta, "text", ""))
            elif dtype == "input_json_delta":
                slot["json"].append(get(delta, "partial_json", ""))
            elif dtype == "thinking_delta":
                slot["text"].append(get(delta, "thinking", ""))
        elif kind == "message_delta":
            self.stop = get(get(event, "delta"), "stop_reason") or self.stop
            out = get(get(event, "usage"), "output_tokens")
            self.tout = out if isinstance(out, int) else self.tout
        return True

    def finish(self, attrs: dict[str, Any]) -> None:
        blocks = []
        for _, b in sorted(self.blocks.items()):
            if b["type"] == "tool_use":
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": b["id"],
                        "name": b["name"],
                        "input": parse_arguments("".join(b["json"])) if b["json"] else {},
                    }
                )
            else:
                blocks.append({"type": b["type"], "text": "".join(b["text"]), "thinking": "".join(b["text"])})
        attrs.update(self.cache)
        _finish(attrs, self.id, self.model, self.stop, self.tin, self.tout, blocks)


MESSAGES = CallSpec(A.PROVIDER_ANTHROPIC, A.OP_CHAT, messages_request, messages_response, MessagesStream)


class _StreamManager(wrapt.ObjectProxy):
    """``messages.stream(...)`` manager. The span starts when the ``with`` block enters (when the SDK sends
    the request, with the span current, so the SDK's own spans nest under it) and ends when the block
    exits, recorded from the SDK's own message snapshot (complete however the caller consumed the
    stream). An exception leaving the block marks the span error."""

    def __init__(self, manager: Any, telemetry: Telemetry, instance: Any, kwargs: dict[str, Any]) -> None:
        super().__init__(manager)
        self._self_begin = (telemetry, instance, kwargs)
        self._self_call: Any = None
        self._self_stream: Any = None

    def _self_start(self) -> Any:
        telemetry, instance, kwargs = self._self_begin
        call = begin(telemetry, MESSAGES, instance, (), kwargs)
        if call is not None:
            call.span.set_attributes({A.LLM_STREAMING: True, A.GEN_AI_REQUEST_STREAM: True})
        self._self_call = call
        return call

    def _self_close(self, exc: BaseException | None) -> None:
        call = self._self_call
        if call is None:
            return
        attrs: dict[str, Any] = {}
        snapshot = getattr(self._self_stream, "current_message_snapshot", None)
        if snapshot is not None:
            try:
                messages_response(attrs, snapshot)
            except Exception:
                _log.warning("lightspan: could not read the anthropic stream's message", exc_info=True)
        call.end(attrs, exc)

    def __enter__(self) -> Any:
        call = self._self_start()
        if call is None:
            return self.__wrapped__.__enter__()
        token = call.activate()
        try:
            self._self_stream = self.__wrapped__.__enter__()
        except BaseException as exc:
            call.end({}, exc)
            raise
        finally:
            context.detach(token)
        return self._self_stream

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_close(exc)

    async def __aenter__(self) -> Any:
        call = self._self_start()
        if call is None:
            return await self.__wrapped__.__aenter__()
        token = call.activate()
        try:
            self._self_stream = await self.__wrapped__.__aenter__()
        except BaseException as exc:
            call.end({}, exc)
            raise
        finally:
            context.detach(token)
        return self._self_stream

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_close(exc)


def stream_wrapper(telemetry: Telemetry) -> Any:
    """Wrapper for ``Messages.stream`` and ``AsyncMessages.stream`` (both return a manager synchronously;
    the request, and so the span, starts when the manager's ``with`` block enters)."""

    def wrapper(wrapped, instance, args, kwargs):
        return _StreamManager(wrapped(*args, **kwargs), telemetry, instance, kwargs)

    return wrapper
