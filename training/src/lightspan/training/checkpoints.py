"""Which checkpoint a run resumes from, and a metrics file that agrees with it.

transformers writes ``checkpoint-N/`` in place (weights, then optimizer/scheduler/RNG, then
``trainer_state.json`` last, then deletes checkpoints beyond ``save_total_limit``), and its
``get_last_checkpoint`` picks the highest ``N`` whatever the folder holds. A kill mid-save therefore
left a ``checkpoint-N/`` that resume picked and then failed on ("Can't find a valid checkpoint", or a
missing ``trainer_state.json``). Here a checkpoint counts only when it is *complete*: its
``trainer_state.json`` parses and names step ``N``, its weights (and, unless only the model is saved,
its optimizer state) are there. Because ``trainer_state.json`` is written last and older checkpoints
are rotated away only after it, the newest complete checkpoint always exists once one save finished.

A resumed run re-runs the steps after its checkpoint, so the records the killed run logged for those
steps are taken out of ``metrics.jsonl`` (counted in a log line), keeping one record per step.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "checkpoint"  # transformers.trainer_utils.PREFIX_CHECKPOINT_DIR
TRAINER_STATE = "trainer_state.json"  # transformers.trainer.TRAINER_STATE_NAME
_CHECKPOINT_RE = re.compile(rf"^{PREFIX}-(\d+)$")  # the pattern get_last_checkpoint uses
_WEIGHTS = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")
_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# FSDP / DeepSpeed save their own folders; their presence is all that is checked.
_SHARDED_PREFIXES = ("pytorch_model_fsdp", "global_step")
_OPTIMIZER_PREFIXES = ("optimizer", "global_step")


@dataclass
class ResumePoint:
    """Where a run resumes: ``path`` (``None``: from scratch) at ``step``; newer folders that were not usable."""

    path: str | None
    step: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (folder, why it is incomplete)


def checkpoint_step(path: str | os.PathLike[str]) -> int | None:
    """``N`` of a ``checkpoint-N`` folder name, else ``None``."""
    match = _CHECKPOINT_RE.match(Path(path).name)
    return int(match.group(1)) if match else None


def incomplete_reason(path: str | os.PathLike[str], *, need_optimizer: bool = True) -> str | None:
    """Why ``path`` is not a checkpoint a run can resume from, or ``None`` when it is complete."""
    folder = Path(path)
    try:
        names = {p.name for p in folder.iterdir()}
    except OSError as exc:  # deleted under us (rotation, another rank cleaning up)
        return f"unreadable ({exc.strerror or exc})"
    if TRAINER_STATE not in names:
        return f"no {TRAINER_STATE} (killed while saving?)"
    try:
        state = json.loads((folder / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{TRAINER_STATE} is truncated or unreadable"
    step = checkpoint_step(folder)
    if not isinstance(state, dict) or (step is not None and state.get("global_step") != step):
        found = state.get("global_step") if isinstance(state, dict) else None
        return f"{TRAINER_STATE} says global_step {found!r}, not {step}"
    if not _has_weights(folder, names):
        return "no model weights"
    if need_optimizer and not any(n.startswith(_OPTIMIZER_PREFIXES) for n in names):
        return "no optimizer state"
    return None


def _has_weights(folder: Path, names: set[str]) -> bool:
    if any(n in names for n in _WEIGHTS) or any(n.startswith(_SHARDED_PREFIXES) for n in names):
        return True
    for index in _INDEXES:
        if index in names:
            try:
                shards = set(json.loads((folder / index).read_text(encoding="utf-8"))["weight_map"].values())
            except (OSError, ValueError, KeyError, AttributeError):
                return False
            return shards <= names
    return False


def latest_complete(output_dir: str | os.PathLike[str], *, need_optimizer: bool = True) -> ResumePoint:
    """The newest complete ``checkpoint-N`` in ``output_dir``, with every newer incomplete one and why."""
    out = Path(output_dir)
    found = []
    if out.is_dir():
        found = [(s, p) for p in out.iterdir() if p.is_dir() and (s := checkpoint_step(p)) is not None]
    skipped: list[tuple[str, str]] = []
    for step, folder in sorted(found, reverse=True):
        reason = incomplete_reason(folder, need_optimizer=need_optimizer)
        if reason is None:
            return ResumePoint(str(folder), step, skipped)
        skipped.append((str(folder), reason))
    return ResumePoint(None, 0, skipped)


def discard(skipped: list[tuple[str, str]]) -> None:
    """Remove incomplete checkpoint folders (the resumed run saves those steps afresh), one warning each.

    Left in place, a re-save would mix new files with the killed save's, and rotation would count them.
    """
    for folder, reason in skipped:
        log.warning("skipping incomplete checkpoint %s: %s; removed it", folder, reason)
        shutil.rmtree(folder, ignore_errors=True)


def set_aside_metrics(path: str | os.PathLike[str]) -> Path | None:
    """A fresh run (no resume) into a directory holding an earlier run's metrics: move that file aside
    (``metrics.jsonl`` -> ``metrics.jsonl.1``, the next free number) so the new file holds this run only, and
    nothing is deleted. Returns where it went, or None when there was nothing to move."""
    file = Path(path)
    if not file.is_file() or file.stat().st_size == 0:
        return None
    n = 1
    while file.with_name(f"{file.name}.{n}").exists():
        n += 1
    target = file.with_name(f"{file.name}.{n}")
    file.rename(target)
    return target


def trim_metrics(path: str | os.PathLike[str], step: int) -> tuple[list[dict[str, Any]], int]:
    """Keep the records of steps ``<= step`` in a metrics JSONL file; return them and how many were dropped.

    Dropped: records of steps a resumed run will log again, and a last line cut short by a kill. The file
    is replaced atomically, so a kill here leaves the old or the new file, never half of one.
    """
    file = Path(path)
    if not file.is_file():
        return [], 0
    kept: list[dict[str, Any]] = []
    dropped = 0
    for line in file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            dropped += 1
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(record)
        else:
            dropped += 1
    if dropped:
        tmp = file.with_name(file.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        os.replace(tmp, file)
        log.warning(
            "metrics file %s: dropped %d record(s) logged after step %d (those steps run again)",
            file,
            dropped,
            step,
        )
    return kept, dropped


def load_weights(model: Any, folder: str | os.PathLike[str]) -> None:
    """Load a checkpoint's weights (full model or LoRA adapter) into ``model`` without training.

    For a run resumed at its last step: transformers' loop, resumed mid-epoch at ``max_steps``, still
    runs one more step before it checks the limit, so the job does not call ``train()`` then.
    """
    folder = Path(folder)
    if (folder / "adapter_model.safetensors").is_file() or (folder / "adapter_model.bin").is_file():
        from peft import load_peft_weights, set_peft_model_state_dict

        set_peft_model_state_dict(model, load_peft_weights(str(folder)))
        return
    from safetensors.torch import load_file

    files = [folder / "model.safetensors"]
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = [folder / f for f in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
    state: dict[str, Any] = {}
    for file in files:
        state.update(load_file(str(file)))
    result = model.load_state_dict(state, strict=False)  # tied weights are saved once, hence not strict
    if result.unexpected_keys:
        raise RuntimeError(
            f"checkpoint {folder} does not fit the model: unexpected {result.unexpected_keys[:3]}"
        )


__all__ = [
    "ResumePoint",
    "checkpoint_step",
    "discard",
    "incomplete_reason",
    "latest_complete",
    "load_weights",
    "trim_metrics",
]
