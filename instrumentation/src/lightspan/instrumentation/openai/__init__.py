"""OpenTelemetry instrumentor for the openai SDK.

Chat completions (``create``, ``parse``, the ``stream()`` helper), Responses (``create``, ``parse``,
``stream()``), legacy text completions (``completions.create``); sync and async, streamed or not, and
through ``with_raw_response`` / ``with_streaming_response`` (which call the same methods).
"""

from __future__ import annotations

from .._instrumentor import LLMInstrumentor, Target, plain, traced
from .._streams import manager_wrapper
from .completions import TEXT_COMPLETION
from .package import _instruments
from .patch import CHAT, RESPONSES

_CHAT = "openai.resources.chat.completions.completions"
_RESP = "openai.resources.responses.responses"
_TEXT = "openai.resources.completions"


class OpenAIInstrumentor(LLMInstrumentor):
    """``OpenAIInstrumentor().instrument(tracer_provider=..., meter_provider=...)``; patches on first
    import of openai."""

    _instruments = _instruments
    _scope = __name__
    _targets = (
        Target(_CHAT, "Completions.create", traced(CHAT)),
        Target(_CHAT, "AsyncCompletions.create", traced(CHAT, is_async=True)),
        Target(_CHAT, "Completions.parse", traced(CHAT)),
        Target(_CHAT, "AsyncCompletions.parse", traced(CHAT, is_async=True)),
        # The helpers call the instrumented ``create`` when their ``with`` block enters.
        Target(_CHAT, "Completions.stream", plain(manager_wrapper)),
        Target(_CHAT, "AsyncCompletions.stream", plain(manager_wrapper)),
        Target(_RESP, "Responses.create", traced(RESPONSES)),
        Target(_RESP, "AsyncResponses.create", traced(RESPONSES, is_async=True)),
        Target(_RESP, "Responses.parse", traced(RESPONSES)),
        Target(_RESP, "AsyncResponses.parse", traced(RESPONSES, is_async=True)),
        Target(_RESP, "Responses.stream", plain(manager_wrapper)),
        Target(_RESP, "AsyncResponses.stream", plain(manager_wrapper)),
        Target(_TEXT, "Completions.create", traced(TEXT_COMPLETION)),
        Target(_TEXT, "AsyncCompletions.create", traced(TEXT_COMPLETION, is_async=True)),
    )
