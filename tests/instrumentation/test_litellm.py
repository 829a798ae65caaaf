"""litellm over its openai provider against the local server: one logical call is one span."""

from __future__ import annotations

import asyncio
import json

import pytest

from lightspan.instrumentation import rollout
from lightspan.schemas import attributes as A
from tests.support.llm_server import Reply, ToolCall

litellm = pytest.importorskip("litellm")
MSGS = [{"role": "user", "content": "hello litellm"}]


def _chat(exporter):
    return [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]


def _kw(server):
    return {"model": "openai/tiny", "api_base": server.openai_url, "api_key": "test", "num_retries": 0}


def test_completion_is_one_span_with_the_framework_view(exporter, server, instrumented):
    server.queue(Reply("hi", tool_calls=[ToolCall("f", {"x": 1}, id="call_l")]))
    with rollout("t-l") as r:
        resp = litellm.completion(messages=MSGS, **_kw(server))
    assert resp.choices[0].message.content == "hi"
    assert len(server.requests) == 1  # the openai SDK underneath did make the HTTP call
    (span,) = _chat(exporter)  # ... but only litellm's span was recorded
    a = span.attributes
    assert a[A.GEN_AI_PROVIDER_NAME] == "litellm" and a[A.GEN_AI_REQUEST_MODEL] == "openai/tiny"
    assert a[A.SERVER_ADDRESS] == "127.0.0.1"
    assert a[A.ROLLOUT_ID] == r.rollout_id
    out = json.loads(a[A.GEN_AI_OUTPUT_MESSAGES])[0]
    assert out["parts"][1] == {"type": "tool_call", "id": "call_l", "name": "f", "arguments": {"x": 1}}
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 1


def test_acompletion_and_streaming(exporter, server, instrumented):
    server.queue("async one", "streamed two words")

    async def main():
        await litellm.acompletion(messages=MSGS, **_kw(server))
        stream = await litellm.acompletion(messages=MSGS, stream=True, **_kw(server))
        return "".join([c.choices[0].delta.content or "" async for c in stream])

    assert asyncio.run(main()) == "streamed two words"
    spans = _chat(exporter)
    assert [s.attributes[A.GEN_AI_PROVIDER_NAME] for s in spans] == ["litellm", "litellm"]
    texts = [json.loads(s.attributes[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] for s in spans]
    assert texts == ["async one", "streamed two words"]


def test_litellm_error_marks_span(exporter, server, instrumented):
    server.queue(Reply(error=(400, "bad model")))
    with pytest.raises(litellm.exceptions.BadRequestError):
        litellm.completion(messages=MSGS, **_kw(server))
    (span,) = _chat(exporter)
    assert span.status.status_code.name == "ERROR"
