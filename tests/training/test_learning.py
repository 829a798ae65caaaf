"""Learning tests: lightningrl from a warm-started policy raises held-out reward without collapsing.

The warm start is what an RL engineer starts from: a policy SFT-trained to answer any of four colours about
uniformly (nearly all its mass on colour words, and it ends its turn after one). Training tasks ask "Which color
is task i?"; the right answer is always "green" (reward 1), so it can carry over to held-out tasks. Each of
ROUNDS rounds is the loop lightspan runs: generate 4 completions per task token by token from the served policy,
group-normalize rewards into advantages (GRPO), write converter-shaped Parquet with the token ids (and, in one
test, the behaviour logprobs and a policy version one behind: asynchronous collection), and run ``lightningrl``
through ``train()`` for EPOCHS epochs; the result is served next round. On held-out tasks the right answer's own
log-probability must rise, the gap to the wrong colours must open, and the policy must keep answering with a
colour and ending its turn.

Measured against the 0.2.0 trainer (git 559180e's training/ on PYTHONPATH, same helpers, 2026-12-03): with
one-version-stale behaviour logprobs it reaches gap 3.5 after 8 rounds and fails; without logprobs it collapses
(log p(right) -4.79, colour mass 0.02, ends its turn 0.1%). The last test has answers that differ per task,
named in the prompt, from a warm start that ignores the prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from lightspan.schemas import rows as R
from lightspan.training import TrainConfig, rewards, train

TRAIN_TASKS = range(8)
HELD_OUT = range(20, 26)
ROLLOUTS = 4
ROUNDS = 8
EPOCHS = 4


def answer(task: int, kit, per_task: bool) -> str:
    """The right colour: "green" for every task, or (``per_task``) a colour per task named in its prompt."""
    return kit.WORDS[task % len(kit.WORDS)] if per_task else "green"


def prompt(task: int, kit, per_task: bool) -> list[dict[str, str]]:
    msgs = kit.task_prompt(task)
    if per_task:
        msgs[-1] = {"role": "user", "content": f"Which color is task {task}? Say {answer(task, kit, True)}."}
    return msgs


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def _prompt_ids(tok, task, kit, per_task: bool) -> list[int]:
    return list(
        tok.apply_chat_template(
            prompt(task, kit, per_task), add_generation_prompt=True, tokenize=True, return_dict=False
        )
    )


def colour_ids(tok, kit) -> list[int]:
    ids = [tok(w, add_special_tokens=False)["input_ids"][0] for w in kit.WORDS]
    assert len(set(ids)) == len(kit.WORDS), "each colour must start with its own token"
    return ids


@torch.no_grad()
def held_out_stats(path, kit, per_task: bool = False) -> dict[str, float]:
    """Mean over held-out tasks of log p(right colour), the gap to the wrong colours' mean log p, colour mass,
    and p(end of turn | right colour): an answer only counts if the policy also stops after it."""
    model, tok = _load(path)
    cand = colour_ids(tok, kit)
    logp_right, gap, mass, ends = [], [], [], []
    for task in HELD_OUT:
        right = kit.WORDS.index(answer(task, kit, per_task))
        p_ids = _prompt_ids(tok, task, kit, per_task)
        logits = model(torch.tensor([[*p_ids, cand[right]]])).logits[0]
        logp = torch.log_softmax(logits[-2], -1)[cand]
        wrong = torch.cat([logp[:right], logp[right + 1 :]])
        logp_right.append(logp[right].item())
        gap.append((logp[right] - wrong.mean()).item())
        mass.append(logp.exp().sum().item())
        ends.append(torch.softmax(logits[-1], -1)[tok.eos_token_id].item())
    n = len(HELD_OUT)
    return {
        "logp_right": sum(logp_right) / n,
        "gap": sum(gap) / n,
        "mass": sum(mass) / n,
        "ends_turn": sum(ends) / n,
    }


def warm_start(tiny_model: str, out: Path, kit, per_task: bool = False) -> str:
    """SFT (TRL's SFTTrainer through ``train``) on every task x every colour: a near-uniform colour answerer."""
    rows = [
        kit.call_row(task, k, word, 1.0, 1.0, prompt=prompt(task, kit, per_task))
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


MAX_NEW_TOKENS = 3


@torch.no_grad()
def sample_rows(
    path, kit, seed: int, with_logprobs: bool, per_task: bool = False, rollouts: int = ROLLOUTS
) -> list[dict]:
    """``rollouts`` completions per training task, generated token by token from the policy's full distribution
    (up to MAX_NEW_TOKENS, stopping at eos), with the logprob of each sampled token; GRPO advantages.

    Generated, not a sampled first token with eos appended: an appended eos after an off-colour token is an
    event the policy gives ~1e-5, recorded as if it had generated it, and its negative advantage then pushes
    the end-of-turn token down after every answer (measured: log p(eos | colour) -0.01 -> -11 in one round).
    """
    model, tok = _load(path)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for task in TRAIN_TASKS:
        p_ids = _prompt_ids(tok, task, kit, per_task)
        for k in range(rollouts):
            c_ids: list[int] = []
            behaviour: list[float] = []
            while len(c_ids) < MAX_NEW_TOKENS and tok.eos_token_id not in c_ids:
                logp = torch.log_softmax(model(torch.tensor([p_ids + c_ids])).logits[0, -1], -1)
                pick = int(torch.multinomial(logp.exp(), 1, generator=gen))
                c_ids.append(pick)
                behaviour.append(float(logp[pick]))
            word = tok.decode([i for i in c_ids if i != tok.eos_token_id])
            rows.append(
                kit.call_row(
                    task,
                    k,
                    word,
                    rewards.exact_match(word, answer(task, kit, per_task)),
                    0.0,
                    **{
                        R.PROMPT: prompt(task, kit, per_task),
                        R.PROMPT_TOKEN_IDS: p_ids,
                        R.COMPLETION_TOKEN_IDS: c_ids,
                        R.COMPLETION_LOGPROBS: behaviour if with_logprobs else None,
                    },
                )
            )
    return rewards.group_advantages(rows)


def lightningrl(path: str, data: Path, out: Path, seed: int, lr: float = 1e-3) -> str:
    """One round's ``lightspan train``: a fresh run over that round's rows (its own optimizer, as in production)."""
    result = train(
        TrainConfig(
            algo="lightningrl",
            model=path,
            data=str(data),
            output_dir=str(out),
            learning_rate=lr,
            num_train_epochs=EPOCHS,
            per_device_train_batch_size=16,
            save_steps=10_000,
            seed=seed,
            progress=False,
        )
    )
    return result.model_path


def rounds(
    path: str,
    out: Path,
    kit,
    *,
    with_logprobs: bool,
    lag: int = 0,
    n: int = ROUNDS,
    per_task: bool = False,
    rollouts: int = ROLLOUTS,
    lr: float = 1e-3,
    until: Callable[[dict[str, float]], bool] | None = None,
) -> tuple[str, int]:
    """Up to ``n`` rounds of collect -> advantages -> train -> serve the new policy (stopping early once
    ``until(held_out_stats)`` holds); returns the last policy and the rounds run. With ``lag`` 1 each round's
    rollouts come from the policy one version behind the one being trained (agents kept serving it while the
    trainer ran: asynchronous RL), and the rows carry that version."""
    served = [path]
    for r in range(n):
        version = max(0, len(served) - 1 - lag)
        rows = sample_rows(served[version], kit, 100 + r, with_logprobs, per_task, rollouts)
        assert r > 0 or any(row[R.ADVANTAGE] != 0 for row in rows)  # later rounds may all be right
        for row in rows:
            row[R.POLICY_VERSION] = version
        data = kit.write_rows(rows, out / f"round-{r}" / "calls.parquet")
        served.append(lightningrl(served[-1], data, out / f"run-{r}", seed=r, lr=lr))
        if until is not None and until(held_out_stats(served[-1], kit, per_task)):
            return served[-1], r + 1
    return served[-1], n


@pytest.fixture(scope="module")
def warm(tiny_model, tmp_path_factory, kit):
    path = warm_start(tiny_model, tmp_path_factory.mktemp("warm"), kit)
    stats = held_out_stats(path, kit)
    print(f"warm start: {stats}")
    assert stats["mass"] > 0.9  # it answers with a colour ...
    assert abs(stats["gap"]) < 0.5  # ... about uniformly
    assert stats["ends_turn"] > 0.9  # ... and stops there
    return path, stats


def _check(before: dict[str, float], after: dict[str, float]) -> None:
    print(f"held out: {before} -> {after}")
    assert after["gap"] > before["gap"] + 5.0  # held-out reward rises: the right colour pulls ahead
    assert after["logp_right"] > max(before["logp_right"] + 0.5, -0.1)  # the rewarded answer's own p rises
    assert after["mass"] > 0.95  # no collapse: it still answers with a colour ...
    assert after["ends_turn"] > 0.9  # ... and ends its turn after it


@pytest.mark.parametrize(
    ("with_logprobs", "lag"),
    [(True, 1), (False, 0)],
    ids=["behaviour-logprobs-one-version-stale", "no-logprobs"],
)
def test_lightningrl_from_a_warm_start_learns_without_collapse(warm, tmp_path, kit, with_logprobs, lag):
    path, before = warm
    policy, _ = rounds(path, tmp_path, kit, with_logprobs=with_logprobs, lag=lag)
    _check(before, held_out_stats(policy, kit))


@pytest.mark.parametrize("with_logprobs", [True, False], ids=["behaviour-logprobs", "no-logprobs"])
def test_lightningrl_learns_to_read_the_prompt_from_a_prompt_blind_start(
    tiny_model, tmp_path, kit, one_thread, with_logprobs
):
    """The right colour differs per task and is named in the prompt ("Which color is task 3? Say gold."); the
    warm start ignores the prompt (same colour distribution everywhere). RL must teach it to read the prompt:
    16 completions per task (a group of 4 with one right answer is too noisy) and a lower lr over more rounds."""
    start = warm_start(tiny_model, tmp_path / "warm", kit, per_task=True)
    before = held_out_stats(start, kit, per_task=True)
    assert before["mass"] > 0.9 and abs(before["gap"]) < 0.5  # prompt-blind: no preference for the named one

    def learned(s: dict[str, float]) -> bool:
        return (
            s["gap"] > before["gap"] + 3.0
            and s["logp_right"] > before["logp_right"] + 0.8
            and s["mass"] > 0.85
            and s["ends_turn"] > 0.9
        )

    policy, n = rounds(
        start,
        tmp_path,
        kit,
        with_logprobs=with_logprobs,
        n=40,
        per_task=True,
        rollouts=16,
        lr=3e-4,
        until=learned,
    )
    after = held_out_stats(policy, kit, per_task=True)
    print(f"per task, {n} rounds: {before} -> {after}")
    assert learned(after), after
