"""Writers for every output format, and replacement of re-converted rollouts.

Layout under ``output_dir``: one folder per format. ``trajectory-json/<rollout>.json`` holds one
document per rollout (a re-conversion overwrites it). Every other format is written as part files
``<format>/part-<run>-<n>.parquet|jsonl``; parts are written as ``*.tmp`` and renamed when complete.
When a run finishes, rows of the rollouts it (re)converted are removed from older parts
(:meth:`OutputSet.supersede`), so the folder never holds a rollout twice and readers need no dedup.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lightspan.schemas import rows as R

from . import datasets_rows as D
from .model import ArrowRef

ROWS_PER_PART = 500_000
TMP_SUFFIX = ".tmp"


def _arrow_schema(fmt: str) -> Any:
    import pyarrow as pa

    msgs = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    call = {
        R.ROLLOUT_ID: pa.string(),
        R.TASK_ID: pa.string(),
        R.ATTEMPT: pa.int64(),
        R.STEP: pa.int64(),
        R.AGENT_NAME: pa.string(),
        R.TRACE_ID: pa.string(),
        R.SPAN_ID: pa.string(),
        R.MODEL: pa.string(),
        R.PROMPT: msgs,
        R.COMPLETION: msgs,
        R.PROMPT_TOKEN_IDS: pa.list_(pa.int64()),
        R.COMPLETION_TOKEN_IDS: pa.list_(pa.int64()),
        R.COMPLETION_LOGPROBS: pa.list_(pa.float64()),
        R.REWARD: pa.float64(),
        R.ADVANTAGE: pa.float64(),
        R.FINAL_REWARD: pa.float64(),
        R.IS_LAST: pa.bool_(),
        R.POLICY_VERSION: pa.int64(),
    }
    if fmt in ("rows-parquet", "rows-jsonl"):
        return pa.schema(list(call.items()))
    if fmt == "lightningrl":
        return pa.schema([(k, call[k]) for k in R.LIGHTNINGRL_COLUMNS])
    if fmt == "sft":
        return pa.schema(
            [(R.PROMPT, msgs), (R.COMPLETION, msgs), (R.ROLLOUT_ID, pa.string()), (R.TASK_ID, pa.string())]
        )
    if fmt == "kto":
        return pa.schema(
            [
                (R.PROMPT, msgs),
                (R.COMPLETION, msgs),
                (R.KTO_LABEL, pa.bool_()),
                (R.ROLLOUT_ID, pa.string()),
                (R.TASK_ID, pa.string()),
            ]
        )
    if fmt == "dpo":
        return pa.schema(
            [
                (R.PROMPT, msgs),
                (R.DPO_CHOSEN, msgs),
                (R.DPO_REJECTED, msgs),
                (R.TASK_ID, pa.string()),
                (D.DPO_CHOSEN_ROLLOUT, pa.string()),
                (D.DPO_REJECTED_ROLLOUT, pa.string()),
                (D.DPO_CHOSEN_REWARD, pa.float64()),
                (D.DPO_REJECTED_REWARD, pa.float64()),
            ]
        )
    if fmt == "merged":
        return pa.schema(
            [
                (R.ROLLOUT_ID, pa.string()),
                (R.TASK_ID, pa.string()),
                (R.INPUT_IDS, pa.list_(pa.int64())),
                (R.LOSS_MASK, pa.list_(pa.int8())),
                (R.REWARD, pa.float64()),
                (R.ADVANTAGE, pa.float64()),
            ]
        )
    raise ValueError(f"no row schema for format {fmt!r}")


#: The column that says which rollout (or task, for DPO pairs) a row belongs to.
SUPERSEDE_KEY = {"dpo": R.TASK_ID}
#: Formats stored as Parquet; the others as JSON lines.
PARQUET_FORMATS = {"rows-parquet", "sft", "kto", "dpo", "lightningrl", "merged"}


class PartWriter:
    """Appends batches of row dicts to rotating part files of one format."""

    def __init__(self, folder: Path, fmt: str, run_id: str):
        self.folder, self.fmt, self.run_id = folder, fmt, run_id
        self.parquet = fmt in PARQUET_FORMATS
        self.schema = _arrow_schema(fmt) if fmt != "trajectory-jsonl" else None
        self.seq = 0
        self.rows_in_part = 0
        self.rows = 0
        self.files: list[Path] = []
        self._writer: Any = None
        self._fh: Any = None
        self._tmp: Path | None = None
        # Parquet encoding and zstd run outside the GIL: one background thread writes a chunk while the
        # next is rebuilt. At most one write is pending, so memory stays bounded by one chunk's table.
        self._pool: Any = None
        self._pending: Any = None

    def _open(self) -> None:
        ext = "parquet" if self.parquet else "jsonl"
        final = self.folder / f"part-{self.run_id}-{self.seq:05d}.{ext}"
        self._tmp = final.with_name(final.name + TMP_SUFFIX)
        if self.parquet:
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self._tmp, self.schema, compression="zstd")
        else:
            self._fh = open(self._tmp, "w", encoding="utf-8")
        self.seq += 1
        self.rows_in_part = 0

    def write(self, rows: list[dict[str, Any]]) -> int:
        """Append ``rows``; returns how many were dropped because Arrow could not store their values."""
        if not rows:
            return 0
        if self._tmp is None:
            self._open()
        dropped = 0
        if self.parquet:
            try:
                table = rows_to_table(rows, self.schema)
            except (TypeError, ValueError, OverflowError):  # pyarrow's errors derive from these
                good = []
                for r in rows:  # slow path: find the offending rows, keep the rest
                    try:
                        rows_to_table([r], self.schema)
                        good.append(r)
                    except (TypeError, ValueError, OverflowError):
                        dropped += 1
                rows = good
                table = rows_to_table(rows, self.schema)
            self._write_async(table)
        else:
            self._fh.write("".join(_dumps(materialize(r)) + "\n" for r in rows))
        self.rows += len(rows)
        self.rows_in_part += len(rows)
        if self.rows_in_part >= ROWS_PER_PART:
            self._close_part()
        return dropped

    def write_table(self, table: Any) -> int:
        """Append an Arrow table already in this format's schema (the fast path's rows)."""
        if table.num_rows == 0:
            return 0
        if self._tmp is None:
            self._open()
        self._write_async(table)
        self.rows += table.num_rows
        self.rows_in_part += table.num_rows
        if self.rows_in_part >= ROWS_PER_PART:
            self._close_part()
        return 0

    def _write_async(self, table: Any) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lightspan-parquet")
        self._pending = self._pool.submit(self._writer.write_table, table)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # re-raises a write error here

    def _close_part(self) -> None:
        self._wait()
        if self._tmp is None:
            return
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        final = self._tmp.with_name(self._tmp.name[: -len(TMP_SUFFIX)])
        os.replace(self._tmp, final)
        self.files.append(final)
        self._tmp = None

    def close(self) -> None:
        try:
            self._close_part()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


def materialize(row: dict[str, Any]) -> dict[str, Any]:
    """The row with every :class:`ArrowRef` turned into its Python value."""
    if any(type(v) is ArrowRef for v in row.values()):
        return {k: v.get() if type(v) is ArrowRef else v for k, v in row.items()}
    return row


def _column(values: list[Any], typ: Any) -> Any:
    """An Arrow column from Python values and ArrowRefs; refs into one array are gathered with ``take``."""
    import pyarrow as pa

    if not pa.types.is_list(typ):  # only list columns (messages, token ids) can hold ArrowRefs
        return pa.array(values, type=typ)
    source = None
    idx: list[int | None] = []
    for v in values:  # one pass: all refs into one array (or None) -> a single take
        if type(v) is ArrowRef:
            if source is None:
                source = v.array
            elif v.array is not source:
                break
            idx.append(v.row)
        elif v is None:
            idx.append(None)
        else:
            break
    else:
        if source is not None:
            return source.take(pa.array(idx, type=pa.int64())).cast(typ)
        return pa.array(values, type=typ)
    return pa.array([v.get() if type(v) is ArrowRef else v for v in values], type=typ)


def rows_to_table(rows: list[dict[str, Any]], schema: Any) -> Any:
    import pyarrow as pa

    return pa.Table.from_arrays(
        [_column([r.get(f.name) for r in rows], f.type) for f in schema], schema=schema
    )


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def rollout_filename(rollout_id: str) -> str:
    return quote(rollout_id, safe="-_.") + ".json"


class OutputSet:
    """All formats of one run under ``output_dir``."""

    def __init__(self, output_dir: str | os.PathLike[str], formats: tuple[str, ...], run_id: str):
        self.root = Path(output_dir)
        self.formats = formats
        self.run_id = run_id
        self.writers: dict[str, PartWriter] = {}
        self.json_files = 0
        for fmt in formats:
            folder = self.root / fmt
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob("*" + TMP_SUFFIX):  # left by a run that died
                stale.unlink()
            if fmt != "trajectory-json":
                self.writers[fmt] = PartWriter(folder, fmt, run_id)

    def write_json(self, doc: dict[str, Any]) -> None:
        path = self.root / "trajectory-json" / rollout_filename(doc["trace_id"])
        tmp = path.with_name(path.name + TMP_SUFFIX)
        tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, path)
        self.json_files += 1

    def write(self, fmt: str, rows: list[dict[str, Any]]) -> int:
        return self.writers[fmt].write(rows) if fmt in self.writers else 0

    def write_table(self, fmt: str, table: Any) -> int:
        return self.writers[fmt].write_table(table) if fmt in self.writers else 0

    def close(self) -> None:
        for w in self.writers.values():
            w.close()

    @property
    def files(self) -> list[Path]:
        return [f for w in self.writers.values() for f in w.files]

    def rows_written(self) -> dict[str, int]:
        out = {fmt: w.rows for fmt, w in self.writers.items()}
        if "trajectory-json" in self.formats:
            out["trajectory-json"] = self.json_files
        return out

    def supersede(self, rollout_ids: set[str], task_ids: set[str]) -> int:
        """Drop rows of ``rollout_ids`` (DPO: ``task_ids``) from parts older than this run; returns rows dropped."""
        dropped = 0
        mine = {f.name for f in self.files}
        for fmt, w in self.writers.items():
            keys = task_ids if SUPERSEDE_KEY.get(fmt) == R.TASK_ID else rollout_ids
            if not keys:
                continue
            key_col = SUPERSEDE_KEY.get(fmt, R.ROLLOUT_ID if fmt != "trajectory-jsonl" else "trace_id")
            for part in sorted(w.folder.glob("part-*")):
                if part.name in mine or part.name.endswith(TMP_SUFFIX):
                    continue
                dropped += (
                    _drop_parquet(part, key_col, keys) if w.parquet else _drop_jsonl(part, key_col, keys)
                )
        return dropped


def _drop_parquet(part: Path, key_col: str, keys: set[str]) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    value_set = pa.array(sorted(keys), type=pa.string())
    hit = pc.is_in(pq.read_table(part, columns=[key_col]).column(key_col), value_set=value_set)
    n = pc.sum(hit).as_py() or 0
    if not n:
        return 0
    table = pq.read_table(part)
    kept = table.filter(pc.invert(pc.is_in(table.column(key_col), value_set=value_set)))
    if kept.num_rows == 0:
        part.unlink()
    else:
        tmp = part.with_name(part.name + TMP_SUFFIX)
        pq.write_table(kept, tmp, compression="zstd")
        os.replace(tmp, part)
    return n


def _drop_jsonl(part: Path, key_col: str, keys: set[str]) -> int:
    tmp = part.with_name(part.name + TMP_SUFFIX)
    n = kept = 0
    with open(part, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
        for line in src:
            if line.strip() and json.loads(line).get(key_col) in keys:
                n += 1
                continue
            dst.write(line)
            kept += 1
    if not n:
        tmp.unlink()
    elif kept == 0:
        tmp.unlink()
        part.unlink()
    else:
        os.replace(tmp, part)
    return n


__all__ = ["OutputSet", "PARQUET_FORMATS", "PartWriter", "ROWS_PER_PART", "rollout_filename"]
