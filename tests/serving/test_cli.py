"""``lightspan serve`` as a user runs it: a real process on a free loopback port."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
from click.testing import CliRunner

from lightspan.serving.cli import serve


def test_missing_model_path_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(serve, ["--model", str(tmp_path / "absent")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_serve_process_answers_health(tiny_models):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lightspan.cli",
            "serve",
            "--model",
            tiny_models[0],
            "--port",
            "0",
            "--served-model-name",
            "policy",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        seen = []
        for line in proc.stdout:  # progress bars from transformers come first, on the merged stream
            seen.append(line)
            if match := re.search(r"at (http://127\.0\.0\.1:\d+/v1)", line):
                break
        assert match, "".join(seen)
        base = match.group(1)
        assert httpx.get(base.replace("/v1", "/health"), timeout=10).json()["model"] == "policy"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
