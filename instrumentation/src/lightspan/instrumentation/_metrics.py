"""The GenAI client metrics of the semantic conventions, recorded once per instrumented LLM call.

``gen_ai.client.operation.duration`` (seconds) and ``gen_ai.client.token.usage`` (tokens, one point per
``gen_ai.token.type``), histograms with the conventions' advisory bucket boundaries, carrying the
conventions' attributes: operation, provider, request/response model, server address/port and, for a
failed call, ``error.type`` (duration only). Both are on by default, as the conventions recommend; pass
``meter_provider=NoOpMeterProvider()`` to an instrumentor to turn them off. Recording never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import metrics

from lightspan.schemas import attributes as A

_log = logging.getLogger(__name__)

#: Advisory boundaries from the GenAI conventions (gen_ai.client.operation.duration), in seconds.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
#: Advisory boundaries from the GenAI conventions (gen_ai.client.token.usage), in tokens.
TOKEN_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)

#: Span attributes that both metrics carry when the span has them.
_SHARED = (
    A.GEN_AI_OPERATION_NAME,
    A.GEN_AI_PROVIDER_NAME,
    A.GEN_AI_REQUEST_MODEL,
    A.GEN_AI_RESPONSE_MODEL,
    A.SERVER_ADDRESS,
    A.SERVER_PORT,
)


class GenAIMetrics:
    """The two histograms of one meter (one per instrumentor scope)."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.duration = meter.create_histogram(
            A.GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.tokens = meter.create_histogram(
            A.GEN_AI_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )

    def record(
        self, seconds: float, start: Mapping[str, Any], end: Mapping[str, Any], error: str | None
    ) -> None:
        """One call: ``start``/``end`` are the span's request and response attributes."""
        try:
            attrs = {k: start[k] for k in _SHARED if k in start}
            for k in _SHARED:
                if k in end:
                    attrs[k] = end[k]
            tokens = [
                (A.TOKEN_TYPE_INPUT, end.get(A.GEN_AI_USAGE_INPUT_TOKENS)),
                (A.TOKEN_TYPE_OUTPUT, end.get(A.GEN_AI_USAGE_OUTPUT_TOKENS)),
            ]
            for kind, count in tokens:
                if isinstance(count, int) and not isinstance(count, bool):
                    self.tokens.record(count, {**attrs, A.GEN_AI_TOKEN_TYPE: kind})
            if error is not None:
                attrs[A.ERROR_TYPE] = error
            self.duration.record(seconds, attrs)
        except Exception:  # never break the agent for telemetry
            _log.debug("lightspan: could not record GenAI metrics", exc_info=True)


MetricsGetter = Callable[[], "GenAIMetrics | None"]


def metrics_getter(provider: metrics.MeterProvider | None, scope: str) -> MetricsGetter:
    """Cached instruments, made on first use (a global meter provider set after instrumenting is used:
    the API's proxy meter forwards to it)."""
    holder: list[GenAIMetrics | None] = []

    def get() -> GenAIMetrics | None:
        if not holder:
            from lightspan.instrumentation.version import __version__

            try:
                holder.append(GenAIMetrics(metrics.get_meter(scope, __version__, meter_provider=provider)))
            except Exception:
                _log.warning("lightspan: GenAI metrics unavailable", exc_info=True)
                holder.append(None)
        return holder[0]

    return get
