"""A real local HTTP server that speaks enough of the OpenAI and Anthropic APIs for tests.

Use it with the real ``openai`` / ``anthropic`` clients (or litellm, or raw HTTP)::

    from tests.support.llm_server import LLMServer, Reply, ToolCall

    with LLMServer() as server:                       # ThreadingHTTPServer on 127.0.0.1, port 0
        server.queue(Reply(text="4"), Reply(tool_calls=[ToolCall("add", {"a": 1, "b": 2})]))
        client = openai.OpenAI(base_url=server.openai_url, api_key="test", max_retries=0)
        client.chat.completions.create(model="m", messages=[...])
        server.requests[-1].json                      # what the client sent
        anthropic.Anthropic(base_url=server.url, api_key="test", max_retries=0)

Endpoints: ``POST /v1/chat/completions`` (JSON, or SSE when ``stream``; a final usage chunk when
``stream_options.include_usage``), ``POST /v1/completions`` (legacy text completions, JSON or SSE;
a prompt of token ids is echoed as ``prompt_token_ids``), ``POST /v1/responses`` (JSON or the full SSE
event sequence: output items added, text and function-call argument deltas, done, ``response.completed``),
``POST /v1/messages`` (Anthropic JSON or SSE events, ``tool_use`` blocks).

Replies come from ``queue(...)`` (first in, first out), else from ``reply`` (a callable
``reply(request_json) -> Reply | str``), else ``Reply(text="ok")``. ``Reply(error=(status, msg))``
answers with the provider's error body and that HTTP status. vLLM-style RL data: when the request
has ``return_token_ids: true`` (pass ``extra_body={"return_token_ids": True}``) the chat reply has
top-level ``prompt_token_ids`` and ``choices[i].token_ids`` (streams: ``token_ids`` per chunk
choice, ``prompt_token_ids`` on the first chunk); with ``logprobs: true``, ``choices[i].logprobs``.
Token ids are deterministic: one token per whitespace-separated word, ``token_ids_for(text)``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:12]}")


@dataclass
class Reply:
    """One scripted answer."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None  # default: "tool_calls" when tool calls, else "stop"
    error: tuple[int, str] | None = None  # (HTTP status, message)
    model: str | None = None  # default: the requested model


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    json: dict[str, Any]


def token_ids_for(text: str) -> list[int]:
    """The server's toy tokenizer: one id per whitespace-separated word (stable across runs)."""
    return [100 + (sum(map(ord, w)) % 900) for w in text.split()]


def logprob_for(index: int) -> float:
    return -0.125 * (index + 1)


def _prompt_text(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for key in ("system", "instructions"):
        if isinstance(body.get(key), str):
            parts.append(body[key])
    source = body.get("messages") or body.get("input") or []
    if isinstance(source, str):
        source = [{"content": source}]
    for m in source:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return " ".join(parts)


class LLMServer:
    """See the module docstring. ``start()``/``stop()`` or use as a context manager."""

    def __init__(self, reply: Callable[[dict[str, Any]], Reply | str] | None = None) -> None:
        self.reply = reply
        self.requests: list[Recorded] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> LLMServer:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="llm-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Base URL (Anthropic clients take this as ``base_url``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        """Base URL for OpenAI clients (``.../v1``)."""
        return self.url + "/v1"

    # -- scripting -----------------------------------------------------------
    def reset(self) -> None:
        """Forget queued replies, recorded requests and the reply function (between tests)."""
        with self._lock:
            self._queue.clear()
        self.requests.clear()
        self.reply = None

    def queue(self, *replies: Reply | str) -> None:
        with self._lock:
            self._queue.extend(Reply(text=r) if isinstance(r, str) else r for r in replies)

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.reply is not None:
            r = self.reply(body)
            return Reply(text=r) if isinstance(r, str) else r
        return Reply(text="ok")


class _Handler(BaseHTTPRequestHandler):
    owner: LLMServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        return None

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        path = self.path.split("?", 1)[0]
        self.owner.requests.append(Recorded(path, {k.lower(): v for k, v in self.headers.items()}, body))
        routes = {
            "/v1/chat/completions": self._chat,
            "/chat/completions": self._chat,
            "/v1/completions": self._completions,
            "/completions": self._completions,
            "/v1/responses": self._responses,
            "/v1/messages": self._messages,
        }
        handler = routes.get(path)
        if handler is None:
            self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})
            return
        reply = self.owner._next_reply(body)
        if reply.error is not None:
            status, message = reply.error
            if path == "/v1/messages":
                self._json(
                    status, {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
                )
            else:
                self._json(
                    status, {"error": {"message": message, "type": "invalid_request_error", "code": None}}
                )
            return
        handler(body, reply)

    # -- transport helpers -----------------------------------------------------
    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, events: list[tuple[str | None, Any]]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        for event, data in events:
            text = data if isinstance(data, str) else json.dumps(data)
            head = f"event: {event}\n" if event else ""
            self.wfile.write(f"{head}data: {text}\n\n".encode())
            self.wfile.flush()

    # -- OpenAI chat completions ----------------------------------------------------
    def _chat(self, body: dict[str, Any], reply: Reply) -> None:
        model = reply.model or body.get("model", "model")
        prompt_ids = token_ids_for(_prompt_text(body))
        out_ids = token_ids_for(reply.text)
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        want_ids = bool(body.get("return_token_ids"))
        want_logprobs = bool(body.get("logprobs"))
        rid = f"chatcmpl-{uuid.uuid4().hex[:16]}"
        usage = {
            "prompt_tokens": len(prompt_ids),
            "completion_tokens": len(out_ids),
            "total_tokens": len(prompt_ids) + len(out_ids),
        }
        tool_calls = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in reply.tool_calls
        ]
        words = reply.text.split()

        def logprobs(start: int, stop: int) -> dict[str, Any]:
            return {
                "content": [
                    {"token": words[i], "logprob": logprob_for(i), "bytes": None, "top_logprobs": []}
                    for i in range(start, stop)
                ]
            }

        if not body.get("stream"):
            choice: dict[str, Any] = {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": reply.text or None,
                    "tool_calls": tool_calls or None,
                },
                "finish_reason": finish,
                "logprobs": logprobs(0, len(words)) if want_logprobs else None,
            }
            payload: dict[str, Any] = {
                "id": rid,
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [choice],
                "usage": usage,
            }
            if want_ids:
                payload["prompt_token_ids"] = prompt_ids
                choice["token_ids"] = out_ids
            self._json(200, payload)
            return

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
            c: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            c.update(extra)
            return {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [c],
            }

        events: list[tuple[str | None, Any]] = []
        first = chunk({"role": "assistant", "content": ""})
        if want_ids:
            first["prompt_token_ids"] = prompt_ids
        events.append((None, first))
        for i, word in enumerate(words):
            extra: dict[str, Any] = {}
            if want_ids:
                extra["token_ids"] = [out_ids[i]]
            if want_logprobs:
                extra["logprobs"] = logprobs(i, i + 1)
            events.append((None, chunk({"content": word if i == 0 else " " + word}, **extra)))
        for n, call in enumerate(tool_calls):
            args = call["function"]["arguments"]
            head = {
                "index": n,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            events.append((None, chunk({"tool_calls": [head]})))
            half = len(args) // 2
            for piece in (args[:half], args[half:]):
                events.append((None, chunk({"tool_calls": [{"index": n, "function": {"arguments": piece}}]})))
        events.append((None, chunk({}, finish)))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(
                (
                    None,
                    {
                        "id": rid,
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    },
                )
            )
        events.append((None, "[DONE]"))
        self._sse(events)

    # -- OpenAI (legacy) text completions -------------------------------------------------
    def _completions(self, body: dict[str, Any], reply: Reply) -> None:
        model = reply.model or body.get("model", "model")
        prompt = body.get("prompt")
        prompt_ids: list[int] = (
            list(prompt)
            if isinstance(prompt, list) and _all_ints(prompt)
            else token_ids_for(prompt if isinstance(prompt, str) else "")
        )
        out_ids = token_ids_for(reply.text)
        words = reply.text.split()
        finish = reply.finish_reason or "stop"
        want_ids, want_logprobs = bool(body.get("return_token_ids")), body.get("logprobs") is not None
        rid = f"cmpl-{uuid.uuid4().hex[:16]}"
        usage = {
            "prompt_tokens": len(prompt_ids),
            "completion_tokens": len(out_ids),
            "total_tokens": len(prompt_ids) + len(out_ids),
        }

        def choice(text: str, start: int, stop: int, finish_reason: str | None) -> dict[str, Any]:
            c: dict[str, Any] = {"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}
            if want_logprobs:
                c["logprobs"] = {
                    "tokens": words[start:stop],
                    "token_logprobs": [logprob_for(i) for i in range(start, stop)],
                    "top_logprobs": None,
                    "text_offset": None,
                }
            if want_ids:
                c["token_ids"] = out_ids[start:stop]
                if start == 0:
                    c["prompt_token_ids"] = prompt_ids
            return c

        def payload(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
            return {
                "id": rid,
                "object": "text_completion",
                "created": 0,
                "model": model,
                "choices": choices,
                **extra,
            }

        if not body.get("stream"):
            self._json(200, payload([choice(reply.text, 0, len(words), finish)], usage=usage))
            return
        events: list[tuple[str | None, Any]] = []
        for i, word in enumerate(words):
            last = i == len(words) - 1
            text = word if i == 0 else " " + word
            events.append((None, payload([choice(text, i, i + 1, finish if last else None)])))
        if not words:
            events.append((None, payload([choice("", 0, 0, finish)])))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append((None, payload([], usage=usage)))
        events.append((None, "[DONE]"))
        self._sse(events)

    # -- OpenAI Responses -----------------------------------------------------------
    def _responses(self, body: dict[str, Any], reply: Reply) -> None:
        model = reply.model or body.get("model", "model")
        prompt_n = len(token_ids_for(_prompt_text(body)))
        output: list[dict[str, Any]] = []
        if reply.text:
            output.append(
                {
                    "type": "message",
                    "id": f"msg_{uuid.uuid4().hex[:8]}",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
                }
            )
        for c in reply.tool_calls:
            output.append(
                {
                    "type": "function_call",
                    "id": f"fc_{uuid.uuid4().hex[:8]}",
                    "call_id": c.id,
                    "name": c.name,
                    "arguments": json.dumps(c.arguments),
                    "status": "completed",
                }
            )
        out_n = len(token_ids_for(reply.text))
        response = {
            "id": f"resp_{uuid.uuid4().hex[:16]}",
            "object": "response",
            "created_at": 0,
            "model": model,
            "status": "completed",
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": prompt_n,
                "output_tokens": out_n,
                "total_tokens": prompt_n + out_n,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }
        if not body.get("stream"):
            self._json(200, response)
            return
        self._sse(_responses_events(response, reply.text))

    # -- Anthropic messages ----------------------------------------------------------
    def _messages(self, body: dict[str, Any], reply: Reply) -> None:
        model = reply.model or body.get("model", "model")
        prompt_n = len(token_ids_for(_prompt_text(body)))
        out_n = len(token_ids_for(reply.text))
        content: list[dict[str, Any]] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        for c in reply.tool_calls:
            content.append(
                {
                    "type": "tool_use",
                    "id": c.id.replace("call_", "toolu_"),
                    "name": c.name,
                    "input": c.arguments,
                }
            )
        stop = reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")
        message = {
            "id": f"msg_{uuid.uuid4().hex[:16]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": prompt_n, "output_tokens": out_n},
        }
        if not body.get("stream"):
            self._json(200, message)
            return
        start = dict(
            message, content=[], stop_reason=None, usage={"input_tokens": prompt_n, "output_tokens": 1}
        )
        events: list[tuple[str | None, Any]] = [
            ("message_start", {"type": "message_start", "message": start})
        ]
        for i, block in enumerate(content):
            if block["type"] == "text":
                events.append(
                    (
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": i,
                            "content_block": {"type": "text", "text": ""},
                        },
                    )
                )
                for j, word in enumerate(block["text"].split()):
                    events.append(
                        (
                            "content_block_delta",
                            {
                                "type": "content_block_delta",
                                "index": i,
                                "delta": {"type": "text_delta", "text": word if j == 0 else " " + word},
                            },
                        )
                    )
            else:
                events.append(
                    (
                        "content_block_start",
                        {"type": "content_block_start", "index": i, "content_block": dict(block, input={})},
                    )
                )
                args = json.dumps(block["input"])
                half = len(args) // 2
                for piece in (args[:half], args[half:]):
                    events.append(
                        (
                            "content_block_delta",
                            {
                                "type": "content_block_delta",
                                "index": i,
                                "delta": {"type": "input_json_delta", "partial_json": piece},
                            },
                        )
                    )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": out_n},
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        self._sse(events)


def _all_ints(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, int) for v in value)


def _responses_events(response: dict[str, Any], text: str) -> list[tuple[str | None, Any]]:
    """The Responses API's SSE sequence for ``response``: created, each output item added / its deltas /
    done (text word by word, function-call arguments in two halves), then completed."""
    events: list[tuple[str | None, Any]] = []

    def emit(kind: str, **data: Any) -> None:
        events.append((kind, {"type": kind, "sequence_number": len(events), **data}))

    emit("response.created", response=dict(response, status="in_progress", output=[], usage=None))
    emit("response.in_progress", response=dict(response, status="in_progress", output=[], usage=None))
    for n, item in enumerate(response["output"]):
        if item["type"] == "message":
            emit(
                "response.output_item.added",
                output_index=n,
                item=dict(item, status="in_progress", content=[]),
            )
            empty = {"type": "output_text", "text": "", "annotations": []}
            emit(
                "response.content_part.added", item_id=item["id"], output_index=n, content_index=0, part=empty
            )
            for i, word in enumerate(text.split()):
                emit(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=n,
                    content_index=0,
                    delta=word if i == 0 else " " + word,
                    logprobs=[],
                )
            emit(
                "response.output_text.done",
                item_id=item["id"],
                output_index=n,
                content_index=0,
                text=text,
                logprobs=[],
            )
            part = item["content"][0]
            emit("response.content_part.done", item_id=item["id"], output_index=n, content_index=0, part=part)
        else:
            emit(
                "response.output_item.added",
                output_index=n,
                item=dict(item, status="in_progress", arguments=""),
            )
            args = item["arguments"]
            for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
                emit(
                    "response.function_call_arguments.delta", item_id=item["id"], output_index=n, delta=piece
                )
            emit(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=n,
                arguments=args,
                name=item["name"],
            )
        emit("response.output_item.done", output_index=n, item=item)
    emit("response.completed", response=response)
    return events
