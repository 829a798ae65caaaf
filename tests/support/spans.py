"""A process-wide in-memory span pipeline for tests.

OpenTelemetry lets the global TracerProvider be set once per process, so every test folder should
use this one::

    from tests.support.spans import memory_exporter, finished

    def test_x():
        exporter = memory_exporter()   # sets the global SDK provider on first use, clears spans
        ...
        spans = finished(name="execute_tool add")

The provider has lightspan's ``RolloutSpanProcessor`` and a ``SimpleSpanProcessor`` into an
``InMemorySpanExporter``, so spans are visible as soon as they end.
"""

from __future__ import annotations

import threading

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_lock = threading.Lock()
_exporter: InMemorySpanExporter | None = None
_provider: TracerProvider | None = None


def memory_provider() -> TracerProvider:
    """The global SDK provider used by tests (created and installed on first call)."""
    global _exporter, _provider
    with _lock:
        if _provider is None:
            from lightspan.instrumentation.processor import ensure_rollout_processor

            current = trace.get_tracer_provider()
            provider = current if isinstance(current, TracerProvider) else TracerProvider()
            _exporter = InMemorySpanExporter()
            provider.add_span_processor(SimpleSpanProcessor(_exporter))
            ensure_rollout_processor(provider)
            if provider is not current:
                trace.set_tracer_provider(provider)
            _provider = provider
    return _provider


def memory_exporter(clear: bool = True) -> InMemorySpanExporter:
    """The shared in-memory exporter (cleared unless ``clear=False``)."""
    memory_provider()
    assert _exporter is not None
    if clear:
        _exporter.clear()
    return _exporter


def finished(name: str | None = None, prefix: str | None = None) -> list[ReadableSpan]:
    """Finished spans so far, optionally only those named ``name`` or starting with ``prefix``."""
    spans = list(memory_exporter(clear=False).get_finished_spans())
    if name is not None:
        spans = [s for s in spans if s.name == name]
    if prefix is not None:
        spans = [s for s in spans if s.name.startswith(prefix)]
    return spans
