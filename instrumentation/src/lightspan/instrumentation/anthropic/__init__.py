"""OpenTelemetry instrumentor for the anthropic SDK: ``messages.create`` (sync/async, streaming) and
``messages.stream``."""

from __future__ import annotations

from .._instrumentor import LLMInstrumentor, Target, traced
from .package import _instruments
from .patch import MESSAGES, stream_wrapper

_MOD = "anthropic.resources.messages.messages"


class AnthropicInstrumentor(LLMInstrumentor):
    """``AnthropicInstrumentor().instrument(tracer_provider=...)``; patches on first import of anthropic."""

    _instruments = _instruments
    _scope = __name__
    _targets = (
        Target(_MOD, "Messages.create", traced(MESSAGES)),
        Target(_MOD, "AsyncMessages.create", traced(MESSAGES, is_async=True)),
        Target(_MOD, "Messages.stream", stream_wrapper),
        Target(_MOD, "AsyncMessages.stream", stream_wrapper),
    )
