"""The examples run as their READMEs say, against real parts on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def test_gap_agent_runs_its_plan_in_parallel_levels():
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "gap_agent.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert out.returncode == 0, out.stderr
    assert "levels: [['s1', 's2'], ['s3', 's4']]" in out.stdout
    assert "Tool calls: 4" in out.stdout and "gap.node s4" in out.stdout


@pytest.mark.slow
def test_multi_agent_rollout_with_a_late_reward_becomes_one_rewarded_trajectory(tmp_path):
    from lightspan.collector import Collector, CollectorConfig
    from lightspan.converters import ConvertConfig, convert

    cfg = CollectorConfig.load(
        data_dir=str(tmp_path / "data"),
        spool_dir=str(tmp_path / "spool"),
        grpc_endpoint="127.0.0.1:0",
        http_endpoint="127.0.0.1:0",
        query_endpoint="127.0.0.1:0",
        batch_timeout_s=0.2,
    )
    with Collector(cfg) as collector:
        out = subprocess.run(
            [
                sys.executable,
                str(REPO / "examples" / "multi_agent_late_rewards.py"),
                "--serve-tiny",
                "--otlp-endpoint",
                f"http://127.0.0.1:{collector.grpc_port}",
                "--rewards-url",
                f"http://127.0.0.1:{collector.http_port}/v1/rewards",
                "--task-id",
                "late-1",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=ENV,
            cwd=tmp_path,
        )
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        assert "late reward 1.0 posted for rollout" in out.stdout
        report = convert(
            ConvertConfig(
                dsn=collector.query_url,
                credit="identical",
                reward_name="user_feedback",
                output_dir=str(tmp_path / "out"),
                formats=("trajectory-jsonl",),
            )
        )
    assert report.rollouts_converted == 1 and report.llm_calls == 2
    (doc,) = [
        json.loads(line)
        for f in (tmp_path / "out" / "trajectory-jsonl").glob("*.jsonl")
        for line in f.read_text().splitlines()
        if line
    ]
    assert doc["task_id"] == "late-1" and doc["final_reward"] == 1.0
    assert any(r["source"] == "posted" for r in doc["rewards"])
    llm = [s for s in doc["spans"] if s["span_type"] == "llm_call"]
    # one call per agent, each attributed to the agent whose invoke_agent span it ran in (in start order)
    assert [s["metadata"]["agent_id"] for s in llm] == ["researcher", "writer"]
