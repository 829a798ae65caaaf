"""What every receiver does with a request: authorize, admit, decode and check, spool, acknowledge.

The order bounds memory (docs/collector.md, "Memory"): a request is admitted by its size *before* it
is decoded, holding :data:`DECODE_FACTOR` times its bytes of the queue's budget while it is decoded,
then only its protobuf bytes once it is queued. Decoding here checks the request (a malformed one is
refused) and counts what is storable; flattening, convention mapping and redaction happen in the writer,
off the request path. Transport-neutral: receivers translate :class:`IngestError` subclasses into gRPC
codes or HTTP statuses.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import DECODE_FACTOR, WRITER_FACTOR
from .metrics import Metrics
from .otlp import Checked, MalformedRequest, check_spans, decode_json, decode_protobuf
from .otlp_logs import check_logs, decode_logs, decode_logs_json
from .rewards import InvalidReward, parse_rewards, to_columns
from .spool import KIND_LOGS, KIND_REWARDS, KIND_TRACES, Spool
from .writer import LOGS, SPANS, Pipeline, QueueFull, RequestTooLarge, Ticket

_log = logging.getLogger(__name__)

__all__ = ["DECODE_FACTOR", "WRITER_FACTOR", "Ingestor", "Result"]


class IngestError(Exception):
    """Base of the errors a receiver maps onto a status."""


class Unauthenticated(IngestError):
    pass


class BadRequest(IngestError):
    pass


class TooLarge(IngestError):
    """413 / RESOURCE_EXHAUSTED (not retryable): the request can never fit; send smaller batches."""


class Unavailable(IngestError):
    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class Result:
    accepted: int
    rejected: int = 0
    error_message: str = ""


@dataclass(frozen=True)
class _Signal:
    kind: str  # writer kind
    record: int  # spool record kind
    decode: Callable[[bytes], Any]
    decode_json: Callable[[bytes], Any]
    check: Callable[[Any], Checked]


SIGNALS = {
    "traces": _Signal(SPANS, KIND_TRACES, decode_protobuf, decode_json, check_spans),
    "logs": _Signal(LOGS, KIND_LOGS, decode_logs, decode_logs_json, check_logs),
}


class Ingestor:
    def __init__(
        self,
        pipeline: Pipeline,
        spool: Spool,
        metrics: Metrics,
        redactor: Any = None,
        auth_token: str | None = None,
        retry_after_s: int = 1,
    ):
        self.pipeline = pipeline
        self.spool = spool
        self.metrics = metrics
        self.redactor = redactor  # applied by the writer (pipeline.redactor); kept for callers
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

    # ------------------------------------------------------------------ admission
    def ticket(self) -> Ticket:
        if not self.accepting:
            raise Unavailable("the collector is shutting down", self.retry_after_s)
        return self.pipeline.ticket()

    def admit(self, ticket: Ticket, nbytes: int, *, transport: str, signal: str = "traces") -> None:
        """Make ``ticket`` hold ``nbytes`` of the budget, or refuse the request (nothing held then)."""
        try:
            ticket.hold_bytes(nbytes)
        except QueueFull as exc:
            ticket.release()
            self.metrics.exports_refused.labels(signal, transport, "backpressure").inc()
            raise Unavailable(f"pipeline full, retry later: {exc}", self.retry_after_s) from None
        except RequestTooLarge as exc:
            ticket.release()
            self.metrics.exports_refused.labels(signal, transport, "too_large").inc()
            raise TooLarge(str(exc)) from None

    def _counter(self, signal: str, what: str) -> Any:
        m = self.metrics
        if signal == "logs":
            return {"received": m.logs_received, "accepted": m.logs_accepted, "rejected": m.logs_rejected}[
                what
            ]
        return {"received": m.received, "accepted": m.accepted, "rejected": m.rejected}[what]

    # ------------------------------------------------------------------ exports
    def traces(
        self, body: bytes, *, transport: str, json_body: bool = False, ticket: Ticket | None = None
    ) -> Result:
        return self.export("traces", body, transport=transport, json_body=json_body, ticket=ticket)

    def logs(
        self, body: bytes, *, transport: str, json_body: bool = False, ticket: Ticket | None = None
    ) -> Result:
        return self.export("logs", body, transport=transport, json_body=json_body, ticket=ticket)

    def export(
        self,
        signal: str,
        body: bytes,
        *,
        transport: str,
        json_body: bool = False,
        ticket: Ticket | None = None,
    ) -> Result:
        """Process one export; on return its accepted items are durable (spooled) and queued.

        ``ticket`` is what the receiver already holds for this request (the HTTP receiver reserves the
        body's bytes as they arrive); it is grown to the decode budget before decoding.
        """
        sig = SIGNALS[signal]
        ticket = ticket or self.ticket()
        try:
            self.admit(ticket, len(body) * DECODE_FACTOR, transport=transport, signal=signal)
            if self.pipeline.spans_full:  # any span would be refused below: spare the decode
                self.metrics.exports_refused.labels(signal, transport, "backpressure").inc()
                raise Unavailable(
                    f"pipeline full, retry later: {self.pipeline.queued_spans} spans are waiting for ClickHouse",
                    self.retry_after_s,
                )
            try:
                req = (sig.decode_json if json_body else sig.decode)(body)
            except MalformedRequest as exc:
                self._counter(signal, "rejected").labels(transport, "malformed").inc()
                raise BadRequest(str(exc)) from None
            checked = sig.check(req)
            self._counter(signal, "received").labels(transport).inc(checked.accepted + checked.rejected)
            if checked.rejected:
                self._counter(signal, "rejected").labels(transport, "invalid").inc(checked.rejected)
            if checked.accepted == 0:
                return Result(0, checked.rejected, checked.error_message())
            payload = req.SerializeToString() if json_body else body
            del req
            if not self.accepting:
                raise Unavailable("the collector is shutting down", self.retry_after_s)
            try:
                ticket.grow(rows=checked.accepted)
            except QueueFull as exc:
                self._counter(signal, "rejected").labels(transport, "backpressure").inc(checked.accepted)
                raise Unavailable(f"pipeline full, retry later: {exc}", self.retry_after_s) from None
            except RequestTooLarge as exc:
                self._counter(signal, "rejected").labels(transport, "too_large").inc(checked.accepted)
                raise TooLarge(str(exc)) from None
            ticket.hold_bytes(len(payload))  # only shrinks: the decode budget was larger
            segment = self.spool.append(sig.record, payload)
            self.metrics.spooled_bytes.inc(len(payload))
            self.pipeline.put(sig.kind, payload, ticket, segment)
            self._counter(signal, "accepted").labels(transport).inc(checked.accepted)
            return Result(checked.accepted, checked.rejected, checked.error_message())
        finally:
            ticket.release()  # a no-op once the queue owns the budget

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
        kinds = {s.record: s for s in SIGNALS.values()}
        for segment, kind, payload in self.spool.replay():
            n += 1
            sig = kinds.get(kind)
            if sig is not None:
                try:
                    rows = sig.check(sig.decode(payload)).accepted
                except MalformedRequest as exc:  # pragma: no cover - only intact records are spooled
                    _log.error("spool record in segment %d cannot be decoded, skipped: %s", segment, exc)
                    self.spool.commit({segment: 1})
                    continue
                self.pipeline.reserve(rows, len(payload), block=True)
                ticket = self.pipeline.ticket()
                ticket.rows, ticket.nbytes = rows, len(payload)
                self.pipeline.put(sig.kind, payload, ticket, segment)
            elif kind == KIND_REWARDS:
                rows = json.loads(payload)
                self.pipeline.put_rewards(to_columns(rows), len(rows), segment)
        return n
