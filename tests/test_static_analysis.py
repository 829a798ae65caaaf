"""The static checks `make test` runs stay honest: the type checker's baseline never hides an unresolved
import, and the configuration covers every part."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_baseline_tolerates_no_unresolved_import():
    """Zero unresolved imports is the point of the layout: the baseline may hold old type errors, never
    an import the checker cannot follow."""
    baseline = json.loads((REPO / ".basedpyright" / "baseline.json").read_text())
    unresolved = [
        (path, entry["code"])
        for path, entries in baseline["files"].items()
        for entry in entries
        if entry["code"] in ("reportMissingImports", "reportMissingModuleSource")
    ]
    assert baseline["files"], "the baseline is empty or unreadable"
    assert not unresolved, unresolved


def test_type_checker_covers_every_part_and_fails_on_missing_imports():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["basedpyright"]
    parts = {p.parent.name for p in REPO.glob("*/pyproject.toml")}
    assert {f"{part}/src" for part in parts} <= set(config["include"])
    assert {"tests", "benchmarks", "examples"} <= set(config["include"])
    assert config["reportMissingImports"] == "error"
