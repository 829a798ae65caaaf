"""OpenTelemetry instrumentor for litellm ``completion`` and ``acompletion`` (streaming included)."""

from __future__ import annotations

from .._instrumentor import LLMInstrumentor, Target, traced
from .package import _instruments
from .patch import COMPLETION


class LiteLLMInstrumentor(LLMInstrumentor):
    """Patches ``litellm.completion``/``litellm.acompletion`` when litellm is first imported."""

    _instruments = _instruments
    _scope = __name__
    _targets = (
        Target("litellm", "completion", traced(COMPLETION)),
        Target("litellm", "acompletion", traced(COMPLETION, is_async=True)),
    )
