"""The span attribute contract: every key any part of lightspan reads or writes, spelled once.

Keys follow the OpenTelemetry GenAI semantic conventions (gen_ai.*, v1.37+ names:
``gen_ai.provider.name``, ``gen_ai.input.messages`` ...); lightspan adds ``lightspan.*`` keys only
where the conventions say nothing (rollouts, rewards, token ids for RL, GAP graphs).
The conventions' names are spelled here as plain strings, so this module stays dependency-free;
``tests/instrumentation/test_semconv_names.py`` checks each against the official
``opentelemetry-semantic-conventions`` package (its incubating ``gen_ai`` module), so none can drift.
Foreign keys (OpenInference, OpenLLMetry, Agent Lightning, older GenAI) are listed so the
collector can map them onto the contract; see ``docs/attributes.md``.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------
# Span names (format strings) and operation names
# ---------------------------------------------------------------------------
SPAN_CHAT = "chat {model}"
SPAN_TEXT_COMPLETION = "text_completion {model}"
SPAN_GENERATE_CONTENT = "generate_content {model}"
SPAN_EXECUTE_TOOL = "execute_tool {name}"
SPAN_INVOKE_AGENT = "invoke_agent {name}"
SPAN_REWARD = "lightspan.reward"
SPAN_GAP_PLAN = "plan {agent}"
SPAN_GAP_LEVEL = "gap.level {index}"
SPAN_GAP_NODE = "gap.node {id}"

OP_CHAT = "chat"
OP_TEXT_COMPLETION = "text_completion"
OP_GENERATE_CONTENT = "generate_content"
OP_EXECUTE_TOOL = "execute_tool"
OP_INVOKE_AGENT = "invoke_agent"
OP_PLAN = "plan"
#: lightspan's own operation names (the conventions have none for these)
OP_REWARD = "lightspan.reward"
OP_GAP_LEVEL = "gap.level"
OP_GAP_NODE = "gap.node"

#: Operations whose spans are LLM calls (become training rows).
LLM_OPERATIONS = frozenset({OP_CHAT, OP_TEXT_COMPLETION, OP_GENERATE_CONTENT})

# ---------------------------------------------------------------------------
# OpenTelemetry GenAI semantic conventions
# ---------------------------------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
GEN_AI_REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
GEN_AI_TOOL_DEFINITIONS = "gen_ai.tool.definitions"
GEN_AI_OUTPUT_TYPE = "gen_ai.output.type"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"

GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"
GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"

GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_AGENT_ID = "gen_ai.agent.id"
GEN_AI_AGENT_DESCRIPTION = "gen_ai.agent.description"

#: The conventions' own form of a reward: an event (span event or log record) of this name, parented to the
#: span it judges, carrying the evaluation's name and score.
GEN_AI_EVALUATION_RESULT = "gen_ai.evaluation.result"
GEN_AI_EVALUATION_NAME = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_VALUE = "gen_ai.evaluation.score.value"

#: Set (true) on a streamed call (the conventions' key; lightspan.llm.streaming is kept beside it).
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
#: Cached input tokens (already counted in gen_ai.usage.input_tokens, as the conventions ask).
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"

#: GenAI client metrics (histograms) and the token-type attribute of the usage one, with its values.
GEN_AI_CLIENT_OPERATION_DURATION = "gen_ai.client.operation.duration"
GEN_AI_CLIENT_TOKEN_USAGE = "gen_ai.client.token.usage"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
TOKEN_TYPE_INPUT = "input"
TOKEN_TYPE_OUTPUT = "output"

ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

#: gen_ai.provider.name values used by the instrumentors.
PROVIDER_OPENAI = "openai"
PROVIDER_ANTHROPIC = "anthropic"
PROVIDER_LITELLM = "litellm"
PROVIDER_TRANSFORMERS = "transformers"

# ---------------------------------------------------------------------------
# lightspan's own keys
# ---------------------------------------------------------------------------
# RL data on LLM call spans (JSON arrays), where the server returns them.
LLM_PROMPT_TOKEN_IDS = "lightspan.llm.prompt_token_ids"
LLM_RESPONSE_TOKEN_IDS = "lightspan.llm.response_token_ids"
LLM_RESPONSE_LOGPROBS = "lightspan.llm.response_logprobs"
#: Set on a span recorded while an outer instrumentor already records the same logical call.
LLM_SUPPRESSED = "lightspan.llm.suppressed"
#: Set when the call was streamed.
LLM_STREAMING = "lightspan.llm.streaming"

# Rollout identity: stamped on every span inside a rollout (from Context/baggage).
ROLLOUT_ID = "lightspan.rollout.id"
TASK_ID = "lightspan.task.id"
ATTEMPT = "lightspan.attempt"
#: Optional free-form task category (Lightning's task_type), e.g. "multi-hop-qa".
TASK_TYPE = "lightspan.task.type"
#: Baggage keys carrying the rollout identity across threads, tasks and processes.
BAGGAGE_ROLLOUT_ID = ROLLOUT_ID
BAGGAGE_TASK_ID = TASK_ID
BAGGAGE_ATTEMPT = ATTEMPT
BAGGAGE_TASK_TYPE = TASK_TYPE

# Rewards.
REWARD_VALUE = "lightspan.reward.value"
REWARD_NAME = "lightspan.reward.name"
REWARD_STEP = "lightspan.reward.step"
#: Optional: the span id (hex) of the LLM call the reward targets.
REWARD_SPAN_ID = "lightspan.reward.span_id"
REWARD_DEFAULT_NAME = "primary"
#: On a posted reward (rewards table ``Attributes``): which id named its rollout: rollout, session or trace.
REWARD_TARGET = "lightspan.reward.target"

# GAP planner.
GAP_GRAPH = "lightspan.gap.graph"
GAP_LEVEL = "lightspan.gap.level"
GAP_LEVEL_WIDTH = "lightspan.gap.level.width"
GAP_LEVEL_COUNT = "lightspan.gap.level.count"
GAP_NODE_ID = "lightspan.gap.node.id"
GAP_NODE_DEPENDS = "lightspan.gap.node.depends"
GAP_NODE_STATUS = "lightspan.gap.node.status"
GAP_SCHEDULER = "lightspan.gap.scheduler"
#: Number of nodes in the plan (on the plan span).
GAP_NODE_COUNT = "lightspan.gap.node.count"
#: Where the plan came from: "llm", "given" (plan_text passed in) or "heuristic" (fallback split).
GAP_PLAN_SOURCE = "lightspan.gap.plan.source"
#: The user query the plan answers (content; on the plan span).
GAP_QUERY = "lightspan.gap.query"
#: The synthesized final answer (content; on the plan span).
GAP_ANSWER = "lightspan.gap.answer"
#: Sum of node times / critical-path time of the run (float; on the plan span).
GAP_SPEEDUP = "lightspan.gap.speedup"
#: The node's task text as planned, before placeholders are filled (on the node span).
GAP_NODE_DESCRIPTION = "lightspan.gap.node.description"
#: The node's result (content, JSON; on the node span).
GAP_NODE_RESULT = "lightspan.gap.node.result"
#: Values of lightspan.gap.plan.source / lightspan.gap.scheduler.
GAP_PLAN_SOURCES = ("llm", "given", "heuristic")
GAP_SCHEDULERS = ("dependency", "level", "sequential")

#: Set by the collector when an attribute was cut to the size limit.
TRUNCATED = "lightspan.truncated"
#: Set by the collector when foreign conventions were mapped (value: the convention name).
MAPPED_FROM = "lightspan.mapped_from"

# ---------------------------------------------------------------------------
# Foreign conventions the collector maps onto the contract
# ---------------------------------------------------------------------------
# Older OpenTelemetry GenAI keys.
OLD_GEN_AI_SYSTEM = "gen_ai.system"
OLD_GEN_AI_USAGE_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"
OLD_GEN_AI_USAGE_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"
OLD_GEN_AI_PROMPT = "gen_ai.prompt"
OLD_GEN_AI_COMPLETION = "gen_ai.completion"

# OpenLLMetry (traceloop): indexed flat keys.
OPENLLMETRY_PROMPT_PREFIX = "gen_ai.prompt."  # gen_ai.prompt.{i}.role / .content
OPENLLMETRY_COMPLETION_PREFIX = "gen_ai.completion."  # gen_ai.completion.{i}.role / .content
OPENLLMETRY_SPAN_KIND = "traceloop.span.kind"
OPENLLMETRY_ENTITY_NAME = "traceloop.entity.name"
OPENLLMETRY_ENTITY_INPUT = "traceloop.entity.input"
OPENLLMETRY_ENTITY_OUTPUT = "traceloop.entity.output"
OPENLLMETRY_WORKFLOW_NAME = "traceloop.workflow.name"
OPENLLMETRY_REQUEST_TYPE = "llm.request.type"

# OpenInference (Arize Phoenix).
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
OI_LLM_MODEL_NAME = "llm.model_name"
OI_LLM_PROVIDER = "llm.provider"
OI_LLM_SYSTEM = "llm.system"
OI_LLM_INPUT_MESSAGES_PREFIX = "llm.input_messages."  # llm.input_messages.{i}.message.role / .content
OI_LLM_OUTPUT_MESSAGES_PREFIX = "llm.output_messages."
OI_LLM_TOKEN_COUNT_PROMPT = "llm.token_count.prompt"
OI_LLM_TOKEN_COUNT_COMPLETION = "llm.token_count.completion"
OI_LLM_TOKEN_COUNT_TOTAL = "llm.token_count.total"
OI_INPUT_VALUE = "input.value"
OI_OUTPUT_VALUE = "output.value"
OI_TOOL_NAME = "tool.name"
OI_TOOL_PARAMETERS = "tool.parameters"
OI_SESSION_ID = "session.id"
OI_AGENT_NAME = "agent.name"
#: JSON object of free-form keys (``using_metadata``); lightspan reads ``rollout_id``, ``task_id``, ``attempt``.
OI_METADATA = "metadata"
OI_TOOL_CALL_ID = "tool_call.id"
OI_TOOL_CALL_FUNCTION_NAME = "tool_call.function.name"
OI_TOOL_CALL_FUNCTION_ARGUMENTS = "tool_call.function.arguments"
#: Inside ``llm.output_messages.{i}.``: ``message.tool_calls.{j}.tool_call.function.name`` / ``.arguments`` / ``.id``.
OI_MESSAGE_TOOL_CALLS_PREFIX = "message.tool_calls."
OI_MESSAGE_TOOL_CALL_ID = "message.tool_call_id"

# OpenLLMetry association properties (``Traceloop.set_association_properties({...})``): one key each.
TRACELOOP_ASSOCIATION_PREFIX = "traceloop.association.properties."

# Agent Lightning.
AGL_ROLLOUT_ID = "agentlightning.rollout_id"
AGL_ATTEMPT_ID = "agentlightning.attempt_id"
AGL_SPAN_SEQUENCE_ID = "agentlightning.span_sequence_id"
AGL_ANNOTATION_SPAN = "agentlightning.annotation"
AGL_REWARD_PREFIX = "agentlightning.reward"  # agentlightning.reward.{i}.name / .value
AGL_OPERATION_SPAN = "agentlightning.operation"
AGL_OBJECT_SPAN = "agentlightning.object"
#: Agent Lightning's legacy reward span name and its single attribute.
AGL_LEGACY_REWARD_SPAN = "reward"
AGL_LEGACY_REWARD_KEY = "reward"
#: AgentOps-era Agent Lightning reward payloads: JSON {"type": "reward", "value": ...} in these keys.
AGENTOPS_TASK_OUTPUT = "agentops.task.output"
AGENTOPS_ENTITY_OUTPUT = "agentops.entity.output"
#: Token ids as Agent Lightning's tracer / vLLM record them on LLM spans (lists of ints).
AGL_PROMPT_TOKEN_IDS = "prompt_token_ids"
AGL_RESPONSE_TOKEN_IDS = "response_token_ids"

__all__ = [name for name in dir() if name.isupper()]
