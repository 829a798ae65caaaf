"""Apply lightspan's versioned schema idempotently: applying twice is a no-op; a newer store is an error."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lightspan.schemas import ddl

if TYPE_CHECKING:  # pragma: no cover
    from clickhouse_connect.driver.client import Client

_log = logging.getLogger(__name__)


class SchemaError(Exception):
    """The store's schema cannot be used by this version of lightspan."""


def current_version(client: Client, database: str) -> int:
    """The highest migration applied to ``database`` (0 when none)."""
    exists = client.command(f"EXISTS TABLE {database}.{ddl.MIGRATIONS_TABLE}")
    if not int(exists):
        return 0
    rows = client.query(f"SELECT max(Version) FROM {database}.{ddl.MIGRATIONS_TABLE}").result_rows
    return int(rows[0][0] or 0)


def apply_schema(
    client: Client,
    *,
    database: str | None = None,
    cluster: str | None = None,
    ttl_days: int = 0,
    up_to: int | None = None,
) -> list[int]:
    """Create or upgrade every lightspan table; return the migration versions applied now.

    ``up_to`` stops after that migration (a staged upgrade, or a store as an older lightspan left it).
    Raises :class:`SchemaError` when the store was written by a newer lightspan.
    """
    layout = ddl.Layout(
        database=database or getattr(client, "database", None) or "lightspan",
        cluster=cluster,
        ttl_days=ttl_days,
    )
    client.command(f"CREATE DATABASE IF NOT EXISTS {layout.database}{layout.on_cluster}")
    for stmt in ddl.migrations_table(layout):
        client.command(stmt)
    have = current_version(client, layout.database)
    if have > ddl.SCHEMA_VERSION:
        raise SchemaError(
            f"database {layout.database!r} has schema version {have}, newer than this lightspan knows "
            f"({ddl.SCHEMA_VERSION}). Upgrade lightspan (pip install -U lightspan) before using this store."
        )
    applied: list[int] = []
    for migration in ddl.MIGRATIONS:
        if migration.version <= have:
            continue
        if up_to is not None and migration.version > up_to:
            break
        _log.info("applying schema migration %d: %s", migration.version, migration.description)
        for stmt in migration.statements(layout):
            client.command(stmt)
        client.insert(
            f"{layout.database}.{ddl.MIGRATIONS_TABLE}",
            [[migration.version, migration.description]],
            column_names=["Version", "Description"],
        )
        applied.append(migration.version)
    return applied
