"""Read written outputs back as Hugging Face ``datasets.Dataset`` objects (what the trainer uses)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lightspan.schemas import rows as R

from .outputs import TMP_SUFFIX

#: The TRL columns of each view; other columns (rollout/task ids, DPO rewards) are bookkeeping.
VIEW_COLUMNS: dict[str, tuple[str, ...]] = {
    "sft": R.SFT_COLUMNS,
    "kto": R.KTO_COLUMNS,
    "dpo": R.DPO_COLUMNS,
    "lightningrl": R.LIGHTNINGRL_COLUMNS,
    "merged": R.TRAJECTORY_ROW_COLUMNS,
}


def _files(path: Path) -> tuple[list[Path], str]:
    if path.is_file():
        return [path], path.suffix.lstrip(".")
    parquet = sorted(p for p in path.glob("part-*.parquet"))
    jsonl = sorted(p for p in path.glob("part-*.jsonl"))
    if parquet:
        return parquet, "parquet"
    if jsonl:
        return jsonl, "jsonl"
    raise FileNotFoundError(
        f"no part-*.parquet or part-*.jsonl files in {path}; give a format folder such as OUTPUT_DIR/rows-parquet"
    )


def load_rows(path: str | os.PathLike[str], *, keep_ids: bool = False) -> Any:
    """A ``datasets.Dataset`` of the rows in a format folder (or one part file).

    For the TRL views (sft, kto, dpo, lightningrl, merged) only the contract columns are kept unless
    ``keep_ids`` is true; call rows keep every column.
    """
    import datasets

    p = Path(path)
    files, kind = _files(p)
    files = [f for f in files if not f.name.endswith(TMP_SUFFIX)]
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.concat_tables([pq.read_table(f) for f in files]) if files else None
        ds = datasets.Dataset(table)
    else:
        ds = datasets.Dataset.from_json([str(f) for f in files])
    view = p.name if p.is_dir() else p.parent.name
    if not keep_ids and view in VIEW_COLUMNS:
        wanted = [c for c in VIEW_COLUMNS[view] if c in ds.column_names]
        ds = ds.select_columns(wanted)
    return ds


def to_dataset(rows: Iterable[dict[str, Any]] | Any, fmt: str = "rows-parquet") -> Any:
    """Rows (dicts) or trajectories as a ``datasets.Dataset`` with the output schema of ``fmt``."""
    import datasets

    from . import datasets_rows as D
    from .model import Trajectory
    from .outputs import _arrow_schema, rows_to_table

    items = list(rows)
    if items and isinstance(items[0], Trajectory):
        items = [r for t in items for r in D.call_rows(t)]
    return datasets.Dataset(rows_to_table(items, _arrow_schema(fmt)))


__all__ = ["VIEW_COLUMNS", "load_rows", "to_dataset"]
