"""The one base behind the openai, anthropic, litellm and transformers instrumentors.

Each instrumentor only says what differs: its dependency spec, its tracer scope and the methods it
patches (:class:`Target`). Tracer handling, the rollout processor and patching/unpatching on import
(:mod:`._patching`) are done once here, so the four cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from ._llm import CallSpec, make_wrapper
from ._patching import Patches, Wrapper
from .processor import ensure_rollout_processor

TracerGetter = Callable[[], trace.Tracer]
#: Builds a target's wrapper once the tracer is known (at ``instrument`` time, from its provider).
WrapperFactory = Callable[[TracerGetter], Wrapper]


def tracer_getter(provider: trace.TracerProvider | None, scope: str) -> TracerGetter:
    """A cached tracer, resolved on first use so a global provider set after instrumenting is used."""
    holder: list[trace.Tracer] = []

    def get_tracer() -> trace.Tracer:
        if not holder:
            from lightspan.instrumentation.version import __version__

            holder.append(trace.get_tracer(scope, __version__, tracer_provider=provider))
        return holder[0]

    return get_tracer


def traced(spec: CallSpec, *, is_async: bool = False) -> WrapperFactory:
    """The usual wrapper: one span per call, read per ``spec`` (see :func:`._llm.make_wrapper`)."""

    def factory(tracer: TracerGetter) -> Wrapper:
        return make_wrapper(spec, tracer, is_async=is_async)

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
        tracer = tracer_getter(provider, self._scope)
        self._patches = Patches([(t.module, t.path, t.wrapper(tracer)) for t in self._targets])
        self._patches.apply()

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._patches is not None:
            self._patches.remove()
            self._patches = None
