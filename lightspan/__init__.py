"""lightspan: turn LLM agents' own executions into reinforcement-learning data, and train on it.

The agent-side API is re-exported here lazily (importing ``lightspan`` pulls nothing heavy)::

    import lightspan
    lightspan.configure(endpoint="http://localhost:4317", service_name="my-agent")
    with lightspan.rollout(task_id="q-17"):
        ...
        lightspan.emit_reward(1.0)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "configure": "lightspan.instrumentation",
    "instrument": "lightspan.instrumentation",
    "rollout": "lightspan.instrumentation",
    "tool": "lightspan.instrumentation",
    "emit_reward": "lightspan.instrumentation",
    "context_executor": "lightspan.instrumentation",
    "uninstrument": "lightspan.instrumentation",
    "current_rollout": "lightspan.instrumentation",
    "with_context": "lightspan.instrumentation",
    "tool_call_id": "lightspan.instrumentation",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lightspan' has no attribute {name!r}")
    return getattr(import_module(module), name)
