"""The batching writer: a queue bounded in bytes and spans, one worker thread, retries, spool commits.

The queue holds what was acknowledged as the request's protobuf bytes (the spool holds the same
bytes), not as rows: rows are ~2-8x larger. A receiver takes a :class:`Ticket` before it holds or
decodes a request (see :mod:`.ingest`); a full budget is backpressure, answered with UNAVAILABLE/503.
The worker gathers items until ``batch_max_spans`` or ``batch_max_bytes`` or ``batch_timeout_s``,
decodes and flattens them (off the request path), inserts them through the sink (retrying with
exponential backoff while ClickHouse is away) and only then tells the spool they are committed.

``progress_at`` moves whenever the worker finishes a batch or has nothing to do; readiness falls when it
stands still with work waiting (:meth:`Pipeline.stalled`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from lightspan.schemas import ddl

from ._malloc import trim
from .otlp import COLUMNS, Flattened, decode_protobuf, flatten, span_count
from .otlp_logs import LOG_COLUMNS, decode_logs, flatten_logs, record_count

if TYPE_CHECKING:  # pragma: no cover
    from .metrics import Metrics
    from .redact import Redactor
    from .spool import Spool

_log = logging.getLogger(__name__)

REWARD_COLUMNS = [c for c in ddl.REWARDS_COLUMNS if c != "IngestedAt"]

SPANS, LOGS, REWARDS = "spans", "logs", "rewards"


class QueueFull(Exception):
    """The pipeline holds as much as it may; the client should retry later."""


class RequestTooLarge(Exception):
    """The request alone needs more than the whole queue; retrying cannot help, sending less can."""


class Sink(Protocol):
    def write_spans(self, columns: dict[str, list], rows: int, /) -> None: ...
    def write_rewards(self, columns: dict[str, list], rows: int, /) -> None: ...


class ClickHouseSink:
    """Column-oriented inserts through one clickhouse-connect client (serialized by ``lock``).

    Native format on purpose: Arrow (pyarrow table built column-wise, through ``insert_arrow`` or chDB's
    ``Python()`` table function) and JSONColumns (orjson), and clickhouse-connect's compiled Rust encoder,
    were measured against it and were no cheaper end to end on embedded chDB (docs/benchmarks/collector.md).
    ``settings`` go with every insert (the embedded engine's are :data:`EMBEDDED_INSERT_SETTINGS`).
    """

    def __init__(
        self,
        client: Any,
        database: str,
        lock: threading.Lock | None = None,
        settings: dict[str, Any] | None = None,
    ):
        self.client = client
        self.spans_table = f"{database}.{ddl.SPANS_TABLE}"
        self.rewards_table = f"{database}.{ddl.REWARDS_TABLE}"
        self.logs_table = f"{database}.{ddl.LOGS_TABLE}"
        self.lock = lock or threading.Lock()
        self.settings = dict(settings) if settings else None

    def _insert(self, table: str, names: list[str], columns: dict[str, list]) -> None:
        data = [columns[c] for c in names]
        with self.lock:
            self.client.insert(table, data, column_names=names, column_oriented=True, settings=self.settings)

    def write_spans(self, columns: dict[str, list], rows: int, /) -> None:
        self._insert(self.spans_table, COLUMNS, columns)

    def write_logs(self, columns: dict[str, list], rows: int, /) -> None:
        self._insert(self.logs_table, LOG_COLUMNS, columns)

    def write_rewards(self, columns: dict[str, list], rows: int, /) -> None:
        self._insert(self.rewards_table, REWARD_COLUMNS, columns)


#: Inserts into the embedded engine run single-threaded: it shares the collector's cores, and one
#: pipeline per insert measured 15-25% less CPU per row than the default thread fan-out, at no loss
#: of wall time on 2 cores (docs/benchmarks/collector.md).
EMBEDDED_INSERT_SETTINGS: dict[str, Any] = {"max_threads": 1, "max_insert_threads": 1}


class MemorySink:
    """Keeps what it is given; for tests of the pipeline alone. ``fail`` makes writes raise."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self.rewards: list[dict[str, Any]] = []
        self.fail = False

    def _rows(self, columns: dict[str, list], rows: int) -> list[dict[str, Any]]:
        if self.fail:
            raise ConnectionError("memory sink told to fail")
        return [{k: v[i] for k, v in columns.items()} for i in range(rows)]

    def write_spans(self, columns: dict[str, list], rows: int, /) -> None:
        self.spans.extend(self._rows(columns, rows))

    def write_logs(self, columns: dict[str, list], rows: int, /) -> None:
        self.logs.extend(self._rows(columns, rows))

    def write_rewards(self, columns: dict[str, list], rows: int, /) -> None:
        self.rewards.extend(self._rows(columns, rows))


@dataclass
class _Item:
    kind: str  # SPANS | LOGS | REWARDS
    payload: bytes | dict[str, list]  # protobuf request bytes, or reward columns
    rows: int
    nbytes: int
    segment: int | None


class Ticket:
    """What one request holds of the pipeline's budget; grown as the request is read and decoded,
    handed to the queue when acknowledged, released if refused. Not thread-safe (one per request)."""

    __slots__ = ("_pipeline", "rows", "nbytes")

    def __init__(self, pipeline: Pipeline):
        self._pipeline = pipeline
        self.rows = 0
        self.nbytes = 0

    def grow(self, rows: int = 0, nbytes: int = 0) -> None:
        self._pipeline.reserve(rows, nbytes)
        self.rows += rows
        self.nbytes += nbytes

    def hold_bytes(self, nbytes: int) -> None:
        """Hold exactly ``nbytes`` (more: reserve the difference, or raise; less: give it back)."""
        if nbytes > self.nbytes:
            self.grow(nbytes=nbytes - self.nbytes)
        elif nbytes < self.nbytes:
            self._pipeline.release(0, self.nbytes - nbytes)
            self.nbytes = nbytes

    def release(self) -> None:
        if self.rows or self.nbytes:
            self._pipeline.release(self.rows, self.nbytes)
        self.rows = self.nbytes = 0


@dataclass
class Pipeline:
    sink: Any
    spool: Spool | None = None
    metrics: Metrics | None = None
    redactor: Redactor | None = None
    batch_max_spans: int = 10_000
    batch_max_bytes: int = 16 << 20
    batch_timeout_s: float = 1.0
    queue_max_spans: int = 50_000
    queue_max_bytes: int = 128 << 20
    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0
    _items: deque = field(default_factory=deque, init=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False)
    _reserved: int = field(default=0, init=False)
    _reserved_bytes: int = field(default=0, init=False)
    _stopping: bool = field(default=False, init=False)
    _deadline: float | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _complete: bool = field(default=True, init=False)
    healthy: bool = field(default=True, init=False)
    last_error: str = field(default="", init=False)
    progress_at: float = field(default_factory=time.monotonic, init=False)
    _writing: bool = field(default=False, init=False)

    # ----------------------------------------------------------- producers
    def reserve(self, rows: int = 0, nbytes: int = 0, *, block: bool = False) -> None:
        """Claim room for ``rows`` spans/records and ``nbytes`` bytes, or raise :class:`QueueFull`
        (``block`` waits instead) or :class:`RequestTooLarge` (more than the whole queue)."""
        if not block and (rows > self.queue_max_spans or nbytes > self.queue_max_bytes):
            what = f"{rows} spans" if rows > self.queue_max_spans else f"{nbytes} bytes while it is decoded"
            raise RequestTooLarge(
                f"the request needs room for {what}; the whole queue holds {self.queue_max_spans} spans and "
                f"{self.queue_max_bytes} bytes: send smaller batches"
            )
        with self._cond:
            while (self._reserved or self._reserved_bytes) and (
                self._reserved + rows > self.queue_max_spans
                or self._reserved_bytes + nbytes > self.queue_max_bytes
            ):
                if not block or self._stopping:
                    raise QueueFull(
                        f"{self._reserved} spans ({self._reserved_bytes} bytes) are waiting for ClickHouse"
                    )
                self._cond.wait(0.1)
            self._reserved += rows
            self._reserved_bytes += nbytes
            self._gauge()

    def release(self, rows: int, nbytes: int = 0) -> None:
        with self._cond:
            self._reserved -= rows
            self._reserved_bytes -= nbytes
            self._gauge()
            self._cond.notify_all()

    def ticket(self) -> Ticket:
        return Ticket(self)

    def put(self, kind: str, payload: bytes, ticket: Ticket, segment: int | None) -> None:
        """Queue an acknowledged request (``kind`` SPANS or LOGS); the ticket's budget moves with it."""
        self._put(_Item(kind, payload, ticket.rows, ticket.nbytes, segment))
        ticket.rows = ticket.nbytes = 0

    def put_rewards(self, columns: dict[str, list], rows: int, segment: int | None) -> None:
        self._put(_Item(REWARDS, columns, rows, 0, segment))

    def _put(self, item: _Item) -> None:
        with self._cond:
            if not self._items:
                self.progress_at = time.monotonic()  # the clock of "no progress" starts with work
            self._items.append(item)
            self._cond.notify_all()

    @property
    def queued_spans(self) -> int:
        return self._reserved

    @property
    def spans_full(self) -> bool:
        """No span more fits: the receivers refuse an export before decoding it (it would be refused after)."""
        return self._reserved >= self.queue_max_spans

    @property
    def queued_bytes(self) -> int:
        return self._reserved_bytes

    def stalled(self, after_s: float) -> bool:
        """Work is waiting and no batch was written for ``after_s`` seconds."""
        with self._cond:
            busy = bool(self._items) or self._writing
        return busy and time.monotonic() - self.progress_at > after_s

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.set(self._reserved)
            self.metrics.queue_bytes.set(self._reserved_bytes)

    # ----------------------------------------------------------- worker
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lightspan-writer", daemon=True)
        self._thread.start()

    def _take_batch(self) -> list[_Item]:
        with self._cond:
            while not self._items and not self._stopping:
                self.progress_at = time.monotonic()  # idle is not stuck
                self._cond.wait(0.5)
            if not self._items:
                return []
            first_at = time.monotonic()
            while not self._stopping:
                rows = sum(i.rows for i in self._items)
                nbytes = sum(i.nbytes for i in self._items)
                left = self.batch_timeout_s - (time.monotonic() - first_at)
                if rows >= self.batch_max_spans or nbytes >= self.batch_max_bytes or left <= 0:
                    break
                self._cond.wait(left)
            batch: list[_Item] = []
            rows = nbytes = 0
            while self._items:
                nxt = self._items[0]
                if batch and (
                    rows + nxt.rows > self.batch_max_spans or nbytes + nxt.nbytes > self.batch_max_bytes
                ):
                    break
                batch.append(self._items.popleft())
                rows += nxt.rows
                nbytes += nxt.nbytes
            self._writing = True
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                if self._stopping:
                    return
                continue
            try:
                ok = self._write(batch)
            finally:
                self._writing = False
            if not ok:
                self._complete = False
                return  # shutdown deadline passed; what is left stays in the spool

    def _chunks(self, kind: str, items: list[_Item]) -> Iterator[tuple[dict[str, list], int]]:
        """Columns for the batch's requests of one kind, decoded and flattened here (off the request
        path): small requests merged into one insert, a request of more than ``batch_max_spans`` spans
        flattened and inserted in slices of that many, so rows in memory stay within the batch limit."""
        if kind == REWARDS:
            columns = {k: list(v) for k, v in items[0].payload.items()}  # type: ignore[union-attr]
            for it in items[1:]:
                for k, v in columns.items():
                    v.extend(it.payload[k])  # type: ignore[index]
            yield columns, sum(i.rows for i in items)
            return
        decode: Any
        flat: Any
        count: Any
        decode, flat, count = (
            (decode_protobuf, flatten, span_count)
            if kind == SPANS
            else (decode_logs, flatten_logs, record_count)
        )
        step = self.batch_max_spans
        out: Flattened | None = None
        for it in items:
            req = decode(it.payload)  # type: ignore[arg-type]
            total = count(req)
            for skip in range(0, max(total, 1), step):
                part = flat(req, self.redactor, skip, step if total > step else None)
                if kind == SPANS and self.metrics is not None and part.no_rollout:
                    self.metrics.spans_without_rollout.inc(part.no_rollout)
                if total > step:  # a large request: its own inserts, one slice at a time
                    yield part.columns, part.rows
                    del part
                elif out is None:
                    out = part
                else:
                    out.extend(part)
            del req
        if out is not None:
            yield out.columns, out.rows

    def _write(self, batch: list[_Item]) -> bool:
        for kind in (SPANS, LOGS, REWARDS):
            items = [i for i in batch if i.kind == kind]
            if not items:
                continue
            chunks = self._chunks(kind, items)
            while True:
                try:
                    chunk = next(chunks, None)
                except Exception:  # a bug, never bad input (validated before it was acknowledged)
                    _log.exception("cannot process %d queued %s requests; they are dropped", len(items), kind)
                    if self.metrics is not None:
                        self.metrics.rejected.labels("writer", "unprocessable").inc(
                            sum(i.rows for i in items)
                        )
                    break
                if chunk is None:
                    break
                columns, rows = chunk
                if rows and not self._insert_with_retry(kind, columns, rows):
                    return False
                del columns, chunk
        segments: dict[int, int] = {}
        for it in batch:
            if it.segment is not None:
                segments[it.segment] = segments.get(it.segment, 0) + 1
        if self.spool is not None and segments:
            self.spool.commit(segments)
        self.release(
            sum(i.rows for i in batch if i.kind != REWARDS), sum(i.nbytes for i in batch if i.kind != REWARDS)
        )
        self.progress_at = time.monotonic()
        trim()  # give the batch's pages back (see _malloc)
        return True

    def _insert_with_retry(self, kind: str, columns: dict[str, list], rows: int) -> bool:
        from tenacity import (
            Retrying,
            retry_if_exception_type,
            stop_any,
            stop_when_event_set,
            wait_exponential,
        )

        give_up = threading.Event()

        def _deadline_passed(_state: Any) -> bool:
            if self._deadline is not None and time.monotonic() > self._deadline:
                give_up.set()
            return give_up.is_set()

        def _log_retry(state: Any) -> None:
            exc = state.outcome.exception()
            self.healthy = False
            self.last_error = f"{type(exc).__name__}: {exc}"
            if self.metrics is not None:
                self.metrics.insert_errors.inc()
            _log.warning(
                "insert of %d %s failed (attempt %d), retrying: %s",
                rows,
                kind,
                state.attempt_number,
                self.last_error,
            )

        write = {SPANS: self.sink.write_spans, REWARDS: self.sink.write_rewards}.get(
            kind
        ) or self.sink.write_logs
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(Exception),
                wait=wait_exponential(multiplier=self.retry_initial_s, max=self.retry_max_s),
                stop=stop_any(stop_when_event_set(give_up), _deadline_passed),
                before_sleep=_log_retry,
                reraise=True,
            ):
                with attempt:
                    started = time.perf_counter()
                    write(columns, rows)
                    if self.metrics is not None:
                        self.metrics.batch_latency.observe(time.perf_counter() - started)
        except Exception as exc:  # only reached when the shutdown deadline passed
            _log.error(
                "giving up on %d %s at shutdown; they stay in the spool for the next start: %s",
                rows,
                kind,
                exc,
            )
            return False
        if not self.healthy:
            _log.info("ClickHouse is back; insert of %d %s succeeded", rows, kind)
        self.healthy = True
        self.last_error = ""
        if self.metrics is not None:
            counter = {SPANS: self.metrics.written, LOGS: self.metrics.logs_written}.get(kind)
            (counter or self.metrics.rewards_written).inc(rows)
        return True

    def stop(self, timeout: float = 30.0) -> bool:
        """Drain the queue within ``timeout`` seconds; return True when everything was written."""
        # Stop taking new work, flush what is queued, give the sink the time that is left.
        with self._cond:
            self._stopping = True
            self._deadline = time.monotonic() + timeout
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout + 1.0)
        with self._cond:
            alive = self._thread is not None and self._thread.is_alive()
            return self._complete and not self._items and not alive
