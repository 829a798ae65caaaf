"""Fixtures: two tiny, locally built checkpoints and a running PolicyServer (nothing from a hub)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _build_tiny_model():
    try:
        from lightspan.training import build_tiny_model
    except ImportError:
        from lightspan.training.tiny_model import build_tiny_model
    return build_tiny_model


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Two checkpoints with one tokenizer but different random weights (to see a reload take effect)."""
    build = _build_tiny_model()
    texts = ["hello world, the policy answers in a few words.", "stop here STOP and go on"]
    root = tmp_path_factory.mktemp("tiny")
    a = build(root / "a", texts=texts, vocab_size=300, hidden_size=32, num_layers=1, seed=0)
    b = build(root / "b", texts=texts, vocab_size=300, hidden_size=32, num_layers=1, seed=1)
    return a, b


@pytest.fixture(scope="module")
def server(tiny_models):
    from lightspan.serving import PolicyServer

    srv = PolicyServer(tiny_models[0], served_model_name="policy", device="cpu").start()
    yield srv
    srv.stop()


@pytest.fixture()
def client(server):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
