"""A throwaway embedded store per test: one chDB directory per process (chDB allows one), one database per test."""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

_DIR: str | None = None


def process_store_dir() -> str:
    """chDB can open a single data directory per process; every converters test shares it."""
    global _DIR
    if _DIR is None:
        _DIR = tempfile.mkdtemp(prefix="lightspan-conv-")
        atexit.register(shutil.rmtree, _DIR, ignore_errors=True)
    return _DIR


@dataclass
class Store:
    client: Any
    database: str
    dsn: str

    def insert(self, rows: list[dict[str, Any]], mode: str = "contrib") -> None:
        from tests.converters.builder import insert_spans

        insert_spans(self.client, self.database, rows, mode)

    def post_reward(self, rollout_id: str, value: float, **kw: Any) -> None:
        from tests.converters.builder import post_reward

        post_reward(self.client, self.database, rollout_id, value, **kw)


def _connect(database: str) -> tuple[Any, str]:
    """A client on this process's store; if another test folder's client still holds the engine open at
    its own directory (chDB allows one per process), use that directory with our own database."""
    from lightspan.storage import StorageError, connect

    dsn = f"chdb://{process_store_dir()}?database={database}"
    try:
        return connect(dsn), dsn
    except StorageError as exc:
        held = re.search(r"already initialized with path '([^']+)'", str(exc))
        if not held:
            raise
        dsn = f"chdb://{held.group(1)}?database={database}"
        return connect(dsn), dsn


@pytest.fixture
def store() -> Store:
    from lightspan.storage import apply_schema

    database = f"conv_{uuid.uuid4().hex[:12]}"
    client, dsn = _connect(database)
    apply_schema(client, database=database)
    yield Store(client, database, dsn)
    client.command(f"DROP DATABASE IF EXISTS {database}")
    client.close()
