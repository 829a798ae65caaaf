"""Build docs/BENCHMARKS.md: the summary, then every part's benchmark page (headings one level down)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["instrumentation", "gap", "collector", "converters", "training", "serving", "deploy"]


def main() -> None:
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
    (ROOT / "docs" / "BENCHMARKS.md").write_text("\n".join(out) + "\n")
    print("wrote docs/BENCHMARKS.md")


if __name__ == "__main__":
    main()
