"""What every receiver does with a request: authorize, decode, process, reserve, spool, enqueue.

Transport-neutral: receivers translate :class:`IngestError` subclasses into gRPC codes or HTTP statuses.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass

from .metrics import Metrics
from .otlp import MalformedRequest, decode_json, decode_protobuf, flatten
from .redact import Redactor
from .rewards import InvalidReward, parse_rewards, to_columns
from .spool import KIND_REWARDS, KIND_TRACES, Spool
from .writer import Pipeline, QueueFull

_log = logging.getLogger(__name__)


class IngestError(Exception):
    """Base of the errors a receiver maps onto a status."""


class Unauthenticated(IngestError):
    pass


class BadRequest(IngestError):
    pass


class Unavailable(IngestError):
    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class Result:
    accepted: int
    rejected: int = 0
    error_message: str = ""


class Ingestor:
    def __init__(
        self,
        pipeline: Pipeline,
        spool: Spool,
        metrics: Metrics,
        redactor: Redactor,
        auth_token: str | None,
        retry_after_s: int = 1,
    ):
        self.pipeline = pipeline
        self.spool = spool
        self.metrics = metrics
        self.redactor = redactor
        self.auth_token = auth_token
        self.retry_after_s = retry_after_s
        self.accepting = True

    def check_auth(self, header: str | None) -> None:
        """``header`` is the ``authorization`` value; constant-time compare of the bearer token."""
        if not self.auth_token:
            return
        if not header or not header.lower().startswith("bearer "):
            raise Unauthenticated("missing bearer token: send 'authorization: Bearer <token>'")
        if not hmac.compare_digest(header[7:].strip().encode(), self.auth_token.encode()):
            raise Unauthenticated("wrong bearer token")

    def _admit(self, rows: int, transport: str) -> None:
        if not self.accepting:
            raise Unavailable("the collector is shutting down", self.retry_after_s)
        try:
            self.pipeline.reserve(rows)
        except QueueFull as exc:
            self.metrics.rejected.labels(transport, "backpressure").inc(rows)
            raise Unavailable(f"pipeline full, retry later: {exc}", self.retry_after_s) from None

    def traces(self, body: bytes, *, transport: str, json_body: bool = False) -> Result:
        """Process one export; on return its accepted spans are durable (spooled)."""
        try:
            req = decode_json(body) if json_body else decode_protobuf(body)
        except MalformedRequest as exc:
            self.metrics.rejected.labels(transport, "malformed").inc()
            raise BadRequest(str(exc)) from None
        flat = flatten(req, self.redactor)
        received = flat.rows + flat.rejected
        self.metrics.received.labels(transport).inc(received)
        if flat.rejected:
            self.metrics.rejected.labels(transport, "invalid_span").inc(flat.rejected)
        if flat.rows == 0:
            return Result(0, flat.rejected, flat.error_message())
        self._admit(flat.rows, transport)
        try:
            payload = req.SerializeToString() if json_body else body
            segment = self.spool.append(KIND_TRACES, payload)
        except Exception:
            self.pipeline.release(flat.rows)
            raise
        self.metrics.spooled_bytes.inc(len(payload))
        self.pipeline.put_spans(flat, segment)
        self.metrics.accepted.labels(transport).inc(flat.rows)
        return Result(flat.rows, flat.rejected, flat.error_message())

    def rewards(self, body: bytes) -> Result:
        try:
            rows = parse_rewards(body)
        except InvalidReward as exc:
            raise BadRequest(str(exc)) from None
        if not self.accepting:
            raise Unavailable("the collector is shutting down", self.retry_after_s)
        payload = json.dumps(rows).encode()
        segment = self.spool.append(KIND_REWARDS, payload)
        self.pipeline.put_rewards(to_columns(rows), len(rows), segment)
        return Result(len(rows))

    def replay(self) -> int:
        """Re-queue what an earlier run spooled but may not have written; return the records replayed."""
        n = 0
        for segment, kind, payload in self.spool.replay():
            n += 1
            if kind == KIND_TRACES:
                try:
                    flat = flatten(decode_protobuf(payload), self.redactor)
                except MalformedRequest as exc:  # pragma: no cover - only intact records are spooled
                    _log.error("spool record in segment %d cannot be decoded, skipped: %s", segment, exc)
                    self.spool.commit({segment: 1})
                    continue
                self.pipeline.reserve(flat.rows, block=True)
                self.pipeline.put_spans(flat, segment)
            elif kind == KIND_REWARDS:
                rows = json.loads(payload)
                self.pipeline.put_rewards(to_columns(rows), len(rows), segment)
        return n
