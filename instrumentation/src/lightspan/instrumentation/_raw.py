"""Raw responses of the Stainless-generated SDKs (openai, anthropic): ``with_raw_response`` and
``with_streaming_response``.

There ``create`` returns an ``APIResponse`` (headers, status, ``parse()``) instead of the parsed
result. Many frameworks use it to read headers (LangChain's ``ChatOpenAI``). The call is still one
logical LLM call with the full contract:

- body already read (``with_raw_response``, not streamed): the span is completed now from the JSON body,
  so a caller that only reads headers still gets usage, ids, finish reasons and output; the caller's own
  ``parse()`` is untouched (no second parse, no post-parser run by lightspan);
- body not read yet (a streamed call, or ``with_streaming_response``): the response is returned behind a
  proxy whose ``parse()`` (sync or async) hands back the parsed result, a stream wrapped so that the span
  follows it, or a whole response recorded at once. ``close()`` or garbage collection end the span
  if the caller never parses.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

import wrapt

from ._streams import StreamProxy

if TYPE_CHECKING:
    from ._llm import _Call

_log = logging.getLogger(__name__)


_RAW_TYPES: dict[type, bool] = {}


def _is_raw_type(kind: type) -> bool:
    annotated = any("http_response" in vars(c).get("__annotations__", {}) for c in kind.__mro__)
    return annotated and callable(getattr(kind, "parse", None))


def is_raw_response(result: Any) -> bool:
    """An SDK raw response: its class declares the HTTP response and has ``parse`` (openai and anthropic
    alike). Decided once per class: this runs on every call's result."""
    kind = type(result)
    known = _RAW_TYPES.get(kind)
    if known is None:
        known = _RAW_TYPES[kind] = _is_raw_type(kind)
    return known


def _json_body(http: Any) -> Any:
    media = str(http.headers.get("content-type", "")).split(";")[0].strip().lower()
    if media != "application/json":
        return None
    return http.json()


def finish_raw(call: _Call, raw: Any, streaming: bool) -> Any:
    """Complete the span from a read body now, or return ``raw`` behind a :class:`RawResponseProxy`."""
    try:
        http = raw.http_response
        if not streaming and http.is_closed:
            call.record(_json_body(http))
            return raw
        return RawResponseProxy(raw, call)
    except Exception:
        _log.warning("lightspan: could not read the raw %s response", call.spec.provider, exc_info=True)
        call.end({})
        return raw


class RawResponseProxy(wrapt.ObjectProxy):
    """A raw response whose body lightspan has not read; see the module docstring."""

    def __init__(self, raw: Any, call: _Call) -> None:
        super().__init__(raw)
        self._self_call = call
        self._self_parsed: tuple[Any, Any] | None = None  # (what the SDK parsed, what the caller got)

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        out = self.__wrapped__.parse(*args, **kwargs)
        if inspect.isawaitable(out):
            return self._self_aparse(out)
        return self._self_take(out)

    async def _self_aparse(self, awaitable: Any) -> Any:
        return self._self_take(await awaitable)

    def _self_take(self, parsed: Any) -> Any:
        seen = self._self_parsed
        if seen is not None:  # the SDK caches parse(): hand back the same wrapped object
            return seen[1] if seen[0] is parsed else parsed
        try:
            out = self._self_call.finish_parsed(parsed)
        except Exception:
            _log.warning("lightspan: could not read the parsed raw response", exc_info=True)
            out = parsed
        self._self_parsed = (parsed, out)
        return out

    def _self_end(self) -> None:
        seen = self._self_parsed
        if seen is not None and isinstance(seen[1], StreamProxy):
            seen[1]._self_end(None)
        else:
            self._self_call.end({})

    def close(self) -> Any:
        result = self.__wrapped__.close()
        if inspect.isawaitable(result):
            return self._self_aclose(result)
        self._self_end()
        return result

    async def _self_aclose(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        finally:
            self._self_end()

    def __del__(self) -> None:
        # A stream handed out by parse() outlives this response (``create(...).parse()`` drops it at once)
        # and ends its span itself; otherwise the caller never parsed and the span ends now.
        if self._self_parsed is None:
            self._self_call.end({})
