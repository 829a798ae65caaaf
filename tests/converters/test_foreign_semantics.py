"""What foreign instrumentations send: duplicate and distinct calls, missing content, evaluations (span
events and log records), content as log records, OpenInference / old OpenLLMetry tool calls, and the
precedence of reward sources."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from lightspan.converters import ConvertConfig, convert, iter_trajectories
from lightspan.schemas import attributes as A
from lightspan.schemas import ddl
from lightspan.schemas.conventions import mapped
from tests.converters.builder import BASE, Rollout


def _eval(value: float, name: str = "primary") -> list[tuple[str, dict]]:
    return [
        (A.GEN_AI_EVALUATION_RESULT, {A.GEN_AI_EVALUATION_NAME: name, A.GEN_AI_EVALUATION_SCORE_VALUE: value})
    ]


def _one(store, **kw):
    (traj,) = list(iter_trajectories(ConvertConfig(dsn=store.dsn, **kw)))
    return traj


def test_a_reused_response_id_does_not_merge_two_different_calls(store):
    """A local endpoint answering 'chatcmpl-1' every time: two sequential calls stay two."""
    r = Rollout("reuse")
    root = r.agent("a")
    r.chat("first question", "one", parent=root, response_id="chatcmpl-1")
    r.chat("second question", "two", parent=root, response_id="chatcmpl-1")
    r.reward(1.0, parent=root)
    store.insert(r.rows)
    assert [c.response_text for c in _one(store).calls] == ["one", "two"]


def test_one_request_recorded_by_two_instrumentations_is_one_call(store):
    """OpenInference's LLM span around lightspan's own span of the same request: one row, with the token ids."""
    r = Rollout("twice")
    root = r.agent("a")
    outer = r.chat("q", "answer", parent=root, dur_ms=50, extra={A.GEN_AI_USAGE_INPUT_TOKENS: "0"})
    r.chat("q", "answer", parent=outer, dur_ms=10, prompt_ids=[1, 2], response_ids=[3])
    r.chat("q", "answer again", parent=root)  # the same prompt later: a new call
    r.reward(1.0, parent=root)
    store.insert(r.rows)
    calls = _one(store).calls
    assert [c.response_text for c in calls] == ["answer", "answer again"]
    assert calls[0].prompt_token_ids == [1, 2] and calls[0].input_tokens == 7


def test_calls_without_content_are_skipped_with_the_way_to_capture_it(store, tmp_path):
    r = Rollout("hidden")
    root = r.agent("a")
    r.chat("q", "shown", parent=root)
    r.chat("q", "x", parent=root, extra={A.GEN_AI_OUTPUT_MESSAGES: "[]"})
    r.reward(1.0, parent=root)
    r.rows[-2]["ScopeName"] = "opentelemetry.util.genai.handler"
    for row in r.rows:
        row.setdefault("ScopeName", "")
    store.insert(r.rows)
    report = convert(ConvertConfig(dsn=store.dsn, output_dir=str(tmp_path)))
    assert report.rollouts_converted == 1 and report.llm_calls == 1
    assert report.calls_skipped == {"no_content": 1}
    assert (
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only" in report.call_examples["no_content"]
    )
    assert "llm calls skipped no_content: 1" in report.summary()


def test_evaluation_events_are_step_and_rollout_rewards(store):
    r = Rollout("evals")
    root = r.agent("a", events=_eval(0.25))
    r.chat("q1", "a1", parent=root, events=_eval(0.5, "helpful"))
    r.chat("q2", "a2", parent=root)
    store.insert(r.rows)
    traj = _one(store, credit="per_step", reward_name="helpful")
    step = [(w.name, w.value, w.step) for w in traj.rewards if w.step is not None]
    assert step == [("helpful", 0.5, 0)]
    assert _one(store).final_reward == 0.25


def test_emit_rewards_two_forms_count_once_and_sources_have_a_precedence(store):
    r = Rollout("twins")
    root = r.agent("a", events=_eval(1.0))  # emit_reward's evaluation event on the rollout span ...
    r.chat("q", "a", parent=root)
    r.reward(1.0, parent=root)  # ... beside its reward span
    store.insert(r.rows)
    traj = _one(store)
    assert [w.source for w in traj.rewards] == ["span"] and traj.final_reward == 1.0
    # Disagreeing sources: a posted reward beats a reward span, which beats an evaluation, whatever the time.
    r2 = Rollout("disagree")
    root2 = r2.agent("a", events=_eval(0.1), start=BASE + timedelta(hours=1))
    r2.chat("q", "a", parent=root2)
    r2.reward(0.2, parent=root2, start=BASE)
    store.insert(r2.rows)
    assert _one(store, selection=_sel("disagree")).final_reward == 0.2
    store.post_reward("disagree", 0.3, when=BASE)
    assert _one(store, selection=_sel("disagree")).final_reward == 0.3


def _sel(rid: str):
    from lightspan.converters import Selection

    return Selection(rollout_ids=[rid])


def _log(store, trace: str, span: str, event: str, attrs: dict[str, str], body: str = "") -> None:
    store.client.insert(
        f"{store.database}.{ddl.LOGS_TABLE}",
        [[BASE, trace, span, "foreign", event, attrs, body]],
        column_names=["Timestamp", "TraceId", "SpanId", "ServiceName", "EventName", "LogAttributes", "Body"],
    )


def test_content_and_evaluations_sent_as_log_records_join_their_spans(store):
    """openai-v2 in event mode: the span has no content; the details event (a log record) has it."""
    r = Rollout("logs")
    root = r.agent("a")
    call = r.chat("", "", parent=root, extra={A.GEN_AI_INPUT_MESSAGES: "", A.GEN_AI_OUTPUT_MESSAGES: ""})
    old = r.chat("", "", parent=root, extra={A.GEN_AI_INPUT_MESSAGES: "", A.GEN_AI_OUTPUT_MESSAGES: ""})
    store.insert(r.rows)
    msgs = [{"role": "user", "parts": [{"type": "text", "content": "What is 2+3?"}]}]
    out = [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "c1", "name": "add", "arguments": {"a": 2}}],
        }
    ]
    details = {A.GEN_AI_INPUT_MESSAGES: json.dumps(msgs), A.GEN_AI_OUTPUT_MESSAGES: json.dumps(out)}
    _log(store, r.trace_id, call, "gen_ai.client.inference.operation.details", details)
    _log(store, r.trace_id, call, "gen_ai.client.inference.operation.details", details)  # a replay: once
    _log(store, r.trace_id, old, "", {"event.name": "gen_ai.user.message"}, json.dumps({"content": "hi"}))
    _log(store, r.trace_id, old, "gen_ai.choice", {}, json.dumps({"message": {"content": "hello"}}))
    _log(store, r.trace_id, root, A.GEN_AI_EVALUATION_RESULT, {A.GEN_AI_EVALUATION_SCORE_VALUE: "0.5"})
    traj = _one(store)
    assert [c.prompt for c in traj.calls] == [
        [{"role": "user", "content": "What is 2+3?"}],
        [{"role": "user", "content": "hi"}],
    ]
    assert json.loads(traj.calls[0].completion[0]["content"])["tool_call"]["name"] == "add"
    assert traj.calls[1].completion == [{"role": "assistant", "content": "hello"}]
    assert traj.final_reward == 0.5


def test_openinference_tool_calls_and_tool_spans_map_to_the_contract():
    llm = mapped(
        {
            A.OPENINFERENCE_SPAN_KIND: "LLM",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "2+3?",
            "llm.input_messages.1.message.role": "tool",
            "llm.input_messages.1.message.content": "5",
            "llm.input_messages.1.message.tool_call_id": "call_1",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "add",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"a": 2, "b": 3}',
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
        },
        "ChatCompletion",
    )
    assert json.loads(llm[A.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "name": "add", "id": "call_1", "arguments": {"a": 2, "b": 3}}],
        }
    ]
    assert json.loads(llm[A.GEN_AI_INPUT_MESSAGES])[1]["parts"] == [
        {"type": "tool_call_response", "id": "call_1", "response": "5"}
    ]
    result = {
        "type": "tool",
        "data": {"content": "5", "type": "tool", "tool_call_id": "call_1", "name": "add"},
    }
    tool = mapped(
        {
            A.OPENINFERENCE_SPAN_KIND: "TOOL",
            A.OI_TOOL_NAME: "add",
            A.OI_INPUT_VALUE: '{"a": 2, "b": 3}',
            A.OI_OUTPUT_VALUE: json.dumps(result),
        },
        "add",
    )
    assert (tool[A.GEN_AI_TOOL_CALL_ARGUMENTS], tool[A.GEN_AI_TOOL_CALL_RESULT]) == ('{"a": 2, "b": 3}', "5")
    assert tool[A.GEN_AI_TOOL_CALL_ID] == "call_1"


def test_old_openllmetry_indexed_prompts_with_tool_calls():
    a = mapped(
        {
            A.OPENLLMETRY_REQUEST_TYPE: "chat",
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "2+3?",
            "gen_ai.prompt.1.role": "assistant",
            "gen_ai.prompt.1.tool_calls.0.name": "add",
            "gen_ai.prompt.1.tool_calls.0.arguments": '{"a": 2}',
            "gen_ai.prompt.2.role": "tool",
            "gen_ai.prompt.2.content": "5",
            "gen_ai.prompt.2.tool_call_id": "c1",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.finish_reason": "tool_calls",
            "gen_ai.completion.0.tool_calls.0.id": "c2",
            "gen_ai.completion.0.tool_calls.0.name": "add",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"a": 5}',
        },
        "openai.chat",
    )
    prompt = json.loads(a[A.GEN_AI_INPUT_MESSAGES])
    assert prompt[1]["parts"] == [{"type": "tool_call", "name": "add", "arguments": {"a": 2}}]
    assert prompt[2]["parts"] == [{"type": "tool_call_response", "id": "c1", "response": "5"}]
    out = json.loads(a[A.GEN_AI_OUTPUT_MESSAGES])
    assert out[0]["parts"] == [{"type": "tool_call", "name": "add", "id": "c2", "arguments": {"a": 5}}]
    assert a[A.GEN_AI_OPERATION_NAME] == A.OP_CHAT


@pytest.mark.parametrize(
    ("doc", "stored", "kind"),
    [
        ({"rollout_id": "r", "value": 1}, "r", "rollout"),
        ({"session_id": "s", "value": 1}, "s", "session"),
        ({"trace_id": "AB" * 16, "value": 1}, "ab" * 16, "trace"),
    ],
)
def test_the_rewards_api_takes_any_id(doc, stored, kind):
    from lightspan.collector.rewards import TARGET_ATTRIBUTE, parse_rewards

    (row,) = parse_rewards(json.dumps(doc).encode())
    assert (row["RolloutId"], row["Attributes"][TARGET_ATTRIBUTE]) == (stored, kind)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"value": 1}, "rollout_id is required"),
        ({"rollout_id": "r", "trace_id": "ab" * 16, "value": 1}, "names its rollout twice"),
        ({"trace_id": "xyz", "value": 1}, "trace_id must be 32 hex digits"),
    ],
)
def test_the_rewards_api_refuses_ambiguous_or_bad_ids(doc, message):
    from lightspan.collector.rewards import InvalidReward, parse_rewards

    with pytest.raises(InvalidReward, match=message):
        parse_rewards(json.dumps(doc).encode())
