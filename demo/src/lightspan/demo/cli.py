"""``lightspan demo``: the whole loop on one machine -- agent, spans, training, a better policy."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("lightspan-demo"),
    show_default=True,
    help="Fresh directory for the policy, checkpoints, data and report.",
)
@click.option(
    "--rollouts",
    "n_rollouts",
    type=click.IntRange(8, 100_000),
    default=480,
    show_default=True,
    help="Training rollouts per round (train tasks x --group-size attempts).",
)
@click.option(
    "--group-size",
    type=click.IntRange(2, 64),
    default=8,
    show_default=True,
    help="Attempts per task (advantages are normalized within a task's group).",
)
@click.option(
    "--held-out",
    type=click.FloatRange(0.05, 0.9),
    default=0.25,
    show_default=True,
    help="Fraction of tasks kept for evaluation only.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for the world, split and sampling."
)
@click.option(
    "--rounds",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="On-policy rounds: rollouts -> convert -> lightningrl -> reload.",
)
@click.option(
    "--credit",
    type=click.Choice(["per_step", "grpo_rollout", "grpo", "identical"]),
    default="per_step",
    show_default=True,
    help="Credit assignment across the plan and answer calls (per_step: the step rewards aimed at each).",
)
@click.option(
    "--server",
    type=click.Choice(["lightspan", "vllm"]),
    default="lightspan",
    show_default=True,
    help="Policy server: the embedded `lightspan serve`, or real vLLM (its cached venv, built on first use; "
    "each round published by full-weight reload, probe-verified, recorded as a policy version).",
)
@click.option("--no-baseline", is_flag=True, help="Skip the sequential ReAct baseline evaluation.")
@click.option("--quick", is_flag=True, help="A small run (CI's end-to-end test): seconds of training.")
def demo(
    work_dir: Path,
    n_rollouts: int,
    group_size: int,
    held_out: float,
    seed: int,
    rounds: int,
    credit: str,
    server: str,
    no_baseline: bool,
    quick: bool,
) -> None:
    """Warm-start a tiny GAP planner on imperfect plans, serve it, run two-call agent rollouts (plan,
    tools in parallel, answer), train with lightningrl from the spans, and compare with a ReAct baseline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo builds its model; nothing comes from a hub
    from lightspan.demo.run import DemoConfig, run_demo

    try:
        cfg = DemoConfig(
            work_dir=work_dir,
            n_rollouts=n_rollouts,
            group_size=group_size,
            held_out=held_out,
            seed=seed,
            rounds=rounds,
            credit=credit,
            server=server,
            baseline=not no_baseline,
            quick=quick,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    try:
        report = run_demo(cfg, echo=click.echo)
    except (OSError, RuntimeError, ValueError) as exc:
        raise click.ClickException(f"demo failed: {exc}") from exc
    if not report.counts_match:
        raise click.ClickException("counts did not match at every hop; see report.md")
