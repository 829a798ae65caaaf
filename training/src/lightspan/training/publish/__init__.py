"""Publish a trained checkpoint to a running policy server (vLLM or ``lightspan serve``), verified.

    from lightspan.training.publish import publish_checkpoint
    result = publish_checkpoint("runs/r1/final", "http://127.0.0.1:8000", dsn="http://127.0.0.1:8123")
    result.version, result.name   # 3, 'policy@v3' (LoRA on vLLM) or 'policy' (full-weight reload)

The CLI is ``lightspan publish``; ``PublishCallback`` does the same from a transformers Trainer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .probe import ProbeResult
from .publisher import DEFAULT_TOLERANCE, PublishResult, publish_checkpoint, publish_final_model
from .servers import MECHANISMS, PublishError, ServerInfo, detect_server

if TYPE_CHECKING:
    from .callback import PublishCallback

__all__ = [
    "DEFAULT_TOLERANCE",
    "MECHANISMS",
    "ProbeResult",
    "PublishCallback",
    "PublishError",
    "PublishResult",
    "ServerInfo",
    "detect_server",
    "publish_checkpoint",
    "publish_final_model",
]


def __getattr__(name: str) -> object:
    if name == "PublishCallback":  # transformers loads only for the callback
        from .callback import PublishCallback

        return PublishCallback
    raise AttributeError(f"module 'lightspan.training.publish' has no attribute {name!r}")
