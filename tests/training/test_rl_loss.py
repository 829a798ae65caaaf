"""rl_loss: TRL GRPOTrainer's formulas on hand-made tensors (clip, IS truncate/mask, k3 KL, loss_type normalizers)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from lightspan.training import rl_loss as L


def test_clipped_surrogate_and_normalizers():
    logps = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
    old = torch.log(torch.tensor([[0.25, 0.5], [0.9, 0.1]]))  # ratio 2 on the first token, else 1
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    out = L.per_token_loss(logps, old, torch.tensor([1.0, -1.0]), mask, epsilon_low=0.2, epsilon_high=0.2)
    assert out.per_token_loss[0, 0].item() == pytest.approx(-1.2)  # -min(2*A, 1.2*A)
    assert out.per_token_loss[1, 0].item() == pytest.approx(1.0)
    kw: dict[str, Any] = dict(
        step_tokens=3.0, step_sequences=2.0, num_processes=1, gradient_accumulation_steps=1
    )
    dapo = L.aggregate(out.per_token_loss, mask, "dapo", max_completion_length=4, **kw)
    assert dapo.item() == pytest.approx((-1.2 - 1.0 + 1.0) / 3)
    grpo = L.aggregate(out.per_token_loss, mask, "grpo", max_completion_length=4, **kw)
    assert grpo.item() == pytest.approx(((-1.2 - 1.0) / 2 + 1.0) / 2)
    dr = L.aggregate(out.per_token_loss, mask, "dr_grpo", max_completion_length=4, **kw)
    assert dr.item() == pytest.approx((-1.2 - 1.0 + 1.0) / (2 * 4))


def test_importance_sampling_truncate_and_mask():
    old = torch.zeros(2, 2)
    behaviour = torch.log(torch.tensor([[0.1, 1.0], [1.0, 1.0]]))  # first token 10x less likely when sampled
    mask = torch.ones(2, 2)
    has = torch.tensor([True, False])
    trunc = L.importance_sampling_ratio(old, behaviour, mask, has, "token_truncate", None, 3.0)
    assert torch.allclose(trunc, torch.tensor([[3.0, 1.0], [1.0, 1.0]]))
    masked = L.importance_sampling_ratio(old, behaviour, mask, has, "sequence_mask", None, 3.0)
    assert torch.allclose(masked, torch.tensor([[0.0], [1.0]]))  # row 2 has no behaviour logprobs: weight 1


def test_k3_kl_is_zero_at_the_reference_and_positive_elsewhere():
    x = torch.tensor([-1.0, -2.0])
    assert L.k3_kl(x, x).abs().max().item() == 0.0
    assert (L.k3_kl(x, x + 0.5) > 0).all()
