"""The demo's rewards: multi-factor, each in [0, 1], split between the plan call and the answer call.

    valid       1 when the plan parsed, is acyclic, calls only known tools and every reference resolves
    sufficient  1 when the plan's successful calls include every call the minimal plan makes
    calls_eff   min_calls / tool calls                   (a redundant lookup costs)
    depth_eff   min_levels / levels                      (a sequentialized plan costs; chains are optimal)
    efficiency  sufficient * calls_eff * depth_eff
    correct     1 when the answer matches exactly

    plan step reward    W_VALID * valid + W_EFFICIENCY * efficiency      (aimed at call 0, the plan)
    answer step reward  W_CORRECT * correct                              (aimed at call 1, the answer)
    rollout reward      their sum, in [0, 1]

An invalid plan runs nothing and gets no answer call: its rollout reward is 0 (all factors 0).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lightspan.demo import world as W

__all__ = ["W_CORRECT", "W_EFFICIENCY", "W_VALID", "Score", "score_plan"]

W_CORRECT = 0.4
W_VALID = 0.2
W_EFFICIENCY = 0.4


@dataclass(frozen=True)
class Score:
    valid: bool
    sufficient: bool
    correct: bool
    calls: int
    levels: int
    calls_eff: float
    depth_eff: float

    @property
    def efficiency(self) -> float:
        return float(self.sufficient) * self.calls_eff * self.depth_eff

    @property
    def plan(self) -> float:
        return W_VALID * float(self.valid) + W_EFFICIENCY * self.efficiency

    @property
    def answer(self) -> float:
        return W_CORRECT * float(self.correct)

    @property
    def total(self) -> float:
        return self.plan + self.answer

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "efficiency": self.efficiency, "total": self.total}


def score_plan(
    task: W.Task,
    kb: W.KB,
    *,
    valid: bool,
    done_calls: set[tuple[str, str]],
    calls: int,
    levels: int,
    answer: str,
) -> Score:
    """Score one rollout from what its plan did (``done_calls``: the (tool, argument) calls that succeeded)."""
    if not valid:
        return Score(False, False, False, calls, levels, 0.0, 0.0)
    sufficient = task.needed_calls(kb) <= done_calls
    return Score(
        True,
        sufficient,
        W.exact_match(answer, task.answer),
        calls,
        levels,
        task.min_calls / max(calls, task.min_calls),
        task.min_levels / max(levels, task.min_levels),
    )
