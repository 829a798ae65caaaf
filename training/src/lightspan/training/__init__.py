"""lightspan.training: train a policy on converted trajectories with TRL, plus reward functions.

Public API (heavy dependencies load on first use, so ``lightspan.training.rewards`` stays light)::

    from lightspan.training import TrainConfig, train, TrainResult, build_tiny_model, rewards

    model = build_tiny_model("tiny-model")
    result = train(TrainConfig(algo="lightningrl", model=model, data="converted/", max_steps=20))
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .version import __version__ as __version__

_LAZY = {
    "TrainConfig": "lightspan.training.config",
    "train": "lightspan.training.job",
    "TrainResult": "lightspan.training.job",
    "build_tiny_model": "lightspan.training.tiny_model",
    "rewards": "lightspan.training.rewards",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lightspan.training' has no attribute {name!r}")
    if name == "rewards":
        return import_module(module)
    try:
        return getattr(import_module(module), name)
    except ImportError as exc:  # torch / transformers / trl missing
        raise ImportError(
            f"lightspan.training.{name} needs the training extras ({exc}). "
            "Install with: pip install 'lightspan[train]'"
        ) from exc
