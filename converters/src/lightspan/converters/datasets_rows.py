"""Training rows from credited trajectories: call rows, the TRL views and merged trajectory rows.

Every builder returns a list of plain dicts whose keys are the ``schemas.rows`` column names; the
writers turn batches of them into Parquet / JSONL. View rows also carry ``rollout_id``/``task_id``
(bookkeeping that lets a re-conversion replace them; ``load_rows`` drops it for views by default).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from lightspan.schemas import rows as R

from .model import Trajectory

#: Extra DPO columns (bookkeeping, not part of the TRL contract).
DPO_CHOSEN_ROLLOUT = "chosen_rollout_id"
DPO_REJECTED_ROLLOUT = "rejected_rollout_id"
DPO_CHOSEN_REWARD = "chosen_reward"
DPO_REJECTED_REWARD = "rejected_reward"


def call_rows(traj: Trajectory) -> list[dict[str, Any]]:
    """One row per trainable call (``schemas.rows.CALL_ROW_COLUMNS``)."""
    calls = traj.trainable_calls
    last = len(calls) - 1
    return [
        {
            R.ROLLOUT_ID: traj.rollout_id,
            R.TASK_ID: traj.task_id,
            R.ATTEMPT: traj.attempt,
            R.STEP: c.step,
            R.AGENT_NAME: c.agent_name,
            R.TRACE_ID: c.trace_id,
            R.SPAN_ID: c.span_id,
            R.MODEL: c.model,
            # raw(): Arrow-backed values stay Arrow; the Parquet writer takes them column-wise.
            R.PROMPT: c.raw("prompt"),
            R.COMPLETION: c.raw("completion"),
            R.PROMPT_TOKEN_IDS: c.raw("prompt_token_ids"),
            R.COMPLETION_TOKEN_IDS: c.raw("completion_token_ids"),
            R.COMPLETION_LOGPROBS: c.raw("completion_logprobs"),
            R.REWARD: float(c.reward),
            R.ADVANTAGE: float(c.advantage),
            R.FINAL_REWARD: traj.final_reward,
            R.IS_LAST: i == last,
            R.POLICY_VERSION: c.policy_version,
        }
        for i, c in enumerate(calls)
    ]


def lightningrl_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: r[k] for k in R.LIGHTNINGRL_COLUMNS} for r in rows]


def sft_rows(traj: Trajectory, min_reward: float) -> list[dict[str, Any]]:
    """Calls of rollouts whose final reward is at least ``min_reward``."""
    if traj.final_reward is None or traj.final_reward < min_reward:
        return []
    return [
        {
            R.PROMPT: c.prompt,
            R.COMPLETION: c.completion,
            R.ROLLOUT_ID: traj.rollout_id,
            R.TASK_ID: traj.task_id,
        }
        for c in traj.trainable_calls
        if c.completion
    ]


def kto_rows(traj: Trajectory, threshold: float) -> list[dict[str, Any]]:
    """Every call, labelled desirable when the rollout's final reward reaches ``threshold``."""
    if traj.final_reward is None:
        return []
    label = traj.final_reward >= threshold
    return [
        {
            R.PROMPT: c.prompt,
            R.COMPLETION: c.completion,
            R.KTO_LABEL: label,
            R.ROLLOUT_ID: traj.rollout_id,
            R.TASK_ID: traj.task_id,
        }
        for c in traj.trainable_calls
        if c.completion
    ]


def dpo_rows(group: list[Trajectory], min_margin: float = 0.0) -> list[dict[str, Any]]:
    """Preference pairs among rollouts of one task: for each prompt seen in several rollouts, the call
    of the best rollout is chosen and the call of the worst rejected (final rewards differ > margin)."""
    by_prompt: dict[str, list[tuple[float, str, Any]]] = {}
    for t in group:
        if t.final_reward is None:
            continue
        seen: set[str] = set()
        for c in t.trainable_calls:
            key = json.dumps(c.prompt, sort_keys=True, ensure_ascii=False)
            if key in seen or not c.completion:
                continue
            seen.add(key)
            by_prompt.setdefault(key, []).append((t.final_reward, t.rollout_id, c))
    out = []
    for items in by_prompt.values():
        if len(items) < 2:
            continue
        items.sort(key=lambda x: (-x[0], x[1]))
        (hi, hi_id, best), (lo, lo_id, worst) = items[0], items[-1]
        if hi - lo <= min_margin or best.completion == worst.completion:
            continue
        out.append(
            {
                R.PROMPT: best.prompt,
                R.DPO_CHOSEN: best.completion,
                R.DPO_REJECTED: worst.completion,
                R.TASK_ID: group[0].task_id,
                DPO_CHOSEN_ROLLOUT: hi_id,
                DPO_REJECTED_ROLLOUT: lo_id,
                DPO_CHOSEN_REWARD: hi,
                DPO_REJECTED_REWARD: lo,
            }
        )
    return out


def merged_rows(traj: Trajectory) -> tuple[list[dict[str, Any]], int]:
    """Trajectory-level rows: consecutive calls whose prompt tokens extend the previous prompt+response
    and that got the same credit become one sequence; response tokens have loss mask 1, prompt and
    observation tokens 0.

    Returns the rows and the number of trainable calls left out for lack of token ids.
    """
    out: list[dict[str, Any]] = []
    skipped = 0
    ids: list[int] = []
    mask: list[int] = []
    last_call = None

    def flush() -> None:
        if ids and last_call is not None:
            out.append(
                {
                    R.ROLLOUT_ID: traj.rollout_id,
                    R.TASK_ID: traj.task_id,
                    R.INPUT_IDS: list(ids),
                    R.LOSS_MASK: list(mask),
                    R.REWARD: float(last_call.reward),
                    R.ADVANTAGE: float(last_call.advantage),
                }
            )

    for c in traj.trainable_calls:
        p, r = c.prompt_token_ids, c.completion_token_ids
        if p is None or r is None:
            skipped += 1
            continue
        # Merge only calls with the same credit: a row carries one reward/advantage for all its response
        # tokens, so a call credited differently (per-step rewards) starts its own row, its prompt
        # (the earlier calls' tokens included) masked.
        same_credit = last_call is not None and (last_call.reward, last_call.advantage) == (
            c.reward,
            c.advantage,
        )
        if ids and same_credit and len(p) >= len(ids) and p[: len(ids)] == ids:
            obs = p[len(ids) :]
            ids.extend(obs)
            mask.extend([0] * len(obs))
        else:
            flush()
            ids, mask = list(p), [0] * len(p)
        ids.extend(r)
        mask.extend([1] * len(r))
        last_call = c
    flush()
    return out, skipped


__all__ = [
    "DPO_CHOSEN_REWARD",
    "DPO_CHOSEN_ROLLOUT",
    "DPO_REJECTED_REWARD",
    "DPO_REJECTED_ROLLOUT",
    "call_rows",
    "dpo_rows",
    "kto_rows",
    "lightningrl_rows",
    "merged_rows",
    "sft_rows",
]
