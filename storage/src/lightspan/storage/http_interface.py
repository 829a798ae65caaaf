"""A ClickHouse-HTTP-compatible query interface over an embedded chDB store.

chDB lets one process own a data directory. The process that owns it (the collector, in a long-running
setup) serves this interface on loopback so converters and trainers in other processes read and write
with an ordinary clickhouse-connect URL (``http://127.0.0.1:8123/lightspan``) -- the same code that talks
to a real ClickHouse server.

What it speaks (enough for clickhouse-connect and curl, tested with both):
``GET/POST /`` with the query in the ``query`` URL parameter and/or the body (ClickHouse concatenates
them: ``INSERT ... FORMAT Native`` in the URL, the data in the body), ``database``, ``default_format``,
``param_<name>`` server-side bind parameters, other URL parameters as ClickHouse settings;
``Content-Encoding`` gzip/deflate/br/zstd/lz4 request bodies (every frame of a multi-frame body:
clickhouse-connect sends one LZ4 frame per ~2 MiB insert block), ``Content-Length`` or chunked;
``GET /ping`` -> ``Ok.``; errors as HTTP 500 (or 400 when the SQL is malformed, 413 past the body limits)
with ``X-ClickHouse-Exception-Code``. Responses are sent uncompressed (clickhouse-connect reads both).
Sessions and temporary tables are not supported. Served by uvicorn + Starlette (:mod:`.asgi`, shared with
the OTLP/HTTP receiver).

Read-only by default where it is reachable from other machines: bound beyond loopback, every query runs
with ``readonly=2`` and inserts are refused, unless ``readonly=False`` is given.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import threading
import uuid
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from .asgi import BodyError, ServerThread, decompress, is_loopback, read_body

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
_READ_RE = re.compile(
    rb"^(?:\s+|--[^\n]*\n|/\*.*?\*/|\()*(SELECT|WITH|SHOW|DESC|DESCRIBE|EXISTS|EXPLAIN)\b", re.I | re.S
)
_OUTFILE_RE = re.compile(rb"\bINTO\s+OUTFILE\b", re.I)
_CODE_RE = re.compile(r"Code:\s*(\d+)")
_SYNTAX_CODES = {"62"}  # SYNTAX_ERROR


def _clickhouse_error(
    exc: BaseException | str, status: int | None = None
) -> tuple[int, bytes, dict[str, str]]:
    text = str(exc)
    match = _CODE_RE.search(text)
    code = match.group(1) if match else "1000"
    if status is None:
        status = 400 if code in _SYNTAX_CODES else 500
    if not text.startswith("Code:"):
        text = f"Code: {code}. DB::Exception: {text}"
    return status, (text.rstrip() + "\n").encode(), {"X-ClickHouse-Exception-Code": code}


_TOKENS_RE = re.compile(rb"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|--[^\n]*|/\*.*?\*/|;", re.S)


def _statements(sql: bytes) -> int:
    """How many statements ``sql`` holds: ``;`` outside quotes and comments, a trailing one not counted."""
    cuts = [m.start() for m in _TOKENS_RE.finditer(sql) if m.group() == b";"]
    return 1 + sum(1 for at in cuts if sql[at + 1 :].strip(b" \t\r\n;"))


def _is_read(sql: bytes) -> bool:
    """One statement that cannot change data or schema (and writes no file on this host)."""
    return bool(_READ_RE.match(sql)) and not _OUTFILE_RE.search(sql) and _statements(sql) == 1


class _Engine:
    """The chDB client behind the lock, and what one HTTP query does with it (runs in a worker thread)."""

    def __init__(self, client: Client, lock: Any, database: str, password: str | None, readonly: bool):
        self.client = client
        self.lock = lock
        self.database = database
        self.password = password
        self.readonly = readonly

    def authorized(self, headers: Any, params: dict[str, str]) -> bool:
        expected = self.password
        if not expected:
            return True
        given = headers.get("x-clickhouse-key") or params.get("password")
        auth = headers.get("authorization", "")
        if not given and auth.lower().startswith("basic "):
            try:
                given = base64.b64decode(auth[6:]).decode().split(":", 1)[1]
            except Exception:  # noqa: BLE001 - a malformed header is just unauthorized
                given = None
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return bool(given) and hmac.compare_digest(given.encode(), expected.encode())

    def handle(self, params: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        url_query = params.get("query", "").encode()
        sql = url_query + (b"\n" if url_query and body else b"") + body
        if not sql.strip():
            return _clickhouse_error("Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)", status=400)
        bind = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        settings = {
            k: v for k, v in params.items() if k not in _CONTROL_PARAMS and not k.startswith("param_")
        }
        database = params.get("database") or self.database
        query_id = params.get("query_id") or str(uuid.uuid4())
        headers = {"X-ClickHouse-Query-Id": query_id}
        try:
            if self.readonly and not _is_read(sql):
                # Not ClickHouse's own readonly setting: chDB applies per-call settings with SET on the
                # shared session and could not restore readonly afterwards.
                return _clickhouse_error(
                    "Code: 164. DB::Exception: this query interface is read-only (it is bound beyond "
                    "loopback): only SELECT, WITH, SHOW, DESCRIBE, EXISTS and EXPLAIN run here; serve it "
                    "with readonly=False (lightspan schema serve --read-write) to allow writes. (READONLY)",
                    status=403,
                )
            insert = _INSERT_RE.match(sql)
            if insert and sql[insert.end() :]:
                data = sql[insert.end() :]
                self.run_insert(insert, data, database, settings)
                headers["X-ClickHouse-Summary"] = json.dumps(
                    {"written_rows": "0", "written_bytes": str(len(data))}
                )
                return 200, b"", headers
            text = sql.decode("utf-8")
            fmt_match = _FORMAT_RE.search(text)
            fmt = fmt_match.group(1) if fmt_match else params.get("default_format") or "TabSeparated"
            returns_rows = bool(fmt_match) or bool(_RESULT_RE.match(text))
            # Only a result-producing statement without its own FORMAT clause gets the default format.
            append = fmt if returns_rows and not fmt_match else None
            result = self.run_query(text, append, bind, database, settings)
            if result or returns_rows:
                headers["X-ClickHouse-Format"] = fmt
                headers["Content-Type"] = (
                    "text/plain; charset=UTF-8" if fmt.startswith("Tab") else "application/octet-stream"
                )
            return 200, result, headers
        except UnicodeDecodeError as exc:
            return _clickhouse_error(
                f"Code: 62. DB::Exception: query is not valid UTF-8: {exc}. (SYNTAX_ERROR)", status=400
            )
        except Exception as exc:  # noqa: BLE001 - every engine error goes back to the client
            _log.debug("query failed: %s", exc)
            return _clickhouse_error(exc)

    def run_query(
        self, sql: str, fmt: str | None, bind: dict[str, str], database: str, settings: dict[str, str]
    ) -> bytes:
        with self.lock:
            self._use(database)
            return self.client.raw_query(sql, parameters=bind or None, settings=settings or None, fmt=fmt)

    def run_insert(
        self, match: re.Match[bytes], data: bytes, database: str, settings: dict[str, str]
    ) -> None:
        table = match.group("table").decode()
        cols_raw = match.group("cols")
        cols = [c.strip().strip('`"') for c in cols_raw.decode().split(",")] if cols_raw else None
        with self.lock:
            self._use(database)
            self.client.raw_insert(
                table, cols, data, settings=settings or None, fmt=match.group("fmt").decode()
            )

    def _use(self, database: str) -> None:
        if database and getattr(self.client, "database", None) != database:
            self.client.database = database


_BASE_HEADERS = {"X-ClickHouse-Server-Display-Name": "lightspan-chdb", "X-ClickHouse-Timezone": "UTC"}


def _app(engine: _Engine, max_body_bytes: int, max_query_bytes: int, workers: int) -> Any:
    """The Starlette app: ``/ping`` and ``/`` (GET, HEAD, POST), everything else 404."""
    from anyio import CapacityLimiter, to_thread
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    limiter = CapacityLimiter(workers)

    def respond(request: Request, status: int, body: bytes, headers: dict[str, str]) -> Response:
        headers = {**_BASE_HEADERS, **headers}
        media = headers.pop("Content-Type", None)
        return Response(b"" if request.method == "HEAD" else body, status, headers=headers, media_type=media)

    async def ping(request: Request) -> Response:
        return respond(request, 200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})

    async def root(request: Request) -> Response:
        params = dict(parse_qsl(request.url.query, keep_blank_values=True))
        if request.method in ("GET", "HEAD") and "query" not in params:
            return await ping(request)
        if not engine.authorized(request.headers, params):
            err = "Code: 516. DB::Exception: Authentication failed. (AUTHENTICATION_FAILED)"
            return respond(request, *_clickhouse_error(err, status=401))
        try:
            body = b""
            if request.method == "POST":
                raw = await read_body(request, max_body_bytes)
                body = decompress(raw, request.headers.get("content-encoding"), max_query_bytes)
                del raw
        except BodyError as exc:
            msg = f"Code: 1001. DB::Exception: cannot read the request body: {exc}"
            return respond(request, *_clickhouse_error(msg, status=exc.status))
        status, out, headers = await to_thread.run_sync(engine.handle, params, body, limiter=limiter)
        return respond(request, status, out, headers)

    async def not_found(request: Request) -> Response:
        return respond(request, *_clickhouse_error(f"There is no handle {request.url.path}", status=404))

    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET", "HEAD"]),
            Route("/", root, methods=["GET", "HEAD", "POST"]),
            Route("/{path:path}", not_found, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
        ]
    )


class ClickHouseHTTPInterface:
    """Serve ClickHouse's HTTP query interface for ``client`` (an embedded chDB client) on ``host:port``.

    ``lock`` serialises engine calls with the owner's own use of the client (the owner passes the lock it
    holds around its inserts); ``password``, when set, is required as the ClickHouse password
    (``X-ClickHouse-Key``, basic auth or ``Authorization: Bearer``). ``readonly`` defaults to True when
    ``host`` is not a loopback address (the interface otherwise runs any SQL the caller sends).
    ``max_body_bytes`` limits a request body as sent, ``max_query_bytes`` after decompression.
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
        readonly: bool | None = None,
        max_body_bytes: int = 1 << 30,
        max_query_bytes: int = 4 << 30,
        workers: int = 4,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ) -> None:
        self._client = client
        self._host = host
        self._port = port
        self._lock = lock if lock is not None else nullcontext()
        self._database = database or getattr(client, "database", None) or "default"
        self._password = password
        self.readonly = (not is_loopback(host)) if readonly is None else readonly
        self._limits = (max_body_bytes, max_query_bytes, workers)
        self._tls = (tls_cert, tls_key)
        self._server: ServerThread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when constructed with ``port=0``)."""
        return self._server.port if self._server else self._port

    @property
    def url(self) -> str:
        """A clickhouse-connect DSN for readers: ``http://host:port/database``."""
        host = "127.0.0.1" if self._host in ("0.0.0.0", "", "::") else self._host
        scheme = "https" if self._tls[0] else "http"
        return f"{scheme}://{host}:{self.port}/{self._database}"

    def start(self) -> ClickHouseHTTPInterface:
        if self._server is not None:
            return self
        engine = _Engine(self._client, self._lock, self._database, self._password, self.readonly)
        app = _app(engine, *self._limits)
        server = ServerThread(
            app,
            self._host,
            self._port,
            name="lightspan-query-http",
            tls_cert=self._tls[0],
            tls_key=self._tls[1],
        )
        server.start()
        self._server = server
        _log.info("ClickHouse HTTP interface on %s%s", self.url, " (read-only)" if self.readonly else "")
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> ClickHouseHTTPInterface:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
