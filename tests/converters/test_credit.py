"""Every credit strategy on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from lightspan.converters import LLMCall, Reward, Trajectory, assign_credit


def traj(
    rid: str, final: float | None, n: int, task: str = "t", rewards: list[Reward] | None = None
) -> Trajectory:
    calls = [LLMCall(f"{rid}-{i}", "tr", None, i, i + 1, [], [], step=i) for i in range(n)]
    return Trajectory(rid, task_id=task, final_reward=final, calls=calls, rewards=rewards or [])


def rewards(t: Trajectory) -> list[float]:
    return [round(c.reward, 9) for c in t.calls]


def advantages(t: Trajectory) -> list[float]:
    return [round(c.advantage, 6) for c in t.calls]


def test_identical_gives_every_call_the_final_reward():
    t = assign_credit([traj("a", 0.8, 3)], "identical")[0]
    assert rewards(t) == [0.8, 0.8, 0.8]
    assert advantages(t) == [0.8, 0.8, 0.8]


def test_discounted_follows_gamma_pow_n_minus_i():
    # N = 3, R = 1, gamma = 0.5: 0.5^3, 0.5^2, 0.5^1
    t = assign_credit([traj("a", 1.0, 3)], "discounted", gamma=0.5)[0]
    assert rewards(t) == [0.125, 0.25, 0.5]


def test_per_step_uses_aimed_rewards_plus_final_on_last_call():
    t = traj(
        "a",
        1.0,
        3,
        rewards=[
            Reward(0.2, step=0),
            Reward(0.3, step=0),
            Reward(0.7, step=2),
            Reward(9.0, name="other", step=1),
        ],
    )
    assign_credit([t], "per_step")
    assert rewards(t) == [0.5, 0.0, 1.7]


def test_grpo_normalizes_over_all_calls_of_a_task():
    a, b, c = traj("a", 1.0, 1), traj("b", 0.0, 3), traj("c", 5.0, 1, task="solo")
    assign_credit([a, b, c], "grpo", epsilon=0.0)
    # group t: values [1, 0, 0, 0]: mean 0.25, sample std sqrt(0.25) = 0.5
    assert advantages(a) == [1.5]
    assert advantages(b) == [-0.5, -0.5, -0.5]
    # a group of one: mean 0, std 1 (verl)
    assert advantages(c) == [5.0]


def test_grpo_rollout_counts_each_rollout_once():
    a, b = traj("a", 1.0, 1), traj("b", 0.0, 3)
    assign_credit([a, b], "grpo_rollout", epsilon=0.0)
    # values [1, 0]: mean 0.5, sample std sqrt(0.5)
    s = math.sqrt(0.5)
    assert advantages(a) == [round(0.5 / s, 6)]
    assert advantages(b) == [round(-0.5 / s, 6)] * 3
    assert rewards(b) == [0.0, 0.0, 0.0]


def test_untrainable_calls_get_no_credit_and_do_not_count():
    t = traj("a", 1.0, 3)
    t.calls[1].trainable = False
    assign_credit([t], "discounted", gamma=0.5)
    # N = 2 trainable calls: 0.5^2, 0.5^1
    assert rewards(t) == [0.25, 0.0, 0.5]


def test_missing_final_reward_is_zero_and_bad_arguments_raise():
    t = assign_credit([traj("a", None, 2)], "identical")[0]
    assert rewards(t) == [0.0, 0.0]
    with pytest.raises(ValueError, match="one of"):
        assign_credit([], "ppo")
    with pytest.raises(ValueError, match="gamma"):
        assign_credit([], "discounted", gamma=0)
