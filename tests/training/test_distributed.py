"""The same `lightspan train` command runs data-parallel under torchrun (2 CPU processes, gloo), the way
it runs on several GPUs: both ranks train, only rank 0 writes the final model, and it loads."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_lightningrl_under_torchrun_with_two_processes(tiny_model, mixed_rows, kit, tmp_path):
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    data = kit.write_rows(mixed_rows, tmp_path / "rows" / "part-0.parquet")
    out = tmp_path / "ddp"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with socket.socket() as s:  # torchrun's static rendezvous needs a concrete port
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    cmd = [
        torchrun,
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        port,
        "-m",
        "lightspan.cli",
        "train",
        "--algo",
        "lightningrl",
        "--model",
        tiny_model,
        "--data",
        str(data.parent),
        "--output",
        str(out),
        "--max-steps",
        "2",
        "--batch-size",
        "2",
    ]
    # Own process group: on a timeout, the worker processes die with torchrun instead of lingering.
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"torchrun timed out: {stderr[-2000:]}")
    assert proc.returncode == 0, stdout[-2000:] + stderr[-3000:]
    assert (out / "final" / "model.safetensors").is_file()
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out / "final")
    assert model.num_parameters() > 0
