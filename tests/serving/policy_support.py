"""Shared by the publish tests (lightspan serve) and the vLLM tier: traced rollouts into a chDB store."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:  # tests.support / tests.converters are imported from the repo root
    sys.path.insert(0, _REPO)


def fresh_store() -> tuple[Any, str, str]:
    """(client, database, dsn) of a new database on this process's chDB directory, schema applied."""
    from lightspan.storage import apply_schema
    from tests.converters.conftest import _connect

    database = f"pub_{uuid.uuid4().hex[:12]}"
    client, dsn = _connect(database)
    apply_schema(client, database=database)
    return client, database, dsn


def traced_rollout(client: Any, model: str, rollout_id: str, **create: Any) -> Any:
    """One rollout with one chat call through the instrumented openai ``client``, rewarded 1.0."""
    from lightspan.instrumentation import emit_reward, rollout

    with rollout(rollout_id=rollout_id, task_id="probe-task", agent_name="publisher-test"):
        resp = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "hello world"}],
            max_tokens=4,
            temperature=0,
            logprobs=True,
            extra_body={"return_token_ids": True},
            **create,
        )
        emit_reward(1.0)
    return resp


def store_spans(client: Any, database: str) -> int:
    """Insert every finished span of the shared in-memory exporter into the store; returns how many."""
    from tests.converters.builder import insert_spans, rows_from_readable
    from tests.support.spans import memory_exporter

    spans = list(memory_exporter(clear=False).get_finished_spans())
    insert_spans(client, database, rows_from_readable(spans), mode="collector")
    return len(spans)


def converted_versions(dsn: str, out: Path, fmt: str = "rows-parquet") -> dict[str, list[int]]:
    """rollout id -> policy_version of its rows, after ``convert`` into ``out`` as ``fmt``."""
    from lightspan.converters import ConvertConfig, convert
    from lightspan.converters.load import load_rows

    convert(ConvertConfig(dsn=dsn, output_dir=str(out), formats=(fmt,)))
    rows = load_rows(out / fmt, keep_ids=True).to_list()
    by: dict[str, list[int]] = {}
    for r in rows:
        by.setdefault(r["rollout_id"], []).append(r["policy_version"])
    return by
