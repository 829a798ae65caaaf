"""Durable write-ahead spool: a request is acknowledged only after its record is fsync'd here.

Records go to numbered segment files (``seg-000000000001.wal``); each record is
``<length u32><crc32 u32><kind u8>`` then the payload. Concurrent appenders share one fsync (group
commit). A segment is deleted once every record in it is committed to ClickHouse and a newer segment
is active. On start, :meth:`Spool.replay` yields the records of leftover segments; a torn record at the
end of a segment (a crash mid-write, never acknowledged) ends that segment.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

_log = logging.getLogger(__name__)

KIND_TRACES = 1
KIND_REWARDS = 2
KIND_LOGS = 3
_HEADER = struct.Struct("<IIB")
_PREFIX = "seg-"
_SUFFIX = ".wal"


class Spool:
    """Append, fsync, commit, replay. Thread-safe."""

    def __init__(self, directory: str | os.PathLike, *, fsync: bool = True, segment_bytes: int = 64 << 20):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._pending: dict[int, int] = {}
        existing = self.segments()
        self._leftover = existing
        self._active_no = (existing[-1] + 1) if existing else 1
        self._file = open(self._path(self._active_no), "ab", buffering=0)  # noqa: SIM115 - lives with the spool
        self._size = 0
        self._written = 0  # appends written
        self._synced = 0  # appends known durable
        self._closed = False

    def _path(self, no: int) -> Path:
        return self.dir / f"{_PREFIX}{no:012d}{_SUFFIX}"

    def segments(self) -> list[int]:
        out = []
        for p in self.dir.glob(f"{_PREFIX}*{_SUFFIX}"):
            try:
                out.append(int(p.name[len(_PREFIX) : -len(_SUFFIX)]))
            except ValueError:
                continue
        return sorted(out)

    @property
    def pending_records(self) -> int:
        with self._lock:
            return sum(self._pending.values())

    def bytes_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.dir.glob(f"{_PREFIX}*{_SUFFIX}") if p.exists())

    # ------------------------------------------------------------------
    def append(self, kind: int, payload: bytes) -> int:
        """Write one record durably; return its segment number (pass it to :meth:`commit` later)."""
        record = _HEADER.pack(len(payload), zlib.crc32(payload), kind) + payload
        with self._lock:
            placed = self._write_locked(record, rotate=False)
        if placed is None:
            # The segment is full. Lock order is always _sync_lock, then _lock (as in _sync and close):
            # rotating while holding _lock and then waiting for _sync_lock deadlocks against a group fsync.
            with self._sync_lock, self._lock:
                placed = self._write_locked(record, rotate=True)
        ticket, no = placed
        if self.fsync:
            self._sync(ticket)
        return no

    def _write_locked(self, record: bytes, *, rotate: bool) -> tuple[int, int] | None:
        """Append ``record`` to the active segment; None if it is full and ``rotate`` is False."""
        if self._closed:
            raise RuntimeError("the spool is closed")
        if self._size and self._size + len(record) > self.segment_bytes:
            if not rotate:
                return None
            self._rotate_locked()
        self._file.write(record)
        self._size += len(record)
        self._written += 1
        no = self._active_no
        self._pending[no] = self._pending.get(no, 0) + 1
        return self._written, no

    def _sync(self, ticket: int) -> None:
        # Group commit: one fsync makes every append written before it durable.
        with self._sync_lock:
            if self._synced >= ticket:
                return
            with self._lock:
                target, fd = self._written, self._file.fileno()
            os.fsync(fd)  # outside _lock; rotate and close hold _sync_lock, so fd stays open meanwhile
            self._synced = max(self._synced, target)

    def _rotate_locked(self) -> None:
        """Called with _sync_lock and _lock held."""
        if self.fsync:
            os.fsync(self._file.fileno())
        self._synced = self._written
        self._file.close()
        old = self._active_no
        self._active_no += 1
        self._file = open(self._path(self._active_no), "ab", buffering=0)  # noqa: SIM115
        self._size = 0
        if not self._pending.get(old):
            self._delete_locked(old)

    def _delete_locked(self, no: int) -> None:
        self._pending.pop(no, None)
        try:
            self._path(no).unlink()
        except FileNotFoundError:
            pass

    def commit(self, segment_counts: dict[int, int]) -> None:
        """Records (``segment -> count``) are in ClickHouse: drop segments that hold nothing else."""
        with self._lock:
            for no, count in segment_counts.items():
                left = self._pending.get(no, 0) - count
                self._pending[no] = max(left, 0)
                if left <= 0 and no != self._active_no:
                    self._delete_locked(no)

    # ------------------------------------------------------------------
    def replay(self) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(segment, kind, payload)`` for every intact record left by an earlier run.

        Each yielded record counts as pending until committed, like a fresh append.
        """
        for no in self._leftover:
            path = self._path(no)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            pos, count = 0, 0
            records = []
            while pos + _HEADER.size <= len(data):
                length, crc, kind = _HEADER.unpack_from(data, pos)
                start = pos + _HEADER.size
                payload = data[start : start + length]
                if len(payload) < length or zlib.crc32(payload) != crc:
                    _log.warning(
                        "spool segment %s: torn record at byte %d ignored (never acknowledged)", path, pos
                    )
                    break
                records.append((kind, payload))
                pos = start + length
                count += 1
            with self._lock:
                self._pending[no] = self._pending.get(no, 0) + count
                if count == 0:
                    self._delete_locked(no)
            for kind, payload in records:
                yield no, kind, payload
        self._leftover = []

    def close(self) -> None:
        with self._sync_lock, self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self.fsync:
                    os.fsync(self._file.fileno())
            finally:
                self._file.close()
            # An empty active segment is noise; committed leftovers are gone already.
            if not self._pending.get(self._active_no):
                self._delete_locked(self._active_no)
