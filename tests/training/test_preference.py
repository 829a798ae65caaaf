"""KTO and DPO from a warm-started tiny policy: the chosen (desirable) answer's own log-prob must not fall.

The policy is first fine-tuned to answer any of four colours about uniformly (as the issue's warm start);
then each task has two rollouts with the right colour (reward 1) and two with wrong ones (reward 0).
Plain DPO and KTO with TRL's default weights let every colour's log-prob fall together here (measured in
docs/training.md): lowering a wrong answer spreads its mass over the whole vocabulary. lightspan's DPO adds
the chosen answer's NLL (``rpo_alpha``, default 1) and weighs KTO's undesirable rows 0.5
(``kto_undesirable_weight``); with TRL's defaults both tests fail (right answer -1.4 -> -6.0 / -13.7 nat).
"""

from __future__ import annotations

import math

import pytest

from lightspan.training import TrainConfig, train

TASKS = range(4)


def _colour_logprobs(model_path: str, kit) -> list[list[float]]:
    """log p(colour + end of turn | task prompt) for every task (rows) and colour (columns)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path).eval()
    table = []
    for task in TASKS:
        prompt = tok.apply_chat_template(
            kit.task_prompt(task), add_generation_prompt=True, tokenize=True, return_dict=False
        )
        row = []
        for word in kit.WORDS:
            completion = tok(word, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            ids = torch.tensor([list(prompt) + completion])
            with torch.no_grad():
                logps = model(ids).logits[0, len(prompt) - 1 : -1].log_softmax(-1)
            row.append(float(logps.gather(1, torch.tensor(completion)[:, None]).sum()))
        table.append(row)
    return table


def _summary(table: list[list[float]], kit) -> dict[str, float]:
    n = len(kit.WORDS)
    right = [row[t % n] for t, row in zip(TASKS, table, strict=True)]
    wrong = [
        sum(v for i, v in enumerate(row) if i != t % n) / (n - 1) for t, row in zip(TASKS, table, strict=True)
    ]
    return {
        "right": sum(right) / len(right),
        "gap": (sum(right) - sum(wrong)) / len(right),
        "mass": sum(sum(math.exp(v) for v in row) for row in table) / len(table),
    }


def _cfg(model: str, data, out, **kw) -> TrainConfig:
    base = dict(
        model=model,
        data=str(data),
        output_dir=str(out),
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        save_steps=1000,
        progress=False,
        max_length=64,
    )
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread_per_module):
    """One torch thread for this module (conftest), set up before the module's warm policy is trained."""


@pytest.fixture(scope="module")
def warm_policy(tiny_model, kit, tmp_path_factory) -> str:
    """SFT on all four colours for every task: about uniform over the colours, nearly all mass on them."""
    base = tmp_path_factory.mktemp("warm")
    rows = [kit.call_row(t, r, kit.WORDS[r], 1.0, 1.0) for t in TASKS for r in range(4)]
    data = kit.write_rows(rows, base / "rows.parquet")
    train(_cfg(tiny_model, data, base / "run", algo="sft", max_steps=40, learning_rate=3e-3))
    return str(base / "run" / "final")


@pytest.fixture(scope="module")
def preference_rows(kit, tmp_path_factory):
    """Per task: rollouts 0 and 2 answer the right colour (reward 1), 1 and 3 two different wrong ones."""
    n = len(kit.WORDS)
    rows = []
    for t in TASKS:
        for r in range(4):
            good = r % 2 == 0
            word = kit.WORDS[t % n] if good else kit.WORDS[(t + 1 + r // 2) % n]
            rows.append(kit.call_row(t, r, word, float(good), 1.0 if good else -1.0))
    return kit.write_rows(rows, tmp_path_factory.mktemp("pref") / "rows.parquet")


@pytest.mark.parametrize("algo", ["dpo", "kto"])
def test_chosen_answer_keeps_its_probability(algo, warm_policy, preference_rows, kit, tmp_path):
    start = _summary(_colour_logprobs(warm_policy, kit), kit)
    assert abs(start["gap"]) < 0.3 and start["mass"] > 0.9  # the warm start: near-uniform over colours
    result = train(
        _cfg(warm_policy, preference_rows, tmp_path / algo, algo=algo, max_steps=30, learning_rate=3e-3)
    )
    end = _summary(_colour_logprobs(result.model_path, kit), kit)
    assert end["right"] >= start["right"] - 0.05, (start, end)  # no collapse of the chosen answer
    assert end["gap"] > start["gap"], (start, end)  # and it learned the preference
    assert end["mass"] > 0.8, (start, end)  # still answers with a colour
