"""The demo's quick mode end to end through every real part, as CI's end-to-end test.

`lightspan demo --quick` runs in its own process (it configures the global tracer provider and owns a
collector subprocess): the policy plans and answers through the real openai client, spans travel over
OTLP gRPC to a `lightspan collector` subprocess that writes chDB, the converter and the trainer read
through the collector's ClickHouse HTTP interface, TRL trains, and the server reloads the checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lightspan.demo.cli import demo


@pytest.mark.slow
@pytest.mark.e2e
def test_quick_demo_counts_match_at_every_hop_and_the_endpoint_serves_the_trained_checkpoint(tmp_path):
    work = tmp_path / "demo"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "lightspan.cli", "demo", "--quick", "--work-dir", str(work)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((work / "report.json").read_text())
    hops = report["hops"]
    # spans exported = rows stored; LLM calls in rollouts = calls in trajectories = training rows
    assert hops["spans_exported"] == hops["rows_stored"] > 0
    assert hops["training_llm_spans"] == hops["trajectory_llm_calls"] == hops["training_rows"]
    # quick mode: 2 on-policy rounds of 32 rollouts, each one or two policy calls (plan, answer if valid)
    assert hops["trajectories"] == hops["training_rollouts"] == 64
    assert 64 <= hops["training_rows"] <= 128
    assert sum(r["rows"] for r in report["rounds"]) == hops["training_rows"]
    assert report["counts_match"] is True
    # every rollout (training, evaluations, baseline) became an agent span; every GAP rollout a plan span
    gap_evals = report["before"]["n"] + sum(r["held_out"]["n"] for r in report["rounds"])
    assert report["spans"]["invoke_agent"] == report["rollouts"] + gap_evals + report["baseline"]["n"]
    assert report["spans"]["plan"] == report["rollouts"] + gap_evals
    assert report["spans"]["chat"] >= report["spans"]["plan"]
    # training ran, saved a checkpoint, and that checkpoint is what the endpoint served afterwards
    assert report["train_steps"] == 8
    assert (Path(report["trained_path"]) / "model.safetensors").is_file()
    assert report["served_path"] == report["trained_path"]
    # the trajectories on disk validate against the published schema; merged rows were written
    from lightspan.schemas import validate_trajectory

    files = sorted((work / "converted").glob("round-*/trajectory-jsonl/*.jsonl"))
    docs = [json.loads(line) for f in files for line in f.read_text().splitlines() if line]
    assert len(docs) == 64 and len({d["trace_id"] for d in docs}) == 64
    for doc in docs:
        validate_trajectory(doc)
    assert sorted((work / "converted").glob("round-*/merged/*"))
    assert (work / "gap.png").stat().st_size > 0 and (work / "reward.png").stat().st_size > 0
    # the summary line, the table's last row and report.md
    assert "hops: training rollouts run = 64;" in proc.stdout
    assert "counts match at every hop: True" in proc.stdout
    assert "| GAP planner after 2 round(s) |" in proc.stdout.splitlines()[-1]
    md = (work / "report.md").read_text()
    assert "| sequential ReAct baseline (warm start) |" in md and "| GAP planner after round 2 (RL) |" in md
    assert "Counts at every hop" in md and "| trajectories converted | 64 |" in md
    assert f"| rows stored in ClickHouse | {hops['rows_stored']} |" in md


def test_cli_refuses_bad_arguments(tmp_path):
    result = CliRunner().invoke(demo, ["--work-dir", str(tmp_path), "--rollouts", "3"])
    assert result.exit_code == 2 and "--rollouts" in result.output
    result = CliRunner().invoke(demo, ["--work-dir", str(tmp_path), "--rollouts", "10", "--group-size", "20"])
    assert result.exit_code == 2 and "group_size" in result.output
    result = CliRunner().invoke(demo, ["--work-dir", str(tmp_path), "--server", "tgi"])
    assert result.exit_code == 2 and "--server" in result.output
