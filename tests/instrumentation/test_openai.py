"""openai SDK against a local server speaking its API: chat completions and Responses, sync/async, streams."""

from __future__ import annotations

import asyncio
import gc
import json

import openai
import pytest
import wrapt
from opentelemetry import trace

from lightspan.instrumentation import rollout
from lightspan.instrumentation.openai import OpenAIInstrumentor
from lightspan.schemas import attributes as A
from tests.support.llm_server import Reply, ToolCall, logprob_for, token_ids_for

MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "what is two plus two"}]


@pytest.fixture
def client(server, instrumented):
    return openai.OpenAI(base_url=server.openai_url, api_key="test", max_retries=0)


@pytest.fixture
def aclient(server, instrumented):
    return openai.AsyncOpenAI(base_url=server.openai_url, api_key="test", max_retries=0)


def _llm_spans(exporter):
    return [
        s for s in exporter.get_finished_spans() if s.attributes.get(A.GEN_AI_OPERATION_NAME) == A.OP_CHAT
    ]


def test_chat_span_carries_contract_attributes(exporter, server, client):
    server.queue(Reply("the answer is four", tool_calls=[ToolCall("add", {"a": 2, "b": 2}, id="call_1")]))
    tools = [
        {
            "type": "function",
            "function": {"name": "add", "description": "Add", "parameters": {"type": "object"}},
        }
    ]
    with rollout("task-7", attempt=1) as r:
        resp = client.chat.completions.create(
            model="tiny", messages=MSGS, tools=tools, temperature=0.5, max_tokens=9
        )
    assert resp.choices[0].message.content == "the answer is four"
    (span,) = _llm_spans(exporter)
    a = span.attributes
    assert span.name == "chat tiny" and span.kind is trace.SpanKind.CLIENT
    assert a[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert (a[A.GEN_AI_REQUEST_MODEL], a[A.GEN_AI_RESPONSE_MODEL], a[A.GEN_AI_RESPONSE_ID]) == (
        "tiny",
        "tiny",
        resp.id,
    )
    assert a[A.GEN_AI_REQUEST_TEMPERATURE] == 0.5 and a[A.GEN_AI_REQUEST_MAX_TOKENS] == 9
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (7, 4)
    assert json.loads(a[A.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "what is two plus two"}]},
    ]
    assert json.loads(a[A.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "finish_reason": "tool_calls",
            "parts": [
                {"type": "text", "content": "the answer is four"},
                {"type": "tool_call", "id": "call_1", "name": "add", "arguments": {"a": 2, "b": 2}},
            ],
        }
    ]
    assert json.loads(a[A.GEN_AI_TOOL_DEFINITIONS]) == [
        {"type": "function", "name": "add", "description": "Add", "parameters": {"type": "object"}}
    ]
    assert a[A.ROLLOUT_ID] == r.rollout_id and a[A.TASK_ID] == "task-7" and a[A.ATTEMPT] == 1
    assert span.parent.span_id == r.span.get_span_context().span_id
    assert A.LLM_PROMPT_TOKEN_IDS not in a  # not asked for: nothing invented
    assert "return_token_ids" not in server.requests[-1].json  # never added behind the caller's back


def test_vllm_token_ids_and_logprobs_recorded(exporter, server, client):
    server.queue("four it is")
    client.chat.completions.create(
        model="m", messages=MSGS, logprobs=True, extra_body={"return_token_ids": True}
    )
    (span,) = _llm_spans(exporter)
    a = span.attributes
    assert json.loads(a[A.LLM_PROMPT_TOKEN_IDS]) == token_ids_for("be brief what is two plus two")
    assert json.loads(a[A.LLM_RESPONSE_TOKEN_IDS]) == token_ids_for("four it is")
    assert json.loads(a[A.LLM_RESPONSE_LOGPROBS]) == [logprob_for(i) for i in range(3)]


def test_stream_usage_requested_but_hidden_and_span_complete(exporter, server, client):
    server.queue(Reply("one two three", tool_calls=[ToolCall("f", {"x": "y"}, id="call_9")]))
    stream = client.chat.completions.create(
        model="m", messages=MSGS, stream=True, logprobs=True, extra_body={"return_token_ids": True}
    )
    chunks = list(stream)
    assert server.requests[-1].json["stream_options"] == {"include_usage": True}
    assert all(c.choices for c in chunks)  # the usage-only chunk was not shown
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "one two three"
    (span,) = _llm_spans(exporter)
    a = span.attributes
    assert a[A.LLM_STREAMING] is True
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (7, 3)
    assert json.loads(a[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"] == [
        {"type": "text", "content": "one two three"},
        {"type": "tool_call", "id": "call_9", "name": "f", "arguments": {"x": "y"}},
    ]
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert json.loads(a[A.LLM_RESPONSE_TOKEN_IDS]) == token_ids_for("one two three")
    assert json.loads(a[A.LLM_PROMPT_TOKEN_IDS]) == token_ids_for("be brief what is two plus two")
    assert json.loads(a[A.LLM_RESPONSE_LOGPROBS]) == [logprob_for(i) for i in range(3)]


def test_stream_caller_asking_for_usage_still_gets_usage_chunk(exporter, server, client):
    server.queue("a b")
    chunks = list(
        client.chat.completions.create(
            model="m", messages=MSGS, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 2
    assert _llm_spans(exporter)[0].attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 2


def test_stream_broken_out_of_ends_span_when_collected(exporter, server, client):
    server.queue("a b c d e")
    stream = client.chat.completions.create(model="m", messages=MSGS, stream=True)
    for _chunk in stream:
        break
    assert _llm_spans(exporter) == []  # still open: the stream is alive
    del stream, _chunk
    gc.collect()
    (span,) = _llm_spans(exporter)
    assert span.end_time is not None and span.status.is_ok


def test_stream_closed_by_with_block_ends_span(exporter, server, client):
    server.queue("a b c")
    with client.chat.completions.create(model="m", messages=MSGS, stream=True) as stream:
        next(iter(stream))
    assert len(_llm_spans(exporter)) == 1
    server.queue("x y")
    stream = client.chat.completions.create(model="m", messages=MSGS, stream=True)
    stream.close()
    assert len(_llm_spans(exporter)) == 2


def test_async_chat_and_async_stream(exporter, server, aclient):
    server.queue("async reply", "streamed async reply")

    async def main():
        async with rollout("t-async") as r:
            resp = await aclient.chat.completions.create(model="m", messages=MSGS)
            stream = await aclient.chat.completions.create(model="m", messages=MSGS, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream])
        return r, resp.choices[0].message.content, text

    r, plain, streamed = asyncio.run(main())
    assert (plain, streamed) == ("async reply", "streamed async reply")
    spans = _llm_spans(exporter)
    assert len(spans) == 2 and {s.attributes[A.ROLLOUT_ID] for s in spans} == {r.rollout_id}
    outputs = [json.loads(s.attributes[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] for s in spans]
    assert outputs == ["async reply", "streamed async reply"]
    assert spans[1].attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 3


def test_api_error_marks_span_and_reraises_unchanged(exporter, server, client):
    server.queue(Reply(error=(400, "model does not exist")))
    with pytest.raises(openai.BadRequestError, match="model does not exist") as info:
        client.chat.completions.create(model="nope", messages=MSGS)
    assert info.value.status_code == 400
    (span,) = _llm_spans(exporter)
    assert span.status.status_code is trace.StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == "BadRequestError"


def test_responses_api_sync_stream_and_async(exporter, server, client, aclient):
    server.queue(
        Reply("hi there", tool_calls=[ToolCall("lookup", {"q": "x"}, id="call_r")]), "streamed", "async"
    )
    tools = [{"type": "function", "name": "lookup", "description": "Find", "parameters": {"type": "object"}}]
    resp = client.responses.create(model="r1", input="hello", instructions="be nice", tools=tools)
    events = list(client.responses.create(model="r1", input=[{"role": "user", "content": "yo"}], stream=True))
    asyncio.run(aclient.responses.create(model="r1", input="again"))
    assert resp.output_text == "hi there" and events[-1].type == "response.completed"
    first, streamed, async_span = _llm_spans(exporter)
    a = first.attributes
    assert first.name == "chat r1" and a[A.GEN_AI_RESPONSE_ID] == resp.id
    assert json.loads(a[A.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "be nice"}]
    assert json.loads(a[A.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hello"}]}
    ]
    assert json.loads(a[A.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "finish_reason": "tool_call",
            "parts": [
                {"type": "text", "content": "hi there"},
                {"type": "tool_call", "id": "call_r", "name": "lookup", "arguments": {"q": "x"}},
            ],
        }
    ]
    assert json.loads(a[A.GEN_AI_TOOL_DEFINITIONS])[0]["name"] == "lookup"
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 2
    assert json.loads(streamed.attributes[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"] == [
        {"type": "text", "content": "streamed"}
    ]
    assert streamed.attributes[A.GEN_AI_RESPONSE_ID] == events[-1].response.id
    assert async_span.attributes[A.GEN_AI_USAGE_INPUT_TOKENS] == 1


def test_broken_telemetry_never_breaks_the_call(exporter, server, client, monkeypatch):
    from lightspan.instrumentation.openai import patch

    def boom(*a, **k):
        raise RuntimeError("telemetry bug")

    monkeypatch.setattr(patch, "set_token_data", boom)  # response side broken
    server.queue("still works")
    assert (
        client.chat.completions.create(model="m", messages=MSGS).choices[0].message.content == "still works"
    )
    assert _llm_spans(exporter)[0].end_time is not None
    monkeypatch.setattr(
        patch, "openai_input_messages", boom
    )  # request side broken: no span, call goes through
    server.queue("again")
    assert client.chat.completions.create(model="m", messages=MSGS).choices[0].message.content == "again"
    assert len(_llm_spans(exporter)) == 1


def test_uninstrument_and_no_double_patching(exporter, server, client):
    def patched() -> bool:
        # wrapt.FunctionWrapper, not wrapt.ObjectProxy: in wrapt 2 the two are separate subclasses of one base.
        return isinstance(
            openai.resources.chat.completions.Completions.__dict__["create"], wrapt.FunctionWrapper
        )

    inst = OpenAIInstrumentor()
    inst.instrument()  # already instrumented: must not wrap twice
    assert patched()
    assert not isinstance(
        openai.resources.chat.completions.Completions.__dict__["create"].__wrapped__, wrapt.FunctionWrapper
    ), "create was wrapped twice"
    server.queue("one")
    client.chat.completions.create(model="m", messages=MSGS)
    assert len(_llm_spans(exporter)) == 1
    inst.uninstrument()
    try:
        server.queue("two")
        client.chat.completions.create(model="m", messages=MSGS)
        assert len(_llm_spans(exporter)) == 1
        assert not patched()
    finally:
        inst.instrument()
    server.queue("three")
    client.chat.completions.create(model="m", messages=MSGS)
    assert len(_llm_spans(exporter)) == 2


def test_capture_content_off_keeps_metadata_drops_text_and_token_ids(exporter, server, client, monkeypatch):
    from lightspan.instrumentation._settings import update_settings

    update_settings(capture_content=False)
    server.queue("secret answer")
    client.chat.completions.create(model="m", messages=MSGS, extra_body={"return_token_ids": True})
    a = _llm_spans(exporter)[0].attributes
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 2
    for key in (
        A.GEN_AI_INPUT_MESSAGES,
        A.GEN_AI_OUTPUT_MESSAGES,
        A.LLM_PROMPT_TOKEN_IDS,
        A.LLM_RESPONSE_TOKEN_IDS,
    ):
        assert key not in a
