"""A :class:`Trajectory` as a Lightning trajectory JSON document (``schemas/trajectory.schema.json``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .model import LLMCall, Message, ToolObservation, Trajectory


def iso(ns: int | None) -> str:
    """Nanoseconds since the epoch as RFC 3339 UTC with microseconds."""
    dt = datetime.fromtimestamp((ns or 0) / 1e9, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def prompt_text(messages: list[Message]) -> str:
    """The prompt as one string: a lone message's content, else ``role: content`` blocks."""
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


def _llm_span(c: LLMCall) -> dict[str, Any]:
    return {
        "span_id": c.span_id,
        "parent_span_id": c.parent_span_id,
        "span_type": "llm_call",
        "step": c.step,
        "start_time": iso(c.start_ns),
        "end_time": iso(c.end_ns),
        "input": {
            "prompt": prompt_text(c.prompt),
            "messages": c.prompt,
            "prompt_token_ids": c.prompt_token_ids,
        },
        "output": {
            "response": c.response_text,
            "messages": c.completion,
            "response_token_ids": c.completion_token_ids,
            "logprobs": c.completion_logprobs,
            "error": None,
        },
        "metadata": {
            "model": c.model or None,
            "tokens_used": (c.input_tokens + c.output_tokens) or None,
            "latency_ms": max(0, (c.end_ns - c.start_ns) // 1_000_000),
            "agent_id": c.agent_name or None,
            "reward": c.reward if c.trainable else None,
            "advantage": c.advantage if c.trainable else None,
            "gap_node_id": c.gap_node_id or None,
            "policy_version": c.policy_version if c.policy_version >= 0 else None,
        },
    }


def _tool_span(t: ToolObservation) -> dict[str, Any]:
    return {
        "span_id": t.span_id,
        "parent_span_id": t.parent_span_id,
        "span_type": "tool_call",
        "step": None,
        "start_time": iso(t.start_ns),
        "end_time": iso(t.end_ns),
        "input": {"tool_name": t.tool_name, "parameters": t.arguments},
        "output": {"result": t.result, "error": t.error},
        "metadata": {
            "latency_ms": max(0, (t.end_ns - t.start_ns) // 1_000_000),
            "gap_node_id": t.gap_node_id or None,
        },
    }


def to_lightning(traj: Trajectory) -> dict[str, Any]:
    """The Lightning JSON document of one rollout (LLM and tool spans in start order)."""
    spans = [(c.start_ns, 0, _llm_span(c)) for c in traj.calls] + [
        (t.start_ns, 1, _tool_span(t)) for t in traj.tools
    ]
    spans.sort(key=lambda s: (s[0], s[1]))
    return {
        "schema_version": 1,
        "trace_id": traj.rollout_id,
        "rollout_id": traj.rollout_id,
        "task_id": traj.task_id,
        "attempt": traj.attempt,
        "agent_name": traj.agent_name,
        "task_type": traj.task_type,
        "service_name": traj.service_name,
        "created_at": iso(traj.created_ns),
        "final_reward": traj.final_reward,
        "otel_trace_ids": traj.trace_ids,
        "rewards": [
            {
                "name": r.name,
                "value": r.value,
                "step": r.step,
                "span_id": r.span_id,
                "source": r.source,
                "timestamp": iso(r.timestamp_ns) if r.timestamp_ns else None,
            }
            for r in traj.rewards
        ],
        "gap": (
            {"nodes": traj.gap.nodes, "edges": traj.gap.edges, "levels": traj.gap.levels}
            if traj.gap
            else None
        ),
        "spans": [s[2] for s in spans],
    }


__all__ = ["iso", "prompt_text", "to_lightning"]
