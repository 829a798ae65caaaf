"""Fixtures for the instrumentation tests: the shared in-memory span pipeline, content settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:  # tests.support is imported as a package from the repo root
    sys.path.insert(0, _REPO)

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.support.fixtures import instrumented, llm_server, server  # noqa: E402, F401 - shared fixtures
from tests.support.spans import memory_exporter  # noqa: E402


@pytest.fixture
def exporter():
    """A cleared in-memory exporter that receives every span the test makes."""
    from lightspan.instrumentation._settings import reset_settings

    reset_settings()
    exp = memory_exporter()
    yield exp
    reset_settings()
