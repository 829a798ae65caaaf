"""Map each top-level folder (one part of lightspan) to ``lightspan.<part>``.

pyproject.toml holds the metadata; this file only computes the package list, because
setuptools' ``find`` cannot follow a per-part ``package-dir`` mapping by itself.
"""

from pathlib import Path

from setuptools import setup

PARTS = {
    "lightspan": "lightspan",
    "lightspan.instrumentation": "instrumentation",
    "lightspan.collector": "collector",
    "lightspan.converters": "converters",
    "lightspan.training": "training",
    "lightspan.serving": "serving",
    "lightspan.schemas": "schemas",
    "lightspan.storage": "storage",
}


def _packages() -> tuple[list[str], dict[str, str]]:
    root = Path(__file__).parent
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for name, folder in PARTS.items():
        base = root / folder
        for init in sorted(base.rglob("__init__.py")):
            rel = init.parent.relative_to(base)
            pkg = ".".join([name, *rel.parts]) if rel.parts else name
            packages.append(pkg)
            package_dir[pkg] = str(init.parent.relative_to(root))
    return packages, package_dir


_pkgs, _dirs = _packages()
setup(packages=_pkgs, package_dir=_dirs)
