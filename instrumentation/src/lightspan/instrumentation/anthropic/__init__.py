"""OpenTelemetry instrumentor for the anthropic SDK: ``messages.create`` (sync/async, streaming, and
through ``with_raw_response`` / ``with_streaming_response``), ``messages.parse`` and the
``messages.stream()`` helper.

The SDK's own telemetry: anthropic >= 2.15 starts a span of its own, ``anthropic.messages.create``
(also ``gen_ai.operation.name=chat``), for every API call of a client whose ``open_telemetry`` option
leaves traces on, which is the default. Beside lightspan's span that would make each logical call two
LLM spans, two training rows. Instrumenting therefore sets the SDK's documented switch,
``ANTHROPIC_OPEN_TELEMETRY=false``, unless the environment already sets that variable (an explicit
``true`` is honoured): clients made after instrumenting get no native spans. A client built with its
own ``open_telemetry=...`` option, or made before instrumenting, keeps its choice; its native span is then
a child of lightspan's (the span is current while the SDK sends), which the converters count once.
``uninstrument`` removes the variable again if instrumenting set it.
"""

from __future__ import annotations

import os

from .._instrumentor import LLMInstrumentor, Target, traced
from .package import _instruments
from .patch import MESSAGES, stream_wrapper

_MOD = "anthropic.resources.messages.messages"

#: The anthropic SDK's own switch for its native spans (read when a client is constructed).
ANTHROPIC_OPEN_TELEMETRY = "ANTHROPIC_OPEN_TELEMETRY"


class AnthropicInstrumentor(LLMInstrumentor):
    """``AnthropicInstrumentor().instrument(tracer_provider=..., meter_provider=...)``; patches on first
    import of anthropic and turns the SDK's native spans off (see the module docstring)."""

    _instruments = _instruments
    _scope = __name__
    _targets = (
        Target(_MOD, "Messages.create", traced(MESSAGES)),
        Target(_MOD, "AsyncMessages.create", traced(MESSAGES, is_async=True)),
        Target(_MOD, "Messages.parse", traced(MESSAGES)),
        Target(_MOD, "AsyncMessages.parse", traced(MESSAGES, is_async=True)),
        Target(_MOD, "Messages.stream", stream_wrapper),
        Target(_MOD, "AsyncMessages.stream", stream_wrapper),
    )
    _set_native_switch = False

    def _on_instrument(self) -> None:
        if ANTHROPIC_OPEN_TELEMETRY not in os.environ:
            os.environ[ANTHROPIC_OPEN_TELEMETRY] = "false"
            self._set_native_switch = True

    def _on_uninstrument(self) -> None:
        if self._set_native_switch:
            if os.environ.get(ANTHROPIC_OPEN_TELEMETRY) == "false":
                del os.environ[ANTHROPIC_OPEN_TELEMETRY]
            self._set_native_switch = False
