"""How to read litellm ``completion`` / ``acompletion`` calls: the chat-completions shape, provider litellm.

litellm is a framework over providers: its span is the one kept; the provider SDK call it makes
underneath (e.g. openai) runs inside it and is suppressed (see ``lightspan.instrumentation._llm``).
"""

from __future__ import annotations

from typing import Any

from lightspan.schemas import attributes as A

from .._llm import CallSpec, Request
from ..openai.patch import ChatStream, chat_request, chat_response


def completion_request(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
    if args:  # completion(model, messages, ...) positionally
        kwargs = {**dict(zip(("model", "messages"), args, strict=False)), **kwargs}
    request = chat_request(None, (), kwargs, ask_usage=False)
    base = kwargs.get("api_base") or kwargs.get("base_url")
    if isinstance(base, str) and "://" in base:
        from urllib.parse import urlsplit

        parts = urlsplit(base)
        if parts.hostname:
            request.attributes[A.SERVER_ADDRESS] = parts.hostname
        if parts.port:
            request.attributes[A.SERVER_PORT] = parts.port
    return request


COMPLETION = CallSpec(A.PROVIDER_LITELLM, A.OP_CHAT, completion_request, chat_response, ChatStream)
