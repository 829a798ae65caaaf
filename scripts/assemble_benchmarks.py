"""Build docs/BENCHMARKS.md: the summary, then every part's benchmark page (headings one level down).

The pages under docs/benchmarks/ are the source; ``--check`` fails when BENCHMARKS.md was edited by hand
(a section written only there would be lost at the next assembly). CI runs the check.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["instrumentation", "gap", "collector", "converters", "training", "demo", "serving", "deploy"]


def assemble() -> str:
    parts_dir = ROOT / "docs" / "benchmarks"
    out = [(parts_dir / "_summary.md").read_text().rstrip(), "", "# Details by part", ""]
    names = ORDER + sorted(
        p.stem for p in parts_dir.glob("*.md") if p.stem not in ORDER and not p.stem.startswith("_")
    )
    for name in names:
        path = parts_dir / f"{name}.md"
        if path.exists():
            text = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", path.read_text(), flags=re.M)
            out += [f"<!-- from docs/benchmarks/{name}.md -->", text.rstrip(), ""]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build docs/BENCHMARKS.md from docs/benchmarks/*.md.")
    parser.add_argument("--check", action="store_true", help="exit 1 if BENCHMARKS.md is not assembled")
    args = parser.parse_args(argv)
    target = ROOT / "docs" / "BENCHMARKS.md"
    text = assemble()
    if args.check:
        if target.read_text() != text:
            print(
                "docs/BENCHMARKS.md differs from docs/benchmarks/*.md: edit the part pages, then run "
                "scripts/assemble_benchmarks.py",
                file=sys.stderr,
            )
            return 1
        return 0
    target.write_text(text)
    print("wrote docs/BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
