"""The chunk-wide fast path (plain rollouts straight to Arrow rows) writes exactly the rows the rebuild does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lightspan.converters import ConvertConfig, Selection, convert
from lightspan.converters.fastpath import plain_call_rows
from lightspan.converters.outputs import _arrow_schema
from lightspan.converters.reader import SpanReader
from lightspan.schemas import attributes as A
from tests.converters.builder import Rollout, new_id


def _plain(rid: str, task: str, reward: float, *, agents: int = 2) -> Rollout:
    r = Rollout(rid, task)
    root = r.agent("planner")
    r.chat("plan it", "a plan", parent=root, prompt_ids=[1, 2], response_ids=[3])
    for k in range(agents):  # nested sub-agents without names of their own calls: names are inherited
        sub = r.agent(f"worker{k}", parent=root)
        step = r.span(f"step {k}", parent=sub)
        r.chat(
            [("user", "go"), ("assistant", "a plan")],
            f"done {k}",
            parent=step,
            response_id=f"{rid}-{k}",
            logprobs=[-0.5],
        )
        r.tool("search", {"q": k}, "found", parent=step)
    r.reward(0.25, name="other", parent=root)
    r.reward(reward, parent=root)
    return r


def _special() -> dict[str, Rollout]:
    out: dict[str, Rollout] = {}
    r = _plain("dup", "t2", 1.0)
    r.chat("again", "a plan", response_id="dup-0")  # a second span of one logical call
    out["dup"] = r
    r = _plain("orphan", "t2", 0.5)
    r.chat("lost", "parent", parent=new_id())  # its parent never arrived
    out["orphan"] = r
    r = Rollout("interleaved", "t3")  # sibling subtrees overlap in time: start order is not depth-first
    root = r.agent("solver")
    a = r.agent("a", parent=root)
    b = r.agent("b", parent=root)
    r.chat("from b", "y", parent=b)  # depth-first, a's later call still comes first
    r.chat("from a", "x", parent=a)
    r.reward(1.0, parent=root)
    out["interleaved"] = r
    r = _plain("targeted", "t3", 1.0)
    r.reward(0.5, step=0)
    out["targeted"] = r
    r = _plain("suppressed", "t4", 0.0)
    r.chat("hidden", "no", extra={A.LLM_SUPPRESSED: "true"})
    out["suppressed"] = r
    r = _plain("badids", "t4", 1.0)
    r.chat("odd ids", "ok", extra={A.LLM_PROMPT_TOKEN_IDS: "[1.0, 2]"})
    out["badids"] = r
    r = Rollout("noreward", "t5")
    r.chat("hi", "there")
    out["noreward"] = r
    r = _plain("posted", "t5", 1.0)
    out["posted"] = r
    return out


@pytest.fixture
def mixed(store):
    rows = []
    plain = [_plain(f"p{i}", f"t{i % 3}", [0.0, 0.5, 1.0][i % 3], agents=1 + i % 3) for i in range(7)]
    special = _special()
    for r in plain + list(special.values()):
        rows += r.rows
    store.insert(rows)
    store.post_reward("posted", 0.75)
    return store, {r.rollout_id for r in plain}, set(special)


def _table(out: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted((out / "rows-parquet").glob("*.parquet"))])


@pytest.mark.parametrize("credit", ["identical", "per_step", "discounted"])
@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_fast_rows_equal_rebuilt_rows(mixed, tmp_path, credit, chunk):
    store, _, _ = mixed
    common: dict[str, Any] = dict(
        dsn=store.dsn, credit=credit, gamma=0.9, chunk_rollouts=chunk, require_reward=False
    )
    fast = convert(ConvertConfig(output_dir=str(tmp_path / "fast"), formats=("rows-parquet",), **common))
    # A second format turns the fast path off: every rollout goes through rebuild + assign_credit.
    slow = convert(
        ConvertConfig(output_dir=str(tmp_path / "slow"), formats=("rows-parquet", "rows-jsonl"), **common)
    )
    assert _table(tmp_path / "fast").equals(_table(tmp_path / "slow"))
    for field in ("rollouts_seen", "rollouts_converted", "llm_calls", "spans_read", "rows_dropped"):
        assert getattr(fast, field) == getattr(slow, field), field
    assert fast.skipped == slow.skipped


def test_only_plain_rollouts_take_the_fast_path(mixed):
    store, plain, special = mixed
    from lightspan.storage import connect

    client = connect(store.dsn)
    reader = SpanReader(client, store.database, Selection())
    ids = [rid for _, rid in next(reader.iter_chunks(None, 1000))]
    batch = reader.fetch_spans(ids)
    posted = reader.fetch_posted_rewards(ids)
    got = plain_call_rows(
        batch.table,
        batch.arrays,
        batch.segments,
        posted,
        _arrow_schema("rows-parquet"),
        credit="identical",
        gamma=1.0,
        reward_name="primary",
    )
    flagged = {rid for s, (rid, _, _) in enumerate(batch.segments) if got.plain[s]}
    assert flagged == plain and not flagged & special
    rows = got.table.to_pylist()
    p0 = [r for r in rows if r["rollout_id"] == "p0"]
    assert [r["agent_name"] for r in p0] == ["planner", "worker0"]
    assert [r["step"] for r in p0] == [0, 1] and [r["is_last"] for r in p0] == [False, True]
    assert p0[0]["prompt_token_ids"] == [1, 2] and p0[1]["prompt_token_ids"] is None
    assert p0[1]["completion_logprobs"] == [-0.5] and p0[0]["final_reward"] == 0.0
