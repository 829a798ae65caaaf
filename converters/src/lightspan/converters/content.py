"""Why an LLM call had no prompt or completion content, and how to turn capture on, per instrumentation.

Calls without content cannot become training rows; the converter skips them (counted with this hint in
the report) rather than train on empty text. The instrumentation is known from the span's scope name.
"""

from __future__ import annotations

#: (scope-name prefix, instrumentation, how to capture content). First match wins.
HINTS: tuple[tuple[str, str, str], ...] = (
    (
        "openinference.",
        "OpenInference",
        "content is hidden by OPENINFERENCE_HIDE_INPUTS / OPENINFERENCE_HIDE_OUTPUTS (or the"
        " HIDE_INPUT_MESSAGES / HIDE_OUTPUT_MESSAGES settings of TraceConfig): unset them",
    ),
    (
        "opentelemetry.util.genai",
        "opentelemetry-instrumentation-openai-v2 (opentelemetry-util-genai)",
        "set OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental and"
        " OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only (or event_only / span_and_event with an"
        " OTLP log exporter pointed at the collector)",
    ),
    (
        "opentelemetry.instrumentation.openai_v2",
        "opentelemetry-instrumentation-openai-v2",
        "set OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true (and export logs to the collector)",
    ),
    (
        "opentelemetry.instrumentation.",
        "OpenLLMetry (traceloop)",
        "set TRACELOOP_TRACE_CONTENT=true (the default; Traceloop.init(trace_content=True))",
    ),
    ("lightspan", "lightspan", "set LIGHTSPAN_CAPTURE_CONTENT=true (the default)"),
)


def capture_hint(scope_name: str) -> str:
    """A sentence naming the instrumentation that recorded the span and its content-capture switch."""
    for prefix, who, how in HINTS:
        if scope_name.startswith(prefix):
            return f"{who}: {how}"
    name = scope_name or "unknown instrumentation"
    return f"{name}: turn on its message-content capture (gen_ai.input.messages / gen_ai.output.messages)"


__all__ = ["HINTS", "capture_hint"]
