"""Which policy version served each LLM call: from the served model name, else the publish time line.

``lightspan publish`` gives every published policy an int version and records it in ClickHouse
(``lightspan_policy_versions``: version, name, checkpoint, mechanism, server, published at). A call's
version is, in order:

1. the version in its model name, when the name is versioned: ``<base>@v<N>`` (the name publish gives a
   vLLM LoRA adapter, see :func:`versioned_name`), so the call names its policy exactly;
2. else the version most recently published under that model name before the call started (full-weight
   reloads keep the served name, so only the time line can tell); a call that started while a reload
   was under way may be dated to the version before it;
3. else ``-1`` (unknown: nothing was published under that name before the call).

Trainers read it as the ``policy_version`` column of the rows (staleness, importance sampling).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lightspan.schemas import ddl

from .model import Trajectory

__all__ = ["UNKNOWN_VERSION", "PolicyTimeline", "version_from_name", "versioned_name"]

UNKNOWN_VERSION = -1
_VERSIONED = re.compile(r"@v(\d+)$")
_VERSIONED_ARROW = r"@v(?P<v>\d+)$"


def versioned_name(base: str, version: int) -> str:
    """The model name that identifies ``version`` of ``base`` (``policy@v3``)."""
    if version < 0:
        raise ValueError(f"a policy version must be >= 0, got {version}")
    return f"{base}@v{version}"


def version_from_name(model: str) -> int | None:
    """The version a ``<base>@v<N>`` name carries, else None."""
    m = _VERSIONED.search(model or "")
    return int(m.group(1)) if m else None


@dataclass
class PolicyTimeline:
    """Published versions per model name, in publish order (nanoseconds since the epoch)."""

    by_name: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict)

    @classmethod
    def from_records(cls, records: Iterable[tuple[str, int, int]]) -> PolicyTimeline:
        """From ``(name, version, published_ns)`` records in any order."""
        grouped: dict[str, list[tuple[int, int]]] = {}
        for name, version, ns in records:
            grouped.setdefault(str(name), []).append((int(ns), int(version)))
        out = cls()
        for name, items in grouped.items():
            items.sort()
            out.by_name[name] = ([t for t, _ in items], [v for _, v in items])
        return out

    @classmethod
    def load(cls, client: Any, database: str) -> PolicyTimeline:
        """Read the time line from ClickHouse; a store without the table (nothing published) is empty."""
        table = f"{database}.{ddl.POLICY_VERSIONS_TABLE}"
        exists = client.query(f"EXISTS TABLE {table}").result_rows
        if not exists or not int(exists[0][0]):
            return cls()
        rows = client.query(
            f"SELECT Name, Version, toUnixTimestamp64Nano(PublishedAt) FROM {table} FINAL"
        ).result_rows
        return cls.from_records((str(n), int(v), int(t)) for n, v, t in rows)

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def version_at(self, model: str, start_ns: int) -> int:
        """The version serving ``model`` at ``start_ns`` (see the module doc for the order of rules)."""
        named = version_from_name(model)
        if named is not None:
            return named
        line = self.by_name.get(model)
        if line is None:
            return UNKNOWN_VERSION
        i = bisect.bisect_right(line[0], int(start_ns)) - 1
        return line[1][i] if i >= 0 else UNKNOWN_VERSION

    def annotate(self, trajs: Iterable[Trajectory]) -> None:
        """Set ``policy_version`` on every call of ``trajs``."""
        for t in trajs:
            for c in t.calls:
                c.policy_version = self.version_at(c.model, c.start_ns)

    def column(self, models: Any, starts: Any) -> Any:
        """``policy_version`` for Arrow columns of model names and start times (the converters' fast path)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(models, pa.ChunkedArray):
            models = models.combine_chunks()
        if isinstance(starts, pa.ChunkedArray):
            starts = starts.combine_chunks()
        models = models.cast(pa.string())
        n = len(models)
        out = np.full(n, UNKNOWN_VERSION, dtype=np.int64)
        if self.by_name:
            t = starts.cast(pa.int64()).to_numpy(zero_copy_only=False)
            for name, (times, versions) in self.by_name.items():
                eq = pc.equal(models, name)  # pyright: ignore[reportAttributeAccessIssue]
                hit = pc.fill_null(eq, False).to_numpy(zero_copy_only=False)
                if hit.any():
                    idx = np.searchsorted(np.asarray(times, dtype=np.int64), t[hit], side="right") - 1
                    vals = np.asarray(versions, dtype=np.int64)[np.maximum(idx, 0)]
                    out[hit] = np.where(idx >= 0, vals, UNKNOWN_VERSION)
        named = pc.struct_field(pc.extract_regex(models, _VERSIONED_ARROW), [0])  # pyright: ignore[reportAttributeAccessIssue]
        has = named.is_valid().to_numpy(zero_copy_only=False)
        if has.any():
            vals = pc.cast(pc.fill_null(named, "0"), pa.int64()).to_numpy(zero_copy_only=False)
            out = np.where(has, vals, out)
        return pa.array(out, type=pa.int64())
