"""The batching writer: a bounded in-memory queue, one worker thread, retries, then spool commits.

Receivers :meth:`Pipeline.reserve` room before spooling (a full queue is backpressure, answered with
UNAVAILABLE/503), then :meth:`Pipeline.put` the processed rows. The worker gathers items until
``batch_max_spans`` or ``batch_timeout_s``, inserts them through the sink (retrying with exponential
backoff while ClickHouse is away) and only then tells the spool the records are committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from lightspan.schemas import ddl

from .otlp import COLUMNS, Flattened

if TYPE_CHECKING:  # pragma: no cover
    from .metrics import Metrics
    from .spool import Spool

_log = logging.getLogger(__name__)

REWARD_COLUMNS = [c for c in ddl.REWARDS_COLUMNS if c != "IngestedAt"]


class QueueFull(Exception):
    """The pipeline holds as many spans as it may; the client should retry later."""


class Sink(Protocol):
    def write_spans(self, columns: dict[str, list], rows: int, /) -> None: ...
    def write_rewards(self, columns: dict[str, list], rows: int, /) -> None: ...


class ClickHouseSink:
    """Column-oriented inserts through one clickhouse-connect client (serialized by ``lock``).

    Native format on purpose: Arrow (pyarrow table built column-wise) and JSONColumns (orjson) were
    measured against it and were no faster end to end on embedded chDB (docs/benchmarks/collector.md).
    """

    def __init__(self, client: Any, database: str, lock: threading.Lock | None = None):
        self.client = client
        self.spans_table = f"{database}.{ddl.SPANS_TABLE}"
        self.rewards_table = f"{database}.{ddl.REWARDS_TABLE}"
        self.lock = lock or threading.Lock()

    def write_spans(self, columns: dict[str, list], rows: int, /) -> None:
        data = [columns[c] for c in COLUMNS]
        with self.lock:
            self.client.insert(self.spans_table, data, column_names=COLUMNS, column_oriented=True)

    def write_rewards(self, columns: dict[str, list], rows: int, /) -> None:
        data = [columns[c] for c in REWARD_COLUMNS]
        with self.lock:
            self.client.insert(self.rewards_table, data, column_names=REWARD_COLUMNS, column_oriented=True)


class MemorySink:
    """Keeps what it is given; for tests of the pipeline alone. ``fail`` makes writes raise."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.rewards: list[dict[str, Any]] = []
        self.fail = False

    def _rows(self, columns: dict[str, list], rows: int) -> list[dict[str, Any]]:
        return [{k: v[i] for k, v in columns.items()} for i in range(rows)]

    def write_spans(self, columns: dict[str, list], rows: int, /) -> None:
        if self.fail:
            raise ConnectionError("memory sink told to fail")
        self.spans.extend(self._rows(columns, rows))

    def write_rewards(self, columns: dict[str, list], rows: int, /) -> None:
        if self.fail:
            raise ConnectionError("memory sink told to fail")
        self.rewards.extend(self._rows(columns, rows))


@dataclass
class _Item:
    kind: str  # "spans" | "rewards"
    columns: dict[str, list]
    rows: int
    segment: int | None


@dataclass
class Pipeline:
    sink: Sink
    spool: Spool | None = None
    metrics: Metrics | None = None
    batch_max_spans: int = 10_000
    batch_timeout_s: float = 1.0
    queue_max_spans: int = 50_000
    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0
    _items: deque = field(default_factory=deque, init=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False)
    _reserved: int = field(default=0, init=False)
    _stopping: bool = field(default=False, init=False)
    _deadline: float | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _complete: bool = field(default=True, init=False)
    healthy: bool = field(default=True, init=False)
    last_error: str = field(default="", init=False)

    # ----------------------------------------------------------- producers
    def reserve(self, rows: int, *, block: bool = False) -> None:
        """Claim room for ``rows`` spans or raise :class:`QueueFull` (``block`` waits instead)."""
        with self._cond:
            while self._reserved and self._reserved + rows > self.queue_max_spans:
                if not block or self._stopping:
                    raise QueueFull(f"{self._reserved} spans are waiting for ClickHouse")
                self._cond.wait(0.1)
            self._reserved += rows
            self._gauge()

    def release(self, rows: int) -> None:
        with self._cond:
            self._reserved -= rows
            self._gauge()
            self._cond.notify_all()

    def put_spans(self, flat: Flattened, segment: int | None) -> None:
        self._put(_Item("spans", flat.columns, flat.rows, segment))

    def put_rewards(self, columns: dict[str, list], rows: int, segment: int | None) -> None:
        self._put(_Item("rewards", columns, rows, segment))

    def _put(self, item: _Item) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    @property
    def queued_spans(self) -> int:
        return self._reserved

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.set(self._reserved)

    # ----------------------------------------------------------- worker
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lightspan-writer", daemon=True)
        self._thread.start()

    def _take_batch(self) -> list[_Item]:
        with self._cond:
            while not self._items and not self._stopping:
                self._cond.wait(0.5)
            if not self._items:
                return []
            first_at = time.monotonic()
            while not self._stopping:
                rows = sum(i.rows for i in self._items)
                left = self.batch_timeout_s - (time.monotonic() - first_at)
                if rows >= self.batch_max_spans or left <= 0:
                    break
                self._cond.wait(left)
            batch, rows = [], 0
            while self._items and (not batch or rows + self._items[0].rows <= self.batch_max_spans):
                item = self._items.popleft()
                batch.append(item)
                rows += item.rows
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                if self._stopping:
                    return
                continue
            if not self._write(batch):
                self._complete = False
                return  # shutdown deadline passed; what is left stays in the spool

    def _write(self, batch: list[_Item]) -> bool:
        spans = [i for i in batch if i.kind == "spans"]
        rewards = [i for i in batch if i.kind == "rewards"]
        for kind, items in (("spans", spans), ("rewards", rewards)):
            if not items:
                continue
            columns = items[0].columns
            if len(items) > 1:
                columns = {k: list(v) for k, v in columns.items()}
                for it in items[1:]:
                    for k, v in columns.items():
                        v.extend(it.columns[k])
            rows = sum(i.rows for i in items)
            if not self._insert_with_retry(kind, columns, rows):
                return False
        segments: dict[int, int] = {}
        for it in batch:
            if it.segment is not None:
                segments[it.segment] = segments.get(it.segment, 0) + 1
        if self.spool is not None and segments:
            self.spool.commit(segments)
        self.release(sum(i.rows for i in batch if i.kind == "spans"))
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

        write = self.sink.write_spans if kind == "spans" else self.sink.write_rewards
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
            (self.metrics.written if kind == "spans" else self.metrics.rewards_written).inc(rows)
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
