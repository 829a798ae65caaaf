"""Fixtures: the demo world, a barely warm-started tiny policy, and a server for it."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def world():
    from lightspan.demo.run import DemoConfig, prepare_world

    return prepare_world(DemoConfig(work_dir="unused"))


@pytest.fixture(scope="session")
def policy_path(world, tmp_path_factory):
    from lightspan.demo.warmstart import WarmStartConfig, build_policy

    cfg = WarmStartConfig(hidden_size=32, num_layers=1, sft_steps=5)
    return build_policy(tmp_path_factory.mktemp("demo") / "policy", world.kb, world.train, cfg)


@pytest.fixture(scope="module")
def policy_server(policy_path):
    from lightspan.demo.run import start_policy_server

    server = start_policy_server(policy_path)
    yield server
    server.stop()
