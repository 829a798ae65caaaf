"""Per-step metrics for every algorithm: tokens/s and GPU memory added to the trainer's logs, a JSONL file.

``MeteredMixin`` goes in front of any transformers/TRL trainer class (``class T(MeteredMixin, SFTTrainer)``)
so the extra values reach every log consumer: the progress bar, TensorBoard, and :class:`JsonlMetricsCallback`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class MeteredMixin:
    """Adds ``tokens_per_s`` (input tokens since the previous log) and ``gpu_mem_gb`` to each log."""

    _meter_last: tuple[float, int] | None = None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:  # noqa: D401
        import torch

        state = self.state  # type: ignore[attr-defined]
        now, seen = time.perf_counter(), int(getattr(state, "num_input_tokens_seen", 0) or 0)
        if "loss" in logs or any(k.startswith("rl/") for k in logs):
            if self._meter_last is not None and now > self._meter_last[0] and seen >= self._meter_last[1]:
                logs["tokens_per_s"] = round((seen - self._meter_last[1]) / (now - self._meter_last[0]), 2)
            if torch.cuda.is_available():
                logs["gpu_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        self._meter_last = (now, seen)
        super().log(logs, start_time)  # type: ignore[misc]

    def _inner_training_loop(self, *args: Any, **kwargs: Any):
        self._meter_last = (time.perf_counter(), int(getattr(self.state, "num_input_tokens_seen", 0) or 0))  # type: ignore[attr-defined]
        return super()._inner_training_loop(*args, **kwargs)  # type: ignore[misc]


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


class JsonlMetricsCallback(TrainerCallback):
    """Append one JSON object per log event: ``{"step", "epoch", "time", ...logs}``. Main process only."""

    def __init__(self, path: str | Path, algo: str) -> None:
        self.path = Path(path)
        self.algo = algo
        self.last: dict[str, Any] = {}
        self.last_step: dict[str, Any] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "algo": self.algo, "time": round(time.time(), 3)}
        record.update({k: _jsonable(v) for k, v in logs.items()})
        self.last = record
        if "loss" in record:
            self.last_step = record
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics JSONL file, in order."""
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


__all__ = ["JsonlMetricsCallback", "MeteredMixin", "read_metrics"]
