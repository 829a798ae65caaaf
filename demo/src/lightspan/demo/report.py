"""The demo's outputs a person reads: a Markdown report and a PNG plot, from the run's numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightspan.demo.run import Hops


def _rolling(values: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def write_plot(
    metrics: list[dict[str, Any]], before: float, rounds: list[dict[str, Any]], path: Path
) -> Path:
    """Reward per training step: the held-out reward of the policy at step 0 and after each on-policy
    round, the reward of each round's training rollouts, and (faint) the reward of each training batch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5))
    steps = [m["step"] for m in metrics if "rl/reward_mean" in m]
    rewards = [m["rl/reward_mean"] for m in metrics if "rl/reward_mean" in m]
    if steps:
        window = max(1, len(steps) // 40)
        ax.plot(
            steps,
            _rolling(rewards, window),
            color="#c8d6e5",
            lw=1,
            label=f"reward of the training batch (rolling {window} steps)",
        )
    xs = [0] + [r["cumulative_steps"] for r in rounds]
    held = [before] + [r["held_out_after"] for r in rounds]
    ax.plot(xs, held, "o-", color="#10ac84", lw=2.5, label="held-out reward of the policy")
    for x, y in zip(xs, held, strict=True):
        ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 8), ha="center")
    starts = [0] + [r["cumulative_steps"] for r in rounds[:-1]]
    ax.plot(
        starts,
        [r["train_reward"] for r in rounds],
        "s--",
        color="#2e86de",
        label="reward of the round's training rollouts (on-policy)",
    )
    for r in rounds[:-1]:
        ax.axvline(r["cumulative_steps"], color="#8395a7", lw=0.8, ls=":")
    ax.set_xlabel("training step (lightningrl, cumulative over rounds)")
    ax.set_ylabel("reward")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("lightspan demo: reward per training step")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_markdown(report: dict[str, Any], path: Path) -> Path:
    """A short human-readable report: the result, the counts at every hop, timings and paths."""
    before, after = report["before"], report.get("after")
    hops = Hops(**report["hops"])
    lines = [
        "# lightspan demo report",
        "",
        f"Held-out reward: **{before['reward']:.3f} -> {after['reward']:.3f}** "
        f"({after['reward'] - before['reward']:+.3f}) over {after['n']} rollouts each."
        if after
        else f"Held-out reward before: {before['reward']:.3f}",
        "",
        "## Rounds (rollouts on the current policy -> convert -> lightningrl -> reload)",
        "",
        "| round | rollouts | their reward | rows | steps | held-out reward after |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        *[
            f"| {r['round']} | {r['rollouts']} | {r['train_reward']:.3f} | {r['rows']} | {r['steps']} | "
            f"{r['held_out_after']:.3f} |"
            for r in report.get("rounds", [])
        ],
        "",
        "## Counts at every hop",
        "",
        "| hop | count |",
        "| --- | ---: |",
        *[f"| {label} | {n} |" for label, n in hops.labelled()],
        "",
        f"Counts match: **{report['counts_match']}**",
        "",
        "## Per question type (held-out)",
        "",
        "| type | before | after |",
        "| --- | ---: | ---: |",
        *[
            f"| {t} | {before['by_type'][t]:.3f} | {after['by_type'].get(t, float('nan')) if after else float('nan'):.3f} |"
            for t in before["by_type"]
        ],
        "",
        "## Seconds per stage",
        "",
        "| stage | seconds |",
        "| --- | ---: |",
        *[f"| {k} | {v} |" for k, v in report["seconds"].items()],
        "",
        "## Where everything is",
        "",
        *[f"- {k}: `{v}`" for k, v in report["paths"].items()],
        "",
    ]
    path.write_text("\n".join(lines))
    return path


def write_json(report: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(report, indent=2, default=str))
    return path
