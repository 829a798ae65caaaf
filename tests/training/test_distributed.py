"""The same `lightspan train` command runs data-parallel under torchrun (2 CPU processes, gloo), the way
it runs on several GPUs: both ranks train, only rank 0 writes the final model, and it loads."""

from __future__ import annotations

import os
import shutil
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
    proc = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", port, "-m", "lightspan",
         "train", "--algo", "lightningrl", "--model", tiny_model, "--data", str(data.parent), "--output", str(out),
         "--max-steps", "2", "--batch-size", "2"],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert (out / "final" / "model.safetensors").is_file()
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out / "final")
    assert model.num_parameters() > 0
