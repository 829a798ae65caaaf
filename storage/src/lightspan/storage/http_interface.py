"""A ClickHouse-HTTP-compatible query interface over an embedded chDB store.

chDB lets one process own a data directory. The process that owns it (the collector, in a long-running
setup) serves this interface on loopback so converters and trainers in other processes read and write
with an ordinary clickhouse-connect URL (``http://127.0.0.1:8123/lightspan``) -- the same code that talks
to a real ClickHouse server.

What it speaks (enough for clickhouse-connect and curl, tested with both):
``GET/POST /`` with the query in the ``query`` URL parameter and/or the body (ClickHouse concatenates
them: ``INSERT ... FORMAT Native`` in the URL, the data in the body), ``database``, ``default_format``,
``param_<name>`` server-side bind parameters, other URL parameters as ClickHouse settings;
``Content-Encoding`` gzip/deflate/br/zstd/lz4 request bodies; ``GET /ping`` -> ``Ok.``; errors as
HTTP 500 (or 400 when the SQL is malformed) with ``X-ClickHouse-Exception-Code``. Responses are sent
uncompressed (clickhouse-connect reads both). Sessions and temporary tables are not supported.
"""

from __future__ import annotations

import base64
import gzip
import hmac
import json
import logging
import re
import threading
import uuid
import zlib
from contextlib import nullcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:  # pragma: no cover
    from clickhouse_connect.driver.client import Client

_log = logging.getLogger(__name__)

# URL parameters that are protocol controls, not ClickHouse settings.
_CONTROL_PARAMS = {
    "query",
    "database",
    "default_format",
    "query_id",
    "session_id",
    "session_timeout",
    "session_check",
    "compress",
    "decompress",
    "enable_http_compression",
    "wait_end_of_query",
    "user",
    "password",
    "client_protocol_version",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
    "buffer_size",
    "quota_key",
    "http_response_buffer_size",
}
_INSERT_RE = re.compile(
    rb"^\s*(INSERT\s+INTO\s+(?P<table>[^\s(]+)\s*(?:\((?P<cols>[^)]*)\))?\s*FORMAT\s+(?P<fmt>\w+))[ \t]*(?:\r?\n)?",
    re.IGNORECASE | re.DOTALL,
)
_FORMAT_RE = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_RESULT_RE = re.compile(r"^\s*(\(?\s*SELECT|WITH|SHOW|DESC|DESCRIBE|EXISTS|EXPLAIN|CHECK)\b", re.IGNORECASE)
_CODE_RE = re.compile(r"Code:\s*(\d+)")
_SYNTAX_CODES = {"62"}  # SYNTAX_ERROR


def _decode_body(body: bytes, encoding: str | None) -> bytes:
    enc = (encoding or "").strip().lower()
    if not enc or enc == "identity" or not body:
        return body
    if enc == "gzip":
        return gzip.decompress(body)
    if enc == "deflate":
        return zlib.decompress(body)
    if enc == "br":
        import brotli  # type: ignore[import-not-found]

        return brotli.decompress(body)
    if enc == "zstd":
        from clickhouse_connect.driver.compression import _zstd_decompress

        return _zstd_decompress(body)
    if enc == "lz4":
        import lz4.frame

        return lz4.frame.decompress(body)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}: use gzip, deflate, br, zstd or lz4")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet: one debug line per request
        _log.debug("query interface: " + fmt, *args)

    # --- plumbing ---------------------------------------------------------------
    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-ClickHouse-Server-Display-Name", "lightspan-chdb")
        self.send_header("X-ClickHouse-Timezone", "UTC")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, exc: BaseException | str, status: int | None = None) -> None:
        text = str(exc)
        match = _CODE_RE.search(text)
        code = match.group(1) if match else "1000"
        if status is None:
            status = 400 if code in _SYNTAX_CODES else 500
        if not text.startswith("Code:"):
            text = f"Code: {code}. DB::Exception: {text}"
        self._send(status, (text.rstrip() + "\n").encode(), {"X-ClickHouse-Exception-Code": code})

    def _authorized(self, params: dict[str, str]) -> bool:
        expected = self.server.password
        if not expected:
            return True
        given = self.headers.get("X-ClickHouse-Key") or params.get("password")
        auth = self.headers.get("Authorization", "")
        if not given and auth.lower().startswith("basic "):
            try:
                given = base64.b64decode(auth[6:]).decode().split(":", 1)[1]
            except Exception:  # noqa: BLE001 - a malformed header is just unauthorized
                given = None
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return bool(given) and hmac.compare_digest(given.encode(), expected.encode())

    # --- verbs ----------------------------------------------------------------------
    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if path in ("/ping", "/") and "query=" not in self.path:
            self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        self._handle(b"")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(length) if length else b""
        self._handle(body)

    def _read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return bytes(out)
            out += self.rfile.read(size)
            self.rfile.readline()

    # --- the query -----------------------------------------------------------------
    def _handle(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        if parts.path not in ("/", ""):
            self._error(f"There is no handle {parts.path}", status=404)
            return
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if not self._authorized(params):
            self._error(
                "Code: 516. DB::Exception: Authentication failed. (AUTHENTICATION_FAILED)", status=401
            )
            return
        try:
            body = _decode_body(body, self.headers.get("Content-Encoding"))
        except Exception as exc:  # noqa: BLE001 - reported to the client
            self._error(f"Code: 1001. DB::Exception: cannot decode request body: {exc}", status=400)
            return
        url_query = params.get("query", "").encode()
        sql = url_query + (b"\n" if url_query and body else b"") + body
        if not sql.strip():
            self._error("Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)", status=400)
            return
        bind = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        settings = {
            k: v for k, v in params.items() if k not in _CONTROL_PARAMS and not k.startswith("param_")
        }
        database = params.get("database") or self.server.database
        query_id = params.get("query_id") or str(uuid.uuid4())
        try:
            headers = {"X-ClickHouse-Query-Id": query_id}
            insert = _INSERT_RE.match(sql)
            if insert and sql[insert.end() :]:
                result = self.server.run_insert(insert, sql[insert.end() :], database, settings)
                headers["X-ClickHouse-Summary"] = json.dumps(
                    {"written_rows": "0", "written_bytes": str(len(body))}
                )
                self._send(200, result, headers)
                return
            text = sql.decode("utf-8")
            fmt_match = _FORMAT_RE.search(text)
            fmt = fmt_match.group(1) if fmt_match else params.get("default_format") or "TabSeparated"
            returns_rows = bool(fmt_match) or bool(_RESULT_RE.match(text))
            # Only a result-producing statement without its own FORMAT clause gets the default format.
            append = fmt if returns_rows and not fmt_match else None
            result = self.server.run_query(text, append, bind, database, settings)
            if result or returns_rows:
                headers["X-ClickHouse-Format"] = fmt
                headers["Content-Type"] = (
                    "text/plain; charset=UTF-8" if fmt.startswith("Tab") else "application/octet-stream"
                )
            self._send(200, result, headers)
        except UnicodeDecodeError as exc:
            self._error(
                f"Code: 62. DB::Exception: query is not valid UTF-8: {exc}. (SYNTAX_ERROR)", status=400
            )
        except Exception as exc:  # noqa: BLE001 - every engine error goes back to the client
            _log.debug("query failed: %s", exc)
            self._error(exc)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], client: Client, lock: Any, database: str, password: str | None):
        super().__init__(addr, _Handler)
        self.client = client
        self.lock = lock
        self.database = database
        self.password = password

    def run_query(
        self, sql: str, fmt: str | None, bind: dict[str, str], database: str, settings: dict[str, str]
    ) -> bytes:
        with self.lock:
            self._use(database)
            return self.client.raw_query(sql, parameters=bind or None, settings=settings or None, fmt=fmt)

    def run_insert(
        self, match: re.Match[bytes], data: bytes, database: str, settings: dict[str, str]
    ) -> bytes:
        table = match.group("table").decode()
        cols_raw = match.group("cols")
        cols = [c.strip().strip('`"') for c in cols_raw.decode().split(",")] if cols_raw else None
        with self.lock:
            self._use(database)
            self.client.raw_insert(
                table, cols, data, settings=settings or None, fmt=match.group("fmt").decode()
            )
        return b""

    def _use(self, database: str) -> None:
        if database and getattr(self.client, "database", None) != database:
            self.client.database = database


class ClickHouseHTTPInterface:
    """Serve ClickHouse's HTTP query interface for ``client`` (an embedded chDB client) on ``host:port``.

    ``lock`` serialises engine calls with the owner's own use of the client (the owner passes the lock it
    holds around its inserts); ``password``, when set, is required as the ClickHouse password
    (``X-ClickHouse-Key``, basic auth or ``Authorization: Bearer``). Bind to loopback unless you add TLS
    in front: the interface runs any SQL the caller sends.
    """

    def __init__(
        self,
        client: Client,
        host: str = "127.0.0.1",
        port: int = 8123,
        *,
        lock: threading.Lock | threading.RLock | None = None,
        database: str | None = None,
        password: str | None = None,
    ) -> None:
        self._client = client
        self._host = host
        self._port = port
        self._lock = lock if lock is not None else nullcontext()
        self._database = database or getattr(client, "database", None) or "default"
        self._password = password
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when constructed with ``port=0``)."""
        return self._server.server_address[1] if self._server else self._port

    @property
    def url(self) -> str:
        """A clickhouse-connect DSN for readers: ``http://host:port/database``."""
        host = "127.0.0.1" if self._host in ("0.0.0.0", "") else self._host
        return f"http://{host}:{self.port}/{self._database}"

    def start(self) -> ClickHouseHTTPInterface:
        if self._server is not None:
            return self
        self._server = _Server(
            (self._host, self._port), self._client, self._lock, self._database, self._password
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name="lightspan-query-http",
            kwargs={"poll_interval": 0.2},
            daemon=True,
        )
        self._thread.start()
        _log.info("ClickHouse HTTP interface on %s", self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ClickHouseHTTPInterface:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
