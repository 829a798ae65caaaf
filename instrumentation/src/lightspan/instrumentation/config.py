"""``configure()``: one call that makes an agent export its spans to lightspan.

Settings resolve as argument, then the standard ``OTEL_*`` variables (read by the OTel SDK and
exporters themselves), then defaults: OTLP over gRPC to ``localhost:4317``.
"""

from __future__ import annotations

import logging
import os
import threading
from importlib import import_module
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from lightspan.schemas import env

from ._settings import RedactHook, update_settings
from .processor import RolloutSpanProcessor, ensure_rollout_processor

_log = logging.getLogger(__name__)

PROTOCOLS = ("grpc", "http/protobuf")
#: The provider instrumentors (also registered as ``opentelemetry_instrumentor`` entry points).
INSTRUMENTORS = (
    "lightspan.instrumentation.openai:OpenAIInstrumentor",
    "lightspan.instrumentation.anthropic:AnthropicInstrumentor",
    "lightspan.instrumentation.litellm:LiteLLMInstrumentor",
    "lightspan.instrumentation.transformers:TransformersInstrumentor",
)
_lock = threading.Lock()
_provider: TracerProvider | None = None


def make_exporter(
    endpoint: str | None = None,
    *,
    protocol: str | None = None,
    headers: dict[str, str] | None = None,
    insecure: bool | None = None,
) -> SpanExporter:
    """An OTLP span exporter; ``None`` arguments fall back to the ``OTEL_EXPORTER_OTLP_*`` variables."""
    protocol = (
        protocol
        or os.environ.get(env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL)
        or os.environ.get(env.OTEL_EXPORTER_OTLP_PROTOCOL)
        or "grpc"
    ).strip()
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}.")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        kwargs: dict[str, Any] = {"headers": headers}
        if endpoint is not None:
            kwargs["endpoint"] = endpoint
            if insecure is None and endpoint.startswith("http://"):
                insecure = True
        if insecure is not None:
            kwargs["insecure"] = insecure
        return OTLPSpanExporter(**kwargs)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPExporter

    if endpoint is not None and not endpoint.rstrip("/").endswith("/v1/traces"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    return HTTPExporter(endpoint=endpoint, headers=headers)


def configure(
    endpoint: str | None = None,
    service_name: str | None = None,
    *,
    protocol: str | None = None,
    headers: dict[str, str] | None = None,
    capture_content: bool | None = None,
    instrument: bool = True,
    max_attribute_bytes: int | None = None,
    redact: RedactHook | None = None,
    insecure: bool | None = None,
    resource_attributes: dict[str, Any] | None = None,
) -> TracerProvider:
    """Set up tracing for an agent and return the global SDK ``TracerProvider``.

    :param endpoint: OTLP endpoint (``http://host:4317`` for gRPC, ``http://host:4318`` for HTTP);
        default ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``, else ``localhost:4317``.
    :param service_name: ``service.name``; default ``OTEL_SERVICE_NAME``, else ``lightspan-agent``.
    :param protocol: ``grpc`` (default) or ``http/protobuf``; default ``OTEL_EXPORTER_OTLP_PROTOCOL``.
    :param headers: extra export headers (e.g. ``{"authorization": "Bearer ..."}``).
    :param capture_content: record prompts/completions/tool I/O (default ``LIGHTSPAN_CAPTURE_CONTENT``, on).
    :param instrument: also instrument the installed provider libraries.
    :param max_attribute_bytes: per-attribute size limit (default ``LIGHTSPAN_MAX_ATTRIBUTE_BYTES``).
    :param redact: ``redact(key, value) -> value | None`` applied to content before it is recorded.

    Idempotent: a second call returns the same provider (content settings are updated). If another
    SDK provider is already global (e.g. set by ``opentelemetry-instrument``), the rollout processor
    is added to it and it is returned; no second exporter is attached.
    """
    global _provider
    update_settings(capture_content=capture_content, max_attribute_bytes=max_attribute_bytes, redact=redact)
    with _lock:
        if _provider is None:
            current = trace.get_tracer_provider()
            if isinstance(current, TracerProvider):
                _log.info("lightspan: a TracerProvider is already set; adding rollout stamping to it")
                ensure_rollout_processor(current)
                _provider = current
            else:
                attrs: dict[str, Any] = dict(resource_attributes or {})
                name = service_name or os.environ.get(env.OTEL_SERVICE_NAME)
                if name or SERVICE_NAME not in attrs:
                    attrs[SERVICE_NAME] = name or "lightspan-agent"
                provider = TracerProvider(resource=Resource.create(attrs))
                provider.add_span_processor(RolloutSpanProcessor())
                exporter = make_exporter(endpoint, protocol=protocol, headers=headers, insecure=insecure)
                provider.add_span_processor(BatchSpanProcessor(exporter))
                trace.set_tracer_provider(provider)
                _provider = provider
    if instrument:
        instrument_all()
    return _provider


def _instrumentors() -> list[Any]:
    found = []
    for path in INSTRUMENTORS:
        module, _, cls = path.partition(":")
        try:
            found.append(getattr(import_module(module), cls)())
        except Exception:
            _log.warning("lightspan: could not load instrumentor %s", path, exc_info=True)
    return found


def instrument_all(**kwargs: Any) -> list[str]:
    """Instrument each installed provider library; returns the instrumentor class names used."""
    ensure_rollout_processor()
    used = []
    for inst in _instrumentors():
        if inst.is_instrumented_by_opentelemetry:
            used.append(type(inst).__name__)
            continue
        conflict = inst._check_dependency_conflicts()
        if conflict is not None:
            _log.debug("lightspan: skipping %s: %s", type(inst).__name__, conflict)
            continue
        inst.instrument(**kwargs)
        used.append(type(inst).__name__)
    return used


instrument = instrument_all


def uninstrument() -> None:
    for inst in _instrumentors():
        if inst.is_instrumented_by_opentelemetry:
            inst.uninstrument()
