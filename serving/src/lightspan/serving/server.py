"""``PolicyServer``: a local checkpoint behind an OpenAI-compatible chat-completions endpoint.

It stands in for vLLM in the demo and the tests: the agent's real ``openai`` client talks to it over
loopback and gets prompt/response token ids and logprobs back the way vLLM returns them.

Concurrency: HTTP is served by uvicorn (asyncio); every generation runs on ONE worker thread, so requests
are serialized (no continuous batching -- the ``n`` choices of one request are batched). That is the
right trade for a tiny CPU policy; put vLLM in front of a real one.

Reload: ``reload(path)`` / ``POST /v1/admin/reload`` loads the new checkpoint beside the old one and then
swaps one reference; a request already admitted keeps the engine it started with and finishes on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lightspan.serving import protocol as wire
from lightspan.serving.engine import Engine, TokenEvent

__all__ = ["PolicyServer"]

_log = logging.getLogger(__name__)
_END = object()


class PolicyServer:
    """Serve ``model_path`` on ``http://{host}:{port}/v1``; port 0 picks a free one.

    >>> server = PolicyServer("./tiny-policy").start()      # doctest: +SKIP
    >>> openai.OpenAI(base_url=server.base_url, api_key="x")  # doctest: +SKIP
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        device: str | None = None,
        dtype: str = "auto",
        served_model_name: str | None = None,
        default_max_tokens: int = 256,
    ) -> None:
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {port}")
        self.host = host
        self._requested_port = int(port)
        self.device = device
        self.dtype = dtype
        self.default_max_tokens = default_max_tokens
        self._engine = Engine(model_path, device=device, dtype=dtype)
        self.served_model_name = served_model_name or str(model_path)
        self._reload_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lightspan-generate")
        self._sock: socket.socket | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.created = int(time.time())

    # -- lifecycle ------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._sock is None:
            raise RuntimeError("the server is not started; call start() first")
        return int(self._sock.getsockname()[1])

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model_path(self) -> str:
        """The checkpoint being served now."""
        return self._engine.model_path

    @property
    def engine(self) -> Engine:
        """The engine serving now (model, tokenizer, device); replaced on reload."""
        return self._engine

    def start(self, timeout: float = 30.0) -> PolicyServer:
        """Bind, start uvicorn on a daemon thread and wait until it accepts connections."""
        import uvicorn

        if self._thread is not None:
            raise RuntimeError("the server is already started")
        self._sock = socket.create_server((self.host, self._requested_port))
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name="lightspan-policy-server",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the policy server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        _log.info("serving %s on %s", self.model_path, self.base_url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let uvicorn close its connections, release the socket."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._thread = self._server = None

    def wait(self) -> None:
        """Block until the server stops (for the CLI)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> PolicyServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reload(self, model_path: str | Path) -> str:
        """Load ``model_path`` and swap it in; in-flight requests finish on the old checkpoint."""
        with self._reload_lock:
            new = Engine(model_path, device=self.device, dtype=self.dtype)
            self._engine = new  # one reference assignment: requests admitted later use the new engine
        _log.info("reloaded %s", new.model_path)
        return new.model_path

    # -- HTTP -----------------------------------------------------------------------------------------
    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.routing import Route

        return Starlette(
            routes=[
                Route("/health", self._health, methods=["GET"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/admin/reload", self._reload, methods=["POST"]),
            ]
        )

    async def _health(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse({"status": "ok", "model": self.served_model_name, "checkpoint": self.model_path})

    async def _models(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        engine = self._engine
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": self.served_model_name,
                        "object": "model",
                        "created": self.created,
                        "owned_by": "lightspan",
                        "root": engine.model_path,
                        "max_model_len": engine.max_context,
                    }
                ],
            }
        )

    async def _reload(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        try:
            body = await request.json()
        except ValueError:
            return _error(400, 'the request body must be JSON like {"model": "/path/to/checkpoint"}')
        path = body.get("model") if isinstance(body, dict) else None
        if not isinstance(path, str) or not path:
            return _error(400, "'model' must be the path of a checkpoint directory", param="model")
        try:
            loaded = await asyncio.get_running_loop().run_in_executor(None, self.reload, path)
        except (OSError, ValueError) as exc:
            return _error(400, f"cannot load {path!r}: {exc}", param="model")
        return JSONResponse({"status": "ok", "model": self.served_model_name, "checkpoint": loaded})

    async def _chat(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the request body is not valid JSON")
        engine = self._engine  # pinned: a reload during this request does not affect it
        try:
            req = wire.parse_chat_request(body, default_max_tokens=self.default_max_tokens)
            if req.model is not None and req.model != self.served_model_name:
                raise wire.RequestError(
                    f"The model `{req.model}` does not exist; this server serves `{self.served_model_name}`.",
                    param="model",
                    status=404,
                    type_="NotFoundError",
                    code="model_not_found",
                )
            try:
                prompt_ids = engine.render(req.messages, req.tools)
                engine.check(prompt_ids, req.params)
            except (ValueError, TypeError) as exc:  # jinja errors in the template are ValueErrors too
                raise wire.RequestError(str(exc), param="messages") from exc
        except wire.RequestError as exc:
            return _error(exc.status, str(exc), param=exc.param, type_=exc.type, code=exc.code)
        cid = wire.completion_id()
        if req.stream:
            return StreamingResponse(
                self._stream(engine, req, prompt_ids, cid), media_type="text/event-stream"
            )
        loop = asyncio.get_running_loop()
        events = await loop.run_in_executor(
            self._executor, lambda: list(engine.generate(prompt_ids, req.params))
        )
        return JSONResponse(
            wire.chat_completion(
                cid=cid,
                model=self.served_model_name,
                req=req,
                prompt_ids=prompt_ids,
                events=events,
                token_text=engine.token_text,
            )
        )

    async def _stream(
        self, engine: Engine, req: wire.ChatRequest, prompt_ids: list[int], cid: str
    ) -> AsyncIterator[str]:
        """SSE chunks: a role chunk per choice, one chunk per token, usage if asked, then [DONE]."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()

        def work() -> None:
            try:
                for event in engine.generate(prompt_ids, req.params, cancel):
                    loop.call_soon_threadsafe(queue.put_nowait, event)
            except Exception as exc:  # surfaced to the client as an error event
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _END)

        created, model, n_tokens = int(time.time()), self.served_model_name, 0
        loop.run_in_executor(self._executor, work)
        try:
            first = [
                {
                    "index": i,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                }
                for i in range(req.params.n)
            ]
            extra = {"prompt_token_ids": prompt_ids} if req.return_token_ids else None
            yield _sse(wire.chunk(cid=cid, model=model, created=created, choices=first, extra=extra))
            while (item := await queue.get()) is not _END:
                if isinstance(item, Exception):
                    _log.exception("generation failed", exc_info=item)
                    yield _sse(wire.error_body(f"generation failed: {item}", type_="server_error"))
                    continue
                n_tokens += 1
                yield _sse(
                    wire.chunk(
                        cid=cid, model=model, created=created, choices=[_choice_delta(item, req, engine)]
                    )
                )
            if req.include_usage:
                yield _sse(
                    wire.chunk(
                        cid=cid,
                        model=model,
                        created=created,
                        choices=[],
                        extra={"usage": wire.usage(len(prompt_ids), n_tokens)},
                    )
                )
            yield "data: [DONE]\n\n"
        finally:
            cancel.set()  # a client that went away stops the worker at its next token


def _choice_delta(event: TokenEvent, req: wire.ChatRequest, engine: Engine) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": event.index,
        "delta": {"content": event.text_delta},
        "logprobs": None,
        "finish_reason": event.finish_reason,
    }
    if req.logprobs:
        choice["logprobs"] = {
            "content": [
                wire.logprob_entry(
                    engine.token_text(event.token_id),
                    event.logprob,
                    [(engine.token_text(t), lp) for t, lp in event.top],
                )
            ]
        }
    if req.return_token_ids:
        choice["token_ids"] = [event.token_id]
    return choice


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def _error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    type_: str = "invalid_request_error",
    code: str | None = None,
) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse(wire.error_body(message, type_=type_, param=param, code=code), status_code=status)
