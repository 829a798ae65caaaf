"""OpenTelemetry instrumentor for litellm ``completion`` and ``acompletion`` (streaming included)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from .._llm import make_wrapper
from .._patching import Patches
from ..openai.patch import tracer_getter
from ..processor import ensure_rollout_processor
from .package import _instruments
from .patch import COMPLETION


class LiteLLMInstrumentor(BaseInstrumentor):
    """Patches ``litellm.completion``/``litellm.acompletion`` when litellm is first imported."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        ensure_rollout_processor(kwargs.get("tracer_provider"))
        tracer = tracer_getter(kwargs.get("tracer_provider"), "lightspan.instrumentation.litellm")
        self._patches = Patches([
            ("litellm", "completion", make_wrapper(COMPLETION, tracer, is_async=False)),
            ("litellm", "acompletion", make_wrapper(COMPLETION, tracer, is_async=True)),
        ])
        self._patches.apply()

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.remove()
