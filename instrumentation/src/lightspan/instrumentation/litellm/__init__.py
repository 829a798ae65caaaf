"""OpenTelemetry instrumentor for litellm: ``completion``/``acompletion``, ``text_completion``/
``atext_completion`` and ``responses``/``aresponses``, streaming included."""

from __future__ import annotations

from .._instrumentor import LLMInstrumentor, Target, traced
from .package import _instruments
from .patch import COMPLETION, RESPONSES, TEXT_COMPLETION


class LiteLLMInstrumentor(LLMInstrumentor):
    """Patches litellm's top-level call functions when litellm is first imported."""

    _instruments = _instruments
    _scope = __name__
    _targets = (
        Target("litellm", "completion", traced(COMPLETION)),
        Target("litellm", "acompletion", traced(COMPLETION, is_async=True)),
        Target("litellm", "text_completion", traced(TEXT_COMPLETION)),
        Target("litellm", "atext_completion", traced(TEXT_COMPLETION, is_async=True)),
        Target("litellm", "responses", traced(RESPONSES)),
        Target("litellm", "aresponses", traced(RESPONSES, is_async=True)),
    )
