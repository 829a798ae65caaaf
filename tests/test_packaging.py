"""Every part is its own distribution: its wheel builds, installs into a fresh venv and imports from there;
an agent that installs only the agent side cannot import the server parts; versions and pins agree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def part_folders() -> dict[str, Path]:
    """distribution name -> folder, read from the part folders' own pyproject.toml files."""
    found = {}
    for pyproject in sorted(REPO.glob("*/pyproject.toml")):
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
        found[name] = pyproject.parent
    return found


PARTS = part_folders()


def test_every_top_level_part_is_a_src_layout_distribution():
    assert set(PARTS) == {
        f"lightspan-{p}"
        for p in (
            "schemas",
            "storage",
            "instrumentation",
            "cli",
            "collector",
            "converters",
            "serving",
            "training",
            "demo",
        )
    }
    for name, folder in PARTS.items():
        part = folder.name
        assert (folder / "src" / "lightspan" / part / "__init__.py").is_file(), name
        # A namespace package: any lightspan/__init__.py would shadow every other part.
        assert not (folder / "src" / "lightspan" / "__init__.py").exists(), name
        assert sorted(p.name for p in (folder / "src" / "lightspan").iterdir()) == [part], name
    assert not (REPO / "lightspan").exists() and not (REPO / "setup.py").exists()


def _pins(requirements: list[str]) -> dict[str, str]:
    """lightspan-* requirement -> its specifier, for the inter-part pins."""
    reqs = [Requirement(r) for r in requirements]
    return {r.name: str(r.specifier) for r in reqs if r.name.startswith("lightspan-")}


def test_versions_and_inter_part_pins_agree():
    """One release moves every part together: each part's version is the root's, and each pin on another
    part is `==` that version on a part that exists."""
    for name, folder in PARTS.items():
        text = (folder / "src" / "lightspan" / folder.name / "version.py").read_text()
        assert f'__version__ = "{VERSION}"' in text, name
        meta = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        for dep, spec in _pins(meta.get("dependencies", [])).items():
            assert dep in PARTS, f"{name} depends on unknown part {dep}"
            assert spec == f"=={VERSION}", f"{name}: {dep}{spec}"
    root = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    everything = list(root["dependencies"]) + [
        r for reqs in root["optional-dependencies"].values() for r in reqs
    ]
    for dep, spec in _pins(everything).items():
        assert dep in PARTS and spec == f"=={VERSION}", f"root: {dep}{spec}"
    assert set(_pins(everything)) == set(PARTS) - {"lightspan-schemas", "lightspan-storage"}, (
        "an extra misses a part"
    )


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    """Every part's wheel and the root's, built once (no isolation: setuptools comes from this env).

    Each is built from a copy of its folder: setuptools writes build/ and *.egg-info next to the sources,
    and a test must not leave those in the checkout."""
    src = tmp_path_factory.mktemp("src")
    dist = tmp_path_factory.mktemp("dist")
    skip = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    folders = [shutil.copytree(folder, src / folder.name, ignore=skip) for folder in PARTS.values()]
    root = src / "lightspan"
    root.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, root / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)]
        + [str(f) for f in [*folders, root]],
        check=True,
        capture_output=True,
        timeout=600,
    )
    built = {}
    for whl in dist.glob("*.whl"):
        dist_name = whl.name.split("-")[0].replace("_", "-")
        built[dist_name] = whl
    assert set(built) == set(PARTS) | {"lightspan"}, sorted(built)
    return built


def _fresh_venv(path: Path, wheels: list[Path]) -> Path:
    """A venv holding exactly these wheels' files; third-party packages come from this environment's
    site-packages, added as a plain path entry so its .pth files (the editable checkout) are NOT run."""
    venv.create(path, with_pip=False)
    py = path / "bin" / "python"
    target = Path(
        subprocess.check_output(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    for whl in wheels:
        zipfile.ZipFile(whl).extractall(target)
    (target / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return py


def _run(py: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(py), "-c", code], capture_output=True, text=True, timeout=180, env=env, cwd=cwd
    )


@pytest.mark.slow
def test_every_wheel_installs_and_imports_from_the_venv(wheels, tmp_path):
    py = _fresh_venv(tmp_path / "venv", list(wheels.values()))
    mods = [f"lightspan.{f.name}" for f in PARTS.values()] + ["lightspan.cli.main"]
    code = (
        "import importlib, json\n"
        f"files = {{m: importlib.import_module(m).__file__ for m in {mods!r}}}\n"
        f"versions = {{m: importlib.import_module(m).__version__ for m in {mods[:-1]!r}}}\n"
        f"assert set(versions.values()) == {{{VERSION!r}}}, versions\n"
        "from lightspan.schemas import trajectory_schema\n"
        "assert trajectory_schema()['title'] == 'Lightning trajectory'\n"
        "print(json.dumps(files))\n"
    )
    out = _run(py, code, tmp_path)
    assert out.returncode == 0, out.stderr
    files = json.loads(out.stdout.splitlines()[-1])
    outside = {m: f for m, f in files.items() if not f.startswith(str(tmp_path / "venv"))}
    assert not outside, f"imported from outside the wheel install: {outside}"

    names = {name: zipfile.ZipFile(whl).namelist() for name, whl in wheels.items()}
    assert "lightspan/schemas/trajectory.schema.json" in names["lightspan-schemas"]
    for name, listing in names.items():
        assert "lightspan/__init__.py" not in listing, f"{name} ships lightspan/__init__.py"
    assert not any(n.endswith(".py") for n in names["lightspan"]), "the root distribution holds no code"

    def entry_points(name: str) -> str:
        zf = zipfile.ZipFile(wheels[name])
        return zf.read(next(n for n in zf.namelist() if n.endswith("entry_points.txt"))).decode()

    assert "lightspan = lightspan.cli.main:main" in entry_points("lightspan-cli")
    assert "opentelemetry_instrumentor" in entry_points("lightspan-instrumentation")


@pytest.mark.slow
def test_agent_install_has_instrumentation_and_not_the_server_parts(wheels, tmp_path):
    """`pip install lightspan` is the agent side: instrumented and CLI-capable, with no collector to import."""
    agent = ["lightspan", "lightspan-schemas", "lightspan-instrumentation", "lightspan-cli"]
    py = _fresh_venv(tmp_path / "venv", [wheels[n] for n in agent])
    code = (
        "import importlib, json\n"
        "import lightspan.instrumentation as ls\n"
        "assert callable(ls.configure) and callable(ls.rollout)\n"
        "missing = []\n"
        "for part in ('collector', 'converters', 'training', 'serving', 'storage', 'demo'):\n"
        "    try:\n"
        "        importlib.import_module('lightspan.' + part)\n"
        "    except ModuleNotFoundError as e:\n"
        "        missing.append(e.name)\n"
        "print(json.dumps(missing))\n"
    )
    out = _run(py, code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == [
        "lightspan.collector",
        "lightspan.converters",
        "lightspan.training",
        "lightspan.serving",
        "lightspan.storage",
        "lightspan.demo",
    ]
    # The CLI still starts and tells the user which part to install for a missing subcommand.
    cli = _run(py, "from lightspan.cli.main import main; main(['collector', '--help'])", tmp_path)
    assert cli.returncode != 0
    assert "lightspan[collector]" in cli.stderr + cli.stdout
