"""``@tool``: record a function the agent calls as an ``execute_tool {name}`` span.

Arguments and result are recorded as content (subject to ``LIGHTSPAN_CAPTURE_CONTENT``, the size
limit and the redaction hook); an exception marks the span error and is re-raised unchanged.
The call id is the one the LLM gave, when the caller sets it with :func:`tool_call_id`, otherwise a
fresh ``call_<hex>``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, overload

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from lightspan.schemas import attributes as A

from ._content import add_content, set_content
from .rollout import get_tracer

_log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

_CALL_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("lightspan_tool_call_id", default=None)


@contextlib.contextmanager
def tool_call_id(call_id: str) -> Iterator[None]:
    """Use the LLM's tool call id for ``@tool`` calls made inside (links the tool span to the call)."""
    token = _CALL_ID.set(call_id)
    try:
        yield
    finally:
        _CALL_ID.reset(token)


def _description(func: Callable[..., Any]) -> str | None:
    doc = inspect.getdoc(func)
    return doc.split("\n\n", 1)[0].strip() or None if doc else None


class _ToolSpan:
    """Shared body of the sync and async wrappers: start, arguments, result, failure."""

    __slots__ = ("name", "description", "signature", "skip_first", "positional")

    def __init__(self, func: Callable[..., Any], name: str, description: str | None) -> None:
        self.name = name
        self.description = description
        try:
            self.signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):
            self.signature = None
        params = list(self.signature.parameters) if self.signature else []
        self.skip_first = bool(params) and params[0] in ("self", "cls")
        # Fast path (no Signature.bind) when every parameter is plain positional-or-keyword.
        simple = self.signature is not None and all(
            p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in self.signature.parameters.values()
        )
        self.positional: tuple[str, ...] | None = tuple(params) if simple else None

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Span:
        attrs: dict[str, Any] = {
            A.GEN_AI_OPERATION_NAME: A.OP_EXECUTE_TOOL,
            A.GEN_AI_TOOL_NAME: self.name,
            A.GEN_AI_TOOL_TYPE: "function",
            A.GEN_AI_TOOL_CALL_ID: _CALL_ID.get() or f"call_{random.getrandbits(96):024x}",
        }
        if self.description:
            attrs[A.GEN_AI_TOOL_DESCRIPTION] = self.description
        try:
            add_content(attrs, A.GEN_AI_TOOL_CALL_ARGUMENTS, self._arguments(args, kwargs))
        except Exception:  # never break the tool for telemetry
            _log.debug("lightspan: could not read arguments of tool %s", self.name, exc_info=True)
        return get_tracer().start_span(
            A.SPAN_EXECUTE_TOOL.format(name=self.name), kind=SpanKind.INTERNAL, attributes=attrs
        )

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        names = self.positional
        if names is not None and len(args) <= len(names):
            arguments = dict(zip(names, args, strict=False))  # defaults not filled in: what the caller passed
            arguments.update(kwargs)
            if self.skip_first:
                arguments.pop(names[0], None)
            return arguments
        if self.signature is None:
            return {"args": list(args), "kwargs": kwargs}
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError:
            return {"args": list(args), "kwargs": kwargs}
        arguments = dict(bound.arguments)
        if self.skip_first:
            arguments.pop(next(iter(self.signature.parameters)), None)
        return arguments

    @staticmethod
    def fail(span: Span, exc: BaseException) -> None:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.set_attribute(A.ERROR_TYPE, type(exc).__qualname__)
        span.end()

    @staticmethod
    def succeed(span: Span, result: Any) -> None:
        set_content(span, A.GEN_AI_TOOL_CALL_RESULT, result)
        span.end()


@overload
def tool(func: F, *, name: str | None = None, description: str | None = None) -> F: ...
@overload
def tool(
    func: None = None, *, name: str | None = None, description: str | None = None
) -> Callable[[F], F]: ...


def tool(func=None, *, name=None, description=None):
    """Decorate a sync or async function as a tool (``@tool`` or ``@tool(name=..., description=...)``).

    The wrapper keeps the function's signature, ``__name__`` and ``__doc__`` and exposes
    ``.tool_name`` and ``.tool_description`` (default: the docstring's first paragraph).
    """
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"tool name must be a non-empty string, got {name!r}.")

    def decorate(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"@tool needs a function, got {type(fn).__name__}: {fn!r}.")
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(
                f"@tool does not support generator functions ({fn.__qualname__}); return a value."
            )
        tool_name = name or getattr(fn, "__name__", None) or type(fn).__name__
        recorder = _ToolSpan(fn, tool_name, description if description is not None else _description(fn))

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                span = recorder.start(args, kwargs)
                with trace.use_span(
                    span, end_on_exit=False, record_exception=False, set_status_on_exception=False
                ):
                    try:
                        result = await fn(*args, **kwargs)
                    except BaseException as exc:
                        recorder.fail(span, exc)
                        raise
                recorder.succeed(span, result)
                return result

            wrapper: Any = async_wrapper
        else:

            @functools.wraps(fn)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                span = recorder.start(args, kwargs)
                with trace.use_span(
                    span, end_on_exit=False, record_exception=False, set_status_on_exception=False
                ):
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as exc:
                        recorder.fail(span, exc)
                        raise
                recorder.succeed(span, result)
                return result

            wrapper = sync_wrapper
        wrapper.tool_name = tool_name
        wrapper.tool_description = recorder.description
        return wrapper  # type: ignore[return-value]

    if func is not None:
        return decorate(func)
    return decorate
