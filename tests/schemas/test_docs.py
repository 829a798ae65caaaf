"""docs/attributes.md lists every key of the contract module (the reference cannot drift)."""

from pathlib import Path

from lightspan.schemas import attributes as A

DOC = Path(__file__).resolve().parents[2] / "docs" / "attributes.md"


def test_reference_page_lists_every_constant():
    text = DOC.read_text()
    missing = [
        name
        for name, v in vars(A).items()
        if name.isupper() and isinstance(v, str) and f"`{name}`" not in text
    ]
    assert not missing, f"regenerate docs/attributes.md; missing: {missing}"
