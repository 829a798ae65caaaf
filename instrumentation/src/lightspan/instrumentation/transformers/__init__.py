"""OpenTelemetry instrumentor for local ``transformers`` ``generate`` (prompt and response token ids)."""

from __future__ import annotations

from .._instrumentor import LLMInstrumentor, Target, traced
from .package import _instruments
from .patch import GENERATE


class TransformersInstrumentor(LLMInstrumentor):
    """Patches ``GenerationMixin.generate`` when ``transformers.generation.utils`` is first imported
    (instrumenting never imports transformers or torch itself)."""

    _instruments = _instruments
    _scope = __name__
    _targets = (Target("transformers.generation.utils", "GenerationMixin.generate", traced(GENERATE)),)
