"""Talk to whatever chat client the planner was given: an OpenAI-style client (sync or async; its own
instrumentor records the call), an Anthropic-style client, or a plain callable ``(messages) -> str``
(sync or async; recorded here as a ``chat {model}`` span so it still becomes training data)."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from lightspan.schemas import attributes as A

from .._content import set_content
from .._llm import LLM_CALL_KEY
from ..rollout import get_tracer

__all__ = ["Reply", "complete", "complete_reply", "describe_llm"]

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Reply:
    """One chat turn's text and, where the client reports usage, its completion tokens."""

    text: str
    output_tokens: int | None = None


def describe_llm(llm: Any) -> str:
    """'openai', 'anthropic' or 'callable'; ``TypeError`` for anything else (said at construction)."""
    completions = getattr(getattr(llm, "chat", None), "completions", None)
    if completions is not None and callable(getattr(completions, "create", None)):
        return "openai"
    if callable(getattr(getattr(llm, "messages", None), "create", None)):
        return "anthropic"
    if callable(llm):
        return "callable"
    raise TypeError(
        "llm must be an OpenAI-style client (client.chat.completions.create), an Anthropic-style client "
        f"(client.messages.create) or a callable (messages) -> str; got {type(llm).__name__}"
    )


async def complete(
    llm: Any,
    model: str | None,
    messages: Messages,
    executor: Executor,
    options: Mapping[str, Any] | None = None,
) -> str:
    """One chat turn; returns the reply text. Sync clients run in ``executor`` (context carried)."""
    return (await complete_reply(llm, model, messages, executor, options)).text


async def complete_reply(
    llm: Any,
    model: str | None,
    messages: Messages,
    executor: Executor,
    options: Mapping[str, Any] | None = None,
) -> Reply:
    """One chat turn as a :class:`Reply`. ``options`` are extra request fields for client objects
    (``temperature``, ``seed``, ``max_tokens``, ``logprobs``, ``extra_body``, ...); a callable gets none."""
    kind = describe_llm(llm)
    extra = dict(options or {})
    if kind == "openai":
        if not model:
            raise ValueError("GAPPlanner(model=...) is required to call an OpenAI-style client")
        create = llm.chat.completions.create
        response = await _call(
            create, _is_async(llm, create), executor, model=model, messages=messages, **extra
        )
        usage = getattr(getattr(response, "usage", None), "completion_tokens", None)
        return Reply(_openai_text(response), usage if isinstance(usage, int) else None)
    if kind == "anthropic":
        if not model:
            raise ValueError("GAPPlanner(model=...) is required to call an Anthropic-style client")
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = [m for m in messages if m["role"] != "system"]
        create = llm.messages.create
        kwargs: dict[str, Any] = {"model": model, "messages": turns, "max_tokens": 2048, **extra}
        if system:
            kwargs["system"] = system
        response = await _call(create, _is_async(llm, create), executor, **kwargs)
        usage = getattr(getattr(response, "usage", None), "output_tokens", None)
        text = "".join(getattr(b, "text", "") for b in getattr(response, "content", []) or [])
        return Reply(text, usage if isinstance(usage, int) else None)
    return Reply(await _call_traced(llm, model, messages, executor))


async def _call_traced(
    fn: Callable[..., Any], model: str | None, messages: Messages, executor: Executor
) -> str:
    name = model or getattr(fn, "__name__", None) or type(fn).__name__
    span = get_tracer().start_span(
        A.SPAN_CHAT.format(model=name),
        kind=SpanKind.CLIENT,
        attributes={A.GEN_AI_OPERATION_NAME: A.OP_CHAT, A.GEN_AI_REQUEST_MODEL: name},
    )
    system = [{"type": "text", "content": m["content"]} for m in messages if m["role"] == "system"]
    set_content(span, A.GEN_AI_SYSTEM_INSTRUCTIONS, system or None)
    set_content(
        span,
        A.GEN_AI_INPUT_MESSAGES,
        [
            {"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]}
            for m in messages
            if m["role"] != "system"
        ],
    )
    # Mark the context as "inside an LLM call" so an instrumented client the callable uses records no
    # second span for the same logical call.
    token = otel_context.attach(otel_context.set_value(LLM_CALL_KEY, True, trace.set_span_in_context(span)))
    try:
        reply = await _call(fn, _is_async(fn, fn), executor, messages)
        text = reply if isinstance(reply, str) else _openai_text(reply)
    except BaseException as exc:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.set_attribute(A.ERROR_TYPE, type(exc).__qualname__)
        raise
    else:
        set_content(
            span,
            A.GEN_AI_OUTPUT_MESSAGES,
            [{"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}],
        )
        span.set_attribute(A.GEN_AI_RESPONSE_FINISH_REASONS, ["stop"])
        return text
    finally:
        otel_context.detach(token)
        span.end()


def _is_async(owner: Any, fn: Any) -> bool:
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__):
        return True
    # openai/anthropic async clients wrap their coroutine methods in plain functions; their classes say it.
    return type(owner).__name__.startswith("Async")


async def _call(fn: Callable[..., Any], is_async: bool, executor: Executor, *args: Any, **kwargs: Any) -> Any:
    if is_async:
        result = fn(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(executor, functools.partial(fn, *args, **kwargs))
    return await result if inspect.isawaitable(result) else result


def _openai_text(response: Any) -> str:
    if isinstance(response, str):
        return response
    try:
        return response.choices[0].message.content or ""
    except (AttributeError, IndexError, TypeError):
        raise TypeError(
            f"cannot read a reply from {type(response).__name__}: expected text or a chat completion"
        ) from None
