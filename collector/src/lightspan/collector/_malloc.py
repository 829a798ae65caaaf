"""glibc's allocator, told to give memory back: a bounded queue is only a bound if freed memory returns.

Decoded protobuf messages live in upb arenas allocated with ``malloc``; glibc keeps one heap per thread
(up to 8 per core) and does not return freed pages on its own, so each receiver thread would keep the
high-water mark of its largest request. :func:`limit_arenas` caps the heaps at two (set before the
threads start); :func:`trim` returns free pages after the writer's batches. No-ops off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

_log = logging.getLogger(__name__)
_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3
_libc: ctypes.CDLL | None = None


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            lib = ctypes.CDLL(name or "libc.so.6")
            lib.malloc_trim  # noqa: B018 - glibc only
            lib.mallopt  # noqa: B018
        except (OSError, AttributeError):
            return None
        _libc = lib
    return _libc


def limit_arenas(n: int = 2, mmap_threshold: int = 1 << 20) -> None:
    """At most ``n`` heaps; blocks over ``mmap_threshold`` (request bodies) always mmap'd, so freeing one
    returns it (glibc otherwise raises the threshold after such a free and keeps the next in the heap)."""
    lib = _glibc()
    if lib is None:
        return
    if not lib.mallopt(_M_ARENA_MAX, n) or not lib.mallopt(_M_MMAP_THRESHOLD, mmap_threshold):
        _log.debug("mallopt refused; freed memory may stay with the process")


def trim() -> None:
    lib = _glibc()
    if lib is not None:
        lib.malloc_trim(0)
