"""The learning test: on a toy task with a clear reward, lightningrl raises the policy's mean reward.

Four tasks (different prompts) ask for a color; the right answer is "green". The policy answers with
one token chosen among the four color tokens (its next-token distribution restricted to them, so a
random-init model starts near 1/4); reward 1 if the completion's first token is the right one. Each round: sample from the policy, reward, group-normalize advantages per task (GRPO),
write converter-shaped Parquet with the spans' token ids and behaviour logprobs, run lightningrl
through ``train()``, and reload the saved model. Mean reward is measured before and after, both
exactly (expected reward under the policy) and by sampling.
"""

from __future__ import annotations

import torch

from lightspan.schemas import rows as R
from lightspan.training import TrainConfig, rewards, train

N_TASKS = 4
ANSWER = "green"  # every task asks for the same color: a clear reward the tiny model can learn fast
SAMPLES_PER_TASK = 16
ROUNDS = 2


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def _prompt_ids(tok, task, kit):
    return list(
        tok.apply_chat_template(
            kit.task_prompt(task), add_generation_prompt=True, tokenize=True, return_dict=False
        )
    )


@torch.no_grad()
def _candidate_probs(model, tok, cand, kit):
    """p(color | task) for every task: the policy's next-token distribution restricted to the colors."""
    out = []
    for task in range(N_TASKS):
        logits = model(torch.tensor([_prompt_ids(tok, task, kit)])).logits[0, -1]
        out.append(torch.softmax(logits[cand], -1))
    return torch.stack(out)


@torch.no_grad()
def _sample_rows(model, tok, cand, gen, kit):
    """Sample a color per rollout; keep the spans' token ids and the behaviour policy's logprobs."""
    probs = _candidate_probs(model, tok, cand, kit)
    rows = []
    for task in range(N_TASKS):
        p_ids = _prompt_ids(tok, task, kit)
        picks = torch.multinomial(probs[task], SAMPLES_PER_TASK, replacement=True, generator=gen).tolist()
        c_ids = torch.tensor([[cand[p], tok.eos_token_id] for p in picks])
        full = torch.cat([torch.tensor([p_ids] * len(picks)), c_ids], dim=1)
        logp = torch.log_softmax(model(full).logits[:, len(p_ids) - 1 : -1], -1)
        behaviour = logp.gather(-1, c_ids.unsqueeze(-1)).squeeze(-1)
        for k, pick in enumerate(picks):
            word = kit.WORDS[pick]
            rows.append(
                kit.call_row(
                    task,
                    k,
                    word,
                    rewards.exact_match(word, ANSWER),
                    0.0,
                    **{
                        R.PROMPT_TOKEN_IDS: p_ids,
                        R.COMPLETION_TOKEN_IDS: c_ids[k].tolist(),
                        R.COMPLETION_LOGPROBS: behaviour[k].tolist(),
                    },
                )
            )
    return rewards.group_advantages(rows)


def test_lightningrl_raises_mean_reward(tiny_model, tmp_path, kit):
    model, tok = _load(tiny_model)
    cand = [tok(w, add_special_tokens=False)["input_ids"][0] for w in kit.WORDS]
    assert len(set(cand)) == len(kit.WORDS), "each color must start with its own token"
    gen = torch.Generator().manual_seed(1234)
    right = kit.WORDS.index(ANSWER)

    before_exact = _candidate_probs(model, tok, cand, kit)[:, right].mean().item()
    rows = _sample_rows(model, tok, cand, gen, kit)
    before_sampled = sum(r[R.REWARD] for r in rows) / len(rows)

    path = tiny_model
    for rnd in range(ROUNDS):
        data = kit.write_rows(rows, tmp_path / f"round{rnd}" / "calls.parquet")
        result = train(
            TrainConfig(
                algo="lightningrl",
                model=path,
                data=str(data.parent),
                output_dir=str(tmp_path / f"run{rnd}"),
                learning_rate=3e-3,
                num_train_epochs=1,
                per_device_train_batch_size=16,
                save_steps=1000,
                seed=rnd,
                progress=False,
            )
        )
        assert result.steps == SAMPLES_PER_TASK * N_TASKS // 16
        assert result.metrics["rl/off_policy_frac"] == 1.0  # the spans' behaviour logprobs were used
        path = result.model_path
        model, tok = _load(path)
        rows = _sample_rows(model, tok, cand, gen, kit)

    after_exact = _candidate_probs(model, tok, cand, kit)[:, right].mean().item()
    after_sampled = sum(r[R.REWARD] for r in rows) / len(rows)
    print(
        f"mean reward exact {before_exact:.3f} -> {after_exact:.3f}, sampled {before_sampled:.3f} -> {after_sampled:.3f}"
    )
    assert 0.15 < before_exact < 0.35  # random init: about 1/4
    assert after_exact > before_exact + 0.3
    assert after_sampled > before_sampled + 0.2
