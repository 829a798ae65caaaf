"""Fixtures: a collector on loopback (port 0) over a throwaway chDB directory, and OTel SDK senders."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lightspan.collector import Collector, CollectorConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def local_config(tmp_path, **overrides) -> CollectorConfig:
    base: dict[str, Any] = dict(
        data_dir=str(tmp_path / "data"),
        grpc_endpoint="127.0.0.1:0",
        http_endpoint="127.0.0.1:0",
        query_endpoint="127.0.0.1:0",
        batch_timeout_s=0.1,
    )
    base.update(overrides)
    return CollectorConfig.load(**base)


@pytest.fixture
def start_collector(tmp_path) -> Iterator[Callable[..., Collector]]:
    started: list[Collector] = []

    def _start(sink=None, **overrides) -> Collector:
        c = Collector(local_config(tmp_path, **overrides), sink=sink).start()
        started.append(c)
        return c

    yield _start
    for c in started:
        c.stop(timeout=10)


def send_spans(exporter, n: int, attributes: dict | None = None, name: str = "chat m") -> None:
    """Emit ``n`` spans through the real OTel SDK and ``exporter``; flush before returning."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    tp = TracerProvider(resource=Resource.create({"service.name": "test-agent"}))
    tp.add_span_processor(BatchSpanProcessor(exporter))
    tracer = tp.get_tracer("tests", "1.2.3")
    for i in range(n):
        with tracer.start_as_current_span(name, attributes={**(attributes or {}), "i": i}):
            pass
    assert tp.force_flush(10_000)
    tp.shutdown()


def query(collector: Collector, sql: str) -> list[tuple]:
    import clickhouse_connect

    client = clickhouse_connect.get_client(dsn=collector.query_url)
    try:
        return client.query(sql).result_rows
    finally:
        client.close()
