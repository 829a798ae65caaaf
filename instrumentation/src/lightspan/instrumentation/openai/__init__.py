"""OpenTelemetry instrumentor for the openai SDK: chat completions and Responses, sync/async, streams."""

from __future__ import annotations

from .._instrumentor import LLMInstrumentor, Target, traced
from .package import _instruments
from .patch import CHAT, RESPONSES

_CHAT = "openai.resources.chat.completions.completions"
_RESP = "openai.resources.responses.responses"


class OpenAIInstrumentor(LLMInstrumentor):
    """``OpenAIInstrumentor().instrument(tracer_provider=...)``; patches on first import of openai."""

    _instruments = _instruments
    _scope = __name__
    _targets = (
        Target(_CHAT, "Completions.create", traced(CHAT)),
        Target(_CHAT, "AsyncCompletions.create", traced(CHAT, is_async=True)),
        Target(_RESP, "Responses.create", traced(RESPONSES)),
        Target(_RESP, "AsyncResponses.create", traced(RESPONSES, is_async=True)),
    )
