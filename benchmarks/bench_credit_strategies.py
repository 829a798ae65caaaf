"""Credit strategies on the demo's GAP agent: identical vs per-step vs GRPO rollout-level.

Same world, seeds, warm-started policy (built once, shared), rollouts per round, rounds and training
steps for every strategy; only the converter's credit assignment differs. Reports held-out accuracy,
valid-plan rate, tool calls and levels after training, beside the shared warm start.

    .venv/bin/python benchmarks/bench_credit_strategies.py              # 2 rounds x 240 rollouts each
    .venv/bin/python benchmarks/bench_credit_strategies.py --quick      # 1 round x 64, 16 questions

Strategies (``lightspan.converters.credit``): ``identical`` gives both calls the rollout reward (no
baseline); ``per_step`` gives the plan call its step reward (validity + efficiency) and the answer call
its own (correctness), read from the step-targeted ``lightspan.reward`` spans (no baseline either);
``grpo_rollout`` normalizes the rollout reward over the task's group and gives both calls that advantage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

STRATEGIES = ("identical", "per_step", "grpo_rollout")


def _one(args: argparse.Namespace, base: dict) -> None:
    """One strategy in this process (the OpenTelemetry provider is set once per process)."""
    from lightspan.demo.run import DemoConfig, run_demo

    cfg = DemoConfig(work_dir=args.work_dir / args.one, credit=args.one, init_policy=args.policy, **base)
    report = run_demo(cfg, echo=lambda line: None)
    out = {
        "before": vars(report.before),
        "after": vars(report.after) if report.after else None,
        "counts_match": report.counts_match,
        "train_steps": report.train_steps,
        "seconds": report.seconds,
    }
    (args.work_dir / f"{args.one}.json").write_text(json.dumps(out))


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/lightspan-bench-credit"))
    parser.add_argument("--rollouts", type=int, default=240)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child mode: run one strategy
    parser.add_argument("--policy", help=argparse.SUPPRESS)
    args = parser.parse_args()
    rounds, rollouts, tasks = (1, 64, 16) if args.quick else (args.rounds, args.rollouts, None)
    base = dict(
        n_rollouts=rollouts,
        rounds=rounds,
        seed=args.seed,
        baseline=False,
        eval_attempts=1,
        eval_concurrency=4,
        max_eval_tasks=tasks,
    )
    if args.one:
        return _one(args, base)
    from lightspan.demo.run import DemoConfig, build_warm_policy, prepare_world

    started = time.perf_counter()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    warm_cfg = DemoConfig(work_dir=args.work_dir / "warm", **base)  # type: ignore[arg-type]
    policy = build_warm_policy(warm_cfg, prepare_world(warm_cfg))
    results = {}
    for credit in args.strategies.split(","):
        t0 = time.perf_counter()
        child = [
            sys.executable,
            __file__,
            "--one",
            credit,
            "--policy",
            policy,
            "--work-dir",
            str(args.work_dir),
        ]
        child += ["--rollouts", str(args.rollouts), "--rounds", str(args.rounds), "--seed", str(args.seed)]
        subprocess.run(child + (["--quick"] if args.quick else []), check=True, capture_output=True)
        results[credit] = json.loads((args.work_dir / f"{credit}.json").read_text())
        print(f"{credit}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    load = os.getloadavg()
    print(
        f"\nmachine: {platform.machine()} {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f}; "
        f"date {date.today()}; rounds {rounds} x {rollouts} rollouts; total {time.perf_counter() - started:.0f} s\n"
    )
    cols = ("accuracy", "valid_rate", "tool_calls", "levels", "reward")
    print("| credit | " + " | ".join(cols) + " | steps | counts match |")
    print("| --- | " + " | ".join("---:" for _ in cols) + " | ---: | --- |")
    first = next(iter(results.values()))["before"]
    print("| warm start (shared) | " + " | ".join(f"{first[c]:.3f}" for c in cols) + " | 0 | |")
    for credit, r in results.items():
        a = r["after"]
        print(
            f"| {credit} | "
            + " | ".join(f"{a[c]:.3f}" for c in cols)
            + f" | {r['train_steps']} | {r['counts_match']} |"
        )


if __name__ == "__main__":
    main()
