"""anthropic SDK against a local server speaking the Messages API: sync, async, streaming, tool_use."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import pytest
from opentelemetry import trace

from lightspan.instrumentation import rollout
from lightspan.schemas import attributes as A
from tests.support.llm_server import Reply, ToolCall

MSGS: list[Any] = [{"role": "user", "content": "weather in paris please"}]
TOOLS = [{"name": "weather", "description": "Get weather", "input_schema": {"type": "object"}}]
TOOL_OUT = [
    {"type": "text", "content": "let me check"},
    {"type": "tool_call", "id": "toolu_w1", "name": "weather", "arguments": {"city": "paris"}},
]


@pytest.fixture
def client(server, instrumented):
    return anthropic.Anthropic(base_url=server.url, api_key="test", max_retries=0)


def _chat(exporter):
    return [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]


def _reply():
    return Reply("let me check", tool_calls=[ToolCall("weather", {"city": "paris"}, id="call_w1")])


def _assert_tool_span(span, tin=4):
    a = span.attributes
    assert span.name == "chat claude-x" and a[A.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (tin, 3)
    out = json.loads(a[A.GEN_AI_OUTPUT_MESSAGES])
    assert out == [{"role": "assistant", "parts": TOOL_OUT, "finish_reason": "tool_use"}]
    assert a[A.GEN_AI_RESPONSE_ID].startswith("msg_")


def test_messages_create_with_tool_use(exporter, server, client):
    server.queue(_reply())
    with rollout("t-a") as r:
        msg = client.messages.create(
            model="claude-x", max_tokens=64, system="be terse", messages=MSGS, tools=TOOLS
        )
    assert msg.content[1].name == "weather" and msg.content[1].input == {"city": "paris"}
    (span,) = _chat(exporter)
    _assert_tool_span(span, tin=6)  # "be terse" + the 4-word prompt
    a = span.attributes
    assert a[A.GEN_AI_REQUEST_MAX_TOKENS] == 64 and a[A.ROLLOUT_ID] == r.rollout_id
    assert json.loads(a[A.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "be terse"}]
    assert json.loads(a[A.GEN_AI_TOOL_DEFINITIONS]) == [
        {
            "type": "function",
            "name": "weather",
            "description": "Get weather",
            "parameters": {"type": "object"},
        }
    ]
    assert json.loads(a[A.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "weather in paris please"}]}
    ]


def test_tool_result_blocks_become_tool_call_response_parts(exporter, server, client):
    server.queue("sunny")
    history = MSGS + [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "paris"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "22C"}]},
    ]
    client.messages.create(model="claude-x", max_tokens=16, messages=history)
    msgs = json.loads(_chat(exporter)[0].attributes[A.GEN_AI_INPUT_MESSAGES])
    assert msgs[1]["parts"] == [
        {"type": "tool_call", "id": "toolu_1", "name": "weather", "arguments": {"city": "paris"}}
    ]
    assert msgs[2]["parts"] == [{"type": "tool_call_response", "id": "toolu_1", "response": "22C"}]


def test_create_stream_true_accumulates_events(exporter, server, client):
    server.queue(_reply())
    events = list(client.messages.create(model="claude-x", max_tokens=64, messages=MSGS, stream=True))
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    (span,) = _chat(exporter)
    _assert_tool_span(span)
    assert span.attributes[A.LLM_STREAMING] is True


def test_messages_stream_helper_records_final_message(exporter, server, client):
    server.queue(_reply())
    with client.messages.stream(model="claude-x", max_tokens=64, messages=MSGS) as stream:
        text = "".join(stream.text_stream)
    assert text == "let me check"
    (span,) = _chat(exporter)
    _assert_tool_span(span)


def test_async_create_and_stream(exporter, server):
    server.queue(_reply(), _reply(), _reply())
    aclient = anthropic.AsyncAnthropic(base_url=server.url, api_key="test", max_retries=0)

    async def main():
        await aclient.messages.create(model="claude-x", max_tokens=8, messages=MSGS)
        stream = await aclient.messages.create(model="claude-x", max_tokens=8, messages=MSGS, stream=True)
        async for _ in stream:
            pass
        async with aclient.messages.stream(model="claude-x", max_tokens=8, messages=MSGS) as s:
            await s.get_final_message()

    asyncio.run(main())
    spans = _chat(exporter)
    assert len(spans) == 3
    for span in spans:
        _assert_tool_span(span)


def test_api_error_marks_span_and_reraises(exporter, server, client):
    server.queue(Reply(error=(400, "max_tokens: field required")))
    with pytest.raises(anthropic.BadRequestError, match="max_tokens: field required"):
        client.messages.create(model="claude-x", max_tokens=1, messages=MSGS)
    (span,) = _chat(exporter)
    assert span.status.status_code is trace.StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == "BadRequestError"


def test_with_raw_response_sync_and_async_record_the_contract(exporter, server, client):
    server.queue(_reply(), _reply(), _reply())
    raw = client.messages.with_raw_response.create(model="claude-x", max_tokens=64, messages=MSGS)
    assert raw.headers["content-type"] == "application/json"
    aclient = anthropic.AsyncAnthropic(base_url=server.url, api_key="test", max_retries=0)

    async def main():
        araw = await aclient.messages.with_raw_response.create(model="claude-x", max_tokens=8, messages=MSGS)
        sraw = await aclient.messages.with_raw_response.create(
            model="claude-x", max_tokens=8, messages=MSGS, stream=True
        )
        events = [e async for e in await sraw.parse()]
        return await araw.parse(), events

    amsg, events = asyncio.run(main())
    assert raw.parse().content[1].name == "weather" and amsg.content[1].model_dump()["input"] == {
        "city": "paris"
    }
    assert events[-1].type == "message_stop"
    spans = _chat(exporter)
    assert len(spans) == 3
    for span in spans:
        _assert_tool_span(span)
    assert spans[0].attributes[A.GEN_AI_RESPONSE_ID] == raw.parse().id


def test_sdk_native_spans_are_off_by_default_under_lightspan(exporter, server, client):
    import os

    assert os.environ.get("ANTHROPIC_OPEN_TELEMETRY") == "false"  # the SDK's documented switch
    server.queue(_reply(), _reply())
    client.messages.create(model="claude-x", max_tokens=8, messages=MSGS)
    with client.messages.stream(model="claude-x", max_tokens=8, messages=MSGS) as s:
        s.until_done()
    names = [s.name for s in exporter.get_finished_spans()]
    assert names == ["chat claude-x", "chat claude-x"]  # no `anthropic.messages.create` beside them


def test_native_spans_of_an_opted_in_client_nest_under_lightspans(exporter, server):
    """A client that turns the SDK's spans on itself: each is a child of lightspan's span of that call,
    for create and for the stream helper (whose span is current while the SDK sends)."""
    opted = anthropic.Anthropic(
        base_url=server.url, api_key="test", max_retries=0, open_telemetry={"traces": True}
    )
    server.queue(_reply(), _reply())
    opted.messages.create(model="claude-x", max_tokens=8, messages=MSGS)
    with opted.messages.stream(model="claude-x", max_tokens=8, messages=MSGS) as s:
        s.until_done()
    spans = exporter.get_finished_spans()
    ours = [s for s in spans if s.name == "chat claude-x"]
    native = [s for s in spans if s.name == "anthropic.messages.create"]
    assert len(ours) == len(native) == 2
    for mine, theirs in zip(ours, native, strict=True):
        assert theirs.parent is not None and theirs.parent.span_id == mine.context.span_id
        _assert_tool_span(mine)


def test_stream_helper_span_starts_on_enter_and_error_in_block_marks_it(exporter, server, client):
    manager = client.messages.stream(model="claude-x", max_tokens=8, messages=MSGS)
    del manager  # never entered: no request, no span
    assert _chat(exporter) == []
    server.queue(_reply())
    with pytest.raises(KeyError):
        with client.messages.stream(model="claude-x", max_tokens=8, messages=MSGS) as s:
            s.until_done()
            raise KeyError("caller bug")
    (span,) = _chat(exporter)
    assert span.status.status_code is trace.StatusCode.ERROR
    assert span.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)
