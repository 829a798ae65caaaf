"""Patch a library when it is imported (now, if it already is), and unpatch cleanly.

Instrumenting must not import the library itself: ``opentelemetry-instrument`` runs every
registered instrumentor at start-up, and importing litellm or transformers (torch) there would cost
seconds for agents that never use them. wrapt's post-import hooks patch on first import instead.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import unwrap

_log = logging.getLogger(__name__)

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def _resolve(module: Any, path: str) -> tuple[Any, str]:
    owner = module
    *parents, attr = path.split(".")
    for name in parents:
        owner = getattr(owner, name)
    return owner, attr


class Patches:
    """``(module name, "Class.method", wrapper)`` triples applied on import, each at most once."""

    def __init__(self, patches: list[tuple[str, str, Wrapper]]) -> None:
        self._patches = patches
        self._applied: dict[tuple[str, str], Any] = {}
        self._active = False

    def apply(self) -> None:
        self._active = True
        for module_name, path, wrapper in self._patches:
            wrapt.register_post_import_hook(
                functools.partial(self._patch, path=path, wrapper=wrapper), module_name
            )

    def _patch(self, module: Any, *, path: str, wrapper: Wrapper) -> None:
        key = (module.__name__, path)
        if not self._active or key in self._applied:
            return
        try:
            owner, attr = _resolve(module, path)
            wrapt.wrap_function_wrapper(owner, attr, wrapper)
            self._applied[key] = owner
        except Exception:  # a library version without this method: skip it, keep the rest
            _log.warning("lightspan: could not patch %s.%s", module.__name__, path, exc_info=True)

    def remove(self) -> None:
        self._active = False
        for (_module, path), owner in list(self._applied.items()):
            try:
                unwrap(owner, path.rsplit(".", 1)[-1])
            except Exception:
                _log.warning("lightspan: could not unpatch %s", path, exc_info=True)
        self._applied.clear()
