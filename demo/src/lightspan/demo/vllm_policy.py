"""Real vLLM as the demo's policy server, with each round's policy published the production way.

The demo's loop needs four things of a policy server: ``base_url``, ``model_path`` (the checkpoint it
serves now), ``reload(path)`` (serve a new checkpoint and return only once it does) and ``stop()``.
:class:`VLLMPolicy` gives vLLM that surface: ``reload`` is :func:`lightspan.training.publish.publish_checkpoint`
(full-weight reload + prefix-cache reset, verified by the probe, recorded as a policy version when a
store is given), and ``model_path`` is tracked here because vLLM's ``/v1/models`` keeps reporting the path
it started with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightspan.serving.vllm_server import VLLMServer
    from lightspan.training.publish import PublishResult

__all__ = ["VLLMPolicy"]


class VLLMPolicy:
    """vLLM serving ``model_path`` as model ``policy`` (dev mode on, LoRA off), reloaded by publishing.

    ``dsn``: the store to record each publish in (the demo passes its collector's query interface), so the
    converted rows of later rounds carry the version that served them. ``server``: an already configured
    :class:`VLLMServer` (tests share one; it is then left running by ``stop``); by default one is made
    with the demo's flags.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        dsn: str | None = None,
        log_path: str | Path | None = None,
        server: VLLMServer | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        from lightspan.serving.vllm_server import VLLMServer

        self.model_path = str(model_path)
        self.dsn = dsn
        self.echo = echo or (lambda _msg: None)
        self._owns_server = server is None  # a server handed in (a test's shared one) is not ours to stop
        # LoRA off: the demo publishes full weights, and vLLM's LoRA path costs time on every request.
        self.server = server or VLLMServer(
            self.model_path, served_model_name="policy", dev_mode=True, enable_lora=False, log_path=log_path
        )
        self.publishes: list[PublishResult] = []

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def startup_seconds(self) -> float | None:
        return self.server.startup_seconds

    def start(self, timeout: float = 900.0) -> VLLMPolicy:
        """Start vLLM (building its cached venv first if this machine has none: minutes, once)."""
        if not self.server.alive():
            self.server.start(timeout=timeout)
        return self

    def reload(self, model_path: str | Path) -> str:
        """Publish ``model_path`` (full weights) and return once the probe shows vLLM serving it."""
        from lightspan.training.publish import publish_checkpoint

        result = publish_checkpoint(model_path, self.server.root_url, dsn=self.dsn, mechanism="vllm-reload")
        self.publishes.append(result)
        self.model_path = str(model_path)
        self.echo(result.summary())
        return self.model_path

    @property
    def last_version(self) -> int | None:
        return self.publishes[-1].version if self.publishes else None

    def stop(self) -> None:
        if self._owns_server:
            self.server.stop()

    def __enter__(self) -> VLLMPolicy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
