"""The lightningrl loss as tensor math, in TRL ``GRPOTrainer``'s terms (``loss_type``, ``epsilon``, ``beta``...).

Everything here works on completion-aligned tensors of shape ``(S, L)`` (``S`` sequences, ``L`` the longest
completion, ``mask`` 1 on real completion tokens), the layout TRL's ``_compute_loss`` uses, so each formula can
be checked against TRL's on the same tensors (tests/training/test_rl_loss.py). No trainer state lives here.

Three log-probabilities meet per token:

* ``logps``: the policy being trained (with grad);
* ``old_logps``: the policy before this optimizer step (no grad) -- PPO's "old" policy; the clipped ratio
  ``exp(logps - old_logps)`` is TRL's ``coef_1``;
* ``behaviour_logps``: the policy that generated the sample (stored on the span), which TRL calls
  ``sampling_per_token_logps``; ``exp(old_logps - behaviour_logps)``, truncated or masked, is the
  importance-sampling weight TRL applies for vLLM (``vllm_importance_sampling_mode``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lightspan.training.rl_knobs import IMPORTANCE_SAMPLING_MODES, LOSS_TYPES

IMPORTANCE_SAMPLING_LEVELS = ("token", "sequence")


def importance_sampling_ratio(
    old_logps: torch.Tensor,
    behaviour_logps: torch.Tensor,
    mask: torch.Tensor,
    has_behaviour: torch.Tensor,
    mode: str,
    clip_min: float | None,
    clip_max: float | None,
) -> torch.Tensor:
    """Off-policy weight ``pi_old / pi_behaviour``: ``(S, L)`` for ``token_*`` modes, ``(S, 1)`` for ``sequence_*``.

    ``*_truncate`` clamps it to ``[clip_min, clip_max]``; ``*_mask`` sets it to 0 outside that range (the token or
    the whole sequence then gives no gradient). Rows without behaviour logprobs (``has_behaviour`` False) get 1.
    """
    if mode not in IMPORTANCE_SAMPLING_MODES:
        raise ValueError(
            f"importance_sampling_mode must be one of {list(IMPORTANCE_SAMPLING_MODES)}, got {mode!r}."
        )
    with torch.no_grad():
        diff = torch.nan_to_num((old_logps - behaviour_logps) * mask, nan=0.0)
        if mode.startswith("sequence"):
            diff = diff.sum(-1, keepdim=True)
        ratio = torch.exp(diff)
        if mode.endswith("truncate"):
            if clip_min is not None or clip_max is not None:
                ratio = torch.clamp(ratio, min=clip_min, max=clip_max)
        else:
            low = -math.inf if clip_min is None else clip_min
            high = math.inf if clip_max is None else clip_max
            ratio = ratio.masked_fill((ratio < low) | (ratio > high), 0.0)
        keep = has_behaviour.to(ratio.dtype).unsqueeze(-1)
        return ratio * keep + (1.0 - keep)


def k3_kl(ref_logps: torch.Tensor, logps: torch.Tensor) -> torch.Tensor:
    """Per-token KL(pi || pi_ref) estimate k3 = exp(ref - logp) - (ref - logp) - 1 (Schulman), as TRL's ``beta``."""
    d = ref_logps - logps
    return torch.exp(d) - d - 1


@dataclass
class PolicyLoss:
    """The per-token loss and the tensors its metrics need."""

    per_token_loss: torch.Tensor  # (S, L)
    coef_1: torch.Tensor  # importance ratio pi/pi_old: (S, L), or (S, 1) at sequence level
    kl: torch.Tensor | None  # (S, L) when beta > 0


def per_token_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    epsilon_low: float,
    epsilon_high: float,
    importance_sampling_level: str = "token",
    delta: float | None = None,
    is_ratio: torch.Tensor | None = None,
    beta: float = 0.0,
    ref_logps: torch.Tensor | None = None,
    use_bias_correction_kl: bool = True,
) -> PolicyLoss:
    """PPO's clipped surrogate per token, with TRL's options (``delta`` two-sided clip, KL term, IS weight)."""
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
    log_ratio = logps - old_logps
    if importance_sampling_level == "token":
        log_w = log_ratio
    elif importance_sampling_level == "sequence":  # GSPO: one ratio per sequence, the mean token log-ratio
        log_w = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    else:
        raise ValueError(
            f"importance_sampling_level must be one of {list(IMPORTANCE_SAMPLING_LEVELS)}, "
            f"got {importance_sampling_level!r}."
        )
    coef_1 = torch.exp(log_w)
    kl = None
    if beta != 0.0:
        if ref_logps is None:
            raise ValueError("beta != 0 needs the reference model's logprobs (ref_logps).")
        kl = k3_kl(ref_logps, logps)
        if use_bias_correction_kl:
            kl = kl * coef_1
    coef_2 = torch.clamp(coef_1, 1 - epsilon_low, 1 + epsilon_high)
    bounded = torch.clamp(coef_1, max=delta) if delta is not None else coef_1
    loss = -torch.min(bounded * adv, coef_2 * adv)
    if is_ratio is not None:
        loss = loss * is_ratio
    if kl is not None:
        loss = loss + beta * kl
    return PolicyLoss(per_token_loss=loss, coef_1=coef_1, kl=kl)


def aggregate(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    loss_type: str,
    *,
    step_tokens: float,
    step_sequences: float,
    num_processes: int,
    gradient_accumulation_steps: int,
    max_completion_length: int,
) -> torch.Tensor:
    """One micro-batch's share of the optimizer step's loss, already scaled for accumulation and data parallelism.

    ``step_tokens`` / ``step_sequences`` count the completion tokens / sequences of the whole optimizer step
    (every micro-batch, every rank) -- TRL's ``num_items_in_batch``. Summing the returned values over a step's
    micro-batches and averaging the gradients over ranks (DDP) yields:

    * ``dapo``: sum of token losses / tokens in the step (unbiased under accumulation; TRL's default);
    * ``grpo``: mean over the step's sequences of each sequence's token mean;
    * ``dr_grpo``: sum of token losses / (sequences in the step x ``max_completion_length``);
    * ``bnpo``: TRL's local form: the micro-batch's token mean / accumulation steps.

    For full, equal micro-batches ``grpo`` and ``dr_grpo`` equal TRL's per-micro-batch formulas exactly.
    """
    masked = per_token * mask
    if loss_type == "dapo":
        return masked.sum() / max(step_tokens, 1.0) * num_processes
    if loss_type == "grpo":
        per_seq = masked.sum(-1) / mask.sum(-1).clamp(min=1.0)
        return per_seq.sum() / max(step_sequences, 1.0) * num_processes
    if loss_type == "dr_grpo":
        return masked.sum() / (max(step_sequences, 1.0) * max_completion_length) * num_processes
    if loss_type == "bnpo":
        return masked.sum() / mask.sum().clamp(min=1.0) / gradient_accumulation_steps
    raise ValueError(f"loss_type must be one of {list(LOSS_TYPES)}, got {loss_type!r}.")


def entropy_from_logits(logits: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """Per-position entropy of the softmax over the last dim, in chunks (no full-size log-softmax copy kept)."""
    out = []
    flat = logits.reshape(-1, logits.size(-1))
    for part in flat.split(chunk):
        logp = torch.log_softmax(part.float(), -1)
        out.append(-(logp.exp() * logp).sum(-1))
    return torch.cat(out).reshape(logits.shape[:-1]) if out else logits.new_zeros(logits.shape[:-1])


def selective_log_softmax(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``log_softmax(logits).gather(index)`` without materializing the full log-softmax (row by row)."""
    rows = [
        torch.gather(row.float(), -1, idx.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(row.float(), -1)
        for row, idx in zip(logits, index, strict=True)
    ]
    return torch.stack(rows)


__all__ = [
    "IMPORTANCE_SAMPLING_LEVELS",
    "IMPORTANCE_SAMPLING_MODES",
    "LOSS_TYPES",
    "PolicyLoss",
    "aggregate",
    "entropy_from_logits",
    "importance_sampling_ratio",
    "k3_kl",
    "per_token_loss",
    "selective_log_softmax",
]
