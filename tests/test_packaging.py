"""A built wheel (not the editable checkout) imports every part and ships its data files."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PARTS = ["lightspan", "lightspan.cli.main", "lightspan.instrumentation", "lightspan.collector",
         "lightspan.converters", "lightspan.training", "lightspan.serving", "lightspan.schemas",
         "lightspan.storage", "lightspan.demo"]


@pytest.mark.slow
def test_wheel_installs_and_imports_every_part(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    wheel = next(dist.glob("lightspan-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    target = Path(subprocess.check_output(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    # Install the wheel's files into the fresh venv; reuse this environment's third-party packages by
    # putting its site-packages on the path WITHOUT processing its .pth files (so the editable finder
    # for the checkout is not installed and `lightspan` must come from the wheel).
    import zipfile

    zipfile.ZipFile(wheel).extractall(target)
    (target / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    code = (
        "import importlib, json, lightspan\n"
        f"mods = {PARTS!r}\n"
        "for m in mods: importlib.import_module(m)\n"
        "from lightspan.schemas import trajectory_schema\n"
        "assert trajectory_schema()['title'] == 'Lightning trajectory'\n"
        "print(json.dumps({'file': lightspan.__file__}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert str(target) in out.stdout, "lightspan was imported from somewhere other than the wheel"
    names = zipfile.ZipFile(wheel).namelist()
    assert "lightspan/schemas/trajectory.schema.json" in names
    assert any(n.endswith("entry_points.txt") for n in names)
    ep = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(ep).decode()
    assert "lightspan = lightspan.cli.main:main" in text and "opentelemetry_instrumentor" in text
