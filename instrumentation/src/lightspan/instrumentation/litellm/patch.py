"""How to read litellm calls: ``completion`` (chat-completions shape), ``text_completion`` (text
completions) and ``responses`` (OpenAI Responses shape), all with provider ``litellm``.

litellm is a framework over providers: its span is the one kept; the provider SDK call it makes
underneath (e.g. openai) runs inside it and is suppressed (see ``lightspan.instrumentation._llm``).
Its ``responses`` uses litellm's own HTTP client, so only this span records it. For streams the caller
did not ask usage of, lightspan passes ``stream_options={"include_usage": True}`` (litellm honours it for
every provider) and hides the extra usage chunk, as for the openai SDK.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from lightspan.schemas import attributes as A

from .._llm import CallSpec, Request
from ..openai.completions import CompletionStream, completion_request, completion_response
from ..openai.patch import (
    ChatStream,
    ResponsesStream,
    chat_request,
    chat_response,
    responses_request,
    responses_response,
)


def _kwargs(args: tuple[Any, ...], kwargs: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Positional arguments by name (``completion(model, messages)``, ``text_completion(prompt, model)``)."""
    if not args:
        return kwargs
    return {**dict(zip(names, args, strict=False)), **kwargs}


def _server(request: Request, kwargs: dict[str, Any]) -> Request:
    base = kwargs.get("api_base") or kwargs.get("base_url")
    if isinstance(base, str) and "://" in base:
        parts = urlsplit(base)
        if parts.hostname:
            request.attributes[A.SERVER_ADDRESS] = parts.hostname
        if parts.port:
            request.attributes[A.SERVER_PORT] = parts.port
    return request


def litellm_chat_request(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
    kwargs = _kwargs(args, kwargs, ("model", "messages"))
    return _server(chat_request(None, (), kwargs), kwargs)


def litellm_text_request(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
    kwargs = _kwargs(args, kwargs, ("prompt", "model"))
    return _server(completion_request(None, (), kwargs), kwargs)


def litellm_responses_request(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
    kwargs = _kwargs(args, kwargs, ("input", "model"))
    return _server(responses_request(None, (), kwargs), kwargs)


COMPLETION = CallSpec(A.PROVIDER_LITELLM, A.OP_CHAT, litellm_chat_request, chat_response, ChatStream)
TEXT_COMPLETION = CallSpec(
    A.PROVIDER_LITELLM,
    A.OP_TEXT_COMPLETION,
    litellm_text_request,
    completion_response,  # type: ignore[arg-type] - called with the request (pass_request)
    CompletionStream,
    span_name=A.SPAN_TEXT_COMPLETION,
    pass_request=True,
)
RESPONSES = CallSpec(
    A.PROVIDER_LITELLM, A.OP_CHAT, litellm_responses_request, responses_response, ResponsesStream
)
