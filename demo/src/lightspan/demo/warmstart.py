"""Build the demo's tiny policy and warm-start it: SFT on planner traces, GAP's first stage.

The traces are valid but deliberately imperfect, so RL has something to fix: for a question whose
lookups are independent, most traces sequentialize them (``depends`` edges the data does not need), and
half of all traces repeat a lookup. So the warm-started planner writes runnable plans that cost more
tool calls and levels than needed, and it answers from their observations. The same SFT also teaches
the ReAct baseline's turn format, from minimal traces (the baseline gets the best sequential traces).

It is a plain torch loop (a fraction of a second a step on 2 CPU cores), not the TRL trainer: the demo's
subject is the RL step, and this one must be fast and deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from lightspan.demo import prompts as P
from lightspan.demo import world as W

__all__ = [
    "WarmStartConfig",
    "build_policy",
    "imperfect_plan",
    "sft_examples",
    "tokenizer_texts",
    "PLAN_TOKENS",
]

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class WarmStartConfig:
    """The tiny policy's size and its warm start.

    p_sequential: chance a trace chains independent lookups with needless ``depends`` edges.
    p_redundant: chance a trace repeats one lookup.
    p_plan / p_react: shares of plan-call and ReAct-turn examples in SFT batches (the rest: answer calls).
    """

    vocab_size: int = 768
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 2  # head_dim 32: a shape vLLM's CPU attention serves too
    sft_steps: int = 300
    sft_batch_size: int = 16
    sft_learning_rate: float = 3e-3
    p_sequential: float = 0.6
    p_redundant: float = 0.5
    p_plan: float = 0.5
    p_react: float = 0.2
    seed: int = 0


#: Plan syntax as single tokens (added to the BPE vocabulary before SFT), as a real LLM's tokenizer has
#: its common tags: a node is ~5 tokens, not ~14.
PLAN_TOKENS = (
    "<graph>",
    "</graph>",
    "</node>",
    *(f'<node id="s{k}">' for k in range(1, 10)),
    *(f'<node id="s{k}"' for k in range(1, 10)),
    *(f' depends="s{k}">' for k in range(1, 10)),
    *(f"{{{v}{k}}}{close}" for v in "sqo" for k in range(1, 10) for close in ("", ")")),
    *(f"{name}(" for name in W.TOOL_NAMES),
    # Each entity one token, the same with or without a space before it ("of abel" / "city(abel)"), so
    # writing a plan or an answer is copying tokens, not learning 70 spellings twice.
    *W.ENTITIES,
)


def imperfect_plan(task: W.Task, rng: random.Random, cfg: WarmStartConfig) -> list[W.Node]:
    """The minimal plan, maybe sequentialized (each root after the first waits for the node before it)
    and maybe with one lookup repeated at the end."""
    nodes = task.minimal_plan()
    if len(task.people) > 1 and rng.random() < cfg.p_sequential:
        nodes = [
            replace(n, depends=(nodes[i - 1].id,)) if i and n.arg != f"{{{nodes[i - 1].id}}}" else n
            for i, n in enumerate(nodes)
        ]
    if rng.random() < cfg.p_redundant:
        dup = rng.choice(nodes)
        nodes = [*nodes, W.Node(f"s{len(nodes) + 1}", dup.tool, dup.arg)]
    return nodes


def _observations(kb: W.KB, task: W.Task, nodes: list[W.Node]) -> list[str]:
    results: dict[str, str] = dict(task.inputs)
    lines = []
    for n in nodes:  # plan order is a topological order for these plans
        arg = P.resolve(n.arg, results)
        results[n.id] = W.lookup(kb, n.tool, arg)
        lines.append(P.observation_line(n.id, f"{n.tool}({arg})", results[n.id], True))
    return lines


def sft_examples(
    kb: W.KB, task: W.Task, rng: random.Random, cfg: WarmStartConfig
) -> list[tuple[Messages, str]]:
    """(prompt messages, completion) pairs from one trace of each kind: plan, answer, ReAct turns."""
    nodes = imperfect_plan(task, rng, cfg)
    plan = W.render_plan(nodes)
    conversation = [*P.plan_messages(task.plan_question), {"role": "assistant", "content": plan}]
    out = [
        (P.plan_messages(task.plan_question), plan),
        (P.answer_messages(conversation, _observations(kb, task, nodes)), task.answer_refs()),
    ]
    # The ReAct baseline learns the minimal sequential trace: node s<k> is its k-th turn, cited {o<k>}.
    messages = P.react_messages(task.plan_question)
    results: dict[str, str] = dict(task.inputs)
    for n in task.minimal_plan():
        k = n.id[1:]
        results[n.id] = W.lookup(kb, n.tool, P.resolve(n.arg, results))
        action = n.text().replace("{s", "{o")
        out.append((list(messages), action))
        messages = [
            *messages,
            {"role": "assistant", "content": action},
            {"role": "user", "content": f"o{k} = {results[n.id]}"},
        ]
    out.append((messages, "answer " + task.answer_refs().replace("{s", "{o")))
    return out


def _draw(kb: W.KB, tasks: list[W.Task], rng: random.Random, cfg: WarmStartConfig) -> tuple[Messages, str]:
    """One SFT example from a fresh trace (the imperfections are sampled each time): a plan call with
    chance ``p_plan``, else an answer call or, with chance ``p_react``, one ReAct turn."""
    examples = sft_examples(kb, rng.choice(tasks), rng, cfg)
    u = rng.random()
    if u < cfg.p_plan:
        return examples[0]
    if u < cfg.p_plan + cfg.p_react:
        return rng.choice(examples[2:])
    return examples[1]


def tokenizer_texts(kb: W.KB, tasks: list[W.Task], cfg: WarmStartConfig) -> list[str]:
    """Rendered conversations the tokenizer is trained on, so plan syntax merges into few tokens."""
    rng = random.Random(cfg.seed)
    texts = []
    for task in tasks:
        for prompt, completion in sft_examples(kb, task, rng, cfg)[:2]:
            texts.append(" ".join(m["content"] for m in prompt) + " " + completion)
    return W.corpus(kb, texts)


def build_policy(
    output_dir: str | Path,
    kb: W.KB,
    train_tasks: list[W.Task],
    cfg: WarmStartConfig | None = None,
    *,
    progress: Callable[[int, float], None] | None = None,
) -> str:
    """Build a tiny random-init model with a tokenizer trained on the world's texts, SFT it, save it.

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
        texts=tokenizer_texts(kb, train_tasks, cfg),
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        seed=cfg.seed,
    )
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    tok.add_tokens(list(PLAN_TOKENS))
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    if cfg.sft_steps <= 0:
        model.save_pretrained(out)
        tok.save_pretrained(out)
        return str(out)
    rng = random.Random(cfg.seed)
    cache: dict[str, list[int]] = {}

    def encode(prompt: Messages, completion: str) -> tuple[list[int], list[int]]:
        text = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        if text not in cache:
            cache[text] = tok(text, add_special_tokens=False)["input_ids"]
        return cache[text], tok(completion, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]

    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.sft_learning_rate)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 20) * max(0.1, 1 - s / cfg.sft_steps)
    )
    model.train()
    for step in range(cfg.sft_steps):
        batch = [encode(*_draw(kb, train_tasks, rng, cfg)) for _ in range(cfg.sft_batch_size)]
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
        sched.step()
        if progress is not None:
            progress(step, float(loss))
    model.eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)
