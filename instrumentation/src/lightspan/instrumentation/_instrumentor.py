"""The one base behind the openai, anthropic, litellm and transformers instrumentors.

Each instrumentor only says what differs: its dependency spec, its tracer scope and the methods it
patches (:class:`Target`). Tracer and meter handling (``tracer_provider=`` / ``meter_provider=``, else
the global ones), the rollout processor and patching/unpatching on import (:mod:`._patching`) are done
once here, so the four cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from ._llm import CallSpec, Telemetry, make_wrapper
from ._metrics import metrics_getter
from ._patching import Patches, Wrapper
from .processor import ensure_rollout_processor

TracerGetter = Callable[[], trace.Tracer]
#: Builds a target's wrapper once the providers are known (at ``instrument`` time).
WrapperFactory = Callable[[Telemetry], Wrapper]


def tracer_getter(provider: trace.TracerProvider | None, scope: str) -> TracerGetter:
    """A cached tracer, resolved on first use so a global provider set after instrumenting is used."""
    holder: list[trace.Tracer] = []

    def get_tracer() -> trace.Tracer:
        if not holder:
            from lightspan.instrumentation.version import __version__

            holder.append(trace.get_tracer(scope, __version__, tracer_provider=provider))
        return holder[0]

    return get_tracer


def telemetry_for(
    tracer_provider: trace.TracerProvider | None, meter_provider: metrics.MeterProvider | None, scope: str
) -> Telemetry:
    """The tracer and GenAI metrics of one instrumentor scope (``None`` providers: the global ones)."""
    return Telemetry(tracer_getter(tracer_provider, scope), metrics_getter(meter_provider, scope))


def traced(spec: CallSpec, *, is_async: bool = False) -> WrapperFactory:
    """The usual wrapper: one span per call, read per ``spec`` (see :func:`._llm.make_wrapper`)."""

    def factory(telemetry: Telemetry) -> Wrapper:
        return make_wrapper(spec, telemetry, is_async=is_async)

    return factory


def plain(wrapper: Wrapper) -> WrapperFactory:
    """A wrapper that needs no telemetry of its own (e.g. a stream helper's manager proxy)."""

    def factory(telemetry: Telemetry) -> Wrapper:
        return wrapper

    return factory


@dataclass(frozen=True)
class Target:
    """``path`` (``"Class.method"`` or ``"function"``) in ``module``, wrapped by ``wrapper(tracer)``.

    Named by module so the library is patched on its first import, never imported by instrumenting.
    """

    module: str
    path: str
    wrapper: WrapperFactory


class LLMInstrumentor(BaseInstrumentor):
    """Patches ``_targets`` when their modules are imported; ``uninstrument`` restores the originals.

    Subclasses declare ``_instruments`` (pip requirement specs checked by ``instrument``), ``_scope``
    (the tracer's instrumentation scope) and ``_targets``.
    """

    _instruments: ClassVar[Collection[str]]
    _scope: ClassVar[str]
    _targets: ClassVar[Sequence[Target]]
    _patches: Patches | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return self._instruments

    def _instrument(self, **kwargs: Any) -> None:
        provider = kwargs.get("tracer_provider")
        ensure_rollout_processor(provider)
        telemetry = telemetry_for(provider, kwargs.get("meter_provider"), self._scope)
        self._patches = Patches([(t.module, t.path, t.wrapper(telemetry)) for t in self._targets])
        self._patches.apply()
        self._on_instrument()

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._patches is not None:
            self._patches.remove()
            self._patches = None
        self._on_uninstrument()

    def _on_instrument(self) -> None:
        """Hook for an instrumentor's own set-up (anthropic: its native telemetry switch)."""

    def _on_uninstrument(self) -> None:
        """Undo :meth:`_on_instrument`."""
