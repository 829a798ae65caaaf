"""OpenTelemetry instrumentor for local ``transformers`` ``generate`` (prompt and response token ids)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from .._llm import make_wrapper
from .._patching import Patches
from ..openai.patch import tracer_getter
from ..processor import ensure_rollout_processor
from .package import _instruments
from .patch import GENERATE


class TransformersInstrumentor(BaseInstrumentor):
    """Patches ``GenerationMixin.generate`` when ``transformers.generation.utils`` is first imported
    (instrumenting never imports transformers or torch itself)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        ensure_rollout_processor(kwargs.get("tracer_provider"))
        tracer = tracer_getter(kwargs.get("tracer_provider"), "lightspan.instrumentation.transformers")
        self._patches = Patches([
            ("transformers.generation.utils", "GenerationMixin.generate", make_wrapper(GENERATE, tracer, is_async=False)),
        ])
        self._patches.apply()

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.remove()
