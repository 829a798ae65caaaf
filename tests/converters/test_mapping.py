"""Message, token-id and foreign-convention parsing (pure functions, no store)."""

from __future__ import annotations

import json

import pytest

from lightspan.converters.mapping import (
    MappingError,
    agl_rewards,
    foreign_llm,
    foreign_tool,
    parse_json_list,
    parse_messages,
    with_system,
)
from lightspan.schemas import attributes as A


def test_semconv_parts_and_plain_messages_become_role_content():
    raw = json.dumps([
        {"role": "user", "parts": [{"type": "text", "content": "Hi "}, {"type": "text", "content": "there"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "add", "arguments": {"a": 1}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": 2}]},
        {"role": "assistant", "content": "plain"},
        {"role": "user", "content": [{"type": "text", "text": "openai parts"}]},
    ])
    msgs = parse_messages(raw)
    assert msgs[0] == {"role": "user", "content": "Hi there"}
    assert json.loads(msgs[1]["content"]) == {"tool_call": {"name": "add", "arguments": {"a": 1}, "id": "c1"}}
    assert msgs[2] == {"role": "tool", "content": "2"}
    assert msgs[3] == {"role": "assistant", "content": "plain"}
    assert msgs[4] == {"role": "user", "content": "openai parts"}


def test_output_messages_default_to_assistant_and_system_is_prepended_once():
    out = parse_messages(json.dumps([{"parts": [{"type": "text", "content": "ok"}]}]), A.GEN_AI_OUTPUT_MESSAGES,
                         "assistant")
    assert out == [{"role": "assistant", "content": "ok"}]
    sys_raw = json.dumps([{"type": "text", "content": "be brief"}])
    prompt = with_system([{"role": "user", "content": "q"}], sys_raw)
    assert prompt[0] == {"role": "system", "content": "be brief"}
    assert with_system(prompt, sys_raw) == prompt  # already has a system message


@pytest.mark.parametrize("raw", ['[{"role": "user"', '"just a string"', '42'])
def test_broken_message_json_names_the_attribute(raw):
    with pytest.raises(MappingError, match=A.GEN_AI_INPUT_MESSAGES):
        parse_messages(raw)


def test_token_ids_parse_and_reject_garbage():
    assert parse_json_list("[1, 2, 3]", A.LLM_PROMPT_TOKEN_IDS) == [1, 2, 3]
    assert parse_json_list("", A.LLM_PROMPT_TOKEN_IDS) is None
    assert parse_json_list("[0, -0.5]", A.LLM_RESPONSE_LOGPROBS, float) == [0.0, -0.5]
    with pytest.raises(MappingError, match="prompt_token_ids"):
        parse_json_list("[1, 2", A.LLM_PROMPT_TOKEN_IDS)
    with pytest.raises(MappingError, match="JSON array"):
        parse_json_list('{"a": 1}', A.LLM_PROMPT_TOKEN_IDS)


def test_openinference_llm_span_maps_onto_the_contract():
    attrs = {
        A.OPENINFERENCE_SPAN_KIND: "LLM",
        A.OI_LLM_MODEL_NAME: "gpt-x",
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "sys",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": "q",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "a",
        A.OI_LLM_TOKEN_COUNT_PROMPT: "11",
    }
    m = foreign_llm(attrs)
    assert m["prompt"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}]
    assert m["completion"] == [{"role": "assistant", "content": "a"}]
    assert (m["model"], m["input_tokens"], m["mapped_from"]) == ("gpt-x", 11, "openinference")
    assert foreign_llm({A.OPENINFERENCE_SPAN_KIND: "CHAIN"}) is None


def test_openllmetry_llm_span_maps_onto_the_contract():
    attrs = {
        A.OPENLLMETRY_REQUEST_TYPE: "chat",
        A.OLD_GEN_AI_SYSTEM: "openai",
        A.GEN_AI_REQUEST_MODEL: "m",
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "q1",
        "gen_ai.prompt.10.role": "user",
        "gen_ai.prompt.10.content": "q10",
        "gen_ai.prompt.2.role": "assistant",
        "gen_ai.prompt.2.content": "a2",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "done",
    }
    m = foreign_llm(attrs)
    assert [x["content"] for x in m["prompt"]] == ["q1", "a2", "q10"]  # numeric, not lexical, order
    assert m["completion"] == [{"role": "assistant", "content": "done"}]
    assert m["operation"] == A.OP_CHAT


def test_openinference_tool_span():
    t = foreign_tool({A.OPENINFERENCE_SPAN_KIND: "TOOL", A.OI_TOOL_NAME: "search",
                      A.OI_TOOL_PARAMETERS: '{"q": "x"}', A.OI_OUTPUT_VALUE: "found"})
    assert t == {"tool_name": "search", "arguments": {"q": "x"}, "result": "found"}


def test_agentlightning_reward_attributes():
    # Agent Lightning 0.3 emit_reward({"acc": 0.5, "len": 0.1}, primary_key="acc")
    attrs = {"agentlightning.reward.0.name": "acc", "agentlightning.reward.0.value": "0.5",
             "agentlightning.reward.1.name": "len", "agentlightning.reward.1.value": "0.1"}
    assert agl_rewards(A.AGL_ANNOTATION_SPAN, attrs) == [("primary", 0.5), ("len", 0.1)]
    assert agl_rewards("reward", {"reward": "0.75"}) == [("primary", 0.75)]
    assert agl_rewards("x", {A.AGENTOPS_TASK_OUTPUT: '{"type": "reward", "value": 1}'}) == [("primary", 1.0)]
    assert agl_rewards("x", {"agentlightning.reward.0.value": "nan"}) == []
