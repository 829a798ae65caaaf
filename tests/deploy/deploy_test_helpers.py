"""Helpers for tests/deploy (loaded by conftest.py as the module ``deploy_test_helpers``)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUSTOMIZE_DIRS = ["base", "overlays/dev", "overlays/prod"]
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _load_lite():
    spec = importlib.util.spec_from_file_location(
        "deploy_kustomize_lite", Path(__file__).with_name("_kustomize_lite.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


kustomize_lite = _load_lite()


def load_docs(path: Path) -> list[Any]:
    """Every non-empty YAML document in ``path``."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def kubectl() -> str | None:
    """A kubectl that can run ``kubectl kustomize`` (kustomize is built in), or None."""
    return shutil.which("kubectl")


def kustomize_build(folder: str) -> list[dict[str, Any]]:
    """``kubectl kustomize`` when kubectl exists, else tests/deploy/_kustomize_lite.py."""
    path = DEPLOY / "kubernetes" / folder
    exe = kubectl()
    if exe is None:
        return kustomize_lite.build(path)
    out = subprocess.run(
        [exe, "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, f"kubectl kustomize {folder} failed: {out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blank lines skipped)."""
    env = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and key.isidentifier(), f"{path}:{n}: not KEY=VALUE: {line!r}"
        env[key] = value
    return env


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose-style ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` interpolation over a parsed file."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        have = env.get(name)
        if op in (":-", "-"):
            return have if have not in (None, "") or (op == "-" and have is not None) else arg
        if op in (":?", "?"):
            if have in (None, "") and op == ":?" or have is None:
                raise KeyError(f"required variable {name} is unset: {arg}")
            return have
        return have or ""

    return _ENV_REF.sub(sub, value.replace("$$", "\x00")).replace("\x00", "$")


_CHDB_DIR: str | None = None
_ALREADY = re.compile(r"already initialized with path '([^']+)'")


def chdb_client(database: str):
    """A clickhouse-connect client on the embedded engine, database ``database`` created.

    chDB allows one data directory per process; when another test in this worker process opened one
    already, reuse that directory (each test here works in its own database, so nothing collides).
    """
    import tempfile

    from lightspan.storage import StorageError, connect

    global _CHDB_DIR
    if _CHDB_DIR is None:
        _CHDB_DIR = tempfile.mkdtemp(prefix="lightspan-deploy-chdb-")
    try:
        return connect(f"chdb://{_CHDB_DIR}?database={database}")
    except StorageError as exc:
        found = _ALREADY.search(str(exc))
        if not found:
            raise
        _CHDB_DIR = found.group(1)
        return connect(f"chdb://{_CHDB_DIR}?database={database}")


def chdb_dir() -> str:
    """The embedded data directory chdb_client() uses in this process."""
    assert _CHDB_DIR is not None, "call chdb_client() first"
    return _CHDB_DIR
