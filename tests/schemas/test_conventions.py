"""Foreign conventions mapped onto the contract by the one shared module (collector and converters use it)."""

from __future__ import annotations

import json

from lightspan.schemas import attributes as A
from lightspan.schemas.conventions import agl_rewards, map_conventions, mapped


def _map(attrs: dict, name: str = "span") -> dict:
    out = dict(attrs)
    map_conventions(out, name)
    return out


def _texts(raw: str) -> list[tuple[str, str]]:
    return [(m["role"], "".join(p["content"] for p in m["parts"])) for m in json.loads(raw)]


def test_spans_without_a_trigger_key_are_left_alone():
    attrs = {A.GEN_AI_OPERATION_NAME: A.OP_CHAT, "llm.model_name.extra": "x", "input.value": "q"}
    assert _map(attrs) == attrs
    assert mapped(attrs, "span") is attrs  # no copy on the fast path


def test_mapped_copies_and_leaves_the_input_unchanged():
    attrs = {A.OPENINFERENCE_SPAN_KIND: "LLM"}
    out = mapped(attrs, "span")
    assert out is not attrs and attrs == {A.OPENINFERENCE_SPAN_KIND: "LLM"}
    assert out[A.GEN_AI_OPERATION_NAME] == A.OP_CHAT


def test_openinference_llm_span():
    a = _map(
        {
            A.OPENINFERENCE_SPAN_KIND: "LLM",
            A.OI_LLM_MODEL_NAME: "gpt-x",
            A.OI_LLM_PROVIDER: "openai",
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "sys",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": "q",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "a",
            A.OI_LLM_TOKEN_COUNT_PROMPT: "11",
            A.OI_LLM_TOKEN_COUNT_COMPLETION: "2",
            A.OI_SESSION_ID: "s1",
        }
    )
    assert a[A.GEN_AI_OPERATION_NAME] == A.OP_CHAT
    assert (a[A.GEN_AI_REQUEST_MODEL], a[A.GEN_AI_RESPONSE_MODEL], a[A.GEN_AI_PROVIDER_NAME]) == (
        "gpt-x",
        "gpt-x",
        "openai",
    )
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == ("11", "2")
    assert _texts(a[A.GEN_AI_INPUT_MESSAGES]) == [("system", "sys"), ("user", "q")]
    assert _texts(a[A.GEN_AI_OUTPUT_MESSAGES]) == [("assistant", "a")]
    assert a[A.GEN_AI_CONVERSATION_ID] == "s1" and a[A.MAPPED_FROM] == "openinference"


def test_openinference_llm_span_without_messages_uses_input_and_output_values():
    a = _map({A.OPENINFERENCE_SPAN_KIND: "llm", A.OI_INPUT_VALUE: "q", A.OI_OUTPUT_VALUE: "a"})
    assert _texts(a[A.GEN_AI_INPUT_MESSAGES]) == [("user", "q")]
    assert _texts(a[A.GEN_AI_OUTPUT_MESSAGES]) == [("assistant", "a")]


def test_openinference_tool_and_agent_spans():
    t = _map(
        {
            A.OPENINFERENCE_SPAN_KIND: "TOOL",
            A.OI_TOOL_NAME: "search",
            A.OI_INPUT_VALUE: '{"q": "x"}',
            A.OI_OUTPUT_VALUE: "found",
        }
    )
    assert (t[A.GEN_AI_OPERATION_NAME], t[A.GEN_AI_TOOL_NAME]) == (A.OP_EXECUTE_TOOL, "search")
    assert (t[A.GEN_AI_TOOL_CALL_ARGUMENTS], t[A.GEN_AI_TOOL_CALL_RESULT]) == ('{"q": "x"}', "found")
    assert A.GEN_AI_INPUT_MESSAGES not in t  # input.value is a tool's arguments, not a prompt
    g = _map({A.OPENINFERENCE_SPAN_KIND: "AGENT", A.OI_AGENT_NAME: "planner"})
    assert (g[A.GEN_AI_OPERATION_NAME], g[A.GEN_AI_AGENT_NAME]) == (A.OP_INVOKE_AGENT, "planner")
    assert A.GEN_AI_OPERATION_NAME not in _map({A.OPENINFERENCE_SPAN_KIND: "CHAIN"})


def test_openllmetry_llm_span_orders_messages_numerically():
    a = _map(
        {
            A.OPENLLMETRY_REQUEST_TYPE: "chat",
            A.OLD_GEN_AI_SYSTEM: "openai",
            A.GEN_AI_REQUEST_MODEL: "m",
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "q1",
            "gen_ai.prompt.10.role": "user",
            "gen_ai.prompt.10.content": "q10",
            "gen_ai.prompt.2.role": "assistant",
            "gen_ai.prompt.2.content": "a2",
            "gen_ai.completion.0.role": "user",
            "gen_ai.completion.0.content": "done",
            "gen_ai.completion.0.finish_reason": "stop",
        }
    )
    assert a[A.GEN_AI_OPERATION_NAME] == A.OP_CHAT and a[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert [c for _, c in _texts(a[A.GEN_AI_INPUT_MESSAGES])] == ["q1", "a2", "q10"]  # numeric, gaps allowed
    out = json.loads(a[A.GEN_AI_OUTPUT_MESSAGES])
    assert (out[0]["role"], out[0]["finish_reason"]) == ("assistant", "stop")  # a completion is the model's
    assert a[A.MAPPED_FROM] == "openllmetry"


def test_openllmetry_request_kinds_tools_agents_and_token_ids():
    c = _map(
        {
            A.OPENLLMETRY_REQUEST_TYPE: "completion",
            A.AGL_PROMPT_TOKEN_IDS: "[1, 2]",
            A.AGL_RESPONSE_TOKEN_IDS: "[3]",
        }
    )
    assert c[A.GEN_AI_OPERATION_NAME] == A.OP_TEXT_COMPLETION
    assert (c[A.LLM_PROMPT_TOKEN_IDS], c[A.LLM_RESPONSE_TOKEN_IDS]) == ("[1, 2]", "[3]")
    # Prompts plus gen_ai.system but no request type: still an LLM call.
    assert (
        _map({"gen_ai.prompt.0.content": "q", A.OLD_GEN_AI_SYSTEM: "x"})[A.GEN_AI_OPERATION_NAME] == A.OP_CHAT
    )
    t = _map(
        {
            A.OPENLLMETRY_SPAN_KIND: "tool",
            A.OPENLLMETRY_ENTITY_NAME: "grep",
            A.OPENLLMETRY_ENTITY_INPUT: "{}",
            A.OPENLLMETRY_ENTITY_OUTPUT: "hit",
        }
    )
    assert (t[A.GEN_AI_OPERATION_NAME], t[A.GEN_AI_TOOL_NAME], t[A.GEN_AI_TOOL_CALL_RESULT]) == (
        A.OP_EXECUTE_TOOL,
        "grep",
        "hit",
    )
    w = _map({A.OPENLLMETRY_SPAN_KIND: "workflow", A.OPENLLMETRY_ENTITY_NAME: "solve"})
    assert (w[A.GEN_AI_OPERATION_NAME], w[A.GEN_AI_AGENT_NAME]) == (A.OP_INVOKE_AGENT, "solve")


def test_old_genai_keys_map_without_overwriting_contract_keys():
    a = _map(
        {
            A.OLD_GEN_AI_SYSTEM: "anthropic",
            A.OLD_GEN_AI_USAGE_PROMPT_TOKENS: "9",
            A.OLD_GEN_AI_USAGE_COMPLETION_TOKENS: "4",
            A.GEN_AI_USAGE_INPUT_TOKENS: "11",
        }
    )
    assert a[A.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == ("11", "4")
    assert a[A.MAPPED_FROM] == "gen_ai_legacy"


def test_agent_lightning_ids_and_reward_spans():
    a = _map(
        {
            A.AGL_ROLLOUT_ID: "ro-1",
            A.AGL_ATTEMPT_ID: "2",
            f"{A.AGL_REWARD_PREFIX}.0.name": "acc",
            f"{A.AGL_REWARD_PREFIX}.0.value": "0.75",
        },
        A.AGL_ANNOTATION_SPAN,
    )
    assert (a[A.ROLLOUT_ID], a[A.ATTEMPT], a[A.REWARD_VALUE], a[A.REWARD_NAME]) == (
        "ro-1",
        "2",
        "0.75",
        A.REWARD_DEFAULT_NAME,
    )
    assert a[A.GEN_AI_OPERATION_NAME] == A.OP_REWARD and a[A.MAPPED_FROM] == "agentlightning"
    legacy = _map({A.AGL_LEGACY_REWARD_KEY: "1.0"}, A.AGL_LEGACY_REWARD_SPAN)  # no trigger key: the span name
    assert (legacy[A.REWARD_VALUE], legacy[A.REWARD_NAME]) == ("1.0", A.REWARD_DEFAULT_NAME)
    assert A.ATTEMPT not in _map({A.AGL_ATTEMPT_ID: "a-7"})


def test_agent_lightning_rewards_read_every_reward_and_older_forms():
    # Agent Lightning 0.3 emit_reward({"acc": 0.5, "len": 0.1}, primary_key="acc")
    attrs = {
        "agentlightning.reward.0.name": "acc",
        "agentlightning.reward.0.value": "0.5",
        "agentlightning.reward.1.name": "len",
        "agentlightning.reward.1.value": "0.1",
    }
    assert agl_rewards(A.AGL_ANNOTATION_SPAN, attrs) == [("primary", 0.5), ("len", 0.1)]
    assert agl_rewards("reward", {"reward": "0.75"}) == [("primary", 0.75)]
    assert agl_rewards("reward", {"reward": '{"value": 2}'}) == [("primary", 2.0)]
    assert agl_rewards("x", {A.AGENTOPS_TASK_OUTPUT: '{"type": "reward", "value": 1}'}) == [("primary", 1.0)]
    assert agl_rewards("x", {"agentlightning.reward.0.value": "nan"}) == []
    assert agl_rewards("x", {A.AGENTOPS_ENTITY_OUTPUT: "not json"}) == []


def test_conventions_combine_and_are_all_recorded():
    a = _map({A.OPENINFERENCE_SPAN_KIND: "LLM", A.AGL_ROLLOUT_ID: "ro-2", A.OLD_GEN_AI_SYSTEM: "vllm"})
    assert a[A.MAPPED_FROM] == "openinference,agentlightning,gen_ai_legacy"
    assert (a[A.ROLLOUT_ID], a[A.GEN_AI_PROVIDER_NAME]) == ("ro-2", "vllm")
    assert _map({A.OPENINFERENCE_SPAN_KIND: "LLM", A.MAPPED_FROM: "mine"})[A.MAPPED_FROM] == "mine"
