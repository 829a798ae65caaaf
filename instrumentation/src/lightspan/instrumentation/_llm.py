"""The one engine behind every LLM instrumentor: span lifecycle, suppression, streams.

A provider module supplies a :class:`CallSpec` (how to read a request, a response and stream
chunks); :func:`make_wrapper` turns it into a wrapt wrapper for the sync or the async method.
Telemetry failures are logged and swallowed; the app's own exceptions are re-raised unchanged.

Suppression: while an instrumented LLM call runs, the Context carries :data:`LLM_CALL_KEY`; an
instrumented call started inside it (litellm calling the openai SDK) records no span at all, so one
logical call is one span (the outermost, the framework's, which sees the caller's arguments).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import wrapt
from opentelemetry import context, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from lightspan.schemas import attributes as A

from ._content import add_content

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


def is_suppressed() -> bool:
    """Inside another instrumented LLM call, or instrumentation suppressed (e.g. inside an exporter)."""
    ctx = context.get_current()
    return bool(ctx.get(LLM_CALL_KEY) or ctx.get(_SUPPRESS_INSTRUMENTATION_KEY))


def fail_span(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    span.set_attribute(A.ERROR_TYPE, type(exc).__qualname__)
    span.end()


class _Call:
    __slots__ = ("spec", "span", "request", "kwargs")

    def __init__(self, spec: CallSpec, span: Span, request: Request, kwargs: dict[str, Any]) -> None:
        self.spec, self.span, self.request, self.kwargs = spec, span, request, kwargs

    def activate(self) -> object:
        ctx = trace.set_span_in_context(self.span)
        return context.attach(context.set_value(LLM_CALL_KEY, True, ctx))

    def finish(self, result: Any, streaming: bool) -> Any:
        if (
            streaming
            and self.spec.accumulator is not None
            and (hasattr(result, "__next__") or hasattr(result, "__anext__"))
        ):
            try:
                acc = self.spec.accumulator(self.request)
                self.span.set_attribute(A.LLM_STREAMING, True)
                return StreamProxy(result, self.span, acc)
            except Exception:
                _log.warning("lightspan: stream accumulator failed; span ends now", exc_info=True)
        attrs: dict[str, Any] = {}
        try:
            if self.spec.pass_request:
                self.spec.response(attrs, result, self.request)  # type: ignore[call-arg]
            else:
                self.spec.response(attrs, result)
        except Exception:
            _log.warning("lightspan: could not read the %s response", self.spec.provider, exc_info=True)
        if attrs:
            self.span.set_attributes(attrs)
        self.span.end()
        return result


def _begin(
    tracer_getter: Callable[[], trace.Tracer], spec: CallSpec, instance: Any, args: tuple, kwargs: dict
) -> _Call | None:
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
        for key, value in request.content.items():
            add_content(attrs, key, value)
        name = spec.span_name.format(model=request.model or "unknown")
        span = tracer_getter().start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
        return _Call(spec, span, request, request.kwargs if request.kwargs is not None else kwargs)
    except Exception:
        _log.warning("lightspan: could not start the %s span; calling through", spec.provider, exc_info=True)
        return None


def make_wrapper(
    spec: CallSpec, tracer_getter: Callable[[], trace.Tracer], is_async: bool
) -> Callable[..., Any]:
    """A wrapt wrapper recording ``spec``'s calls; sync and async share ``_begin``/``_Call``."""

    if is_async:

        async def async_wrapper(wrapped, instance, args, kwargs):
            call = _begin(tracer_getter, spec, instance, args, kwargs)
            if call is None:
                return await wrapped(*args, **kwargs)
            token = call.activate()
            try:
                result = await wrapped(*args, **call.kwargs)
            except BaseException as exc:
                fail_span(call.span, exc)
                raise
            finally:
                context.detach(token)
            return call.finish(result, bool(call.kwargs.get("stream")))

        return async_wrapper

    def sync_wrapper(wrapped, instance, args, kwargs):
        call = _begin(tracer_getter, spec, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = call.activate()
        try:
            result = wrapped(*args, **call.kwargs)
        except BaseException as exc:
            fail_span(call.span, exc)
            raise
        finally:
            context.detach(token)
        return call.finish(result, bool(call.kwargs.get("stream")))

    return sync_wrapper


class StreamProxy(wrapt.ObjectProxy):
    """Wraps a provider stream (sync or async); the span ends when the stream is exhausted,
    fails, is closed, exits its ``with`` block, or is garbage-collected (e.g. after ``break``)."""

    def __init__(self, stream: Any, span: Span, acc: Accumulator) -> None:
        super().__init__(stream)
        self._self_span = span
        self._self_acc = acc
        self._self_ended = False

    def _self_end(self, exc: BaseException | None) -> None:
        if self._self_ended:
            return
        self._self_ended = True
        attrs: dict[str, Any] = {}
        try:
            self._self_acc.finish(attrs)
        except Exception:
            _log.warning("lightspan: could not finish the stream's span", exc_info=True)
        if attrs:
            self._self_span.set_attributes(attrs)
        if exc is not None:
            fail_span(self._self_span, exc)
        else:
            self._self_span.end()

    def _self_show(self, chunk: Any) -> bool:
        try:
            return self._self_acc.add(chunk)
        except Exception:
            _log.debug("lightspan: could not read a stream chunk", exc_info=True)
            return True

    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        while True:
            try:
                chunk = self.__wrapped__.__next__()
            except StopIteration:
                self._self_end(None)
                raise
            except BaseException as exc:
                self._self_end(exc)
                raise
            if self._self_show(chunk):
                return chunk

    def __aiter__(self) -> StreamProxy:
        return self

    async def __anext__(self) -> Any:
        while True:
            try:
                chunk = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                self._self_end(None)
                raise
            except BaseException as exc:
                self._self_end(exc)
                raise
            if self._self_show(chunk):
                return chunk

    def __enter__(self) -> StreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_end(None)

    async def __aenter__(self) -> StreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_end(None)

    def close(self) -> Any:
        result = self.__wrapped__.close()
        if inspect.isawaitable(result):
            return self._self_aclose(result)
        self._self_end(None)
        return result

    async def _self_aclose(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        finally:
            self._self_end(None)

    def __del__(self) -> None:
        self._self_end(None)
