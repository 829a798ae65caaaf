"""lightspan.instrumentation: the agent side of lightspan.

>>> import lightspan.instrumentation as ls                      # doctest: +SKIP
>>> ls.configure(endpoint="http://localhost:4317", service_name="my-agent")
>>> with ls.rollout(task_id="q-17", attempt=0):
...     answer = my_agent(question)           # openai/anthropic/litellm calls become spans
...     ls.emit_reward(1.0 if answer == gold else 0.0)

Or, with no code at all: ``opentelemetry-instrument python agent.py``.
Importing this module is cheap: exporters and provider instrumentors load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .context import context_executor, with_context
from .processor import RolloutSpanProcessor
from .rewards import emit_reward
from .rollout import RolloutHandle, current_rollout, rollout
from .tools import tool, tool_call_id
from .version import __version__ as __version__

if TYPE_CHECKING:
    from .config import configure, instrument, uninstrument


# Set-up functions live in .config, which loads the SDK and exporters: import it only when one is used.
_FROM_CONFIG = ("configure", "instrument", "uninstrument")


def __getattr__(name: str) -> Any:
    if name in _FROM_CONFIG:
        from . import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RolloutHandle",
    "RolloutSpanProcessor",
    "configure",
    "context_executor",
    "current_rollout",
    "emit_reward",
    "instrument",
    "rollout",
    "tool",
    "tool_call_id",
    "uninstrument",
    "with_context",
]
