"""Fixtures: the demo world, a barely warm-started tiny policy, a server for it, and a throwaway store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:  # tests.support / tests.converters are imported as packages from the repo root
    sys.path.insert(0, _REPO)

from tests.converters.conftest import store  # noqa: E402, F401 - the converters' embedded store fixture


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
