"""The demo's outputs a person reads: a Markdown report shaped like the GAP paper's tables, and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightspan.demo.run import Hops

__all__ = ["COLUMNS", "table_row", "write_json", "write_markdown", "write_plots"]

#: (header, EvalResult key, format) of the results table, in the paper's order of concerns.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("accuracy (EM)", "accuracy", "{:.3f}"),
    ("valid plans", "valid_rate", "{:.3f}"),
    ("tool calls/q", "tool_calls", "{:.2f}"),
    ("levels/plan", "levels", "{:.2f}"),
    ("LLM calls/q", "llm_calls", "{:.2f}"),
    ("planner tokens/q", "plan_tokens", "{:.1f}"),
    ("response tokens/q", "response_tokens", "{:.1f}"),
    ("wall ms/q", "wall_s", "{:.0f}"),
    ("reward", "reward", "{:.3f}"),
)


def _cell(result: dict[str, Any], key: str, fmt: str) -> str:
    value = result[key] * 1000 if key == "wall_s" else result[key]
    return fmt.format(value)


def table_row(result: dict[str, Any], name: str, *, header: bool = False) -> str:
    """One Markdown table row (with the header lines first when ``header``)."""
    row = f"| {name} | " + " | ".join(_cell(result, k, f) for _, k, f in COLUMNS) + " |"
    if not header:
        return row
    head = "| policy | " + " | ".join(h for h, _, _ in COLUMNS) + " |"
    rule = "| --- | " + " | ".join("---:" for _ in COLUMNS) + " |"
    return "\n".join([head, rule, row])


def _rows(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    if report.get("baseline"):
        rows.append(("sequential ReAct baseline (warm start)", report["baseline"]))
    rows.append(("GAP planner, warm start (SFT)", report["before"]))
    rows += [(f"GAP planner after round {r['round']} (RL)", r["held_out"]) for r in report.get("rounds", [])]
    return rows


def write_markdown(report: dict[str, Any], path: Path) -> Path:
    """The results table, rounds, counts at every hop, invalid plans, timings and paths."""
    hops = Hops(**report["hops"])
    rows = _rows(report)
    before, after, base = report["before"], report.get("after"), report.get("baseline")
    lines = ["# lightspan demo report: a GAP planner trained from its own traces", ""]
    if after:
        lines += [
            f"Held-out (same questions, same seeds): accuracy {before['accuracy']:.3f} -> {after['accuracy']:.3f}, "
            f"valid plans {before['valid_rate']:.3f} -> {after['valid_rate']:.3f}, tool calls/q "
            f"{before['tool_calls']:.2f} -> {after['tool_calls']:.2f}, levels/plan {before['levels']:.2f} -> "
            f"{after['levels']:.2f}, wall {before['wall_s'] * 1000:.0f} -> {after['wall_s'] * 1000:.0f} ms/q"
            + (f" (sequential baseline {base['wall_s'] * 1000:.0f} ms/q)." if base else "."),
            "",
        ]
    lines += [
        f"## Held-out evaluation ({before['n']} rollouts per row)",
        "",
        *table_row(rows[0][1], rows[0][0], header=True).splitlines(),
        *[table_row(r, name) for name, r in rows[1:]],
        "",
        "The baseline is the same warm-started policy as a ReAct agent: one LLM call per turn, each turn one "
        "tool call (or the answer), the tool's result the next turn; the same tools and questions. Tool calls "
        "and levels count the questions whose plan ran; the minimal plans of these questions take "
        f"{report.get('config', {}).get('minimal plans (held-out)', '?')}.",
        "",
        "## Accuracy per question type",
        "",
        "| policy | " + " | ".join(before["by_type"]) + " |",
        "| --- | " + " | ".join("---:" for _ in before["by_type"]) + " |",
        *[
            f"| {name} | "
            + " | ".join(f"{r['by_type'].get(t, float('nan')):.2f}" for t in before["by_type"])
            + " |"
            for name, r in rows
        ],
        "",
        "## Invalid plans by kind",
        "",
        *[f"- {name}: {r['invalid'] or 'none'}" for name, r in rows if r["agent"] == "gap"],
        "",
        "## Rounds (rollouts on the current policy -> convert -> lightningrl -> reload)",
        "",
        "| round | rollouts | their reward | their tool calls/q | their valid plans | rows | steps |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *[
            f"| {r['round']} | {r['rollouts']} | {r['train_reward']:.3f} | {r['train_tool_calls']:.2f} | "
            f"{r['train_valid_rate']:.3f} | {r['rows']} | {r['steps']} |"
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
        "## Configuration",
        "",
        *[f"- {k}: {v}" for k, v in report.get("config", {}).items()],
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


def write_plots(report: dict[str, Any], metrics: list[dict[str, Any]], work_dir: Path) -> list[Path]:
    """``gap.png``: the table's measures per stage against the baseline; ``reward.png``: reward per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [("warm", report["before"])] + [
        (f"r{r['round']}", r["held_out"]) for r in report.get("rounds", [])
    ]
    base = report.get("baseline")
    panels = [
        ("accuracy", "accuracy (exact match)"),
        ("valid_rate", "valid-plan rate"),
        ("tool_calls", "tool calls / question"),
        ("levels", "levels / plan"),
        ("response_tokens", "response tokens / question"),
        ("wall_s", "wall time / question (s)"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    xs = list(range(len(stages)))
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        ys = [s[key] for _, s in stages]
        ax.plot(xs, ys, "o-", color="#10ac84", lw=2, label="GAP planner (held-out)")
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(
                f"{y:.2f}" if y < 10 else f"{y:.0f}",
                (x, y),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=8,
            )
        if base is not None:
            ax.axhline(base[key], color="#ee5253", ls="--", lw=1.5, label="sequential ReAct baseline")
        ax.set_xticks(xs, [name for name, _ in stages])
        ax.set_title(title, fontsize=10)
        ax.margins(y=0.2)
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("lightspan demo: the GAP planner before and after each RL round (held-out questions)")
    fig.tight_layout()
    gap_png = work_dir / "gap.png"
    fig.savefig(gap_png, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4))
    steps = [m["step"] for m in metrics if "reward" in m]
    rewards = [m["reward"] for m in metrics if "reward" in m]  # TRL's name (rl/reward_mean is deprecated)
    if steps:
        ax.plot(steps, rewards, color="#c8d6e5", lw=1, label="reward of the training batch")
    rounds = report.get("rounds", [])
    xs = [0] + [r["cumulative_steps"] for r in rounds]
    held = [report["before"]["reward"]] + [r["held_out"]["reward"] for r in rounds]
    ax.plot(xs, held, "o-", color="#10ac84", lw=2.5, label="held-out reward of the policy")
    ax.plot(
        [0] + [r["cumulative_steps"] for r in rounds[:-1]],
        [r["train_reward"] for r in rounds],
        "s--",
        color="#2e86de",
        label="reward of the round's training rollouts (on-policy)",
    )
    ax.set_xlabel("training step (lightningrl, cumulative over rounds)")
    ax.set_ylabel("reward (0.4 correct + 0.2 valid + 0.4 efficient)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    reward_png = work_dir / "reward.png"
    fig.savefig(reward_png, dpi=100)
    plt.close(fig)
    return [gap_png, reward_png]


def write_json(report: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(report, indent=2, default=str))
    return path
