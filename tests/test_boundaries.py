"""The parts meet only through schemas/ and ClickHouse: import boundaries, checked statically and live."""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]

# part folder -> lightspan parts it must never import
FORBIDDEN = {
    "instrumentation": {"collector", "converters", "training", "serving", "storage", "demo"},
    "collector": {"converters", "training", "serving", "instrumentation", "demo"},
    "converters": {"collector", "training", "serving", "instrumentation", "demo"},
    "schemas": {"collector", "converters", "training", "serving", "instrumentation", "storage", "demo"},
    "storage": {"collector", "converters", "training", "serving", "instrumentation", "demo"},
}


def _imported_parts(path: Path) -> set[str]:
    parts: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            bits = name.split(".")
            if bits[0] == "lightspan" and len(bits) > 1:
                parts.add(bits[1])
    return parts


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_part_never_imports_its_neighbours(part):
    offenders = {
        str(path.relative_to(REPO)): sorted(_imported_parts(path) & FORBIDDEN[part])
        for path in (REPO / part).rglob("*.py")
        if _imported_parts(path) & FORBIDDEN[part]
    }
    assert not offenders, f"{part}/ imports parts it must not: {offenders}"


def test_agent_side_pulls_no_heavy_dependency():
    code = (
        "import sys, lightspan.instrumentation as li\n"
        "from lightspan.instrumentation.gap import GAPPlanner\n"
        "li.configure(endpoint='http://127.0.0.1:9', service_name='x')\n"
        "with li.rollout(task_id='t'):\n    li.emit_reward(1.0)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'trl', 'clickhouse_connect', 'chdb', 'pyarrow', 'datasets') "
        "or m.startswith(('lightspan.collector', 'lightspan.converters', 'lightspan.training', 'grpc._server')))\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout


def _requirements(dist: str) -> list[str]:
    """Installed `Requires-Dist` names (canonical) of a distribution, without extras-only requirements."""
    reqs = [Requirement(r) for r in importlib.metadata.requires(dist) or []]
    return [canonicalize_name(r.name) for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_installed_part_depends_on_no_forbidden_part(part):
    """The same boundary in the installed metadata: a part that must not import a neighbour does not
    declare it as a dependency either, so an install of it leaves the neighbour out."""
    declared = {
        r.removeprefix("lightspan-") for r in _requirements(f"lightspan-{part}") if r.startswith("lightspan-")
    }
    assert not declared & FORBIDDEN[part], f"lightspan-{part} depends on {sorted(declared & FORBIDDEN[part])}"


#: distributions an agent (`pip install lightspan`, no extras) must never pull, directly or transitively
HEAVY_DISTS = {
    "torch",
    "transformers",
    "trl",
    "clickhouse-connect",
    "chdb-core",
    "pyarrow",
    "datasets",
    "numpy",
    "starlette",
    "uvicorn",
    "prometheus-client",
    "lightspan-collector",
    "lightspan-converters",
    "lightspan-training",
    "lightspan-serving",
    "lightspan-storage",
    "lightspan-demo",
}


def test_agent_install_pulls_no_heavy_distribution():
    """Walk the installed dependency tree of `lightspan` (no extras), as pip would install it."""
    seen: set[str] = set()
    todo = ["lightspan"]
    while todo:
        dist = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        try:
            todo.extend(_requirements(dist))
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional platform dependency not installed here
    assert {"lightspan-instrumentation", "lightspan-schemas", "lightspan-cli", "opentelemetry-sdk"} <= seen
    assert not seen & HEAVY_DISTS, sorted(seen & HEAVY_DISTS)
