"""The demo's outputs a person reads: a Markdown report and a PNG plot, from the run's numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _rolling(values: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def write_plot(metrics: list[dict[str, Any]], before: float, after: float | None, path: Path) -> Path:
    """Left: reward of the batch at each training step (rolling mean) and the policy's clip ratio.
    Right: held-out reward of the policy before and after training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [m["step"] for m in metrics if "rl/reward_mean" in m]
    rewards = [m["rl/reward_mean"] for m in metrics if "rl/reward_mean" in m]
    kl = [m.get("rl/approx_kl", 0.0) for m in metrics if "rl/reward_mean" in m]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1]})
    if steps:
        window = max(1, len(steps) // 25)
        ax1.plot(steps, rewards, color="#c8d6e5", lw=0.8, label="batch reward")
        ax1.plot(steps, _rolling(rewards, window), color="#2e86de", lw=2, label=f"rolling mean ({window} steps)")
        ax1b = ax1.twinx()
        ax1b.plot(steps, _rolling(kl, window), color="#ee5253", lw=1, alpha=0.7, label="approx KL (rolling)")
        ax1b.set_ylabel("approx KL to behaviour policy")
        ax1b.legend(loc="upper right", fontsize=8)
    ax1.set_xlabel("training step (lightningrl)")
    ax1.set_ylabel("reward of the rollouts in the batch")
    ax1.set_ylim(-0.05, 1.05)
    ax1.legend(loc="upper left", fontsize=8)
    ax1.set_title("reward per training step")
    labels, values = ["before"], [before]
    if after is not None:
        labels.append("after")
        values.append(after)
    bars = ax2.bar(labels, values, color=["#8395a7", "#10ac84"][: len(values)])
    for bar, value in zip(bars, values, strict=True):
        ax2.text(bar.get_x() + bar.get_width() / 2, value + 0.02, f"{value:.3f}", ha="center")
    ax2.set_ylim(0, 1.05)
    ax2.set_title("held-out reward")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_markdown(report: dict[str, Any], path: Path) -> Path:
    """A short human-readable report: the result, the counts at every hop, timings and paths."""
    before, after = report["before"], report.get("after")
    hops = report["hops"]
    lines = [
        "# lightspan demo report",
        "",
        f"Held-out reward: **{before['reward']:.3f} -> {after['reward']:.3f}** "
        f"({after['reward'] - before['reward']:+.3f}) over {after['n']} rollouts each."
        if after else f"Held-out reward before: {before['reward']:.3f}",
        "",
        "## Counts at every hop",
        "",
        "| hop | count |",
        "| --- | ---: |",
        *[f"| {k} | {v} |" for k, v in hops.items()],
        "",
        f"Counts match: **{report['counts_match']}**",
        "",
        "## Per question type (held-out)",
        "",
        "| type | before | after |",
        "| --- | ---: | ---: |",
        *[f"| {t} | {before['by_type'][t]:.3f} | {after['by_type'].get(t, float('nan')) if after else float('nan'):.3f} |"
          for t in before["by_type"]],
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
