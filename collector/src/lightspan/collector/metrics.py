"""Prometheus metrics of one collector, in its own registry (several collectors can share a process)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Metrics:
    registry: Any = field(init=False)

    def __post_init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        r = self.registry = CollectorRegistry()
        self.received = Counter("lightspan_spans_received", "Spans received.", ["transport"], registry=r)
        self.accepted = Counter(
            "lightspan_spans_accepted", "Spans acknowledged (spooled).", ["transport"], registry=r
        )
        self.rejected = Counter(
            "lightspan_spans_rejected", "Spans refused, by reason.", ["transport", "reason"], registry=r
        )
        self.exports_refused = Counter(
            "lightspan_exports_refused",
            "Exports refused before decoding, so their span/record count is unknown (the client retries), by reason.",
            ["signal", "transport", "reason"],
            registry=r,
        )
        self.logs_received = Counter(
            "lightspan_logs_received", "Log records received.", ["transport"], registry=r
        )
        self.logs_accepted = Counter(
            "lightspan_logs_accepted", "Log records acknowledged (spooled).", ["transport"], registry=r
        )
        self.logs_rejected = Counter(
            "lightspan_logs_rejected", "Log records refused, by reason.", ["transport", "reason"], registry=r
        )
        self.logs_written = Counter(
            "lightspan_logs_written", "Log records committed to ClickHouse.", registry=r
        )
        self.spans_without_rollout = Counter(
            "lightspan_spans_without_rollout",
            "Spans written with no rollout id of their own (no explicit, session or conversation id;"
            " their trace id stands in).",
            registry=r,
        )
        self.spooled_bytes = Counter("lightspan_spool_bytes", "Bytes appended to the spool.", registry=r)
        self.written = Counter("lightspan_spans_written", "Spans committed to ClickHouse.", registry=r)
        self.rewards_written = Counter(
            "lightspan_rewards_written", "Rewards committed to ClickHouse.", registry=r
        )
        self.insert_errors = Counter(
            "lightspan_insert_errors", "Failed ClickHouse inserts (retried).", registry=r
        )
        self.batch_latency = Histogram(
            "lightspan_batch_write_seconds",
            "Seconds per ClickHouse insert.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.queue_depth = Gauge(
            "lightspan_queue_spans", "Spans waiting in memory for ClickHouse.", registry=r
        )
        self.queue_bytes = Gauge(
            "lightspan_queue_bytes",
            "Bytes of the queue's budget held: queued requests, and requests being read or decoded.",
            registry=r,
        )
        self.requests = Counter(
            "lightspan_requests",
            "Export requests by transport and outcome.",
            ["transport", "code"],
            registry=r,
        )

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
