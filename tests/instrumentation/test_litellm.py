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


def _one(exporter, op):
    spans = [s for s in exporter.get_finished_spans() if s.attributes.get(A.GEN_AI_OPERATION_NAME)]
    assert [s.attributes[A.GEN_AI_OPERATION_NAME] for s in spans] == [op] * len(spans)
    assert {s.attributes[A.GEN_AI_PROVIDER_NAME] for s in spans} == {"litellm"}
    return spans


def test_text_completion_sync_async_and_streamed(exporter, server, instrumented):
    server.queue("one two three", "four five", "six seven")
    resp = litellm.text_completion(prompt="count with me", **_kw(server))

    async def main():
        await litellm.atext_completion(prompt="go on", **_kw(server))
        stream = await litellm.atext_completion(
            prompt="more", stream=True, stream_options={"include_usage": True}, **_kw(server)
        )
        return "".join([c.choices[0].text or "" async for c in stream if c.choices])

    assert resp.choices[0].text == "one two three"
    assert asyncio.run(main()) == "six seven"
    assert [r.path for r in server.requests] == ["/v1/completions"] * 3  # one HTTP call each ...
    spans = _one(exporter, A.OP_TEXT_COMPLETION)  # ... and one span each
    assert [s.name for s in spans] == ["text_completion openai/tiny"] * 3
    texts = [json.loads(s.attributes[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] for s in spans]
    assert texts == ["one two three", "four five", "six seven"]
    first = spans[0].attributes
    assert json.loads(first[A.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "count with me"
    assert (first[A.GEN_AI_USAGE_INPUT_TOKENS], first[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (3, 3)
    assert first[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",) and first[A.GEN_AI_RESPONSE_ID]
    assert spans[2].attributes[A.LLM_STREAMING] is True


def test_responses_sync_async_streamed_with_tool_calls(exporter, server, instrumented):
    reply = Reply("calling", tool_calls=[ToolCall("lookup", {"q": "x"}, id="call_lr")])
    server.queue(reply, reply, "streamed answer")
    resp = litellm.responses(input="find x", **_kw(server))

    async def main():
        await litellm.aresponses(input="find x", **_kw(server))
        stream = await litellm.aresponses(input="again", stream=True, **_kw(server))
        return [e async for e in stream]

    events = asyncio.run(main())
    assert resp.output[1].call_id == "call_lr" and events
    assert [r.path for r in server.requests] == ["/v1/responses"] * 3
    spans = _one(exporter, A.OP_CHAT)
    assert len(spans) == 3
    for span in spans[:2]:
        a = span.attributes
        assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_call",)
        assert json.loads(a[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][1] == {
            "type": "tool_call",
            "id": "call_lr",
            "name": "lookup",
            "arguments": {"q": "x"},
        }
        assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (2, 1)
    assert spans[0].attributes[A.GEN_AI_RESPONSE_ID] == resp.id
    streamed = spans[2].attributes
    assert streamed[A.LLM_STREAMING] is True and streamed[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 2
    assert json.loads(streamed[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"] == [
        {"type": "text", "content": "streamed answer"}
    ]
