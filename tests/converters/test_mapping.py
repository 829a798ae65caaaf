"""Message and token-id parsing, and reading mapped foreign spans (pure functions, no store)."""

from __future__ import annotations

import json

import pytest

from lightspan.converters.mapping import (
    MappingError,
    foreign_llm,
    foreign_tool,
    parse_json_list,
    parse_messages,
    with_system,
)
from lightspan.schemas import attributes as A
from lightspan.schemas.conventions import mapped


def test_semconv_parts_and_plain_messages_become_role_content():
    raw = json.dumps(
        [
            {
                "role": "user",
                "parts": [{"type": "text", "content": "Hi "}, {"type": "text", "content": "there"}],
            },
            {
                "role": "assistant",
                "parts": [{"type": "tool_call", "id": "c1", "name": "add", "arguments": {"a": 1}}],
            },
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": 2}]},
            {"role": "assistant", "content": "plain"},
            {"role": "user", "content": [{"type": "text", "text": "openai parts"}]},
        ]
    )
    msgs = parse_messages(raw)
    assert msgs[0] == {"role": "user", "content": "Hi there"}
    assert json.loads(msgs[1]["content"]) == {"tool_call": {"name": "add", "arguments": {"a": 1}, "id": "c1"}}
    assert msgs[2] == {"role": "tool", "content": "2"}
    assert msgs[3] == {"role": "assistant", "content": "plain"}
    assert msgs[4] == {"role": "user", "content": "openai parts"}


def test_output_messages_default_to_assistant_and_system_is_prepended_once():
    out = parse_messages(
        json.dumps([{"parts": [{"type": "text", "content": "ok"}]}]), A.GEN_AI_OUTPUT_MESSAGES, "assistant"
    )
    assert out == [{"role": "assistant", "content": "ok"}]
    sys_raw = json.dumps([{"type": "text", "content": "be brief"}])
    prompt = with_system([{"role": "user", "content": "q"}], sys_raw)
    assert prompt[0] == {"role": "system", "content": "be brief"}
    assert with_system(prompt, sys_raw) == prompt  # already has a system message


@pytest.mark.parametrize("raw", ['[{"role": "user"', '"just a string"', "42"])
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


def test_mapped_foreign_spans_read_as_llm_calls_and_tools():
    # The mapping itself is tested in tests/schemas/test_conventions.py; here the converters' reading of it.
    llm = mapped(
        {
            A.OPENINFERENCE_SPAN_KIND: "LLM",
            A.OI_LLM_MODEL_NAME: "gpt-x",
            A.OI_LLM_TOKEN_COUNT_PROMPT: "11",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "q",
            A.OI_OUTPUT_VALUE: "a",
        },
        "ChatCompletion",
    )
    m = foreign_llm(llm)
    assert m["prompt"] == [{"role": "user", "content": "q"}]
    assert m["completion"] == [{"role": "assistant", "content": "a"}]
    assert (m["operation"], m["model"], m["input_tokens"], m["mapped_from"]) == (
        A.OP_CHAT,
        "gpt-x",
        11,
        "openinference",
    )
    assert foreign_llm(mapped({A.OPENINFERENCE_SPAN_KIND: "CHAIN"}, "chain")) is None
    assert foreign_tool(llm) is None
    t = foreign_tool(
        mapped(
            {
                A.OPENINFERENCE_SPAN_KIND: "TOOL",
                A.OI_TOOL_NAME: "search",
                # tool.parameters is the tool's JSON schema; the call's arguments are its input
                A.OI_TOOL_PARAMETERS: '{"type": "object"}',
                A.OI_INPUT_VALUE: '{"q": "x"}',
                A.OI_OUTPUT_VALUE: "found",
            },
            "search",
        )
    )
    assert t == {"tool_name": "search", "arguments": {"q": "x"}, "result": "found"}


def test_mapped_foreign_token_ids_are_checked():
    attrs = mapped(
        {
            A.OPENLLMETRY_REQUEST_TYPE: "chat",
            A.AGL_PROMPT_TOKEN_IDS: "[1, 2]",
            A.AGL_RESPONSE_TOKEN_IDS: "[3",
        },
        "openai.chat",
    )
    with pytest.raises(MappingError, match="response_token_ids"):
        foreign_llm(attrs)
    attrs[A.LLM_RESPONSE_TOKEN_IDS] = "[3]"
    m = foreign_llm(attrs)
    assert (m["prompt_token_ids"], m["completion_token_ids"]) == ([1, 2], [3])
