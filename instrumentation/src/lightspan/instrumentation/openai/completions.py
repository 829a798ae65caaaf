"""How to read (legacy) text completions: openai ``completions.create`` and litellm ``text_completion``.

The vLLM RL path: a prompt given as token ids is recorded as ``lightspan.llm.prompt_token_ids``;
``return_token_ids`` replies add per-choice ``prompt_token_ids`` / ``token_ids``; logprobs come from
``choices[i].logprobs.token_logprobs``.
"""

from __future__ import annotations

from typing import Any

from lightspan.schemas import attributes as A

from .._content import add_content
from .._llm import Accumulator, CallSpec, Request
from .._messages import get, text_parts
from .patch import _REQUEST_KEYS, _server, _set_ids, _set_usage, set_token_data


def _is_ids(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(t, int) for t in value)


def completion_request(
    instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], *, ask_usage: bool = True
) -> Request:
    attrs: dict[str, Any] = {}
    for key, attr in _REQUEST_KEYS:
        value = kwargs.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[attr] = value
    if isinstance(kwargs.get("max_tokens"), int):
        attrs[A.GEN_AI_REQUEST_MAX_TOKENS] = kwargs["max_tokens"]
    stop = kwargs.get("stop")
    if stop:
        attrs[A.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop] if isinstance(stop, str) else list(stop)
    n = kwargs.get("n")
    if isinstance(n, int) and n != 1:
        attrs[A.GEN_AI_REQUEST_CHOICE_COUNT] = n
    _server(instance, attrs)
    request = Request(model=kwargs.get("model"), attributes=attrs)
    prompt = kwargs.get("prompt")
    if _is_ids(prompt):
        request.state["prompt_ids"] = prompt
    else:
        prompts = [prompt] if isinstance(prompt, str) else [p for p in prompt or () if isinstance(p, str)]
        request.content[A.GEN_AI_INPUT_MESSAGES] = [{"role": "user", "parts": text_parts(p)} for p in prompts]
    if ask_usage and kwargs.get("stream") is True and not kwargs.get("stream_options"):
        # As for chat streams: ask for the usage chunk, hide it from the caller.
        request.kwargs = {**kwargs, "stream_options": {"include_usage": True}}
        request.hide_usage_chunk = True
    return request


def _choice_logprobs(choice: Any) -> list[float] | None:
    values = get(get(choice, "logprobs"), "token_logprobs")
    return list(values) if values else None


def _output(texts: list[str], finishes: list[Any]) -> list[dict[str, Any]]:
    return [
        {"role": "assistant", "parts": text_parts(t) if t else [], "finish_reason": f}
        for t, f in zip(texts, finishes, strict=True)
    ]


def completion_response(attrs: dict[str, Any], response: Any, request: Request) -> None:
    _set_ids(attrs, get(response, "id"), get(response, "model"))
    choices = list(get(response, "choices") or ())
    finishes = [get(c, "finish_reason") for c in choices]
    attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] = [str(f or "") for f in finishes]
    _set_usage(attrs, get(response, "usage"), "prompt_tokens", "completion_tokens")
    add_content(attrs, A.GEN_AI_OUTPUT_MESSAGES, _output([get(c, "text") or "" for c in choices], finishes))
    prompt_ids = request.state.get("prompt_ids") or get(response, "prompt_token_ids")
    if not prompt_ids and choices:
        prompt_ids = get(choices[0], "prompt_token_ids")
    set_token_data(
        attrs, prompt_ids, [get(c, "token_ids") for c in choices], [_choice_logprobs(c) for c in choices]
    )


class CompletionStream(Accumulator):
    """Rebuilds a text completion from its chunks (text, finish, usage, token ids, logprobs)."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.id = self.model = self.usage = self.prompt_ids = None
        self.choices: dict[int, dict[str, Any]] = {}

    def add(self, chunk: Any) -> bool:
        self.id = self.id or get(chunk, "id")
        self.model = self.model or get(chunk, "model")
        usage = get(chunk, "usage")
        if usage is not None:
            self.usage = usage
        choices = get(chunk, "choices") or []
        for c in choices:
            st = self.choices.setdefault(
                get(c, "index", 0) or 0, {"text": [], "finish": None, "ids": None, "lps": None}
            )
            if get(c, "text"):
                st["text"].append(get(c, "text"))
            st["finish"] = get(c, "finish_reason") or st["finish"]
            ids = get(c, "token_ids")
            if ids is not None:
                st["ids"] = (st["ids"] or []) + list(ids)
            lps = _choice_logprobs(c)
            if lps is not None:
                st["lps"] = (st["lps"] or []) + lps
            self.prompt_ids = self.prompt_ids or get(c, "prompt_token_ids")
        return not (self.request.hide_usage_chunk and not choices and usage is not None)

    def finish(self, attrs: dict[str, Any]) -> None:
        _set_ids(attrs, self.id, self.model)
        ordered = [self.choices[i] for i in sorted(self.choices)]
        if ordered:
            attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] = [str(c["finish"] or "") for c in ordered]
            texts = ["".join(c["text"]) for c in ordered]
            add_content(attrs, A.GEN_AI_OUTPUT_MESSAGES, _output(texts, [c["finish"] for c in ordered]))
        _set_usage(attrs, self.usage, "prompt_tokens", "completion_tokens")
        set_token_data(
            attrs,
            self.request.state.get("prompt_ids") or self.prompt_ids,
            [c["ids"] for c in ordered],
            [c["lps"] for c in ordered],
        )


TEXT_COMPLETION = CallSpec(
    A.PROVIDER_OPENAI,
    A.OP_TEXT_COMPLETION,
    completion_request,
    completion_response,  # type: ignore[arg-type] - called with the request (pass_request)
    CompletionStream,
    span_name=A.SPAN_TEXT_COMPLETION,
    pass_request=True,
)
