"""OTLP/gRPC receiver: ``TraceService/Export`` and ``LogsService/Export`` (``opentelemetry.proto.collector``).

The methods are registered with no request deserializer so the raw bytes reach the ingestor once
(admitted by size, decoded there, spooled as received). Size limits are grpc's own
``max_receive_message_length``; at most ``workers`` requests are held at once (more wait in grpc's
queue without their bodies being read: ``maximum_concurrent_rpcs`` beyond that is RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Any

from .ingest import BadRequest, Ingestor, TooLarge, Unauthenticated, Unavailable

_log = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"


def _retry_details(message: str, seconds: int) -> bytes:
    """A google.rpc.Status with RetryInfo, sent as ``grpc-status-details-bin`` with UNAVAILABLE."""
    from google.protobuf import any_pb2, duration_pb2
    from google.rpc import code_pb2, error_details_pb2, status_pb2

    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds)))
    return status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=[detail]).SerializeToString()


class GrpcReceiver:
    def __init__(self, ingestor: Ingestor, endpoint: str, *, max_request_bytes: int, workers: int = 8,
                 tls_cert: str | None = None, tls_key: str | None = None):  # fmt: skip
        import grpc

        self._grpc = grpc
        self.ingestor = ingestor
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lightspan-grpc"),
            options=[
                ("grpc.max_receive_message_length", max_request_bytes),
                ("grpc.max_send_message_length", 4 << 20),
            ],
            maximum_concurrent_rpcs=workers * 4,
        )
        handlers = []
        for service, signal in ((SERVICE, "traces"), (LOGS_SERVICE, "logs")):
            handler = grpc.unary_unary_rpc_method_handler(
                self._handler(signal), request_deserializer=None, response_serializer=None
            )
            handlers.append(grpc.method_handlers_generic_handler(service, {"Export": handler}))
        self.server.add_generic_rpc_handlers(tuple(handlers))
        if tls_cert:
            with open(tls_key, "rb") as k, open(tls_cert, "rb") as c:
                creds = grpc.ssl_server_credentials([(k.read(), c.read())])
            self.port = self.server.add_secure_port(endpoint, creds)
        else:
            self.port = self.server.add_insecure_port(endpoint)
        if not self.port:
            raise OSError(f"cannot listen for OTLP/gRPC on {endpoint}")

    def start(self) -> None:
        self.server.start()

    def stop(self, grace: float = 5.0) -> None:
        self.server.stop(grace).wait(grace + 1)

    def _handler(self, signal: str) -> Any:
        return lambda body, context: self._export(body, context, signal)

    def _export(self, body: bytes, context: Any, signal: str = "traces") -> bytes:
        from .http_receiver import export_response

        grpc = self._grpc
        metrics = self.ingestor.metrics
        try:
            auth = next((v for k, v in context.invocation_metadata() if k == "authorization"), None)
            self.ingestor.check_auth(auth)
            result = self.ingestor.export(signal, body, transport="grpc")
        except Unauthenticated as exc:
            code, message = grpc.StatusCode.UNAUTHENTICATED, str(exc)
        except BadRequest as exc:
            code, message = grpc.StatusCode.INVALID_ARGUMENT, str(exc)
        except TooLarge as exc:
            code, message = grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
        except Unavailable as exc:
            code, message = grpc.StatusCode.UNAVAILABLE, str(exc)
            context.set_trailing_metadata(
                (("grpc-status-details-bin", _retry_details(str(exc), exc.retry_after_s)),)
            )
        except Exception as exc:
            _log.exception("OTLP/gRPC export failed")
            code, message = grpc.StatusCode.INTERNAL, f"collector error: {exc}"
        else:
            metrics.requests.labels("grpc", "OK").inc()
            return export_response(signal, result, as_json=False)
        metrics.requests.labels("grpc", code.name).inc()
        context.abort(code, message)
        raise AssertionError("unreachable: context.abort raises")
