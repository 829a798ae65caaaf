"""The planner's tool registry: every tool call becomes an ``execute_tool {name}`` span."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..tools import tool

__all__ = ["build_registry"]


def build_registry(
    tools: Mapping[str, Callable[..., Any]] | Iterable[Callable[..., Any]] | None,
) -> dict[str, Any]:
    """``{name: callable}`` from a dict or a list; plain callables are wrapped with ``@tool``.

    Already decorated tools (they have ``.tool_name``) are used as they are.
    """
    if tools is None:
        return {}
    registry: dict[str, Any] = {}
    if isinstance(tools, Mapping):
        items = list(tools.items())
    elif isinstance(tools, (str, bytes)) or not isinstance(tools, Iterable):
        raise TypeError(
            f"tools must be a dict name -> callable or a list of callables, got {type(tools).__name__}"
        )
    else:
        items = []
        for fn in tools:
            name = getattr(fn, "tool_name", None) or getattr(fn, "__name__", None)
            if not name:
                raise ValueError(f"tool {fn!r} has no name; pass tools as a dict name -> callable")
            items.append((name, fn))
    for name, fn in items:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"tool name must be an identifier (plans call it as name(...)), got {name!r}")
        if not callable(fn):
            raise TypeError(f"tool {name!r} is not callable: {fn!r}")
        if name in registry:
            raise ValueError(f"two tools are named {name!r}")
        registry[name] = fn if hasattr(fn, "tool_name") else tool(fn, name=name)
    return registry
