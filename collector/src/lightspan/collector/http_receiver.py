"""OTLP/HTTP receiver: ``POST /v1/traces`` and ``POST /v1/logs`` (protobuf or JSON), rewards, health, metrics.

A Starlette app on uvicorn (:mod:`lightspan.storage.asgi`, shared with the query interface): bodies
framed by ``Content-Length`` or ``Transfer-Encoding: chunked``, ``gzip``/``deflate`` (and lz4, zstd)
with a limit after decompression. The body's bytes are admitted into the queue's budget as they arrive
(before anything is decoded), and decoding runs on at most ``workers`` threads.

Errors are ``google.rpc.Status`` bodies in the request's encoding, as the OTLP/HTTP spec asks:
400 malformed, 401 missing or wrong token, 404/405 wrong path or method, 413 too large (on the wire,
after decompression, or larger than the whole queue), 415 unknown content type or encoding, 503 with
``Retry-After`` when the pipeline is full or the collector is stopping.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from lightspan.storage.asgi import BodyError, ServerThread, decompress, read_body

from .ingest import BadRequest, Ingestor, Result, TooLarge, Unauthenticated, Unavailable

_log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PROTOBUF_TYPES = (PROTOBUF, "application/protobuf")
_SIGNAL_PATHS = {"/v1/traces": "traces", "/v1/logs": "logs"}
_GRPC_CODES = {400: 3, 401: 16, 404: 5, 405: 12, 413: 8, 415: 3, 503: 14}
_HELP = "use POST /v1/traces, POST /v1/logs, POST /v1/rewards, GET /healthz, /readyz, /metrics"


def status_body(status: int, message: str, as_json: bool) -> bytes:
    """A ``google.rpc.Status`` for an HTTP status, as protobuf or OTLP/JSON."""
    code = _GRPC_CODES.get(status, 13)
    if as_json:
        return json.dumps({"code": code, "message": message}).encode()
    from google.rpc import status_pb2

    return status_pb2.Status(code=code, message=message).SerializeToString()


def export_response(signal: str, result: Result, as_json: bool) -> bytes:
    """``Export{Trace,Logs}ServiceResponse``, with ``partial_success`` when something was rejected."""
    rejected_field = "rejectedSpans" if signal == "traces" else "rejectedLogRecords"
    if as_json:
        doc: dict[str, Any] = {}
        if result.rejected:
            doc["partialSuccess"] = {
                rejected_field: str(result.rejected),
                "errorMessage": result.error_message,
            }
        return json.dumps(doc).encode()
    if signal == "traces":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        resp: Any = ExportTraceServiceResponse()
        if result.rejected:
            resp.partial_success.rejected_spans = result.rejected
    else:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

        resp = ExportLogsServiceResponse()
        if result.rejected:
            resp.partial_success.rejected_log_records = result.rejected
    if result.rejected:
        resp.partial_success.error_message = result.error_message
    return resp.SerializeToString()


def build_app(
    ingestor: Ingestor, *, max_request_bytes: int, readiness: Callable[[], tuple[bool, str]], workers: int
) -> Any:
    from anyio import CapacityLimiter, to_thread
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    limiter = CapacityLimiter(workers)
    metrics = ingestor.metrics

    def status(code: int, message: str, as_json: bool, headers: dict[str, str] | None = None) -> Response:
        metrics.requests.labels("http", str(code)).inc()
        return Response(
            status_body(code, message, as_json),
            code,
            headers=headers,
            media_type=JSON if as_json else PROTOBUF,
        )

    async def get(request: Request, path: str) -> Response:
        if path == "/healthz":
            return Response(b'{"status":"ok"}', media_type=JSON)
        if path == "/readyz":
            ready, why = readiness()
            return Response(
                json.dumps({"ready": ready, "reason": why}).encode(), 200 if ready else 503, media_type=JSON
            )
        if path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST

            return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
        if path in _SIGNAL_PATHS or path == "/v1/rewards":
            return status(405, f"{path} takes POST", True, {"Allow": "POST"})
        return status(404, f"not found: {path}; {_HELP}", True)

    async def rewards(request: Request) -> Response:
        try:
            ingestor.check_auth(request.headers.get("authorization"))
            raw = await read_body(request, max_request_bytes)
            body = decompress(raw, request.headers.get("content-encoding"), max_request_bytes)
            result = await to_thread.run_sync(ingestor.rewards, body, limiter=limiter)
        except Unauthenticated as exc:
            return status(401, str(exc), True, {"WWW-Authenticate": "Bearer"})
        except BodyError as exc:
            return status(exc.status, str(exc), True)
        except BadRequest as exc:
            return status(400, str(exc), True)
        except Unavailable as exc:
            return status(503, str(exc), True, {"Retry-After": str(exc.retry_after_s)})
        metrics.requests.labels("http", "200").inc()
        return Response(json.dumps({"accepted": result.accepted}).encode(), media_type=JSON)

    async def export(request: Request, signal: str) -> Response:
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        as_json = ctype == JSON
        try:
            ingestor.check_auth(request.headers.get("authorization"))
            if ctype not in _PROTOBUF_TYPES and not as_json:
                return status(415, f"unsupported Content-Type {ctype!r}: use {PROTOBUF} or {JSON}", as_json)
            ticket = ingestor.ticket()
            try:

                def reserve(n: int) -> None:
                    ingestor.admit(ticket, ticket.nbytes + n, transport="http", signal=signal)

                raw = await read_body(request, max_request_bytes, reserve)

                def work() -> Result:
                    body = decompress(raw, request.headers.get("content-encoding"), max_request_bytes)
                    return ingestor.export(signal, body, transport="http", json_body=as_json, ticket=ticket)

                result = await to_thread.run_sync(work, limiter=limiter)
            finally:
                ticket.release()
        except Unauthenticated as exc:
            return status(401, str(exc), as_json, {"WWW-Authenticate": "Bearer"})
        except BodyError as exc:
            return status(exc.status, str(exc), as_json)
        except TooLarge as exc:
            return status(413, str(exc), as_json)
        except BadRequest as exc:
            return status(400, str(exc), as_json)
        except Unavailable as exc:
            return status(503, str(exc), as_json, {"Retry-After": str(exc.retry_after_s)})
        except Exception as exc:
            _log.exception("OTLP/HTTP request failed")
            return status(500, f"collector error: {exc}", as_json)
        metrics.requests.labels("http", "200").inc()
        return Response(export_response(signal, result, as_json), media_type=JSON if as_json else PROTOBUF)

    async def route(request: Request) -> Response:
        path = request.url.path
        if request.method in ("GET", "HEAD"):
            return await get(request, path)
        if request.method != "POST":
            return status(405, f"method {request.method} not allowed; {_HELP}", True, {"Allow": "GET, POST"})
        if path == "/v1/rewards":
            return await rewards(request)
        signal = _SIGNAL_PATHS.get(path)
        if signal is None:
            return status(404, f"no endpoint {path}; {_HELP}", True)
        return await export(request, signal)

    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", route, methods=methods)])


class HttpReceiver:
    def __init__(self, ingestor: Ingestor, endpoint: str, *, max_request_bytes: int,
                 readiness: Callable[[], tuple[bool, str]], tls_cert: str | None = None,
                 tls_key: str | None = None, workers: int = 8):  # fmt: skip
        host, _, port = endpoint.rpartition(":")
        app = build_app(ingestor, max_request_bytes=max_request_bytes, readiness=readiness, workers=workers)
        self._server = ServerThread(
            app, host, int(port), name="lightspan-otlp-http", tls_cert=tls_cert, tls_key=tls_key
        )
        self.port = self._server.port

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()
