"""LightningRL pieces: span token ids are used as is, the clipped loss, padded == padding-free."""

from __future__ import annotations

import datasets
import pytest
import torch

from lightspan.training.lightningrl import (
    LightningRLCollator,
    LightningRLConfig,
    LightningRLTrainer,
    tokenize_rows,
)


@pytest.fixture(scope="module")
def model_tok(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(tiny_model)


def test_span_token_ids_are_used_without_retokenizing(mixed_rows, model_tok):
    _, tok = model_tok
    row = dict(mixed_rows[2], prompt_token_ids=[7, 8, 9], completion_token_ids=[10, 11])  # ids != template
    samples, counts = tokenize_rows([row, mixed_rows[0], mixed_rows[3]], tok, max_length=64)
    assert samples[0]["input_ids"] == [7, 8, 9, 10, 11] and samples[0]["prompt_len"] == 3
    assert samples[1]["input_ids"][-1] == tok.eos_token_id  # template path ends at end-of-turn
    assert tok.decode(samples[1]["input_ids"][samples[1]["prompt_len"] :]) == "red<|im_end|>"
    assert samples[2]["old_logprobs"] is not None
    assert counts == {
        "from_spans": 2,
        "from_template": 1,
        "with_logprobs": 1,
        "dropped_empty": 0,
        "truncated": 0,
    }


def test_logprobs_of_wrong_length_fall_back_to_on_policy(mixed_rows, model_tok):
    _, tok = model_tok
    row = dict(mixed_rows[3], completion_logprobs=[-1.0])
    samples, counts = tokenize_rows([row], tok, max_length=64)
    assert samples[0]["old_logprobs"] is None and counts["with_logprobs"] == 0


def _trainer(model, tok, rows, tmp_path, **kw):
    args = LightningRLConfig(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", disable_tqdm=True, **kw
    )
    return LightningRLTrainer(
        model=model, args=args, train_dataset=datasets.Dataset.from_list(rows), processing_class=tok
    )


def test_on_policy_loss_is_minus_mean_advantage_and_padding_free_matches(mixed_rows, model_tok, tmp_path):
    model, tok = model_tok
    rows = [dict(r, completion_logprobs=None) for r in mixed_rows[:8]]
    trainer = _trainer(model, tok, rows, tmp_path)
    samples = trainer.train_dataset.items
    padded = LightningRLCollator(tok.pad_token_id)(samples)
    packed = LightningRLCollator(tok.pad_token_id, padding_free=True)(samples)
    assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed
    assert packed["input_ids"].numel() == sum(len(s["input_ids"]) for s in samples)
    with torch.no_grad():
        loss_padded = trainer.compute_loss(model, padded)
        loss_packed = trainer.compute_loss(model, packed)
    n_tok = [len(s["input_ids"]) - s["prompt_len"] for s in samples]
    expected = -sum(s["advantage"] * n for s, n in zip(samples, n_tok, strict=True)) / sum(n_tok)
    assert loss_padded.item() == pytest.approx(expected, abs=1e-6)  # ratio 1: loss = -mean token advantage
    assert loss_packed.item() == pytest.approx(loss_padded.item(), abs=1e-6)
    assert trainer._metrics["rl/clip_ratio"][-1].item() == 0.0


def test_ratio_above_clip_stops_the_gradient(mixed_rows, model_tok, tmp_path):
    model, tok = model_tok
    row = dict(mixed_rows[3], advantage=1.0, completion_logprobs=None)
    row["completion_logprobs"] = [-50.0] * len(
        row["completion_token_ids"]
    )  # behaviour far less likely: ratio >> 1
    trainer = _trainer(model, tok, [row], tmp_path, clip_epsilon=0.2)
    batch = LightningRLCollator(tok.pad_token_id)(trainer.train_dataset.items)
    model.zero_grad()
    loss = trainer.compute_loss(model, batch)
    loss.backward()
    assert loss.item() == pytest.approx(-1.2)  # -min(r*A, 1.2*A)
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in model.parameters())
    assert trainer._metrics["rl/clip_ratio"][-1].item() == 1.0
    assert trainer._metrics["rl/off_policy_frac"][-1].item() == 1.0
