"""The demo's quick mode end to end (in-process spans): warm start, serve, rollouts, lightningrl, reload."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lightspan.demo.cli import demo
from lightspan.demo.run import DemoConfig, run_demo


@pytest.mark.slow
def test_quick_demo_counts_match_and_training_produces_the_served_checkpoint(tmp_path):
    lines: list[str] = []
    report = run_demo(DemoConfig(work_dir=tmp_path / "demo", quick=True), echo=lines.append)
    assert report.rollouts == 32 and report.rows == 32
    assert report.before.n == report.after.n == 16
    llm_calls = report.rollouts + report.before.n + report.after.n
    assert report.spans["chat"] == report.spans["lightspan.reward"] == report.spans["invoke_agent"] == llm_calls
    assert report.train_steps == 4
    assert (Path(report.trained_path) / "model.safetensors").is_file()
    assert any(line.startswith("held-out reward after") for line in lines)


def test_cli_refuses_bad_arguments(tmp_path):
    result = CliRunner().invoke(demo, ["--work-dir", str(tmp_path), "--rollouts", "3"])
    assert result.exit_code == 2 and "--rollouts" in result.output
    result = CliRunner().invoke(demo, ["--work-dir", str(tmp_path), "--rollouts", "10", "--group-size", "20"])
    assert result.exit_code == 2 and "group_size" in result.output
