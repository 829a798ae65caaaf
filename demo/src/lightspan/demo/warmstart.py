"""Build the demo's tiny policy and warm-start it with a short supervised run.

Why a warm start: a random-init model never names an entity, so every reward is 0 and RL has nothing to
push on. A brief SFT on (facts, question) -> answer teaches the format and some of the skill: held-out
reward starts clearly above 0 (about 0.3 sampled at temperature 1) and far from 1, leaving the rise to
RL. It is a plain torch loop (a few hundred milliseconds a step on 2 CPU cores), not the TRL trainer:
the demo's subject is the RL step, and this one must be fast and deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lightspan.demo import world as W

__all__ = ["WarmStartConfig", "build_policy", "observations_for"]


@dataclass(frozen=True)
class WarmStartConfig:
    """The tiny policy's size and its warm start (defaults measured in docs/serving.md)."""

    vocab_size: int = 512
    hidden_size: int = 64
    num_layers: int = 2
    sft_steps: int = 100
    sft_batch_size: int = 16
    sft_learning_rate: float = 3e-3
    seed: int = 0


def observations_for(kb: W.KB, task: W.Task) -> list[str]:
    """The facts the GAP plan gathers for ``task`` (the same the agent's tools return)."""
    first = W.facts_about(kb, task.who)
    hop = W.QUESTION_TYPES[task.qtype].first_hop
    return [first] if hop is None else [first, W.facts_about(kb, W.follow(first, hop))]


def build_policy(
    output_dir: str | Path,
    kb: W.KB,
    train_tasks: list[W.Task],
    cfg: WarmStartConfig | None = None,
    *,
    progress: Callable[[int, float], None] | None = None,
) -> str:
    """Build a tiny random-init model with a tokenizer trained on the world's words, SFT it, save it.

    Returns the checkpoint directory (``output_dir``), ready for :class:`lightspan.serving.PolicyServer`.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lightspan.training.tiny_model import build_tiny_model

    cfg = cfg or WarmStartConfig()
    if not train_tasks:
        raise ValueError("build_policy needs at least one training task")
    out = Path(output_dir)
    base = build_tiny_model(
        out,
        texts=W.corpus(kb),
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        seed=cfg.seed,
    )
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    if cfg.sft_steps <= 0:
        return str(out)

    def example(task: W.Task) -> tuple[list[int], list[int]]:
        text = tok.apply_chat_template(
            W.policy_messages(task.question, observations_for(kb, task)),
            add_generation_prompt=True,
            tokenize=False,
        )
        prompt = tok(text, add_special_tokens=False)["input_ids"]
        return prompt, tok(task.answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]

    examples = [example(t) for t in train_tasks]
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.sft_learning_rate)
    model.train()
    for step in range(cfg.sft_steps):
        batch = rng.sample(examples, min(cfg.sft_batch_size, len(examples)))
        width = max(len(p) + len(c) for p, c in batch)
        ids = torch.full((len(batch), width), tok.pad_token_id)
        mask = torch.zeros((len(batch), width))
        for i, (p, c) in enumerate(batch):
            ids[i, : len(p) + len(c)] = torch.tensor(p + c)
            mask[i, len(p) : len(p) + len(c)] = 1.0
        logits = model(ids).logits[:, :-1].float()
        logp = torch.log_softmax(logits, dim=-1).gather(2, ids[:, 1:, None])[..., 0]
        m = mask[:, 1:]
        loss = -((logp * m).sum(1) / m.sum(1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if progress is not None:
            progress(step, float(loss))
    model.eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)
