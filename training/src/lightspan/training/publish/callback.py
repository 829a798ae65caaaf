"""``PublishCallback``: publish every checkpoint the trainer saves, so rollouts use the newest policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from .publisher import DEFAULT_TOLERANCE, PublishResult, publish_checkpoint

__all__ = ["PublishCallback"]


class PublishCallback(TrainerCallback):
    """On each save (rank 0 only), publish ``<output_dir>/checkpoint-<step>`` to ``server_url``.

    A full run saves full weights, a LoRA run its adapter: the mechanism follows (``publish_checkpoint``).
    A failed publish raises, stopping training: a loop that silently keeps serving an old policy trains
    on stale data. ``results`` lists every publish.

    >>> trainer.add_callback(PublishCallback("http://127.0.0.1:8000", dsn="http://127.0.0.1:8123"))  # doctest: +SKIP
    """

    def __init__(
        self,
        server_url: str,
        *,
        dsn: str | None = None,
        base_model: str | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        self.server_url, self.dsn, self.base_model, self.tolerance = server_url, dsn, base_model, tolerance
        self.results: list[PublishResult] = []

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.results.append(
            publish_checkpoint(
                ckpt, self.server_url, dsn=self.dsn, base_model=self.base_model, tolerance=self.tolerance
            )
        )
