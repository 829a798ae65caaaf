"""docs/BENCHMARKS.md is built from docs/benchmarks/*.md: a section written only into the built file is lost
at the next assembly (it happened twice), so the built file must equal the assembly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmarks_md_is_assembled_from_the_part_pages():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "assemble_benchmarks.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr


def test_the_check_fails_on_a_hand_edit(tmp_path):
    """The check itself can fail: run it over a copy of docs/ with a line added to the built file."""
    import shutil

    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    built = tmp_path / "docs" / "BENCHMARKS.md"
    built.write_text(built.read_text() + "\nA hand-written line.\n")
    out = subprocess.run(
        [sys.executable, str(tmp_path / "scripts" / "assemble_benchmarks.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert "edit the part pages" in out.stderr
