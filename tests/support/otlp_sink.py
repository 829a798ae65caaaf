"""A real OTLP/gRPC TraceService on a free loopback port that records every span it receives.

For asserting what goes through the real OTLP gRPC exporter (in-process or from a subprocess)::

    from tests.support.otlp_sink import OTLPSink

    with OTLPSink() as sink:                        # sink.endpoint == "http://127.0.0.1:<port>"
        ...export to sink.endpoint...
        spans = sink.wait_for(lambda spans: len(spans) >= 3, timeout=20)
        spans[0].name, spans[0].attributes["gen_ai.tool.name"], spans[0].resource["service.name"]

The gRPC sink also serves ``MetricsService``: ``sink.wait_for_metrics(lambda ms: ..., timeout=20)``
returns every :class:`SinkMetric` received (histogram points decoded: attributes, count, sum, bounds).

``OTLPHTTPSink`` is the same over OTLP/HTTP (protobuf ``POST /v1/traces``, stdlib http.server).
Each received span becomes a :class:`SinkSpan` with attributes decoded to Python values.
``sink.status`` can be set to a ``grpc.StatusCode`` to make exports fail (for retry tests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def decode_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(decode_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: decode_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


@dataclass
class SinkSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    status_code: int  # 0 unset, 1 ok, 2 error
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""


@dataclass
class SinkPoint:
    """One histogram data point (sums/counts) or number point (``value``)."""

    attributes: dict[str, Any]
    count: int = 0
    sum: float = 0.0
    bounds: tuple[float, ...] = ()
    bucket_counts: tuple[int, ...] = ()
    value: float | None = None


@dataclass
class SinkMetric:
    name: str
    unit: str
    description: str
    scope: str
    points: list[SinkPoint] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, sink: OTLPSink) -> None:
        self.sink = sink

    def Export(self, request, context):  # noqa: N802 - gRPC method name
        self.sink.record_metrics(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class OTLPSink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.metric_requests: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self._metrics: list[SinkMetric] = []
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.metadata: list[dict[str, str]] = []
        self.status: grpc.StatusCode | None = None
        self._spans: list[SinkSpan] = []
        self._cond = threading.Condition()
        self._server: grpc.Server | None = None
        self.port = 0

    def Export(self, request, context):  # noqa: N802 - gRPC method name
        self.metadata.append({k: v for k, v in context.invocation_metadata()})
        if self.status is not None:
            context.abort(self.status, "sink told to fail")
        self.record(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def record(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        spans = []
        for rs in request.resource_spans:
            resource = {kv.key: decode_value(kv.value) for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    spans.append(
                        SinkSpan(
                            name=s.name,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(),
                            kind=s.kind,
                            status_code=s.status.code,
                            attributes={kv.key: decode_value(kv.value) for kv in s.attributes},
                            resource=resource,
                            scope=ss.scope.name,
                        )
                    )
        with self._cond:
            self.requests.append(request)
            self._spans.extend(spans)
            self._cond.notify_all()

    def record_metrics(self, request: metrics_service_pb2.ExportMetricsServiceRequest) -> None:
        found = []
        for rm in request.resource_metrics:
            resource = {kv.key: decode_value(kv.value) for kv in rm.resource.attributes}
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    metric = SinkMetric(m.name, m.unit, m.description, sm.scope.name, resource=resource)
                    kind = m.WhichOneof("data")
                    for p in getattr(m, kind).data_points if kind else ():
                        attrs = {kv.key: decode_value(kv.value) for kv in p.attributes}
                        if kind == "histogram":
                            metric.points.append(
                                SinkPoint(
                                    attrs, p.count, p.sum, tuple(p.explicit_bounds), tuple(p.bucket_counts)
                                )
                            )
                        else:
                            value = p.as_double if p.WhichOneof("value") == "as_double" else p.as_int
                            metric.points.append(SinkPoint(attrs, value=value))
                    found.append(metric)
        with self._cond:
            self.metric_requests.append(request)
            self._metrics.extend(found)
            self._cond.notify_all()

    def wait_for_metrics(
        self, predicate: Callable[[list[SinkMetric]], bool], timeout: float = 30.0
    ) -> list[SinkMetric]:
        """Block until ``predicate(metrics)`` holds; raise ``TimeoutError`` listing what arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(list(self._metrics)):
                left = deadline - time.monotonic()
                if left <= 0:
                    names = sorted({m.name for m in self._metrics})
                    raise TimeoutError(
                        f"OTLP sink: metrics condition not met in {timeout}s; received {names}"
                    )
                self._cond.wait(left)
            return list(self._metrics)

    @property
    def spans(self) -> list[SinkSpan]:
        with self._cond:
            return list(self._spans)

    def wait_for(self, predicate: Callable[[list[SinkSpan]], bool], timeout: float = 30.0) -> list[SinkSpan]:
        """Block until ``predicate(spans)`` holds; raise ``TimeoutError`` listing what arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(list(self._spans)):
                left = deadline - time.monotonic()
                if left <= 0:
                    names = [s.name for s in self._spans]
                    raise TimeoutError(f"OTLP sink: condition not met in {timeout}s; received {names}")
                self._cond.wait(left)
            return list(self._spans)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OTLPSink:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsServicer(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def __enter__(self) -> OTLPSink:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class OTLPHTTPSink(OTLPSink):
    """OTLP/HTTP variant: ``POST {endpoint}/v1/traces`` with a protobuf body."""

    def start(self) -> OTLPHTTPSink:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                sink.metadata.append({k.lower(): v for k, v in self.headers.items()})
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                sink.record(request)
                data = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, name="otlp-http-sink", daemon=True).start()
        return self

    def stop(self) -> None:
        httpd = getattr(self, "_httpd", None)
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            self._httpd = None
