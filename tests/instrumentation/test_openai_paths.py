"""Every openai call path besides plain ``create``: raw responses, ``parse()``, the ``stream()`` helpers,
Responses with tool calls, legacy text completions. Each is one span with the plain call's contract."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import openai
import pytest
from opentelemetry import trace
from pydantic import BaseModel

from lightspan.schemas import attributes as A
from tests.support.llm_server import Reply, ToolCall, logprob_for, token_ids_for

MSGS: list[Any] = [{"role": "user", "content": "add two and two"}]
TOOL_REPLY = Reply("four", tool_calls=[ToolCall("add", {"a": 2, "b": 2}, id="call_p")])
TOOL_PARTS = [
    {"type": "text", "content": "four"},
    {"type": "tool_call", "id": "call_p", "name": "add", "arguments": {"a": 2, "b": 2}},
]


class Answer(BaseModel):
    answer: int


@pytest.fixture
def client(server, instrumented):
    return openai.OpenAI(base_url=server.openai_url, api_key="test", max_retries=0)


@pytest.fixture
def aclient(server, instrumented):
    return openai.AsyncOpenAI(base_url=server.openai_url, api_key="test", max_retries=0)


def _llm(exporter):
    return [s for s in exporter.get_finished_spans() if s.attributes.get(A.GEN_AI_OPERATION_NAME)]


def _contract(span, *, finish="tool_calls", parts=TOOL_PARTS, tin=4, tout=1):
    """The plain call's contract: ids, model, usage, finish reasons, output (tool calls included)."""
    a = span.attributes
    assert span.kind is trace.SpanKind.CLIENT
    assert a[A.GEN_AI_RESPONSE_ID] and a[A.GEN_AI_RESPONSE_MODEL] == a[A.GEN_AI_REQUEST_MODEL]
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == (finish,)
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (tin, tout)
    out = json.loads(a[A.GEN_AI_OUTPUT_MESSAGES])
    assert out == [{"role": "assistant", "parts": parts, "finish_reason": finish}]


def test_with_raw_response_records_the_full_contract_before_parse(exporter, server, client):
    server.queue(TOOL_REPLY)
    raw = client.chat.completions.with_raw_response.create(
        model="m", messages=MSGS, logprobs=True, extra_body={"return_token_ids": True}
    )
    assert raw.headers["content-type"] == "application/json"  # a caller reading only headers ...
    (span,) = _llm(exporter)  # ... still gets the whole contract
    _contract(span)
    assert json.loads(span.attributes[A.LLM_RESPONSE_TOKEN_IDS]) == token_ids_for("four")
    assert json.loads(span.attributes[A.LLM_RESPONSE_LOGPROBS]) == [logprob_for(0)]
    parsed = raw.parse()
    assert parsed.choices[0].message.tool_calls[0].id == "call_p" and parsed is raw.parse()
    assert span.attributes[A.GEN_AI_RESPONSE_ID] == parsed.id
    assert len(_llm(exporter)) == 1


def test_with_raw_response_stream_sync_and_async(exporter, server, client, aclient):
    server.queue(TOOL_REPLY, TOOL_REPLY)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=MSGS, stream=True)
    assert _llm(exporter) == []  # the body is not read yet
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "four"
    assert all(c.choices for c in chunks)  # the usage chunk lightspan asked for stays hidden

    async def main():
        araw = await aclient.chat.completions.with_raw_response.create(model="m", messages=MSGS, stream=True)
        return [c async for c in araw.parse()]

    assert len(asyncio.run(main())) == len(chunks)
    spans = _llm(exporter)
    assert len(spans) == 2
    for span in spans:
        _contract(span)
        assert span.attributes[A.GEN_AI_REQUEST_STREAM] is True


def test_async_raw_response_and_streaming_response(exporter, server, client, aclient):
    server.queue(TOOL_REPLY, TOOL_REPLY, TOOL_REPLY)

    async def main():
        raw = await aclient.chat.completions.with_raw_response.create(model="m", messages=MSGS)
        async with aclient.chat.completions.with_streaming_response.create(model="m", messages=MSGS) as r:
            body = await r.parse()
        return raw.parse(), body

    plain, streamed = asyncio.run(main())
    with client.chat.completions.with_streaming_response.create(model="m", messages=MSGS) as r:
        assert r.headers["content-type"] == "application/json"
        sync_body = r.parse()
    assert plain.choices[0].message.content == streamed.choices[0].message.content == "four"
    assert sync_body.choices[0].finish_reason == "tool_calls"
    spans = _llm(exporter)
    assert len(spans) == 3
    for span in spans:
        _contract(span)


def test_streaming_response_never_parsed_still_ends_its_span(exporter, server, client):
    server.queue("headers only")
    with client.chat.completions.with_streaming_response.create(model="m", messages=MSGS) as r:
        assert r.status_code == 200
    (span,) = _llm(exporter)
    assert span.end_time is not None and span.status.is_ok


def test_parse_structured_outputs_sync_async_and_raw(exporter, server, client, aclient):
    server.queue('{"answer": 4}', '{"answer": 5}', '{"answer": 6}')
    first = client.chat.completions.parse(model="m", messages=MSGS, response_format=Answer)
    second = asyncio.run(aclient.chat.completions.parse(model="m", messages=MSGS, response_format=Answer))
    raw = client.chat.completions.with_raw_response.parse(model="m", messages=MSGS, response_format=Answer)
    parsed = [first.choices[0].message.parsed, second.choices[0].message.parsed]
    assert parsed + [raw.parse().choices[0].message.parsed] == [
        Answer(answer=4),
        Answer(answer=5),
        Answer(answer=6),
    ]
    spans = _llm(exporter)
    assert [s.name for s in spans] == ["chat m"] * 3
    for span, n in zip(spans, (4, 5, 6), strict=True):
        a = span.attributes
        assert a[A.GEN_AI_OUTPUT_TYPE] == "json"
        _contract(span, finish="stop", parts=[{"type": "text", "content": f'{{"answer": {n}}}'}], tout=2)
        assert json.loads(a[A.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "add two and two"


def test_responses_parse(exporter, server, client):
    server.queue('{"answer": 7}')
    resp = client.responses.parse(model="r", input="add", text_format=Answer)
    assert resp.output_parsed == Answer(answer=7)
    (span,) = _llm(exporter)
    assert span.attributes[A.GEN_AI_OUTPUT_TYPE] == "json"
    assert span.attributes[A.GEN_AI_RESPONSE_ID] == resp.id
    assert span.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


def test_chat_stream_helper_one_span_ended_by_the_with_block(exporter, server, client):
    server.queue(TOOL_REPLY, "a b c d e f")
    with client.chat.completions.stream(model="m", messages=MSGS) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.tool_calls[0].function.name == "add"
    (span,) = _llm(exporter)
    _contract(span)
    with client.chat.completions.stream(model="m", messages=MSGS) as stream:
        for event in stream:
            if event.type == "content.delta" and event.delta.strip() == "a":
                break
        assert len(_llm(exporter)) == 1  # still open inside the block ...
    spans = _llm(exporter)  # ... and ended by its exit, although the stream object lives on
    assert len(spans) == 2 and spans[1].end_time is not None
    assert json.loads(spans[1].attributes[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"].startswith("a")


def test_chat_stream_helper_async(exporter, server, aclient):
    server.queue(TOOL_REPLY)

    async def main():
        async with aclient.chat.completions.stream(model="m", messages=MSGS) as stream:
            return await stream.get_final_completion()

    assert asyncio.run(main()).choices[0].message.content == "four"
    (span,) = _llm(exporter)
    _contract(span)


def test_responses_with_tool_calls_create_stream_and_helpers(exporter, server, client, aclient):
    server.queue(TOOL_REPLY, TOOL_REPLY, TOOL_REPLY, TOOL_REPLY)
    tools = [{"type": "function", "name": "add", "description": "Add", "parameters": {"type": "object"}}]
    client.responses.create(model="r", input="add", tools=tools)
    events = list(client.responses.create(model="r", input="add", tools=tools, stream=True))
    with client.responses.stream(model="r", input="add", tools=tools) as stream:
        final = stream.get_final_response()

    async def main():
        async with aclient.responses.stream(model="r", input="add", tools=tools) as s:
            return await s.get_final_response()

    afinal = asyncio.run(main())
    assert events[-1].type == "response.completed"
    assert [o.type for o in final.output] == [o.type for o in afinal.output] == ["message", "function_call"]
    parts = [TOOL_PARTS[0], dict(TOOL_PARTS[1])]
    spans = _llm(exporter)
    assert len(spans) == 4
    for span in spans:
        _contract(span, finish="tool_call", parts=parts, tin=1)
        assert json.loads(span.attributes[A.GEN_AI_TOOL_DEFINITIONS])[0]["name"] == "add"
    assert spans[2].attributes[A.GEN_AI_RESPONSE_ID] == final.id


def test_legacy_text_completions_with_token_ids(exporter, server, client):
    server.queue("one two three", "four five")
    resp = client.completions.create(
        model="v", prompt="count", logprobs=1, extra_body={"return_token_ids": True}
    )
    chunks = list(
        client.completions.create(
            model="v", prompt=[5, 6, 7], stream=True, extra_body={"return_token_ids": True}
        )
    )
    assert resp.choices[0].text == "one two three" and all(c.choices for c in chunks)
    plain, streamed = _llm(exporter)
    for span in (plain, streamed):
        assert span.name == "text_completion v"
        assert span.attributes[A.GEN_AI_OPERATION_NAME] == A.OP_TEXT_COMPLETION
        assert span.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    a = plain.attributes
    assert json.loads(a[A.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "count"}]}
    ]
    assert json.loads(a[A.LLM_PROMPT_TOKEN_IDS]) == token_ids_for("count")
    assert json.loads(a[A.LLM_RESPONSE_TOKEN_IDS]) == token_ids_for("one two three")
    assert json.loads(a[A.LLM_RESPONSE_LOGPROBS]) == [logprob_for(i) for i in range(3)]
    s = streamed.attributes
    assert json.loads(s[A.LLM_PROMPT_TOKEN_IDS]) == [5, 6, 7]  # a token-id prompt is the RL prompt
    assert json.loads(s[A.LLM_RESPONSE_TOKEN_IDS]) == token_ids_for("four five")
    assert (s[A.GEN_AI_USAGE_INPUT_TOKENS], s[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (3, 2)


class _SpyStream(httpx2.SyncByteStream):
    """A response body that notes which span is current each time the SDK reads from it."""

    def __init__(self, inner, seen):
        self.inner, self.seen = inner, seen

    def __iter__(self):
        for piece in self.inner:
            self.seen.append(trace.get_current_span().get_span_context().span_id)
            yield piece

    def close(self):
        self.inner.close()


class _SpyTransport(httpx2.HTTPTransport):
    def __init__(self, seen):
        super().__init__()
        self.seen = seen

    def handle_request(self, request):
        response = super().handle_request(request)
        response.stream = _SpyStream(response.stream, self.seen)
        return response


def test_stream_span_is_current_while_the_sdk_reads_the_stream(exporter, server):
    seen: list[int] = []
    client = openai.OpenAI(
        base_url=server.openai_url,
        api_key="test",
        max_retries=0,
        http_client=httpx2.Client(transport=_SpyTransport(seen)),
    )
    server.queue("one two three four")
    stream = client.chat.completions.create(model="m", messages=MSGS, stream=True)
    outside = trace.get_current_span().get_span_context().span_id
    for _ in stream:
        assert trace.get_current_span().get_span_context().span_id == outside  # the caller's code: not
    (span,) = _llm(exporter)
    assert seen and set(seen) == {span.context.span_id}  # the SDK's reads: inside the LLM span
