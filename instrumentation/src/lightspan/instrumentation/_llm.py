"""The one engine behind every LLM instrumentor: span lifecycle, suppression, metrics, results.

A provider module supplies a :class:`CallSpec` (how to read a request, a response and stream
chunks); :func:`make_wrapper` turns it into a wrapt wrapper for the sync or the async method.
Telemetry failures are logged and swallowed; the app's own exceptions are re-raised unchanged.

Suppression: while an instrumented LLM call runs, the Context carries :data:`LLM_CALL_KEY`; an
instrumented call started inside it (litellm calling the openai SDK) records no span at all, so one
logical call is one span (the outermost, the framework's, which sees the caller's arguments).

What a call returns decides when its span ends (:meth:`_Call.finish`): a parsed response ends it now;
a stream (:class:`._streams.StreamProxy`) when it is consumed or closed; a raw response
(``with_raw_response`` / ``with_streaming_response``, :mod:`._raw`) now when its body is read, else
when the caller parses it; a coroutine (litellm's ``responses(..., aresponses=True)``) when awaited.
Every end records the GenAI client metrics (:mod:`._metrics`).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from lightspan.schemas import attributes as A

from ._content import add_content
from ._metrics import MetricsGetter
from ._raw import finish_raw, is_raw_response
from ._streams import HELPER_KEY, StreamProxy

_log = logging.getLogger(__name__)

#: Context key set while an instrumented LLM call is in progress.
LLM_CALL_KEY = context.create_key("lightspan-llm-call")


@dataclass
class Request:
    """What a provider reads from the call's arguments."""

    model: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    content: dict[str, Any] = field(default_factory=dict)  # attribute key -> JSON-able value
    kwargs: dict[str, Any] | None = None  # replacement kwargs (e.g. stream usage requested)
    hide_usage_chunk: bool = False  # we asked for the usage chunk: don't show it to the caller
    state: dict[str, Any] = field(default_factory=dict)  # for the response side (spec.pass_request)


class Accumulator:
    """Collects a stream's chunks; ``add`` returns whether the caller should see the chunk."""

    def add(self, chunk: Any) -> bool:
        return True

    def finish(self, attrs: dict[str, Any]) -> None:
        """Put the response attributes rebuilt from the chunks into ``attrs``."""
        return None


@dataclass(frozen=True)
class CallSpec:
    provider: str
    operation: str
    request: Callable[[Any, tuple[Any, ...], dict[str, Any]], Request]  # (instance, args, kwargs)
    response: Callable[[dict[str, Any], Any], None]  # (attrs to set, response) -> None
    accumulator: Callable[[Request], Accumulator] | None = None
    span_name: str = A.SPAN_CHAT
    pass_request: bool = False  # call ``response(attrs, result, request)``


@dataclass(frozen=True)
class Telemetry:
    """Where a wrapper's spans and metrics go, resolved on first use (so providers set after
    instrumenting are used)."""

    tracer: Callable[[], trace.Tracer]
    metrics: MetricsGetter


def is_suppressed() -> bool:
    """Inside another instrumented LLM call, or instrumentation suppressed (e.g. inside an exporter)."""
    ctx = context.get_current()
    return bool(ctx.get(LLM_CALL_KEY) or ctx.get(_SUPPRESS_INSTRUMENTATION_KEY))


def fail_span(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    span.set_attribute(A.ERROR_TYPE, type(exc).__qualname__)
    span.end()


def _is_stream(result: Any) -> bool:
    return hasattr(result, "__next__") or hasattr(result, "__anext__")


class _Call:
    """One logical LLM call: its span, the Context that makes the span current, and its end."""

    __slots__ = ("spec", "span", "request", "kwargs", "ctx", "start", "start_attrs", "metrics", "ended")

    def __init__(
        self,
        spec: CallSpec,
        span: Span,
        request: Request,
        kwargs: dict[str, Any],
        start_attrs: dict[str, Any],
        metrics: MetricsGetter,
    ) -> None:
        self.spec, self.span, self.request, self.kwargs = spec, span, request, kwargs
        self.ctx = context.set_value(LLM_CALL_KEY, True, trace.set_span_in_context(span))
        self.start = time.perf_counter()
        self.start_attrs = start_attrs
        self.metrics = metrics
        self.ended = False

    def activate(self) -> object:
        """Make the span current (and mark an LLM call in progress); returns the detach token."""
        return context.attach(self.ctx)

    def end(self, attrs: dict[str, Any], exc: BaseException | None = None) -> None:
        """Set the response attributes, end the span (failed if ``exc``), record the metrics; once."""
        if self.ended:
            return
        self.ended = True
        seconds = time.perf_counter() - self.start
        if attrs:
            self.span.set_attributes(attrs)
        if exc is not None:
            fail_span(self.span, exc)
        else:
            self.span.end()
        meters = self.metrics()
        if meters is not None:
            meters.record(seconds, self.start_attrs, attrs, None if exc is None else type(exc).__qualname__)

    def record(self, result: Any) -> None:
        """End with the attributes read from a whole (non-streamed) response."""
        attrs: dict[str, Any] = {}
        try:
            if self.spec.pass_request:
                self.spec.response(attrs, result, self.request)  # type: ignore[call-arg]
            else:
                self.spec.response(attrs, result)
        except Exception:
            _log.warning("lightspan: could not read the %s response", self.spec.provider, exc_info=True)
        self.end(attrs)

    def stream(self, result: Any) -> Any:
        """Wrap a stream so the span ends with it; ``result`` itself if that is not possible."""
        assert self.spec.accumulator is not None
        try:
            proxy = StreamProxy(result, self, self.spec.accumulator(self.request))
            self.span.set_attributes({A.LLM_STREAMING: True, A.GEN_AI_REQUEST_STREAM: True})
        except Exception:
            _log.warning("lightspan: stream accumulator failed; span ends now", exc_info=True)
            self.end({})
            return result
        holder = context.get_value(HELPER_KEY)
        if isinstance(holder, list):  # inside an SDK stream helper's ``with``: it ends the stream on exit
            holder.append(proxy)
        return proxy

    def finish_parsed(self, result: Any) -> Any:
        """A parsed result: a stream to follow, or a whole response to record now."""
        if self.spec.accumulator is not None and _is_stream(result):
            return self.stream(result)
        self.record(result)
        return result

    def finish(self, result: Any, streaming: bool) -> Any:
        if is_raw_response(result):
            return finish_raw(self, result, streaming)
        if inspect.iscoroutine(result):
            return self._await(result)
        if streaming and self.spec.accumulator is not None and _is_stream(result):
            return self.stream(result)
        self.record(result)
        return result

    async def _await(self, coro: Any) -> Any:
        try:
            result = await coro
        except BaseException as exc:
            self.end({}, exc)
            raise
        return self.finish(result, bool(self.kwargs.get("stream")))


def begin(telemetry: Telemetry, spec: CallSpec, instance: Any, args: tuple, kwargs: dict) -> _Call | None:
    """Start the span; ``None`` when suppressed or when reading the request failed."""
    if is_suppressed():
        return None
    try:
        request = spec.request(instance, args, kwargs)
        attrs = {
            A.GEN_AI_OPERATION_NAME: spec.operation,
            A.GEN_AI_PROVIDER_NAME: spec.provider,
            **request.attributes,
        }
        if request.model:
            attrs[A.GEN_AI_REQUEST_MODEL] = request.model
        start_attrs = dict(attrs)  # the metrics' request attributes, without the content
        for key, value in request.content.items():
            add_content(attrs, key, value)
        name = spec.span_name.format(model=request.model or "unknown")
        span = telemetry.tracer().start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
        call_kwargs = request.kwargs if request.kwargs is not None else kwargs
        return _Call(spec, span, request, call_kwargs, start_attrs, telemetry.metrics)
    except Exception:
        _log.warning("lightspan: could not start the %s span; calling through", spec.provider, exc_info=True)
        return None


def make_wrapper(spec: CallSpec, telemetry: Telemetry, is_async: bool) -> Callable[..., Any]:
    """A wrapt wrapper recording ``spec``'s calls; sync and async share :func:`begin`/:class:`_Call`."""

    if is_async:

        async def async_wrapper(wrapped, instance, args, kwargs):
            call = begin(telemetry, spec, instance, args, kwargs)
            if call is None:
                return await wrapped(*args, **kwargs)
            token = call.activate()
            try:
                result = await wrapped(*args, **call.kwargs)
            except BaseException as exc:
                call.end({}, exc)
                raise
            finally:
                context.detach(token)
            return call.finish(result, bool(call.kwargs.get("stream")))

        return async_wrapper

    def sync_wrapper(wrapped, instance, args, kwargs):
        call = begin(telemetry, spec, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = call.activate()
        try:
            result = wrapped(*args, **call.kwargs)
        except BaseException as exc:
            call.end({}, exc)
            raise
        finally:
            context.detach(token)
        return call.finish(result, bool(call.kwargs.get("stream")))

    return sync_wrapper
