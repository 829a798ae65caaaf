"""OpenTelemetry instrumentor for the openai SDK: chat completions and Responses, sync/async, streams."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from .._llm import make_wrapper
from .._patching import Patches
from ..processor import ensure_rollout_processor
from .package import _instruments
from .patch import CHAT, RESPONSES, tracer_getter

_CHAT = "openai.resources.chat.completions.completions"
_RESP = "openai.resources.responses.responses"


class OpenAIInstrumentor(BaseInstrumentor):
    """``OpenAIInstrumentor().instrument(tracer_provider=...)``; patches on first import of openai."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        ensure_rollout_processor(kwargs.get("tracer_provider"))
        tracer = tracer_getter(kwargs.get("tracer_provider"))
        self._patches = Patches([
            (_CHAT, "Completions.create", make_wrapper(CHAT, tracer, is_async=False)),
            (_CHAT, "AsyncCompletions.create", make_wrapper(CHAT, tracer, is_async=True)),
            (_RESP, "Responses.create", make_wrapper(RESPONSES, tracer, is_async=False)),
            (_RESP, "AsyncResponses.create", make_wrapper(RESPONSES, tracer, is_async=True)),
        ])
        self._patches.apply()

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.remove()
