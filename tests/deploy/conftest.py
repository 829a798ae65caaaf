"""tests/deploy: make the helpers importable (pytest runs with --import-mode=importlib) and build once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

_spec = importlib.util.spec_from_file_location(
    "deploy_test_helpers", Path(__file__).with_name("deploy_test_helpers.py")
)
helpers = importlib.util.module_from_spec(_spec)
sys.modules["deploy_test_helpers"] = helpers
_spec.loader.exec_module(helpers)

_built: dict[str, list[dict[str, Any]]] = {}


@pytest.fixture(params=helpers.KUSTOMIZE_DIRS)
def built(request) -> tuple[str, list[dict[str, Any]]]:
    """(folder, its built resources), built once per folder per test session."""
    if request.param not in _built:
        _built[request.param] = helpers.kustomize_build(request.param)
    return request.param, _built[request.param]
