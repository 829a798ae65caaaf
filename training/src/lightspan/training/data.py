"""Read the converters' call rows (schemas/rows.py) and shape them for each algorithm.

Input is a Parquet/JSONL file, a directory of them, a ``datasets.Dataset``, or a ClickHouse DSN
(read through ``lightspan.converters``, imported only then). Views: SFT keeps rewarded rows,
KTO labels rows from advantage or reward, DPO pairs calls of the same task with the same prompt.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from lightspan.schemas import rows as R

log = logging.getLogger(__name__)

REQUIRED = (R.PROMPT, R.COMPLETION)
_DSN_PREFIXES = ("chdb://", "http://", "https://", "clickhouse://")
#: Folders ``lightspan convert`` writes under its output dir that hold call rows, in order of preference.
CONVERTER_FOLDERS = ("rows-parquet", "rows-jsonl", "lightningrl")


def is_dsn(data: Any) -> bool:
    return isinstance(data, str) and data.lower().startswith(_DSN_PREFIXES)


def _data_files(path: Path) -> tuple[str, list[str]]:
    """The Parquet (preferred) or JSONL files under a path that hold call rows."""
    if path.is_file():
        kind = "parquet" if path.suffix == ".parquet" else "json"
        if path.suffix not in (".parquet", ".jsonl", ".json"):
            raise ValueError(f"{str(path)!r}: unsupported file type; use .parquet, .jsonl or .json.")
        return kind, [str(path)]
    for view in CONVERTER_FOLDERS:  # a converter output root: read its call rows, not every view
        if (path / view).is_dir():
            return _data_files(path / view)
    candidates: dict[str, list[Path]] = {
        "parquet": sorted(path.rglob("*.parquet")),
        "json": sorted([*path.rglob("*.jsonl"), *path.rglob("*.json")]),
    }
    for kind, files in candidates.items():
        good = [
            str(f) for f in files if REQUIRED[0] in _columns(f, kind) and REQUIRED[1] in _columns(f, kind)
        ]
        if good:
            return kind, good
    raise ValueError(
        f"no call-row files under {str(path)!r}: expected .parquet or .jsonl files with columns "
        f"{list(REQUIRED)} (as written by 'lightspan convert')."
    )


def _columns(file: Path, kind: str) -> set[str]:
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return set(pq.read_schema(file).names)
        with file.open(encoding="utf-8") as fh:
            first = fh.readline()
        obj = json.loads(first) if first.strip() else {}
        return set(obj) if isinstance(obj, dict) else set()
    except Exception:  # unreadable file: not a candidate
        return set()


def _count_rows(kind: str, files: list[str]) -> int:
    """Rows in the files, read from Parquet metadata or by counting non-blank JSON lines."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        return sum(pq.read_metadata(f).num_rows for f in files)
    total = 0
    for f in files:
        with open(f, encoding="utf-8") as fh:
            total += sum(1 for line in fh if line.strip())
    return total


def _load_dsn(dsn: str, work_dir: Path, credit: str):
    """Convert straight from ClickHouse through the converters' public API, then read the call rows."""
    try:
        from lightspan.converters import ConvertConfig, convert, load_rows
    except ImportError as exc:
        raise RuntimeError(
            f"reading a DSN needs lightspan.converters ({exc}). Install with: pip install lightspan[all]"
        ) from exc
    out = work_dir / "converted"
    report = convert(ConvertConfig(dsn=dsn, output_dir=str(out), formats=("rows-parquet",), credit=credit))
    folder = out / "rows-parquet"
    if not any(folder.glob("*.parquet")):
        raise ValueError(
            f"converting {dsn!r} produced no training rows ({report}); are there finished, rewarded rollouts?"
        )
    return load_rows(folder)


def _as_dataset(rows: Any):
    import datasets

    if isinstance(rows, datasets.Dataset):
        return rows
    rows = list(rows)
    return datasets.Dataset.from_list(rows)


def load_dataset_source(data: Any, work_dir: str | Path = ".", *, credit: str = "grpo") -> Any:
    """Any accepted ``data`` -> a ``datasets.Dataset`` of call rows, checked for the required columns."""
    import datasets

    if isinstance(data, datasets.Dataset):
        ds = data
    elif isinstance(data, (list, tuple)):
        ds = _as_dataset(data)
    elif is_dsn(data):
        ds = _load_dsn(data, Path(work_dir), credit)
    elif isinstance(data, (str, Path)):
        path = Path(data).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"data {str(data)!r} is neither an existing file/directory nor a DSN (chdb:///dir, http://host:8123/db)."
            )
        kind, files = _data_files(path)
        if _count_rows(kind, files) == 0:  # datasets raises an unhelpful error on empty files
            raise ValueError(f"the training data {str(data)!r} holds no rows.")
        ds = datasets.Dataset.from_parquet(files) if kind == "parquet" else datasets.Dataset.from_json(files)
    else:
        raise TypeError(
            f"data must be a path, a DSN, a datasets.Dataset or a list of rows, not {type(data).__name__}."
        )
    missing = sorted(set(REQUIRED) - set(ds.column_names))
    if missing:
        raise ValueError(
            f"training rows lack column(s) {missing}; got {sorted(ds.column_names)} (see schemas/rows.py)."
        )
    if len(ds) == 0:
        raise ValueError("the training data holds no rows.")
    return ds


# --- helpers shared by the views -------------------------------------------------------------------
def messages(value: Any, role: str = "assistant") -> list[dict[str, str]]:
    """Normalize a prompt/completion cell to ``[{"role", "content"}]`` (a bare string becomes one message)."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return [{"role": role, "content": value}]
        value = parsed if isinstance(parsed, list) else [{"role": role, "content": value}]
    out = []
    for m in value:
        if not isinstance(m, dict) or "role" not in m:
            raise ValueError(f"a message must be a mapping with 'role' and 'content', got {m!r}.")
        out.append({"role": str(m["role"]), "content": "" if m.get("content") is None else str(m["content"])})
    return out


def _num(row: dict[str, Any], key: str, default: float = 0.0) -> float:
    value = row.get(key)
    return default if value is None else float(value)


def sft_view(ds: Any, min_reward: float) -> Any:
    """Rows whose reward is at least ``min_reward``, as TRL's conversational prompt-completion."""
    import datasets

    kept = [
        {R.PROMPT: messages(r[R.PROMPT], "user"), R.COMPLETION: messages(r[R.COMPLETION])}
        for r in ds
        if _num(r, R.REWARD) >= min_reward and r.get(R.COMPLETION)
    ]
    if not kept:
        raise ValueError(
            f"sft: no row has reward >= {min_reward} (sft_min_reward); lower it or collect better rollouts."
        )
    return datasets.Dataset.from_list(kept)


def kto_view(ds: Any, label_from: str, min_reward: float) -> Any:
    """Every row with ``label`` True when desirable (advantage > 0, or reward >= min_reward)."""
    import datasets

    out = []
    for r in ds:
        good = _num(r, R.ADVANTAGE) > 0 if label_from == "advantage" else _num(r, R.REWARD) >= min_reward
        out.append(
            {
                R.PROMPT: messages(r[R.PROMPT], "user"),
                R.COMPLETION: messages(r[R.COMPLETION]),
                R.KTO_LABEL: good,
            }
        )
    if len({o[R.KTO_LABEL] for o in out}) < 2:
        log.warning("kto: every row has the same label; KTO learns little without both kinds.")
    return datasets.Dataset.from_list(out)


def dpo_view(ds: Any, min_margin: float) -> Any:
    """Pairs of calls with the same task and the same prompt: i-th best against i-th worst by reward."""
    import datasets

    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in ds:
        prompt = messages(r[R.PROMPT], "user")
        groups[(str(r.get(R.TASK_ID)), json.dumps(prompt, sort_keys=True))].append({**r, R.PROMPT: prompt})
    pairs = []
    for calls in groups.values():
        calls.sort(key=lambda c: _num(c, R.REWARD), reverse=True)
        for best, worst in zip(
            calls[: len(calls) // 2], reversed(calls[len(calls) - len(calls) // 2 :]), strict=True
        ):
            if _num(best, R.REWARD) - _num(worst, R.REWARD) > min_margin:
                pairs.append(
                    {
                        R.PROMPT: best[R.PROMPT],
                        R.DPO_CHOSEN: messages(best[R.COMPLETION]),
                        R.DPO_REJECTED: messages(worst[R.COMPLETION]),
                    }
                )
    if not pairs:
        raise ValueError(
            "dpo: no pair of calls shares a task and a prompt with different rewards; DPO needs several "
            f"rollouts per task (reward gap > dpo_min_margin={min_margin})."
        )
    return datasets.Dataset.from_list(pairs)


__all__ = ["dpo_view", "is_dsn", "kto_view", "load_dataset_source", "messages", "sft_view"]
