"""A framework over an SDK client: the span count equals the logical call count, each with the contract.

litellm over the openai SDK (suppression keeps litellm's span), and LangChain's ``ChatOpenAI`` over the
openai SDK (it calls ``with_raw_response.create`` to read headers, so this is that path for real).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from lightspan.instrumentation import rollout
from lightspan.schemas import attributes as A
from tests.support.llm_server import Reply, ToolCall


def _llm(exporter):
    return [
        s for s in exporter.get_finished_spans() if s.attributes.get(A.GEN_AI_OPERATION_NAME) == A.OP_CHAT
    ]


def _root(handle) -> int:
    assert handle.span is not None
    return handle.span.get_span_context().span_id


def _answered(span, text):
    a = span.attributes
    assert a[A.GEN_AI_RESPONSE_ID] and a[A.GEN_AI_RESPONSE_MODEL] and a[A.GEN_AI_USAGE_OUTPUT_TOKENS] >= 1
    assert json.loads(a[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == text


def test_litellm_over_openai_one_span_per_logical_call(exporter, server, instrumented):
    litellm = pytest.importorskip("litellm")
    kw = {"model": "openai/tiny", "api_base": server.openai_url, "api_key": "test", "num_retries": 0}
    server.queue("one", "two", "three")
    msgs = [{"role": "user", "content": "hi"}]
    with rollout("t-fw") as r:
        litellm.completion(messages=msgs, **kw)
        "".join(
            c.choices[0].delta.content or "" for c in litellm.completion(messages=msgs, stream=True, **kw)
        )
        asyncio.run(litellm.acompletion(messages=msgs, **kw))
    assert len(server.requests) == 3
    spans = _llm(exporter)
    assert len(spans) == 3 and {s.attributes[A.GEN_AI_PROVIDER_NAME] for s in spans} == {"litellm"}
    assert all(s.parent.span_id == _root(r) for s in spans)
    for span, text in zip(spans, ("one", "two", "three"), strict=True):
        _answered(span, text)


def test_langchain_chat_openai_one_span_per_logical_call(exporter, server, instrumented):
    pytest.importorskip("langchain_openai")
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    llm = ChatOpenAI(model="tiny", base_url=server.openai_url, api_key=SecretStr("test"), max_retries=0)
    server.queue(
        Reply("sum", tool_calls=[ToolCall("add", {"a": 1, "b": 2}, id="call_lc")]),
        "streamed reply",
        "async one",
    )
    add = {
        "type": "function",
        "function": {"name": "add", "description": "Add", "parameters": {"type": "object"}},
    }
    with rollout("t-lc") as r:
        first = llm.bind_tools([add]).invoke("add 1 and 2")
        streamed = "".join(str(c.content) for c in llm.stream("say something"))
        third = asyncio.run(llm.ainvoke("again"))
    assert first.tool_calls[0]["id"] == "call_lc" and streamed == "streamed reply"
    assert third.content == "async one"
    assert len(server.requests) == 3
    spans = _llm(exporter)
    assert len(spans) == 3  # three logical calls, three spans: no duplicate from the raw-response path
    assert all(s.parent.span_id == _root(r) for s in spans)
    a = spans[0].attributes
    assert a[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert json.loads(a[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][1] == {
        "type": "tool_call",
        "id": "call_lc",
        "name": "add",
        "arguments": {"a": 1, "b": 2},
    }
    _answered(spans[1], "streamed reply")
    _answered(spans[2], "async one")
