"""LightningRL pieces: span token ids used as is, the loss on real batches, padded == padding-free, the clip,
the importance weight, the first-seen behaviour policy, group-aware steps, and gradient accumulation."""

from __future__ import annotations

from typing import Any

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
    assert {k: counts[k] for k in ("from_spans", "from_template", "with_logprobs", "dropped_empty")} == {
        "from_spans": 2,
        "from_template": 1,
        "with_logprobs": 1,
        "dropped_empty": 0,
    }


def test_logprobs_of_wrong_length_are_counted_and_not_used(mixed_rows, model_tok):
    _, tok = model_tok
    row = dict(mixed_rows[3], completion_logprobs=[-1.0])
    samples, counts = tokenize_rows([row], tok, max_length=64)
    assert samples[0]["old_logprobs"] is None and counts["logprobs_length_mismatch"] == 1


def _loss(trainer: LightningRLTrainer, model, batch) -> torch.Tensor:
    out = trainer.compute_loss(model, batch)
    assert isinstance(out, torch.Tensor)
    return out


def _samples(trainer: LightningRLTrainer) -> list[dict]:
    return getattr(trainer.train_dataset, "items")  # noqa: B009 - the trainer's own list dataset


def _trainer(model, tok, rows, tmp_path, **kw) -> LightningRLTrainer:
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
    samples = _samples(trainer)
    padded = LightningRLCollator(tok.pad_token_id)(samples)
    packed = LightningRLCollator(tok.pad_token_id, padding_free=True)(samples)
    assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed
    assert packed["input_ids"].numel() == sum(len(s["input_ids"]) for s in samples)
    with torch.no_grad():
        loss_padded = _loss(trainer, model, padded)
        trainer._behaviour.clear()
        loss_packed = _loss(trainer, model, packed)
    n_tok = [len(s["input_ids"]) - s["prompt_len"] for s in samples]
    expected = -sum(s["advantage"] * n for s, n in zip(samples, n_tok, strict=True)) / sum(n_tok)
    # ratio 1, importance weight 1: dapo's loss is minus the token-mean advantage
    assert loss_padded.item() == pytest.approx(expected, abs=1e-6)
    assert loss_packed.item() == pytest.approx(loss_padded.item(), abs=1e-6)


def test_clip_acts_on_the_second_ppo_pass_and_stops_the_gradient(mixed_rows, model_tok, tmp_path):
    model, tok = model_tok
    row = dict(mixed_rows[3], advantage=1.0, completion_logprobs=None)
    trainer = _trainer(
        model, tok, [row], tmp_path, epsilon=0.2, num_iterations=2, importance_sampling_mode="none"
    )
    s = _samples(trainer)[0]
    first = LightningRLCollator(tok.pad_token_id)([{**s, "iteration": 0}])
    with torch.no_grad():
        _loss(trainer, model, first)  # pass 0 stores the old policy's logps
    trainer._old[0] = trainer._old[0] - 1.0  # as if the first update had raised every token's logp by 1 nat
    second = LightningRLCollator(tok.pad_token_id)([{**s, "iteration": 1}])
    model.zero_grad()
    loss = _loss(trainer, model, second)
    loss.backward()
    assert loss.item() == pytest.approx(-1.2)  # -min(e * A, 1.2 * A)
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in model.parameters())
    assert trainer._window.sums["clip_ratio/high_mean"][-1][0] > 0
    assert 0 not in trainer._old  # the last pass forgets the step's old logps


def test_importance_weight_is_truncated_at_the_cap(mixed_rows, model_tok, tmp_path):
    model, tok = model_tok
    row: dict[str, Any] = dict(mixed_rows[3], advantage=1.0)
    row["completion_logprobs"] = [-50.0] * len(row["completion_token_ids"])  # behaviour far less likely
    trainer = _trainer(
        model, tok, [row], tmp_path, importance_sampling_mode="token_truncate", importance_sampling_cap=3.0
    )
    batch = LightningRLCollator(tok.pad_token_id)(_samples(trainer))
    with torch.no_grad():
        assert _loss(trainer, model, batch).item() == pytest.approx(-3.0)  # -min(1 * A, ...) * 3
    masked = _trainer(model, tok, [row], tmp_path, importance_sampling_mode="token_mask")
    with torch.no_grad():
        assert _loss(masked, model, batch).item() == pytest.approx(0.0)  # weight above the cap -> 0


def test_rows_without_logprobs_get_the_first_seen_policy_as_behaviour(mixed_rows, model_tok, tmp_path):
    model, tok = model_tok
    row = dict(mixed_rows[2], advantage=-1.0, completion_logprobs=None)
    trainer = _trainer(
        model, tok, [row], tmp_path, importance_sampling_mode="token_truncate", importance_sampling_cap=None
    )
    batch = LightningRLCollator(tok.pad_token_id)(_samples(trainer))
    with torch.no_grad():
        assert _loss(trainer, model, batch).item() == pytest.approx(1.0)  # first visit: weight 1
    # a later epoch, after the row's probability fell: its weight pi/mu < 1 shrinks the push-down
    trainer._behaviour[0] = trainer._behaviour[0] + 1.0
    with torch.no_grad():
        assert _loss(trainer, model, batch).item() == pytest.approx(torch.exp(torch.tensor(-1.0)).item())


def test_rows_without_logprobs_take_the_starting_policy_before_any_update(mixed_rows, model_tok, tmp_path):
    """train() first computes, in one no-grad pass, the starting policy's logps of every row without stored
    ones; a row met late in the first epoch must not take an already-updated policy as its behaviour."""
    model, tok = model_tok
    rows = [dict(r, completion_logprobs=None) for r in mixed_rows[:4]] + [mixed_rows[3]]
    trainer = _trainer(model, tok, rows, tmp_path)
    trainer._start_policy_logps()
    samples = _samples(trainer)
    missing = [s["index"] for s in samples if s["old_logprobs"] is None]
    assert sorted(trainer._behaviour) == sorted(missing) and len(missing) == 4
    batch = LightningRLCollator(tok.pad_token_id)([samples[0]])
    with torch.no_grad():
        direct, _ = trainer._completion_logps(model, batch, entropy=False)
    n = int(batch["completion_lengths"][0])
    torch.testing.assert_close(trainer._behaviour[samples[0]["index"]], direct[0, :n])


def test_every_optimizer_step_holds_whole_groups(mixed_rows, model_tok, tmp_path):
    model, tok = model_tok
    rows = [r for r in mixed_rows if r["task_id"] != "task-3"] + mixed_rows[12:15]  # groups of 4, 4, 4, 3
    trainer = _trainer(
        model, tok, rows, tmp_path, per_device_train_batch_size=2, gradient_accumulation_steps=2
    )
    groups = {s["index"]: s["group"] for s in _samples(trainer)}
    loader = trainer.get_train_dataloader()
    batches = [b["sample_index"].tolist() for b in loader]
    assert len(batches) % 2 == 0
    steps = [batches[i] + batches[i + 1] for i in range(0, len(batches), 2)]
    seen: dict[str, set[int]] = {}
    for k, step in enumerate(steps):
        for i in step:
            seen.setdefault(groups[i], set()).add(k)
    assert all(len(v) == 1 for v in seen.values()), seen  # no group spans two optimizer steps
    assert sorted(i for step in steps for i in step) == sorted(groups)  # every row once per epoch
    assert trainer.sample_counts["groups_split"] == 0


@pytest.mark.parametrize("loss_type", ["dapo", "grpo", "dr_grpo"])
def test_gradient_accumulation_gives_the_same_step(loss_type, tiny_model, mixed_rows, tmp_path):
    """bs 8 x GA 1 and bs 4 x GA 2 see the same 8 rows in one optimizer step: same loss and gradient norm."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    eos = tok.eos_token_id
    rows = [  # two groups of 4; completions of 2-4 tokens, so the micro-batches hold different token counts
        dict(r, prompt_token_ids=[3, 4, 5 + j], completion_token_ids=[20 + j] * (1 + j % 3) + [eos])
        for j, r in enumerate(mixed_rows[:8])
    ]
    rows = [dict(r, completion_logprobs=None) for r in rows]
    logs = []
    for bs, ga in ((8, 1), (4, 2)):
        model = AutoModelForCausalLM.from_pretrained(tiny_model)
        out = tmp_path / f"bs{bs}"
        trainer = _trainer(
            model,
            tok,
            rows,
            out,
            per_device_train_batch_size=bs,
            gradient_accumulation_steps=ga,
            max_steps=1,
            loss_type=loss_type,
            save_strategy="no",
            learning_rate=1e-3,
        )
        trainer.train()
        logs.append(next(r for r in trainer.state.log_history if "loss" in r))
    assert logs[0]["loss"] == pytest.approx(logs[1]["loss"], rel=1e-5)
    assert logs[0]["grad_norm"] == pytest.approx(logs[1]["grad_norm"], rel=1e-4)
    assert logs[0]["grad_norm"] > 0
