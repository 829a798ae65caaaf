"""Streams: the proxy that follows a streamed call to its end, and the proxy for SDK stream helpers.

:class:`StreamProxy` wraps a provider stream (sync or async). The call's span is current while the
SDK works for it (each chunk's read), so spans the SDK or the HTTP client make then are its children;
the span ends when the stream is exhausted, fails, is closed, leaves its ``with`` block, or is
garbage-collected (e.g. after ``break``).

:class:`StreamManagerProxy` wraps the manager of an SDK helper that calls the instrumented ``create``
inside its ``__enter__`` (openai ``chat.completions.stream()`` / ``responses.stream()``): the helper
closes the HTTP response itself on exit, never the stream lightspan wrapped, so the proxy ends that
stream's span when the ``with`` block exits.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

import wrapt
from opentelemetry import context

if TYPE_CHECKING:
    from ._llm import Accumulator, _Call

_log = logging.getLogger(__name__)

#: Context key holding a list while an SDK stream helper enters: streams started then register there.
HELPER_KEY = context.create_key("lightspan-stream-helper")


class StreamProxy(wrapt.ObjectProxy):
    """Wraps a provider stream; see the module docstring."""

    def __init__(self, stream: Any, call: _Call, acc: Accumulator) -> None:
        super().__init__(stream)
        self._self_call = call
        self._self_acc = acc

    def _self_end(self, exc: BaseException | None) -> None:
        call = self._self_call
        if call.ended:
            return
        attrs: dict[str, Any] = {}
        try:
            self._self_acc.finish(attrs)
        except Exception:
            _log.warning("lightspan: could not finish the stream's span", exc_info=True)
        call.end(attrs, exc)

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
            token = context.attach(self._self_call.ctx)
            try:
                chunk = self.__wrapped__.__next__()
            except StopIteration:
                self._self_end(None)
                raise
            except BaseException as exc:
                self._self_end(exc)
                raise
            finally:
                context.detach(token)
            if self._self_show(chunk):
                return chunk

    def __aiter__(self) -> StreamProxy:
        return self

    async def __anext__(self) -> Any:
        while True:
            token = context.attach(self._self_call.ctx)
            try:
                chunk = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                self._self_end(None)
                raise
            except BaseException as exc:
                self._self_end(exc)
                raise
            finally:
                context.detach(token)
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


class StreamManagerProxy(wrapt.ObjectProxy):
    """Wraps an SDK stream helper's manager; see the module docstring."""

    def __init__(self, manager: Any) -> None:
        super().__init__(manager)
        self._self_streams: list[StreamProxy] = []

    def _self_close(self, exc: BaseException | None) -> None:
        for stream in self._self_streams:
            stream._self_end(exc)

    def __enter__(self) -> Any:
        token = context.attach(context.set_value(HELPER_KEY, self._self_streams))
        try:
            return self.__wrapped__.__enter__()
        finally:
            context.detach(token)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_close(exc)

    async def __aenter__(self) -> Any:
        token = context.attach(context.set_value(HELPER_KEY, self._self_streams))
        try:
            return await self.__wrapped__.__aenter__()
        finally:
            context.detach(token)

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_close(exc)


def manager_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """wrapt wrapper for a helper method returning a stream manager (``Completions.stream`` ...)."""
    return StreamManagerProxy(wrapped(*args, **kwargs))
