"""Credit assignment: turn rollout rewards into per-call rewards and advantages.

Strategies (``schemas.rows.CREDIT_STRATEGIES``), over the rollout's *trainable* calls (those that
matched ``agent_match``), N of them, indexed i = 0..N-1 in rebuilt order; R is the final reward:

identical     every call gets R (LightningRL); advantage = reward.
discounted    call i gets R * gamma ** (N - i), the formula of the Agent Lightning analysis this project
              follows (so the last call gets gamma * R); advantage = reward.
per_step      call i gets the sum of the rewards aimed at it (``lightspan.reward.step`` / a target span
              id); R, when present, is added to the last call; advantage = reward.
grpo          every call gets R; advantage = (R - mean) / (std + eps) over *all calls* of the rollouts
              of one task (verl's GRPO over Agent Lightning triplets).
grpo_rollout  as grpo but each rollout counts once: mean/std over the rollouts' R (Agent Lightning 1.0
              rollout-level advantage), broadcast to every call of the rollout.

Group statistics follow verl: std is the sample std (n - 1); a group of one has mean 0 and std 1.
A rollout without a final reward gets R = 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from lightspan.schemas.rows import CREDIT_STRATEGIES

from .model import Trajectory


def _group_stats(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return 0.0, 1.0
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def assign_credit(
    trajectories: Iterable[Trajectory],
    strategy: str = "identical",
    *,
    gamma: float = 0.99,
    reward_name: str = "primary",
    epsilon: float = 1e-6,
) -> list[Trajectory]:
    """Set ``reward`` and ``advantage`` on every call of ``trajectories`` (in place) and return them.

    Group strategies normalize within each task id (a rollout without a task id is its own group), so
    pass all rollouts of a task in one call.

    >>> from lightspan.converters import Trajectory, LLMCall
    >>> t = Trajectory("r1", final_reward=1.0, calls=[LLMCall("a", "t", None, 0, 1, [], []),
    ...                                                 LLMCall("b", "t", None, 2, 3, [], [])])
    >>> [c.reward for c in assign_credit([t], "discounted", gamma=0.5)[0].calls]
    [0.25, 0.5]
    """
    if strategy not in CREDIT_STRATEGIES:
        raise ValueError(f"credit strategy must be one of {list(CREDIT_STRATEGIES)}, got {strategy!r}")
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    trajs = list(trajectories)
    for t in trajs:
        calls = t.trainable_calls
        n = len(calls)
        final = t.final_reward if t.final_reward is not None else 0.0
        if strategy in ("identical", "grpo", "grpo_rollout"):
            for c in calls:
                c.reward = final
        elif strategy == "discounted":
            for i, c in enumerate(calls):
                c.reward = final * gamma ** (n - i)
        else:  # per_step
            aimed: dict[int, float] = defaultdict(float)
            for r in t.rewards:
                if r.name == reward_name and r.step is not None:
                    aimed[r.step] += r.value
            for c in calls:
                c.reward = aimed.get(c.step, 0.0)
            if t.final_reward is not None and calls:
                calls[-1].reward += t.final_reward
        for c in calls:
            c.advantage = c.reward
        for c in t.calls:
            if not c.trainable:
                c.reward = c.advantage = 0.0
    if strategy in ("grpo", "grpo_rollout"):
        groups: dict[str, list[Trajectory]] = defaultdict(list)
        for t in trajs:
            groups[t.task_id or f"\0{t.rollout_id}"].append(t)
        for members in groups.values():
            if strategy == "grpo":
                values = [c.reward for t in members for c in t.trainable_calls]
            else:
                values = [t.final_reward if t.final_reward is not None else 0.0 for t in members]
            mean, std = _group_stats(values)
            for t in members:
                for c in t.trainable_calls:
                    c.advantage = (c.reward - mean) / (std + epsilon)
    return trajs


__all__ = ["assign_credit"]
