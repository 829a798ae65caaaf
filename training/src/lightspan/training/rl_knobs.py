"""The lightningrl knobs' names, allowed values and checks, with no heavy import (``TrainConfig`` uses them).

Names follow TRL ``GRPOConfig`` (``loss_type``, ``epsilon``, ``epsilon_high``, ``delta``, ``beta``,
``num_iterations``); the importance-sampling knobs are TRL's ``vllm_importance_sampling_*`` without the vLLM
prefix, since here the behaviour policy is whatever served the agent.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields
from typing import Any

LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
IMPORTANCE_SAMPLING_MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")
IMPORTANCE_SAMPLING_CHOICES = (*IMPORTANCE_SAMPLING_MODES, "none")
STALE_ROW_RULES = ("drop", "downweight")
#: deprecated ``loss_aggregation`` values -> TRL ``loss_type``
LOSS_AGGREGATION_ALIASES = {"token_mean": "bnpo", "sequence_mean": "grpo"}


@dataclass(kw_only=True)
class RLKnobs:
    """The lightningrl fields ``TrainConfig`` and ``LightningRLConfig`` share (one declaration for both).

    ``beta`` is not here: ``TrainConfig.beta`` also serves kto/dpo (default ``None``, resolved per algorithm).
    Keyword-only, so a subclass's positional fields keep their order.
    """

    loss_type: str = field(
        default="dapo", metadata={"help": "lightningrl loss: grpo, bnpo, dr_grpo, dapo (TRL's)."}
    )
    epsilon: float = field(default=0.2, metadata={"help": "PPO clip range below 1 (lightningrl)."})
    epsilon_high: float | None = field(
        default=None, metadata={"help": "Clip range above 1 (default epsilon)."}
    )
    delta: float | None = field(default=None, metadata={"help": "Two-sided clip: cap the ratio at delta."})
    num_iterations: int = field(default=1, metadata={"help": "PPO epochs over each batch (lightningrl)."})
    importance_sampling_mode: str = field(
        default="sequence_mask", metadata={"help": "token|sequence x truncate|mask, or none."}
    )
    importance_sampling_cap: float | None = field(
        default=3.0, metadata={"help": "Upper bound of the IS weight."}
    )
    importance_sampling_min: float | None = field(
        default=None, metadata={"help": "Lower bound of the IS weight."}
    )
    max_staleness: int | None = field(default=None, metadata={"help": "Max policy versions behind current."})
    stale_rows: str = field(default="drop", metadata={"help": "drop or downweight rows past max_staleness."})
    current_policy_version: int | None = field(
        default=None, metadata={"help": "Version staleness counts from (default newest in data)."}
    )
    clip_epsilon: float | None = field(default=None, metadata={"help": "Deprecated: use epsilon."})
    clip_epsilon_high: float | None = field(default=None, metadata={"help": "Deprecated: use epsilon_high."})
    loss_aggregation: str | None = field(
        default=None,
        metadata={"help": f"Deprecated ({', '.join(LOSS_AGGREGATION_ALIASES)}): use loss_type."},
    )


def rl_knob_values(obj: Any) -> dict[str, Any]:
    """The :class:`RLKnobs` fields of ``obj`` (a ``TrainConfig``), to build a ``LightningRLConfig`` from."""
    return {f.name: getattr(obj, f.name) for f in fields(RLKnobs)}


def resolve_aliases(obj: Any) -> None:
    """Map the deprecated names (``clip_epsilon``, ``clip_epsilon_high``, ``loss_aggregation``) onto TRL's, with a
    ``FutureWarning``; the old name wins when both are given (old configs keep their meaning)."""
    if getattr(obj, "clip_epsilon", None) is not None:
        if not 0 < obj.clip_epsilon < 1:
            raise ValueError(
                f"clip_epsilon must be in (0, 1), got {obj.clip_epsilon}. 0.2 is the usual value."
            )
        warnings.warn("clip_epsilon is deprecated: use epsilon (TRL's name).", FutureWarning, stacklevel=3)
        obj.epsilon, obj.clip_epsilon = obj.clip_epsilon, None
    if getattr(obj, "clip_epsilon_high", None) is not None:
        warnings.warn("clip_epsilon_high is deprecated: use epsilon_high.", FutureWarning, stacklevel=3)
        obj.epsilon_high, obj.clip_epsilon_high = obj.clip_epsilon_high, None
    if getattr(obj, "loss_aggregation", None) is not None:
        if obj.loss_aggregation not in LOSS_AGGREGATION_ALIASES:
            raise ValueError(
                f"loss_aggregation must be one of {list(LOSS_AGGREGATION_ALIASES)}, got {obj.loss_aggregation!r} "
                "(deprecated: use loss_type)."
            )
        new = LOSS_AGGREGATION_ALIASES[obj.loss_aggregation]
        warnings.warn(
            f"loss_aggregation={obj.loss_aggregation!r} is deprecated: use loss_type={new!r}.",
            FutureWarning,
            stacklevel=3,
        )
        obj.loss_type, obj.loss_aggregation = new, None


def validate_rl_knobs(obj: Any) -> None:
    """One clear line per bad lightningrl knob."""
    if obj.loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {list(LOSS_TYPES)}, got {obj.loss_type!r}.")
    if not 0 < obj.epsilon < 1:
        raise ValueError(f"epsilon must be in (0, 1), got {obj.epsilon}. 0.2 is the usual value.")
    if obj.epsilon_high is not None and obj.epsilon_high <= 0:
        raise ValueError(f"epsilon_high must be > 0, got {obj.epsilon_high}.")
    if obj.delta is not None and obj.delta <= 1:
        raise ValueError(f"delta must be > 1 (a cap on the ratio), got {obj.delta}.")
    if not isinstance(obj.num_iterations, int) or obj.num_iterations < 1:
        raise ValueError(f"num_iterations must be a positive integer, got {obj.num_iterations!r}.")
    if obj.importance_sampling_mode not in IMPORTANCE_SAMPLING_CHOICES:
        raise ValueError(
            f"importance_sampling_mode must be one of {list(IMPORTANCE_SAMPLING_CHOICES)}, "
            f"got {obj.importance_sampling_mode!r}."
        )
    cap, low = obj.importance_sampling_cap, obj.importance_sampling_min
    bad_cap = cap is not None and cap <= 0
    bad_min = low is not None and (low < 0 or (cap is not None and low > cap))
    if bad_cap or bad_min:
        raise ValueError(
            f"importance_sampling_min/cap must satisfy 0 <= min <= cap, got min={low}, cap={cap}."
        )
    if obj.max_staleness is not None and obj.max_staleness < 0:
        raise ValueError(f"max_staleness must be >= 0 policy versions, got {obj.max_staleness}.")
    if obj.stale_rows not in STALE_ROW_RULES:
        raise ValueError(f"stale_rows must be one of {list(STALE_ROW_RULES)}, got {obj.stale_rows!r}.")


__all__ = [
    "IMPORTANCE_SAMPLING_CHOICES",
    "IMPORTANCE_SAMPLING_MODES",
    "LOSS_AGGREGATION_ALIASES",
    "LOSS_TYPES",
    "STALE_ROW_RULES",
    "resolve_aliases",
    "validate_rl_knobs",
]
