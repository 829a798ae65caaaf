"""OTLP/HTTP receiver (``POST /v1/traces``, protobuf or JSON, gzip/deflate), rewards, health and metrics.

Errors are ``google.rpc.Status`` bodies in the request's encoding, as the OTLP/HTTP spec asks:
400 malformed, 401 missing or wrong token, 413 too large (after decompression), 415 unknown content type,
503 with ``Retry-After`` when the pipeline is full.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .ingest import BadRequest, Ingestor, Unauthenticated, Unavailable

_log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class TooLarge(Exception):
    pass


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """Decompress with a hard output limit, so a small gzip bomb cannot take memory."""
    wbits = {"gzip": 31, "deflate": 15, "x-gzip": 31}.get(encoding)
    if wbits is None:
        raise BadRequest(f"unsupported Content-Encoding {encoding!r}: use gzip, deflate or none")
    try:
        d = zlib.decompressobj(wbits)
        out = d.decompress(body, limit + 1)
        if len(out) > limit or d.unconsumed_tail:
            raise TooLarge(f"request is larger than {limit} bytes after decompression")
        return out + d.flush()
    except zlib.error as exc:
        raise BadRequest(f"body is not valid {encoding}: {exc}") from None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        _log.debug("http %s", fmt % args)

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _status(
        self, status: int, message: str, as_json: bool, headers: dict[str, str] | None = None
    ) -> None:
        from google.rpc import status_pb2

        grpc_code = {400: 3, 401: 16, 413: 8, 415: 3, 503: 14, 404: 5, 405: 12}.get(status, 13)
        if as_json:
            body = json.dumps({"code": grpc_code, "message": message}).encode()
        else:
            body = status_pb2.Status(code=grpc_code, message=message).SerializeToString()
        self.server.ingestor.metrics.requests.labels("http", str(status)).inc()
        self._send(status, body, JSON if as_json else PROTOBUF, headers)

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(200, b'{"status":"ok"}', JSON)
        elif path == "/readyz":
            ready, why = self.server.readiness()
            self._send(200 if ready else 503, json.dumps({"ready": ready, "reason": why}).encode(), JSON)
        elif path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST

            self._send(200, self.server.ingestor.metrics.render(), CONTENT_TYPE_LATEST)
        else:
            self._send(
                404,
                b'{"error":"not found: use POST /v1/traces, POST /v1/rewards, /healthz, /readyz, /metrics"}',
                JSON,
            )

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        as_json = ctype == JSON or path == "/v1/rewards"
        limit = self.server.max_request_bytes
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            return self._status(400, "Content-Length is required and must be a number", as_json)
        if length > limit:
            self.close_connection = True
            return self._status(
                413, f"request of {length} bytes is larger than the limit of {limit}", as_json
            )
        body = self.rfile.read(length)
        if path not in ("/v1/traces", "/v1/rewards"):
            return self._status(404, f"no endpoint {path}: use /v1/traces or /v1/rewards", as_json)
        ingestor = self.server.ingestor
        try:
            ingestor.check_auth(self.headers.get("Authorization"))
            encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
            if encoding not in ("", "identity"):
                body = _inflate(body, encoding, limit)
            if path == "/v1/rewards":
                result = ingestor.rewards(body)
                self.server.ingestor.metrics.requests.labels("http", "200").inc()
                return self._send(200, json.dumps({"accepted": result.accepted}).encode(), JSON)
            if ctype not in (PROTOBUF, JSON, "application/protobuf"):
                return self._status(
                    415, f"unsupported Content-Type {ctype!r}: use {PROTOBUF} or {JSON}", as_json
                )
            result = ingestor.traces(body, transport="http", json_body=as_json)
        except Unauthenticated as exc:
            return self._status(401, str(exc), as_json, {"WWW-Authenticate": "Bearer"})
        except TooLarge as exc:
            return self._status(413, str(exc), as_json)
        except BadRequest as exc:
            return self._status(400, str(exc), as_json)
        except Unavailable as exc:
            return self._status(503, str(exc), as_json, {"Retry-After": str(exc.retry_after_s)})
        except Exception as exc:
            _log.exception("OTLP/HTTP request failed")
            return self._status(500, f"collector error: {exc}", as_json)
        self._ok(result, as_json)

    def _ok(self, result: Any, as_json: bool) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        self.server.ingestor.metrics.requests.labels("http", "200").inc()
        if as_json:
            doc: dict[str, Any] = {}
            if result.rejected:
                doc["partialSuccess"] = {
                    "rejectedSpans": str(result.rejected),
                    "errorMessage": result.error_message,
                }
            return self._send(200, json.dumps(doc).encode(), JSON)
        resp = ExportTraceServiceResponse()
        if result.rejected:
            resp.partial_success.rejected_spans = result.rejected
            resp.partial_success.error_message = result.error_message
        self._send(200, resp.SerializeToString(), PROTOBUF)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], ingestor: Ingestor, max_request_bytes: int,
                 readiness: Callable[[], tuple[bool, str]]):  # fmt: skip
        super().__init__(addr, _Handler)
        self.ingestor = ingestor
        self.max_request_bytes = max_request_bytes
        self.readiness = readiness


class HttpReceiver:
    def __init__(self, ingestor: Ingestor, endpoint: str, *, max_request_bytes: int,
                 readiness: Callable[[], tuple[bool, str]], tls_cert: str | None = None,
                 tls_key: str | None = None):  # fmt: skip
        host, _, port = endpoint.rpartition(":")
        self.server = _Server((host.strip("[]"), int(port)), ingestor, max_request_bytes, readiness)
        if tls_cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(tls_cert, tls_key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            name="lightspan-otlp-http",
            kwargs={"poll_interval": 0.2},
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(5)
