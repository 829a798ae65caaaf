"""The training-row contract between converters (writers) and training (readers).

One row per LLM call. Prompt and completion are conversational (lists of ``{"role", "content"}``
messages), the format TRL trainers accept directly. Token ids and logprobs are present when the
serving side returned them (vLLM ``return_token_ids``, local transformers) and ``None`` otherwise;
training then tokenizes the messages itself.
"""

from __future__ import annotations

# Call-level row columns (Parquet / JSONL / datasets.Dataset), name -> Arrow-ish type.
ROLLOUT_ID = "rollout_id"
TASK_ID = "task_id"
ATTEMPT = "attempt"
STEP = "step"  # 0-based index of the call within its rollout, in rebuilt order
AGENT_NAME = "agent_name"
TRACE_ID = "trace_id"
SPAN_ID = "span_id"
MODEL = "model"
PROMPT = "prompt"  # list[{"role": str, "content": str}]
COMPLETION = "completion"  # list[{"role": "assistant", "content": str}]
PROMPT_TOKEN_IDS = "prompt_token_ids"  # list[int] | None
COMPLETION_TOKEN_IDS = "completion_token_ids"  # list[int] | None
COMPLETION_LOGPROBS = "completion_logprobs"  # list[float] | None (behaviour policy, per completion token)
REWARD = "reward"  # float: the credit this call received
ADVANTAGE = "advantage"  # float: the value the policy gradient uses
FINAL_REWARD = "final_reward"  # float | None: the rollout's reward before credit assignment
IS_LAST = "is_last"  # bool: the rollout's last call
# int: the published policy version that served the call, -1 unknown (converters/policy.py; issue 16)
POLICY_VERSION = "policy_version"

CALL_ROW_COLUMNS: dict[str, str] = {
    ROLLOUT_ID: "string",
    TASK_ID: "string",
    ATTEMPT: "int64",
    STEP: "int64",
    AGENT_NAME: "string",
    TRACE_ID: "string",
    SPAN_ID: "string",
    MODEL: "string",
    PROMPT: "list<struct<role: string, content: string>>",
    COMPLETION: "list<struct<role: string, content: string>>",
    PROMPT_TOKEN_IDS: "list<int64> (nullable)",
    COMPLETION_TOKEN_IDS: "list<int64> (nullable)",
    COMPLETION_LOGPROBS: "list<double> (nullable)",
    REWARD: "double",
    ADVANTAGE: "double",
    FINAL_REWARD: "double (nullable)",
    IS_LAST: "bool",
    POLICY_VERSION: "int64",
}

# TRL views.
SFT_COLUMNS = (PROMPT, COMPLETION)
KTO_LABEL = "label"
KTO_COLUMNS = (PROMPT, COMPLETION, KTO_LABEL)
DPO_CHOSEN = "chosen"
DPO_REJECTED = "rejected"
DPO_COLUMNS = (PROMPT, DPO_CHOSEN, DPO_REJECTED)
LIGHTNINGRL_COLUMNS = (
    ROLLOUT_ID,
    TASK_ID,
    STEP,
    PROMPT,
    COMPLETION,
    PROMPT_TOKEN_IDS,
    COMPLETION_TOKEN_IDS,
    COMPLETION_LOGPROBS,
    REWARD,
    ADVANTAGE,
    POLICY_VERSION,
)

# Trajectory-level (merged multi-turn) rows.
INPUT_IDS = "input_ids"
LOSS_MASK = "loss_mask"  # 1 for policy tokens, 0 for prompt/observation tokens
TRAJECTORY_ROW_COLUMNS = (ROLLOUT_ID, TASK_ID, INPUT_IDS, LOSS_MASK, REWARD, ADVANTAGE)

#: Credit assignment strategies every converter and trainer understand.
CREDIT_STRATEGIES = ("identical", "discounted", "per_step", "grpo", "grpo_rollout")

__all__ = [name for name in dir() if name.isupper()]
