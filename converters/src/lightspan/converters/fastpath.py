"""Plain rollouts straight to call-row columns, chunk-wide with Arrow and numpy (no per-span Python objects).

A rollout is *plain* when its rebuild needs none of the special cases: no foreign or GAP spans, no
suppressed or duplicate (same response id) calls, every LLM span's messages and token ids parsed by
ClickHouse with text in both, no evaluation events or log records, no targeted or posted rewards, every parent present, start order already the depth-first
order, at least one call and a final reward. For those, :func:`plain_call_rows` computes exactly the
rows ``rebuild`` + ``assign_credit`` + ``call_rows`` would give (same values, same order); every other
rollout of the chunk goes through ``rebuild`` as before. Used by ``convert`` when the only output is
``rows-parquet`` with credit ``identical``, ``per_step`` or ``discounted`` and no ``agent_match``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lightspan.schemas import attributes as A
from lightspan.schemas import rows as R

from .policy import PolicyTimeline

#: Credit strategies computed here (group strategies need whole task groups of Trajectory objects).
FAST_CREDIT = ("identical", "per_step", "discounted")


@dataclass
class PlainRows:
    """Call rows of the chunk's plain rollouts, and which segments (rollouts) they cover."""

    table: Any  # pyarrow.Table in the rows-parquet schema, rollouts in segment order
    plain: Any  # numpy bool per segment
    row_seg: Any  # numpy int: the segment of each table row
    calls: Any  # numpy int per segment: LLM calls (= rows) of a plain rollout
    tasks: list[str]  # task id per segment ('' for non-plain ones)


def _np(col: Any) -> Any:
    return col.to_numpy(zero_copy_only=False)


def _nonempty(col: Any) -> Any:
    import pyarrow.compute as pc

    return _np(pc.greater(pc.binary_length(col), 0))


def _tree(keys: Any, pkeys: Any, has_parent: Any, n: int) -> tuple[Any, Any, Any]:
    """(parent row or -1, depth, ok per row): ok means the parent is present, precedes the row, and the
    row's subtree is the contiguous run of rows after it (so row order is the depth-first order)."""
    import numpy as np
    import pyarrow.compute as pc

    ok = np.ones(n, dtype=bool)
    counts = pc.value_counts(keys)
    dup_keys = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if len(dup_keys):  # two spans with one id in a rollout: the rebuild keeps the first; leave it to it
        ok &= ~_np(pc.is_in(keys, value_set=dup_keys))
    parent = _np(pc.fill_null(pc.index_in(pkeys, value_set=keys), -1)).astype(np.int64)
    idx = np.arange(n, dtype=np.int64)
    ok &= ~(has_parent & ((parent < 0) | (parent >= idx)))  # missing parent, itself, or later
    parent = np.where(has_parent & ok, parent, -1)
    depth = np.zeros(n, dtype=np.int64)
    anc = parent.copy()
    while (anc >= 0).any():  # as many rounds as the deepest span (parents always precede: no cycles)
        live = anc >= 0
        depth += live
        anc = np.where(live, parent[np.maximum(anc, 0)], -1)
    size = np.ones(n, dtype=np.int64)
    for d in range(int(depth.max(initial=0)), 0, -1):
        rows = np.flatnonzero(depth == d)
        np.add.at(size, parent[rows], size[rows])
    child = parent >= 0
    p = np.maximum(parent, 0)
    ok &= ~child | (idx + size <= p + size[p])
    return parent, depth, ok


def plain_call_rows(
    table: Any,
    arrays: dict[str, Any],
    segments: list[tuple[str, int, int]],
    posted: dict[str, Any],
    schema: Any,
    *,
    credit: str,
    gamma: float,
    reward_name: str,
    with_logs: set[str] | None = None,
    policy: Any = None,
) -> PlainRows:
    """Rows of the plain rollouts among ``segments`` of the sorted span ``table`` (see the module doc)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n, S = table.num_rows, len(segments)
    lengths = np.array([b - a for _, a, b in segments], dtype=np.int64)
    seg_start = np.array([a for _, a, _ in segments], dtype=np.int64)
    row_seg = np.repeat(np.arange(S), lengths)
    col = table.column
    op = col("op")
    llm = _np(pc.is_in(op, value_set=pa.array(sorted(A.LLM_OPERATIONS))))
    bad = _np(pc.is_in(op, value_set=pa.array([A.OP_PLAN, A.OP_GAP_NODE, A.OP_GAP_LEVEL])))
    bad |= _np(col("gap_level")) >= 0
    bad |= _nonempty(col("gap_node"))
    foreign = col("foreign").combine_chunks()
    bad |= np.diff(foreign.offsets.to_numpy()) > 0
    # Any LLM-span content ClickHouse did not parse exactly, or a suppression marker.
    llm_bad = _nonempty(col("suppressed")) | (_np(col("in_ok")) == 0) | (_np(col("out_ok")) == 0)
    p_ok, r_ok, l_ok = (_np(col(c)) != 0 for c in ("p_ok", "r_ok", "l_ok"))
    llm_bad |= (
        (~p_ok & _nonempty(col("p_ids")))
        | (~r_ok & _nonempty(col("r_ids")))
        | (~l_ok & _nonempty(col("lps")))
    )
    # Calls without text (the rebuild decides: content from logs, or skipped), evaluation events.
    llm_bad |= _np(col("no_io")) != 0
    bad |= llm & llm_bad
    bad |= np.diff(col("evals").combine_chunks().offsets.to_numpy()) > 0
    reward_row = _np(col("rval").is_valid())
    bad |= reward_row & (_nonempty(col("r_step")) | _nonempty(col("r_span")))
    # Duplicate response ids (one logical call exported twice) need the rebuild's merge.
    resp = pc.binary_join_element_wise(col("rid"), col("resp_id"), "\x00")
    has_resp = llm & _nonempty(col("resp_id"))
    if has_resp.any():
        rk = resp.filter(pa.array(has_resp))
        counts = pc.value_counts(rk)
        dups = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
        if len(dups):
            bad |= has_resp & _np(pc.is_in(resp, value_set=dups))
    keys = pc.binary_join_element_wise(col("rid"), col("sid"), "\x00")
    pkeys = pc.binary_join_element_wise(col("rid"), col("pid"), "\x00")
    parent, depth, tree_ok = _tree(keys, pkeys, _nonempty(col("pid")), n)
    bad |= ~tree_ok
    # Final reward: the last (latest start; row order breaks ties like the rebuild) reward span named so.
    rname = pc.if_else(_nonempty(col("rname")), col("rname"), A.REWARD_DEFAULT_NAME)
    final_row = reward_row & _np(pc.equal(rname, reward_name))
    last_final = np.full(S, -1, dtype=np.int64)
    fr = np.flatnonzero(final_row)
    np.maximum.at(last_final, row_seg[fr], fr)
    n_calls = np.bincount(row_seg[llm], minlength=S) if n else np.zeros(S, dtype=np.int64)
    plain = (np.bincount(row_seg[bad], minlength=S) == 0) & (n_calls > 0) & (last_final >= 0)
    if posted or with_logs:
        other = set(posted or ()) | (with_logs or set())
        plain &= np.array([rid not in other for rid, _, _ in segments], dtype=bool)
    # Inherited agent names: a span without one takes its parent's (depth order resolves parents first).
    agent = pc.dictionary_encode(col("agent").combine_chunks().cast(pa.string()))
    codes = _np(agent.indices).astype(np.int64)
    empty = np.array([v == "" for v in agent.dictionary.to_pylist()] + [True], dtype=bool)
    for d in range(1, int(depth.max(initial=0)) + 1):
        rows = np.flatnonzero((depth == d) & empty[codes])
        codes[rows] = codes[parent[rows]]
    # First non-empty task id and largest attempt per rollout.
    task_rows = np.flatnonzero(_nonempty(col("task")))
    first_task = np.full(S, n, dtype=np.int64)
    np.minimum.at(first_task, row_seg[task_rows], task_rows)
    tasks_all = col("task").to_pylist() if len(task_rows) else []
    tasks = [tasks_all[first_task[s]] if plain[s] and first_task[s] < n else "" for s in range(S)]
    attempt = np.maximum.reduceat(_np(col("attempt")).astype(np.int64), seg_start) if n else np.zeros(0)
    # The rows: LLM spans of plain rollouts, in order.
    rows = np.flatnonzero(llm & plain[row_seg])
    seg = row_seg[rows]
    kept = np.where(plain, n_calls, 0)
    step = np.arange(len(rows), dtype=np.int64) - (np.cumsum(kept) - kept)[seg]
    count = n_calls[seg]
    is_last = step == count - 1
    rval = _np(col("rval").fill_null(0.0)).astype(np.float64)
    final = rval[last_final[seg]]
    if credit == "identical":
        reward = final.copy()
    elif credit == "per_step":
        reward = np.where(is_last, 0.0 + final, 0.0)
    else:  # discounted, with Python's float power like assign_credit
        exps = (count - step).tolist()
        reward = np.array(
            [f * gamma ** int(e) for f, e in zip(final.tolist(), exps, strict=True)], dtype=np.float64
        )
    src = _np(col("row")).astype(np.int64)[rows]
    take = pa.array(rows)
    idx = {
        "p": pa.array(src, mask=~p_ok[rows]),
        "r": pa.array(src, mask=~r_ok[rows]),
        "l": pa.array(src, mask=~l_ok[rows]),
    }
    rid_col = pa.array([segments[s][0] for s in range(S)], type=pa.string())
    values = {
        R.ROLLOUT_ID: rid_col.take(pa.array(seg)),
        R.TASK_ID: pa.array(tasks, type=pa.string()).take(pa.array(seg)),
        R.ATTEMPT: pa.array(attempt[seg] if len(seg) else np.zeros(0, dtype=np.int64)),
        R.STEP: pa.array(step),
        R.AGENT_NAME: agent.dictionary.take(pa.array(codes[rows])),
        R.TRACE_ID: col("trace").take(take),
        R.SPAN_ID: col("sid").take(take),
        R.MODEL: col("model").take(take),
        R.PROMPT: arrays["in_arr"].take(pa.array(src)),
        R.COMPLETION: arrays["out_arr"].take(pa.array(src)),
        R.PROMPT_TOKEN_IDS: arrays["p_arr"].take(idx["p"]),
        R.COMPLETION_TOKEN_IDS: arrays["r_arr"].take(idx["r"]),
        R.COMPLETION_LOGPROBS: arrays["l_arr"].take(idx["l"]),
        R.REWARD: pa.array(reward, type=pa.float64()),
        R.ADVANTAGE: pa.array(reward, type=pa.float64()),
        R.FINAL_REWARD: pa.array(final, type=pa.float64()),
        R.IS_LAST: pa.array(is_last),
        # converters/policy.py: from the model name, else the publish time line (``policy`` None: names only)
        R.POLICY_VERSION: (policy or PolicyTimeline()).column(
            col("model").take(take), col("start").take(take)
        ),
    }
    out = pa.Table.from_arrays([_as(values[f.name], f.type) for f in schema], schema=schema)
    return PlainRows(table=out, plain=plain, row_seg=seg, calls=n_calls, tasks=tasks)


def _as(arr: Any, typ: Any) -> Any:
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr if arr.type == typ else arr.cast(typ)


__all__ = ["FAST_CREDIT", "PlainRows", "plain_call_rows"]
