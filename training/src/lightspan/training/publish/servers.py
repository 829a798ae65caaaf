"""The policy servers ``publish`` talks to: which kind a URL is, and how each takes new weights.

Three mechanisms, chosen by server and checkpoint:

- ``vllm-lora``: ``POST /v1/load_lora_adapter`` (vLLM started with ``--enable-lora`` and
  ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``); the adapter is served under its own name, ``<base>@v<N>``.
- ``vllm-reload``: ``POST /collective_rpc {"method": "reload_weights", ...}`` then ``POST
  /reset_prefix_cache`` (vLLM with ``VLLM_SERVER_DEV_MODE=1``); without the reset a cached prompt is
  answered with logprobs of the old weights.
- ``lightspan-reload``: ``lightspan serve``'s ``POST /v1/admin/reload``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "MECHANISMS",
    "PublishError",
    "ServerInfo",
    "detect_server",
    "lightspan_reload",
    "vllm_load_lora",
    "vllm_reload_weights",
]

MECHANISMS = ("vllm-lora", "vllm-reload", "lightspan-reload")


class PublishError(RuntimeError):
    """Publishing failed; the message says what to change (a flag, an env var, a path)."""


@dataclass(frozen=True)
class ServerInfo:
    """What ``GET /v1/models`` says about a server."""

    kind: str  # "vllm" | "lightspan"
    root_url: str  # http://host:port (no /v1)
    base_model: str  # the served name of the base model
    models: tuple[str, ...]  # every served name (base and adapters)
    raw: dict[str, Any]

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"


def _root(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def detect_server(url: str, *, timeout: float = 30.0) -> ServerInfo:
    """Ask ``url`` (``http://host:port`` or ``.../v1``) what it is: vLLM or ``lightspan serve``."""
    root = _root(url)
    try:
        resp = httpx.get(f"{root}/v1/models", timeout=timeout)
    except httpx.HTTPError as exc:
        raise PublishError(f"cannot reach a policy server at {root}: {exc}") from exc
    if resp.status_code != 200:
        raise PublishError(
            f"{root}/v1/models answered {resp.status_code}; is {root} an OpenAI-compatible server?"
        )
    body = resp.json()
    data = body.get("data") or []
    if not data:
        raise PublishError(f"{root}/v1/models lists no model")
    owners = {str(m.get("owned_by", "")) for m in data}
    if "lightspan" in owners:
        kind = "lightspan"
    elif "vllm" in owners:
        kind = "vllm"
    else:
        raise PublishError(
            f"{root} is neither vLLM nor lightspan serve (models owned by {sorted(owners)}); "
            "publish supports those two"
        )
    bases = [str(m["id"]) for m in data if not m.get("parent")]
    return ServerInfo(
        kind=kind,
        root_url=root,
        base_model=bases[0] if bases else str(data[0]["id"]),
        models=tuple(str(m["id"]) for m in data),
        raw=body,
    )


def _fail(resp: httpx.Response, what: str, hint: str | None = None) -> PublishError:
    text = resp.text.strip().replace("\n", " ")[:300]
    return PublishError(f"{what} failed ({resp.status_code}: {text})" + (f"; {hint}" if hint else ""))


def vllm_load_lora(server: ServerInfo, name: str, path: str, *, timeout: float = 300.0) -> None:
    """Load the adapter at ``path`` as model ``name``."""
    url = f"{server.root_url}/v1/load_lora_adapter"
    resp = httpx.post(url, json={"lora_name": name, "lora_path": path}, timeout=timeout)
    if resp.status_code == 404 and "not found" in resp.text.lower() and "adapter" not in resp.text.lower():
        raise PublishError(
            f"{server.root_url} has no runtime LoRA loading (POST /v1/load_lora_adapter is 404): start vLLM "
            "with --enable-lora and the environment variable VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"
        )
    if resp.status_code != 200:
        hint = None
        low = resp.text.lower()
        if "enable" in low and "lora" in low:
            hint = "start vLLM with --enable-lora (and --max-lora-rank >= the adapter's r)"
        elif "rank" in low:
            hint = "raise vLLM's --max-lora-rank to at least the adapter's r"
        raise _fail(resp, f"loading LoRA adapter {path!r} as {name!r}", hint)


def vllm_reload_weights(server: ServerInfo, path: str, *, timeout: float = 600.0) -> None:
    """Reload the base model's weights from ``path``, then drop the prefix cache (stale KV otherwise)."""
    resp = httpx.post(
        f"{server.root_url}/collective_rpc",
        json={"method": "reload_weights", "kwargs": {"weights_path": path}},
        timeout=timeout,
    )
    if resp.status_code == 404:
        raise PublishError(
            f"{server.root_url} has no /collective_rpc: full-weight reloads need vLLM started with the "
            "environment variable VLLM_SERVER_DEV_MODE=1 (or publish a LoRA adapter instead)"
        )
    if resp.status_code != 200:
        raise _fail(resp, f"reloading weights from {path!r}")
    reset = httpx.post(f"{server.root_url}/reset_prefix_cache", timeout=timeout)
    if reset.status_code != 200:
        raise _fail(
            reset,
            "resetting the prefix cache after the reload",
            "without it cached prompts are answered with the old weights; set VLLM_SERVER_DEV_MODE=1",
        )


def lightspan_reload(server: ServerInfo, path: str, *, timeout: float = 600.0) -> None:
    resp = httpx.post(f"{server.base_url}/admin/reload", json={"model": path}, timeout=timeout)
    if resp.status_code != 200:
        raise _fail(resp, f"lightspan serve reloading {path!r}")
