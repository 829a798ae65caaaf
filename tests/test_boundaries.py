"""The parts meet only through schemas/ and ClickHouse: import boundaries, checked statically and live."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

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
        "import sys, lightspan, lightspan.instrumentation as li\n"
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
