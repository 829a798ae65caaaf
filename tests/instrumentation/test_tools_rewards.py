"""@tool spans, emit_reward spans, content settings (capture flag, size limit, redaction)."""

from __future__ import annotations

import asyncio
import inspect
import json

import pytest
from opentelemetry import trace

from lightspan.instrumentation import emit_reward, rollout, tool, tool_call_id
from lightspan.instrumentation._content import bounded_json
from lightspan.instrumentation._settings import update_settings
from lightspan.schemas import attributes as A


@tool
def add(a: int, b: int = 2) -> int:
    """Add two numbers.

    Longer text that is not part of the description.
    """
    return a + b


@tool(name="lookup", description="Find a fact")
async def search(query: str) -> dict:
    await asyncio.sleep(0)
    return {"query": query, "hits": 1}


@tool
def explode(x):
    raise RuntimeError(f"bad {x}")


def test_sync_tool_span_has_arguments_result_and_keeps_metadata(exporter):
    with rollout("t") as r:
        assert add(1, b=5) == 6
    span = next(s for s in exporter.get_finished_spans() if s.name == "execute_tool add")
    a = span.attributes
    assert a[A.GEN_AI_OPERATION_NAME] == A.OP_EXECUTE_TOOL
    assert a[A.GEN_AI_TOOL_NAME] == "add"
    assert json.loads(a[A.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"a": 1, "b": 5}
    assert a[A.GEN_AI_TOOL_CALL_RESULT] == "6"
    assert a[A.GEN_AI_TOOL_CALL_ID].startswith("call_")
    assert a[A.ROLLOUT_ID] == r.rollout_id
    assert span.parent.span_id == r.span.get_span_context().span_id
    assert add.__name__ == "add" and "Add two numbers" in add.__doc__
    assert list(inspect.signature(add).parameters) == ["a", "b"]
    assert inspect.signature(add).parameters["b"].default == 2
    assert add.tool_name == "add" and add.tool_description == "Add two numbers."


def test_async_tool_with_explicit_name_and_call_id(exporter):
    with tool_call_id("call_from_llm"):
        assert asyncio.run(search("paris")) == {"query": "paris", "hits": 1}
    (span,) = exporter.get_finished_spans()
    assert span.name == "execute_tool lookup"
    assert span.attributes[A.GEN_AI_TOOL_CALL_ID] == "call_from_llm"
    assert span.attributes[A.GEN_AI_TOOL_DESCRIPTION] == "Find a fact"
    assert json.loads(span.attributes[A.GEN_AI_TOOL_CALL_RESULT]) == {"query": "paris", "hits": 1}
    assert search.tool_name == "lookup" and inspect.iscoroutinefunction(search)


def test_tool_error_marks_span_and_reraises_same_exception(exporter):
    with pytest.raises(RuntimeError, match="bad 3") as info:
        explode(3)
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is trace.StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == "RuntimeError"
    assert A.GEN_AI_TOOL_CALL_RESULT not in span.attributes
    assert info.value.args == ("bad 3",)


def test_methods_record_arguments_without_self(exporter):
    class Calc:
        @tool
        def mul(self, x, y):
            return x * y

    assert Calc().mul(3, 4) == 12
    (span,) = exporter.get_finished_spans()
    assert json.loads(span.attributes[A.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"x": 3, "y": 4}


def test_tool_rejects_generators_and_bad_names():
    with pytest.raises(TypeError, match="generator"):

        @tool
        def gen():
            yield 1

    with pytest.raises(ValueError, match="tool name"):
        tool(name="")


def test_capture_content_off_records_metadata_only(exporter, monkeypatch):
    monkeypatch.setenv("LIGHTSPAN_CAPTURE_CONTENT", "false")
    update_settings()
    add(1)
    (span,) = exporter.get_finished_spans()
    assert A.GEN_AI_TOOL_CALL_ARGUMENTS not in span.attributes
    assert A.GEN_AI_TOOL_CALL_RESULT not in span.attributes
    assert span.attributes[A.GEN_AI_TOOL_NAME] == "add"


def test_redaction_hook_edits_and_drops(exporter):
    def redact(key, value):
        if key == A.GEN_AI_TOOL_CALL_RESULT:
            return None
        return {k: ("***" if k == "query" else v) for k, v in value.items()}

    update_settings(redact=redact)
    asyncio.run(search("secret"))
    (span,) = exporter.get_finished_spans()
    assert json.loads(span.attributes[A.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"query": "***"}
    assert A.GEN_AI_TOOL_CALL_RESULT not in span.attributes


def test_broken_redaction_hook_drops_attribute_but_not_the_call(exporter):
    update_settings(redact=lambda k, v: 1 / 0)
    assert add(2, 2) == 4
    (span,) = exporter.get_finished_spans()
    assert A.GEN_AI_TOOL_CALL_ARGUMENTS not in span.attributes


def test_size_limit_keeps_json_valid(exporter):
    update_settings(max_attribute_bytes=200)
    add("x" * 5000, "y")
    (span,) = exporter.get_finished_spans()
    text = span.attributes[A.GEN_AI_TOOL_CALL_ARGUMENTS]
    assert len(text.encode()) <= 200
    parsed = json.loads(text)
    assert parsed["b"] == "y" and parsed["a"].startswith("xxx") and parsed["a"].endswith("[truncated]")
    assert span.attributes[A.TRUNCATED] is True
    assert len(span.attributes[A.GEN_AI_TOOL_CALL_RESULT].encode()) <= 200


@pytest.mark.parametrize("limit", [40, 64, 100, 1000])
def test_bounded_json_many_items_and_multibyte(limit):
    value = [{"role": "user", "parts": [{"type": "text", "content": "é" * 300}]} for _ in range(20)]
    text, truncated = bounded_json(value, limit)
    assert truncated and len(text.encode()) <= limit
    json.loads(text)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="max_attribute_bytes must be a positive integer"):
        update_settings(max_attribute_bytes=0)
    with pytest.raises(TypeError, match="redact must be a callable"):
        update_settings(redact="nope")


def test_reward_span_in_rollout(exporter):
    with rollout("t", attempt=1) as r:
        emit_reward(0.5)
        emit_reward(1, name="format", step=2, span_id="00F067AA0BA902B7")
    rewards = [s for s in exporter.get_finished_spans() if s.name == A.SPAN_REWARD]
    assert [s.attributes[A.REWARD_VALUE] for s in rewards] == [0.5, 1.0]
    assert [s.attributes[A.REWARD_NAME] for s in rewards] == ["primary", "format"]
    assert rewards[1].attributes[A.REWARD_STEP] == 2
    assert rewards[1].attributes[A.REWARD_SPAN_ID] == "00f067aa0ba902b7"
    assert {s.attributes[A.ROLLOUT_ID] for s in rewards} == {r.rollout_id}
    assert all(s.attributes[A.GEN_AI_OPERATION_NAME] == A.OP_REWARD for s in rewards)
    assert all(s.parent.span_id == r.span.get_span_context().span_id for s in rewards)


@pytest.mark.parametrize(
    "args, kwargs, exc, message",
    [
        (("1.0",), {}, TypeError, "reward value must be a number"),
        ((True,), {}, TypeError, "reward value must be a number"),
        ((float("nan"),), {}, ValueError, "must be finite"),
        ((1.0,), {"step": -1}, ValueError, "reward step"),
        ((1.0,), {"name": ""}, ValueError, "reward name"),
        ((1.0,), {"span_id": "xyz"}, ValueError, "span_id must be 16 hex"),
    ],
)
def test_bad_rewards_are_rejected_with_a_clear_message(exporter, args, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        emit_reward(*args, **kwargs)
    assert exporter.get_finished_spans() == ()


def test_reward_outside_rollout_warns_but_records(exporter, caplog):
    emit_reward(0.0)
    assert "outside a rollout" in caplog.text
    (span,) = exporter.get_finished_spans()
    assert A.ROLLOUT_ID not in span.attributes
