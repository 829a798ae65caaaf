"""Third-party instrumentations in their own cached virtual environments (never in lightspan's ``.venv``).

Each environment is named by its requirements and the interpreter: ``~/.cache/lightspan/venvs/<name>-<hash>``
(``LIGHTSPAN_FOREIGN_VENVS`` overrides the folder). It is built once with the standard library's ``venv``
and ``pip`` (a file lock keeps two test processes from building it twice) and marked complete only when
every install succeeded, so a broken build is retried, not reused.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Every environment the foreign tests use: name -> pinned requirements. The exporter and the SDK are
#: the official OpenTelemetry packages; nothing of lightspan is installed in them.
OTLP = ["opentelemetry-sdk==1.45.2", "opentelemetry-exporter-otlp-proto-http==1.45.2"]
ENVS: dict[str, list[str]] = {
    "openinference-openai": ["openai==2.8.1", "openinference-instrumentation-openai==0.1.66", *OTLP],
    "openllmetry-openai": ["openai==2.8.1", "opentelemetry-instrumentation-openai==0.62.4", *OTLP],
    "openai-v2": [
        "openai==2.8.1",
        "opentelemetry-instrumentation-openai-v2==2.4b0",
        "opentelemetry-util-genai==1.1b0",
        "httpx",
        *OTLP,
    ],
    "openinference-langchain": [
        "langchain-openai==1.7.4",
        "openinference-instrumentation-langchain==0.1.80",
        *OTLP,
    ],
}
#: lightspan's own agent side beside a third-party instrumentation (editable: the checkout's code).
_REPO = Path(__file__).resolve().parents[2]
ENVS["openinference-openai+lightspan"] = [
    *ENVS["openinference-openai"],
    "-e",
    str(_REPO / "schemas"),
    "-e",
    str(_REPO / "instrumentation"),
]


class VenvUnavailable(RuntimeError):
    """The environment could not be built (a package did not install); the message has pip's last lines."""


def root() -> Path:
    base = os.environ.get("LIGHTSPAN_FOREIGN_VENVS")
    return Path(base) if base else Path.home() / ".cache" / "lightspan" / "venvs"


def _key(reqs: list[str]) -> str:
    doc = json.dumps({"python": sys.version_info[:3], "reqs": sorted(reqs)})
    return hashlib.sha256(doc.encode()).hexdigest()[:12]


def venv_python(name: str) -> Path:
    """The interpreter of environment ``name``, building the environment first if needed."""
    reqs = ENVS[name]
    path = root() / f"{name}-{_key(reqs)}"
    python = path / "bin" / "python"
    done = path / ".lightspan-complete"
    if done.exists():
        return python
    root().mkdir(parents=True, exist_ok=True)
    with open(root() / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return python
        shutil.rmtree(path, ignore_errors=True)
        base = getattr(sys, "_base_executable", sys.executable)
        _run([base, "-m", "venv", str(path)], name)
        _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *reqs], name)
        done.write_text("\n".join(reqs) + "\n")
    return python


def _run(cmd: list[str], name: str) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-15:])
        raise VenvUnavailable(f"environment {name!r}: {' '.join(cmd[:4])} ... failed:\n{tail}")


if __name__ == "__main__":  # build every environment ahead of a test run: python -m tests.foreign.venvs
    for env_name in sys.argv[1:] or list(ENVS):
        print(env_name, venv_python(env_name), flush=True)
