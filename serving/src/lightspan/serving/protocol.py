"""The OpenAI chat-completions wire format: request validation and response bodies.

Kept apart from the HTTP layer so the shapes are read in one place. Extensions follow vLLM:
``return_token_ids`` (request) -> ``prompt_token_ids`` (top level) and ``choices[].token_ids``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from lightspan.serving.engine import SamplingParams, TokenEvent

__all__ = ["ChatRequest", "RequestError", "parse_chat_request", "error_body"]

MAX_N = 16
MAX_TOP_LOGPROBS = 20


class RequestError(ValueError):
    """A request the server refuses, with the HTTP status and the OpenAI error fields."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        status: int = 400,
        type_: str = "invalid_request_error",
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.param, self.status, self.type, self.code = param, status, type_, code


def error_body(
    message: str, *, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@dataclass
class ChatRequest:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    params: SamplingParams
    model: str | None
    logprobs: bool
    return_token_ids: bool
    stream: bool
    include_usage: bool


def parse_chat_request(body: Any, *, default_max_tokens: int) -> ChatRequest:
    """Validate a ``POST /v1/chat/completions`` body; every refusal names the offending field."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list of {role, content} objects", param="messages")
    clean = [_message(m, i) for i, m in enumerate(messages)]
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError("'model' must be a string", param="model")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = default_max_tokens if max_tokens is None else _int(max_tokens, "max_tokens", 1)
    temperature = _float(body.get("temperature", 1.0), "temperature", 0.0, 2.0)
    top_p = _float(body.get("top_p", 1.0), "top_p", 0.0, 1.0)
    if top_p == 0.0:
        raise RequestError("'top_p' must be greater than 0", param="top_p")
    n = _int(body.get("n", 1), "n", 1, MAX_N)
    seed = body.get("seed")
    seed = None if seed is None else _int(seed, "seed", -(2**63), 2**63 - 1)
    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4:
        stops = tuple(stop)
    else:
        raise RequestError("'stop' must be a string or a list of at most 4 strings", param="stop")
    logprobs = bool(body.get("logprobs") or False)
    top_logprobs = body.get("top_logprobs")
    top_logprobs = 0 if top_logprobs is None else _int(top_logprobs, "top_logprobs", 0, MAX_TOP_LOGPROBS)
    if top_logprobs and not logprobs:
        raise RequestError("'top_logprobs' needs 'logprobs': true", param="top_logprobs")
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise RequestError("'stream_options' must be an object", param="stream_options")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise RequestError("'tools' must be a list", param="tools")
    return ChatRequest(
        messages=clean,
        tools=tools,
        params=SamplingParams(
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            n=n,
            seed=seed,
            stop=stops,
            top_logprobs=top_logprobs,
            ignore_eos=bool(body.get("ignore_eos") or False),
        ),
        model=model,
        logprobs=logprobs,
        return_token_ids=bool(body.get("return_token_ids") or False),
        stream=bool(body.get("stream") or False),
        include_usage=bool(stream_options.get("include_usage") or False),
    )


def _message(m: Any, i: int) -> dict[str, Any]:
    if not isinstance(m, dict) or not isinstance(m.get("role"), str):
        raise RequestError(f"messages[{i}] must be an object with a string 'role'", param=f"messages[{i}]")
    content = m.get("content")
    if isinstance(content, list):  # content parts: only text can reach a text-only model
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise RequestError(
                    f"messages[{i}].content: only text parts are supported", param=f"messages[{i}].content"
                )
            texts.append(str(part.get("text", "")))
        content = "".join(texts)
    elif content is None:
        content = ""
    elif not isinstance(content, str):
        raise RequestError(
            f"messages[{i}].content must be a string or a list of text parts", param=f"messages[{i}].content"
        )
    return {**m, "content": content}


def _int(value: Any, name: str, lo: int, hi: int = 1 << 62) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RequestError(f"'{name}' must be an integer in [{lo}, {hi}], got {value!r}", param=name)
    return value


def _float(value: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise RequestError(f"'{name}' must be a number in [{lo}, {hi}], got {value!r}", param=name)
    return float(value)


# -- responses ------------------------------------------------------------------------------------------
def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def logprob_entry(token: str, logprob: float, top: list[tuple[str, float]]) -> dict[str, Any]:
    """One ``logprobs.content[]`` item in OpenAI's shape."""
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode("utf-8")),
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))} for t, lp in top],
    }


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(
    *,
    cid: str,
    model: str,
    req: ChatRequest,
    prompt_ids: list[int],
    events: list[TokenEvent],
    token_text: Any,
) -> dict[str, Any]:
    """The non-streamed body built from every sampled token's event."""
    choices = []
    for i in range(req.params.n):
        mine = [e for e in events if e.index == i]
        choice: dict[str, Any] = {
            "index": i,
            "message": {"role": "assistant", "content": "".join(e.text_delta for e in mine)},
            "finish_reason": mine[-1].finish_reason if mine else "length",
            "logprobs": None,
        }
        if req.logprobs:
            choice["logprobs"] = {
                "content": [
                    logprob_entry(token_text(e.token_id), e.logprob, [(token_text(t), lp) for t, lp in e.top])
                    for e in mine
                ]
            }
        if req.return_token_ids:
            choice["token_ids"] = [e.token_id for e in mine]
        choices.append(choice)
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage(len(prompt_ids), len(events)),
    }
    if req.return_token_ids:
        body["prompt_token_ids"] = prompt_ids
    return body


def chunk(
    *, cid: str, model: str, created: int, choices: list[dict[str, Any]], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` of a stream."""
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }
    if extra:
        body.update(extra)
    return body
