"""A kill at any moment, then ``lightspan train --resume latest``: training goes on from the newest
*complete* checkpoint to ``max_steps``, and the metrics file ends with one record per step.

Real ``lightspan train`` processes, SIGKILLed while a checkpoint is being written and between saves.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lightspan.training import TrainConfig, train
from lightspan.training.checkpoints import incomplete_reason, latest_complete, trim_metrics
from lightspan.training.metrics import read_metrics

MAX_STEPS, SAVE_STEPS = 9, 3


def _cmd(model: str, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lightspan.cli",
        "train",
        "--model",
        model,
        "--data",
        str(data),
        "--output",
        str(out),
        "--max-steps",
        str(MAX_STEPS),
        "--save-steps",
        str(SAVE_STEPS),
        "--batch-size",
        "4",
        "--max-length",
        "64",
        "--lr",
        "1e-3",
        "--cpu",
        "--no-progress",
        *extra,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _run(cmd: list[str], log: Path, kill_when: Callable[[], bool] | None = None) -> tuple[int | None, float]:
    """Run ``cmd``; SIGKILL it the moment ``kill_when()`` holds (polled every ms). -> (exit code or None, kill time)."""
    with log.open("a") as err, log.with_suffix(".out").open("a") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=_env(), start_new_session=True)
        deadline = time.monotonic() + 180
        try:
            while proc.poll() is None:
                if kill_when is not None and kill_when():
                    os.killpg(proc.pid, signal.SIGSTOP)  # freeze it where it is, then kill it there
                    killed_at = time.time()
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return None, killed_at
                if time.monotonic() > deadline:
                    pytest.fail(f"{cmd} ran past 180 s: {log.read_text()[-2000:]}")
                time.sleep(0.001)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return proc.returncode, time.time()


def _logged_steps(out: Path) -> list[int]:
    return [r["step"] for r in read_metrics(out / "metrics.jsonl") if "loss" in r]


def test_kill_mid_save_and_between_saves_then_resume_latest_finishes(
    tiny_model, mixed_rows, kit, tmp_path, caplog
):
    data = kit.write_rows(mixed_rows, tmp_path / "rows" / "calls.parquet")
    out = tmp_path / "run"
    err = tmp_path / "stderr.log"
    cmd = _cmd(tiny_model, data.parent, out)
    second_save = out / f"checkpoint-{2 * SAVE_STEPS}"

    # 1. Killed while checkpoint-6 is being written (its folder exists, trainer_state.json not yet).
    code, _ = _run(cmd, err, kill_when=second_save.exists)
    assert code is None, err.read_text()[-2000:]
    if incomplete_reason(second_save) is None:  # the save beat the poll (a very loaded box): undo its last
        (second_save / "trainer_state.json").unlink()  # write, the state a kill a moment earlier leaves
    assert incomplete_reason(out / f"checkpoint-{SAVE_STEPS}") is None

    # 2. Resumed from checkpoint-3 (checkpoint-6 skipped), then killed after step 7, between saves.
    log_b = tmp_path / "stderr-b.log"
    code, killed_b = _run(
        [*cmd, "--resume", "latest"], log_b, kill_when=lambda: 2 * SAVE_STEPS + 1 in _safe_steps(out)
    )
    assert code is None, log_b.read_text()[-2000:]
    text_b = log_b.read_text()
    assert f"skipping incomplete checkpoint {second_save}" in text_b
    assert f"resuming from {out / f'checkpoint-{SAVE_STEPS}'} (step {SAVE_STEPS})" in text_b
    assert incomplete_reason(second_save) is None  # saved afresh by the resumed run

    # 3. Resumed from checkpoint-6; runs to the end.
    log_c = tmp_path / "stderr-c.log"
    code, _ = _run([*cmd, "--resume", "latest"], log_c)
    text_c = log_c.read_text()
    assert code == 0, text_c[-3000:]
    assert f"resuming from {second_save} (step {2 * SAVE_STEPS})" in text_c
    assert "dropped 1 record(s) logged after step 6" in text_c  # the killed run's step 7
    summary = json.loads(log_c.with_suffix(".out").read_text())  # the CLI's JSON summary says so too
    assert summary["steps"] == MAX_STEPS
    assert summary["resume"] == {
        "from": str(second_save),
        "step": 2 * SAVE_STEPS,
        "skipped_incomplete": [],
        "metrics_dropped": 1,
    }
    assert _logged_steps(out) == list(range(1, MAX_STEPS + 1))  # one record per step, none lost
    late = [r for r in read_metrics(out / "metrics.jsonl") if "loss" in r and r["step"] > 2 * SAVE_STEPS]
    assert all(r["time"] > killed_b for r in late)  # steps 7-9 were logged by the last run
    assert incomplete_reason(out / f"checkpoint-{MAX_STEPS}") is None
    assert (out / "final" / "model.safetensors").is_file()

    # 4. Resumed once more: the run already reached max_steps, which it says, keeping the last metrics.
    caplog.set_level(logging.WARNING, logger="lightspan")
    again = train(
        TrainConfig(
            model=tiny_model,
            data=str(data.parent),
            output_dir=str(out),
            max_steps=MAX_STEPS,
            save_steps=SAVE_STEPS,
            per_device_train_batch_size=4,
            max_length=64,
            progress=False,
            resume_from_checkpoint="latest",
        )
    )
    assert again.steps == MAX_STEPS and again.metrics["step"] == MAX_STEPS and "loss" in again.metrics
    assert "nothing left to train" in caplog.text
    assert again.resume is not None and again.resume["from"] == str(out / f"checkpoint-{MAX_STEPS}")
    assert not (out / f"checkpoint-{MAX_STEPS + 1}").exists()  # no step past max_steps
    from safetensors.torch import load_file

    final, last = (
        load_file(str(p / "model.safetensors")) for p in (out / "final", out / f"checkpoint-{MAX_STEPS}")
    )
    assert final.keys() == last.keys() and all(final[k].equal(last[k]) for k in final)
    assert _logged_steps(out) == list(range(1, MAX_STEPS + 1))


def _safe_steps(out: Path) -> set[int]:
    """Steps in the metrics file so far (a line being written is skipped)."""
    try:
        lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return set()
    steps = set()
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "loss" in record:
            steps.add(record["step"])
    return steps


@pytest.fixture(scope="module")
def finished_run(tiny_model, mixed_rows, kit, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("finished")
    data = kit.write_rows(mixed_rows, base / "rows" / "calls.parquet")
    out = base / "run"
    train(
        TrainConfig(
            model=tiny_model,
            data=str(data),
            output_dir=str(out),
            max_steps=2,
            save_steps=1,
            per_device_train_batch_size=4,
            max_length=64,
            progress=False,
        )
    )
    return out


def test_incomplete_checkpoints_are_recognised(finished_run, tmp_path):
    good = tmp_path / "checkpoint-2"
    shutil.copytree(finished_run / "checkpoint-2", good)
    assert incomplete_reason(good) is None

    def broken(name: str, change: Callable[[Path], object]) -> str | None:
        folder = tmp_path / name / "checkpoint-2"
        shutil.copytree(good, folder)
        change(folder)
        return incomplete_reason(folder)

    assert "no trainer_state.json" in str(broken("a", lambda f: (f / "trainer_state.json").unlink()))
    truncated = broken("b", lambda f: (f / "trainer_state.json").write_text('{"global_step": 2, "log_hi'))
    assert "truncated" in str(truncated)
    assert "no model weights" in str(broken("c", lambda f: (f / "model.safetensors").unlink()))
    assert "no optimizer state" in str(broken("d", lambda f: (f / "optimizer.pt").unlink()))
    other = broken("e", lambda f: (f / "trainer_state.json").write_text('{"global_step": 1}'))
    assert "global_step 1, not 2" in str(other)


def test_latest_skips_newer_incomplete_and_explicit_incomplete_path_is_one_error(finished_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    (out / "checkpoint-3").mkdir()
    (out / "checkpoint-3" / "config.json").write_text("{}")
    point = latest_complete(out)
    assert point.path == str(out / "checkpoint-2") and point.step == 2
    assert point.skipped == [(str(out / "checkpoint-3"), "no trainer_state.json (killed while saving?)")]
    with pytest.raises(ValueError, match=r"checkpoint-3' is incomplete: no trainer_state.json"):
        train(
            TrainConfig(
                model=str(tmp_path / "unused"),
                data=str(tmp_path),
                output_dir=str(out),
                resume_from_checkpoint=str(out / "checkpoint-3"),
            )
        )


def test_trim_metrics_drops_later_steps_and_a_cut_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        "".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (1, 2, 3, 4)) + '{"step": 5, "lo'
    )
    kept, dropped = trim_metrics(path, 2)
    assert [r["step"] for r in kept] == [1, 2] and dropped == 3
    assert [r["step"] for r in read_metrics(path)] == [1, 2]
