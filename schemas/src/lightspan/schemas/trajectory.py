"""The Lightning trajectory JSON Schema (``trajectory.schema.json``) and its validator."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any


class TrajectoryValidationError(ValueError):
    """A trajectory does not match the schema; the message names the path and the rule broken."""


@lru_cache(maxsize=1)
def trajectory_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one trajectory, as a dict."""
    text = resources.files(__package__).joinpath("trajectory.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator() -> Any:
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "Validating trajectories needs jsonschema. Install with: pip install lightspan[convert]"
        ) from exc
    cls = jsonschema.validators.validator_for(trajectory_schema())
    return cls(trajectory_schema(), format_checker=cls.FORMAT_CHECKER)


def validate_trajectory(doc: dict[str, Any]) -> None:
    """Raise :class:`TrajectoryValidationError` listing every violation in ``doc`` (none: returns)."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in errors[:10]]
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise TrajectoryValidationError(
            f"trajectory {doc.get('trace_id', '?')!r} is invalid{more}:\n  " + "\n  ".join(lines)
        )
