"""Fixtures shared by every part's tests: a throwaway embedded ClickHouse store, offline HF hub."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Nothing in the suite may reach a model or dataset hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def chdb_dsn(tmp_path: Path) -> str:
    """A DSN for a fresh embedded chDB store in a temporary directory."""
    return f"chdb://{tmp_path / 'store'}"


@pytest.fixture
def closing() -> Iterator[object]:
    """Register clients to close at teardown: chDB allows one open data directory per process."""
    opened: list = []

    def register(client):
        opened.append(client)
        return client

    yield register
    for client in reversed(opened):
        client.close()


@pytest.fixture
def ch_client(chdb_dsn: str) -> Iterator[object]:
    """A clickhouse-connect client on a fresh embedded store with lightspan's schema applied."""
    from lightspan.storage import apply_schema, connect

    client = connect(chdb_dsn)
    apply_schema(client, database="lightspan")
    yield client
    client.close()
