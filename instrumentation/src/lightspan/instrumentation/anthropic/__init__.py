"""OpenTelemetry instrumentor for the anthropic SDK: ``messages.create`` (sync/async, streaming) and
``messages.stream``."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from .._llm import make_wrapper
from .._patching import Patches
from ..openai.patch import tracer_getter
from ..processor import ensure_rollout_processor
from .package import _instruments
from .patch import MESSAGES, stream_wrapper

_MOD = "anthropic.resources.messages.messages"


class AnthropicInstrumentor(BaseInstrumentor):
    """``AnthropicInstrumentor().instrument(tracer_provider=...)``; patches on first import of anthropic."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        ensure_rollout_processor(kwargs.get("tracer_provider"))
        tracer = tracer_getter(kwargs.get("tracer_provider"), "lightspan.instrumentation.anthropic")
        self._patches = Patches([
            (_MOD, "Messages.create", make_wrapper(MESSAGES, tracer, is_async=False)),
            (_MOD, "AsyncMessages.create", make_wrapper(MESSAGES, tracer, is_async=True)),
            (_MOD, "Messages.stream", stream_wrapper(tracer)),
            (_MOD, "AsyncMessages.stream", stream_wrapper(tracer)),
        ])
        self._patches.apply()

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.remove()
