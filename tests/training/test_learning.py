"""Learning tests: lightningrl from a warm-started policy raises held-out reward without collapsing.

The warm start is what an RL engineer starts from: a policy SFT-trained to answer any of four colours about
uniformly (nearly all its mass on colour words). Training tasks ask "Which color is task i?"; the right answer is
always "green" (reward 1), so it can carry over to held-out tasks. One round: sample 4 rollouts per task from the
warm policy, group-normalize rewards into advantages (GRPO), write converter-shaped Parquet with the spans'
token ids (and, in one test, the behaviour logprobs), and run ``lightningrl`` through ``train()`` for many
epochs over those rows (the off-policy regime lightspan lives in). On held-out tasks the right answer's own
log-probability must rise, the gap to the wrong colours must open, and the colour mass must not collapse.

Measured against the trainer before issue 15's fix (a temporary copy of it, same helpers): with behaviour
logprobs it reaches gap 2.8 / colour mass 0.87 here and fails the thresholds; the no-logprobs case does not fail
on it in this scenario (gap 23.7): its collapse needs answers that conflict across tasks (``PER_TASK``/``HINT``
below, the second column of docs/training.md's table), where no trainer learns from a prompt-blind warm start.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightspan.schemas import rows as R
from lightspan.training import TrainConfig, rewards, train

TRAIN_TASKS = range(8)
HELD_OUT = range(20, 26)
ROLLOUTS = 4


def answer(task: int, kit) -> str:
    """The right colour of a task: named in its prompt, so a policy that reads the prompt can generalize."""
    return kit.WORDS[task % len(kit.WORDS)] if PER_TASK else "green"


# Scenario switches for the docs table's second column (per-task answers named in the prompt); the tests use neither.
PER_TASK = False
HINT = False


def prompt(task: int, kit) -> list[dict[str, str]]:
    msgs = kit.task_prompt(task)
    if HINT:
        msgs[-1] = {"role": "user", "content": f"Which color is task {task}? Say {answer(task, kit)}."}
    return msgs


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def _prompt_ids(tok, task, kit) -> list[int]:
    return list(
        tok.apply_chat_template(
            prompt(task, kit), add_generation_prompt=True, tokenize=True, return_dict=False
        )
    )


def colour_ids(tok, kit) -> list[int]:
    ids = [tok(w, add_special_tokens=False)["input_ids"][0] for w in kit.WORDS]
    assert len(set(ids)) == len(kit.WORDS), "each colour must start with its own token"
    return ids


@torch.no_grad()
def held_out_stats(path, kit) -> dict[str, float]:
    """Mean over held-out tasks of log p(right colour), the gap to the wrong colours' mean log p, colour mass."""
    model, tok = _load(path)
    cand = colour_ids(tok, kit)
    logp_right, gap, mass = [], [], []
    for task in HELD_OUT:
        right = kit.WORDS.index(answer(task, kit))
        logp = torch.log_softmax(model(torch.tensor([_prompt_ids(tok, task, kit)])).logits[0, -1], -1)[cand]
        wrong = torch.cat([logp[:right], logp[right + 1 :]])
        logp_right.append(logp[right].item())
        gap.append((logp[right] - wrong.mean()).item())
        mass.append(logp.exp().sum().item())
    n = len(HELD_OUT)
    return {"logp_right": sum(logp_right) / n, "gap": sum(gap) / n, "mass": sum(mass) / n}


def warm_start(tiny_model: str, out: Path, kit) -> str:
    """SFT (TRL's SFTTrainer through ``train``) on every task x every colour: a near-uniform colour answerer."""
    rows = [
        kit.call_row(task, k, word, 1.0, 1.0, prompt=prompt(task, kit))
        for task in [*TRAIN_TASKS, *HELD_OUT]
        for k, word in enumerate(kit.WORDS)
    ]
    data = kit.write_rows(rows, out / "sft" / "calls.parquet")
    result = train(
        TrainConfig(
            algo="sft",
            model=tiny_model,
            data=str(data),
            output_dir=str(out / "sft-run"),
            learning_rate=3e-3,
            max_steps=40,
            per_device_train_batch_size=16,
            save_steps=10_000,
            progress=False,
        )
    )
    return result.model_path


@torch.no_grad()
def sample_rows(path, kit, seed: int, with_logprobs: bool) -> list[dict]:
    """ROLLOUTS answers per training task from the policy's full next-token distribution; GRPO advantages."""
    model, tok = _load(path)
    cand = colour_ids(tok, kit)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for task in TRAIN_TASKS:
        p_ids = _prompt_ids(tok, task, kit)
        probs = torch.softmax(model(torch.tensor([p_ids])).logits[0, -1], -1)
        picks = torch.multinomial(probs, ROLLOUTS, replacement=True, generator=gen).tolist()
        c_ids = torch.tensor([[p, tok.eos_token_id] for p in picks])
        full = torch.cat([torch.tensor([p_ids] * ROLLOUTS), c_ids], dim=1)
        logp = torch.log_softmax(model(full).logits[:, len(p_ids) - 1 : -1], -1)
        behaviour = logp.gather(-1, c_ids.unsqueeze(-1)).squeeze(-1)
        for k, pick in enumerate(picks):
            word = kit.WORDS[cand.index(pick)] if pick in cand else tok.decode([pick])
            rows.append(
                kit.call_row(
                    task,
                    k,
                    word,
                    rewards.exact_match(word, answer(task, kit)),
                    0.0,
                    **{
                        R.PROMPT: prompt(task, kit),
                        R.PROMPT_TOKEN_IDS: p_ids,
                        R.COMPLETION_TOKEN_IDS: c_ids[k].tolist(),
                        R.COMPLETION_LOGPROBS: behaviour[k].tolist() if with_logprobs else None,
                    },
                )
            )
    return rewards.group_advantages(rows)


def lightningrl(path: str, data: Path, out: Path, **kw) -> str:
    result = train(
        TrainConfig(
            algo="lightningrl",
            model=path,
            data=str(data),
            output_dir=str(out),
            learning_rate=3e-3,
            num_train_epochs=kw.pop("epochs", 30),
            per_device_train_batch_size=16,
            save_steps=10_000,
            seed=0,
            progress=False,
            **kw,
        )
    )
    return result.model_path


@pytest.fixture(scope="module")
def warm(tiny_model, tmp_path_factory, kit):
    path = warm_start(tiny_model, tmp_path_factory.mktemp("warm"), kit)
    stats = held_out_stats(path, kit)
    print(f"warm start: {stats}")
    assert stats["mass"] > 0.9  # it answers with a colour ...
    assert abs(stats["gap"]) < 0.5  # ... about uniformly
    return path, stats


def _check(before: dict[str, float], after: dict[str, float]) -> None:
    print(f"held out: {before} -> {after}")
    assert after["gap"] > before["gap"] + 5.0  # held-out reward rises: the right colour pulls ahead
    assert after["logp_right"] > max(before["logp_right"] + 0.5, -0.1)  # the rewarded answer's own p rises
    assert after["mass"] > 0.95  # no collapse: it still answers with a colour


@pytest.mark.parametrize("with_logprobs", [True, False], ids=["behaviour-logprobs", "no-logprobs"])
def test_lightningrl_from_a_warm_start_learns_without_collapse(warm, tmp_path, kit, with_logprobs):
    path, before = warm
    rows = sample_rows(path, kit, seed=7, with_logprobs=with_logprobs)
    assert any(r[R.ADVANTAGE] != 0 for r in rows)
    data = kit.write_rows(rows, tmp_path / "rl" / "calls.parquet")
    after = held_out_stats(lightningrl(path, data, tmp_path / "run"), kit)
    _check(before, after)
