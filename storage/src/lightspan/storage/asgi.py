"""What both of lightspan's HTTP servers share: uvicorn in a thread, request bodies read once, right.

The OTLP/HTTP receiver (collector) and the ClickHouse-HTTP-compatible query interface (this part) are
Starlette apps served by uvicorn, which does the HTTP framing (``Content-Length`` and
``Transfer-Encoding: chunked`` alike). This module adds what neither framework does for us:

- :func:`read_body`: the body with a byte limit checked while it streams in (413 before it is held),
  and an optional ``reserve`` hook the caller uses to admit the bytes as they arrive;
- :func:`decompress`: ``gzip`` (multi-member), ``deflate`` (zlib or raw), ``lz4`` and ``zstd``
  (every concatenated frame: clickhouse-connect compresses each ~2 MiB insert block as its own frame),
  ``br``, each with an output limit so a small bomb cannot take memory;
- :class:`ServerThread`: a uvicorn server on a pre-bound socket (port 0 works), TLS optional, started
  and stopped from any thread.

Errors are :class:`BodyError` with an HTTP status; each app renders them in its own protocol's form.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

_log = logging.getLogger(__name__)

__all__ = ["BodyError", "ServerThread", "decompress", "is_loopback", "read_body"]


class BodyError(Exception):
    """A request body that cannot be used; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _too_large(limit: int, what: str = "after decompression") -> BodyError:
    return BodyError(413, f"request body is larger than the limit of {limit} bytes {what}")


async def read_body(request: Any, limit: int, reserve: Callable[[int], None] | None = None) -> bytes:
    """The whole body of a Starlette ``request``, refusing (413) past ``limit`` wire bytes.

    ``reserve(n)`` is called for each chunk before it is kept (it may raise to refuse the request);
    with a ``Content-Length`` it is called once, for the announced size, before anything is read.
    """
    announced = request.headers.get("content-length")
    if announced is not None:
        try:
            size = int(announced)
        except ValueError:
            raise BodyError(400, f"Content-Length must be a number, got {announced!r}") from None
        if size > limit:
            raise _too_large(limit, "(Content-Length)")
        if reserve is not None:
            reserve(size)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        if not chunk:
            continue
        total += len(chunk)
        if total > limit:
            raise _too_large(limit, "on the wire")
        if reserve is not None and announced is None:
            reserve(len(chunk))
        chunks.append(chunk)
    return b"".join(chunks)


def _zlib_frames(body: bytes, wbits: int, limit: int, multi: bool) -> bytes:
    out = bytearray()
    data = body
    while data:
        d = zlib.decompressobj(wbits)
        out += d.decompress(data, limit + 1 - len(out))
        if len(out) > limit or d.unconsumed_tail:
            raise _too_large(limit)
        out += d.flush()
        if not d.eof:
            raise zlib.error("truncated stream")
        data = d.unused_data if multi else b""
        if len(out) > limit:
            raise _too_large(limit)
    return bytes(out)


def _framed(body: bytes, new: Callable[[], Any], limit: int) -> bytes:
    """Concatenated frames of a streaming decompressor with lz4.frame/zstd's API (eof, unused_data)."""
    out = bytearray()
    data = body
    while data:
        d = new()
        chunk = d.decompress(data, max_length=limit + 1 - len(out))
        out += chunk
        while not d.eof and len(out) <= limit and not d.needs_input:
            out += d.decompress(b"", max_length=limit + 1 - len(out))
        if len(out) > limit:
            raise _too_large(limit)
        if not d.eof:
            raise ValueError("truncated frame")
        data = d.unused_data
    return bytes(out)


def _lz4() -> Any:
    import lz4.frame

    return lz4.frame.LZ4FrameDecompressor()


def _zstd() -> Any:
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+
    except ImportError:
        from backports import zstd  # type: ignore[import-not-found, no-redef]
    return zstd.ZstdDecompressor()


ENCODINGS = ("gzip", "x-gzip", "deflate", "lz4", "zstd", "br")


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """``body`` decoded per its ``Content-Encoding``; 413 past ``limit`` bytes out, 400 if corrupt,
    415 for an encoding not in :data:`ENCODINGS`."""
    enc = (encoding or "").strip().lower()
    if not enc or enc == "identity":
        if len(body) > limit:
            raise _too_large(limit)
        return body
    if not body:
        return body
    try:
        if enc in ("gzip", "x-gzip"):
            return _zlib_frames(body, 31, limit, multi=True)
        if enc == "deflate":
            # RFC 9110 "deflate" is zlib-wrapped; some clients send raw deflate. The zlib header says which.
            zlib_wrapped = len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0
            return _zlib_frames(body, 15 if zlib_wrapped else -15, limit, multi=False)
        if enc == "lz4":
            return _framed(body, _lz4, limit)
        if enc == "zstd":
            return _framed(body, _zstd, limit)
        if enc == "br":
            import brotli  # type: ignore[import-not-found]  # optional, as in clickhouse-connect

            d = brotli.Decompressor()
            out = d.process(body)  # brotli's Python API has no output limit; check right after
            if len(out) > limit:
                raise _too_large(limit)
            return out
    except BodyError:
        raise
    except ImportError as exc:
        raise BodyError(
            415, f"Content-Encoding {encoding!r} needs a module that is not installed: {exc}"
        ) from None
    except Exception as exc:  # zlib.error, RuntimeError (lz4), ZstdError, brotli.error
        raise BodyError(400, f"body is not valid {enc}: {exc}") from None
    raise BodyError(415, f"unsupported Content-Encoding {encoding!r}: use one of {', '.join(ENCODINGS)}")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for wildcard and every other address."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServerThread:
    """A uvicorn server for ``app`` on ``host:port`` in a daemon thread (``port=0`` picks a free port)."""

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        name: str,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        limit_concurrency: int | None = None,
    ):
        import uvicorn

        host = host.strip("[]") or "0.0.0.0"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        self._sock = sock
        self.port: int = sock.getsockname()[1]
        self.name = name
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
            limit_concurrency=limit_concurrency,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=3,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 15.0) -> None:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        end = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > end:
                raise OSError(f"{self.name}: the HTTP server did not start (see the log above)")
            time.sleep(0.01)

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(2)
        try:
            self._sock.close()
        except OSError:  # pragma: no cover - already closed by uvicorn
            pass
