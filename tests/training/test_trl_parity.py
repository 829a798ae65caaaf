"""Our loss equals TRL GRPOTrainer's ``_compute_loss`` on the same tensors, for every shared ``loss_type``.

TRL's loss is a method that first runs the model; here it runs on a ``GRPOTrainer`` built without ``__init__``
whose ``_get_per_token_logps_and_entropies`` returns given tensors, so both sides see the same logps, old logps,
reference logps, advantages, importance weights and ``num_items_in_batch``. Loss values and the gradients with
respect to the logps must match (pinned trl==1.16.0).
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from lightspan.training import rl_loss as L

trl_grpo = pytest.importorskip("trl.trainer.grpo_trainer")


def _trl_trainer(loss_type: str, *, beta: float, delta: float | None, ga: int, max_len: int, use_is: bool):
    t = object.__new__(trl_grpo.GRPOTrainer)
    identity = lambda x, *a, **k: x  # noqa: E731 - one process: reduce/gather are the identity
    t.__dict__.update(
        loss_type=loss_type,
        epsilon_low=0.2,
        epsilon_high=0.28,
        beta=beta,
        importance_sampling_level="token",
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        use_vllm=use_is,
        vllm_importance_sampling_correction=use_is,
        aux_loss_enabled=False,
        _entropy_bonus_enabled=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        model=SimpleNamespace(training=True),
        accelerator=SimpleNamespace(
            num_processes=1, reduce=identity, gather=identity, gather_for_metrics=identity
        ),
        current_gradient_accumulation_steps=ga,
        max_completion_length=max_len,
        args=SimpleNamespace(delta=delta, use_bias_correction_kl=True, steps_per_generation=ga),
    )
    return t


def _tensors(seed: int, s: int = 4, length: int = 5):
    g = torch.Generator().manual_seed(seed)
    logps = (-torch.rand(s, length, generator=g) * 3).requires_grad_(True)
    old = logps.detach() + 0.4 * torch.randn(s, length, generator=g)  # ratios on both sides of the clip range
    ref = logps.detach() + 0.3 * torch.randn(s, length, generator=g)
    lengths = torch.tensor([length, 3, 1, 4][:s])
    mask = (torch.arange(length) < lengths.unsqueeze(1)).float()
    adv = torch.tensor([1.5, -0.5, -0.5, 0.7][:s])
    behaviour = old + 0.5 * torch.randn(s, length, generator=g)
    return logps, old, ref, mask, adv, behaviour


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
@pytest.mark.parametrize(
    ("beta", "delta", "use_is", "ga"),
    [(0.0, None, False, 1), (0.04, 1.5, True, 1), (0.0, None, True, 2)],
    ids=["plain", "kl-delta-is", "is-ga2"],
)
def test_loss_matches_trl_on_the_same_tensors(loss_type, beta, delta, use_is, ga):
    max_len = 6
    logps, old, ref, mask, adv, behaviour = _tensors(
        seed=sum(map(ord, loss_type)) + 10 * ga + int(100 * beta)
    )
    is_ratio = (
        L.importance_sampling_ratio(
            old, behaviour, mask, torch.ones(4, dtype=torch.bool), "token_truncate", None, 3.0
        )
        if use_is
        else None
    )
    # TRL's side: one micro-batch of a step with `ga` equal micro-batches
    trl = _trl_trainer(loss_type, beta=beta, delta=delta, ga=ga, max_len=max_len, use_is=use_is)
    trl._get_per_token_logps_and_entropies = lambda *a, **k: (logps, torch.zeros_like(logps), None)
    inputs = {
        "prompt_ids": torch.zeros(4, 2, dtype=torch.long),
        "prompt_mask": torch.ones(4, 2, dtype=torch.long),
        "completion_ids": torch.zeros(4, logps.size(1), dtype=torch.long),
        "completion_mask": mask.long(),
        "advantages": adv,
        "old_per_token_logps": old,
        "ref_per_token_logps": ref,
        "num_items_in_batch": mask.sum() * ga,  # the whole step's tokens (TRL: the generation batch)
    }
    if use_is:
        inputs["importance_sampling_ratio"] = is_ratio
    trl_loss = trl._compute_loss(None, inputs)
    (trl_grad,) = torch.autograd.grad(trl_loss, logps)
    # ours: the same micro-batch, normalized by the step's counts
    out = L.per_token_loss(
        logps,
        old,
        adv,
        mask,
        epsilon_low=0.2,
        epsilon_high=0.28,
        delta=delta,
        is_ratio=is_ratio,
        beta=beta,
        ref_logps=ref,
    )
    ours = L.aggregate(
        out.per_token_loss,
        mask,
        loss_type,
        step_tokens=float(mask.sum() * ga),
        step_sequences=float(mask.size(0) * ga),
        num_processes=1,
        gradient_accumulation_steps=ga,
        max_completion_length=max_len,
    )
    (our_grad,) = torch.autograd.grad(ours, logps)
    assert ours.item() == pytest.approx(trl_loss.item(), rel=1e-6, abs=1e-7)
    assert torch.allclose(our_grad, trl_grad, atol=1e-7)
    assert trl_grad.abs().sum() > 0  # a real comparison: the gradient is not trivially zero
    if beta:
        assert out.kl is not None
        trl_kl = trl._metrics["train"]["kl"][-1]
        assert ((out.kl * mask).sum() / mask.sum()).item() == pytest.approx(trl_kl, rel=1e-6)
    low = ((out.coef_1 < 0.8) & (adv.unsqueeze(1) < 0)).float()
    assert ((low * mask).sum() / mask.sum()).item() == pytest.approx(
        trl._metrics["train"]["clip_ratio/low_mean"][-1], rel=1e-6
    )
