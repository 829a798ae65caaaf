"""Policy versions in ClickHouse: the next free version number, and one row per publish.

The table is ``lightspan_policy_versions`` (migration 5 in ``schemas/ddl.py``); converters read it to
date LLM calls (``converters/policy.py``). Versions are global to a store and only grow: the next one is
``max(Version) + 1``. Two publishers racing on one store could take the same number; publish from one
place (the trainer) per store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from lightspan.schemas import ddl

__all__ = ["PolicyRecord", "next_version", "open_store", "record_version"]


@dataclass(frozen=True)
class PolicyRecord:
    version: int
    name: str
    base_model: str
    checkpoint: str
    mechanism: str
    server: str
    published_at: datetime  # UTC
    probe_max_diff: float


def open_store(dsn: str) -> tuple[Any, str]:
    """A client for ``dsn`` with lightspan's schema applied (the table may be new), and its database."""
    from lightspan.storage import apply_schema, connect, parse_dsn

    parsed = parse_dsn(dsn)
    client = connect(parsed)
    apply_schema(client, database=parsed.database)
    return client, parsed.database


def next_version(client: Any, database: str) -> int:
    rows = client.query(
        f"SELECT max(Version), count() FROM {database}.{ddl.POLICY_VERSIONS_TABLE}"
    ).result_rows
    top, n = rows[0] if rows else (0, 0)
    return int(top) + 1 if int(n) else 1


def record_version(client: Any, database: str, rec: PolicyRecord) -> None:
    published = rec.published_at.astimezone(timezone.utc).replace(tzinfo=None)
    client.insert(
        f"{database}.{ddl.POLICY_VERSIONS_TABLE}",
        [
            [
                rec.version,
                rec.name,
                rec.base_model,
                rec.checkpoint,
                rec.mechanism,
                rec.server,
                published,
                float(rec.probe_max_diff),
                datetime.now(timezone.utc).replace(tzinfo=None),
            ]
        ],
        column_names=list(ddl.POLICY_VERSIONS_COLUMNS),
    )
