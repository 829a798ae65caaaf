"""Build spans-table rows from span-like descriptions, the way the collector or the contrib exporter writes them.

``mode="contrib"`` inserts only the otel_traces columns (the RL columns come from their DEFAULT
expressions, as with the OpenTelemetry Collector's ClickHouse exporter); ``mode="collector"`` also
writes the RL columns explicitly, as the lightspan collector does.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from lightspan.schemas import attributes as A
from lightspan.schemas import conventions as C
from lightspan.schemas import ddl

BASE = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)
_ids = itertools.count(1)


def new_id(width: int = 16) -> str:
    return f"{next(_ids):0{width}x}"


def msgs(*pairs: tuple[str, str]) -> str:
    """GenAI semconv message JSON from (role, text) pairs."""
    return json.dumps([{"role": r, "parts": [{"type": "text", "content": t}]} for r, t in pairs])


class Rollout:
    """Spans of one rollout; every span gets the rollout/task ids unless ``stamp=False``."""

    def __init__(
        self,
        rollout_id: str,
        task_id: str = "task-1",
        *,
        service: str = "agent-svc",
        start: datetime = BASE,
        attempt: int = 0,
        trace_id: str | None = None,
        stamp: bool = True,
    ):
        self.rollout_id, self.task_id, self.service, self.attempt = rollout_id, task_id, service, attempt
        self.trace_id = trace_id or new_id(32)
        self.clock = start
        self.rows: list[dict[str, Any]] = []
        self.stamp = stamp

    def _tick(self, ms: int = 1) -> datetime:
        self.clock += timedelta(milliseconds=ms)
        return self.clock

    def span(
        self,
        name: str,
        attrs: dict[str, Any] | None = None,
        *,
        parent: str | None = None,
        dur_ms: int = 5,
        status: str = "Ok",
        status_message: str = "",
        trace_id: str | None = None,
        span_id: str | None = None,
        start: datetime | None = None,
        events: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> str:
        sid = span_id or new_id()
        a = {}
        if self.stamp:
            a = {A.ROLLOUT_ID: self.rollout_id, A.TASK_ID: self.task_id, A.ATTEMPT: str(self.attempt)}
        a.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in (attrs or {}).items()})
        self.rows.append(
            {
                "Timestamp": start or self._tick(),
                "TraceId": trace_id or self.trace_id,
                "SpanId": sid,
                "ParentSpanId": parent or "",
                "SpanName": name,
                "SpanKind": "Internal",
                "ServiceName": self.service,
                "ResourceAttributes": {"service.name": self.service},
                "SpanAttributes": a,
                "Duration": dur_ms * 1_000_000,
                "StatusCode": status,
                "StatusMessage": status_message,
                "Events.Timestamp": [start or self.clock for _ in events or ()],
                "Events.Name": [n for n, _ in events or ()],
                "Events.Attributes": [{k: _as_string(v) for k, v in ea.items()} for _, ea in events or ()],
            }
        )
        return sid

    def agent(self, name: str, parent: str | None = None, **kw: Any) -> str:
        return self.span(
            f"invoke_agent {name}",
            {A.GEN_AI_OPERATION_NAME: A.OP_INVOKE_AGENT, A.GEN_AI_AGENT_NAME: name},
            parent=parent,
            dur_ms=1000,
            **kw,
        )

    def chat(
        self,
        prompt: str | list[tuple[str, str]],
        response: str,
        *,
        parent: str | None = None,
        response_id: str | None = None,
        system: str | None = None,
        prompt_ids: list[int] | None = None,
        response_ids: list[int] | None = None,
        logprobs: list[float] | None = None,
        extra: dict[str, Any] | None = None,
        model: str = "tiny",
        **kw: Any,
    ) -> str:
        pairs = [("user", prompt)] if isinstance(prompt, str) else prompt
        attrs: dict[str, Any] = {
            A.GEN_AI_OPERATION_NAME: A.OP_CHAT,
            A.GEN_AI_PROVIDER_NAME: A.PROVIDER_OPENAI,
            A.GEN_AI_REQUEST_MODEL: model,
            A.GEN_AI_RESPONSE_MODEL: model,
            A.GEN_AI_INPUT_MESSAGES: msgs(*pairs),
            A.GEN_AI_OUTPUT_MESSAGES: json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": response}],
                        "finish_reason": "stop",
                    }
                ]
            ),
            A.GEN_AI_USAGE_INPUT_TOKENS: "7",
            A.GEN_AI_USAGE_OUTPUT_TOKENS: "3",
        }
        if response_id:
            attrs[A.GEN_AI_RESPONSE_ID] = response_id
        if system:
            attrs[A.GEN_AI_SYSTEM_INSTRUCTIONS] = json.dumps([{"type": "text", "content": system}])
        if prompt_ids is not None:
            attrs[A.LLM_PROMPT_TOKEN_IDS] = json.dumps(prompt_ids)
        if response_ids is not None:
            attrs[A.LLM_RESPONSE_TOKEN_IDS] = json.dumps(response_ids)
        if logprobs is not None:
            attrs[A.LLM_RESPONSE_LOGPROBS] = json.dumps(logprobs)
        attrs.update(extra or {})
        return self.span(f"chat {model}", attrs, parent=parent, **kw)

    def tool(self, name: str, args: Any, result: Any, *, parent: str | None = None, **kw: Any) -> str:
        return self.span(
            f"execute_tool {name}",
            {
                A.GEN_AI_OPERATION_NAME: A.OP_EXECUTE_TOOL,
                A.GEN_AI_TOOL_NAME: name,
                A.GEN_AI_TOOL_CALL_ARGUMENTS: json.dumps(args),
                A.GEN_AI_TOOL_CALL_RESULT: json.dumps(result),
            },
            parent=parent,
            **kw,
        )

    def reward(
        self,
        value: float,
        *,
        name: str | None = None,
        step: int | None = None,
        target_span: str | None = None,
        parent: str | None = None,
        **kw: Any,
    ) -> str:
        attrs: dict[str, Any] = {A.GEN_AI_OPERATION_NAME: A.OP_REWARD, A.REWARD_VALUE: repr(float(value))}
        if name:
            attrs[A.REWARD_NAME] = name
        if step is not None:
            attrs[A.REWARD_STEP] = str(step)
        if target_span:
            attrs[A.REWARD_SPAN_ID] = target_span
        return self.span(A.SPAN_REWARD, attrs, parent=parent, dur_ms=0, **kw)


def _collector_columns(row: dict[str, Any]) -> dict[str, Any]:
    """The RL columns as the collector writes them (same values the DEFAULT expressions compute)."""
    a = row["SpanAttributes"]

    def f(*keys: str) -> str:
        return next((a[k] for k in keys if a.get(k)), "")

    def num(raw: str, cast: type) -> Any:
        try:
            return cast(float(raw)) if raw else None
        except ValueError:
            return None

    rollout_id, source = C.rollout_identity(a, row["TraceId"])
    return {
        "RolloutId": rollout_id,
        "RolloutSource": source,
        "TaskId": C.task_id_of(a),
        "Attempt": num(f(*C.ATTEMPT_KEYS), int) or 0,
        "Operation": f(A.GEN_AI_OPERATION_NAME),
        "AgentName": C.agent_name_of(a),
        "ProviderName": f(A.GEN_AI_PROVIDER_NAME, A.OLD_GEN_AI_SYSTEM),
        "RequestModel": f(A.GEN_AI_REQUEST_MODEL),
        "ResponseModel": f(A.GEN_AI_RESPONSE_MODEL),
        "ResponseId": f(A.GEN_AI_RESPONSE_ID),
        "ToolName": f(A.GEN_AI_TOOL_NAME),
        "ToolCallId": f(A.GEN_AI_TOOL_CALL_ID),
        "InputTokens": num(f(A.GEN_AI_USAGE_INPUT_TOKENS), int) or 0,
        "OutputTokens": num(f(A.GEN_AI_USAGE_OUTPUT_TOKENS), int) or 0,
        "RewardValue": num(f(A.REWARD_VALUE), float),
        "RewardName": f(A.REWARD_NAME),
        "GapLevel": num(f(A.GAP_LEVEL), int) if f(A.GAP_LEVEL) else -1,
        "GapNodeId": f(A.GAP_NODE_ID),
    }


def insert_spans(client: Any, database: str, rows: list[dict[str, Any]], mode: str = "contrib") -> None:
    if not rows:
        return
    if mode == "collector":
        rows = [{**r, **_collector_columns(r)} for r in rows]
    names = list(rows[0])
    client.insert(f"{database}.{ddl.SPANS_TABLE}", [[r[n] for n in names] for r in rows], column_names=names)


def post_reward(
    client: Any,
    database: str,
    rollout_id: str,
    value: float,
    *,
    name: str = "primary",
    step: int = -1,
    target_span: str = "",
    task_id: str = "",
    when: datetime | None = None,
    reward_id: str | None = None,
    target: str = "rollout",
) -> None:
    """A reward posted after the rollout ended (the collector's rewards API writes these rows)."""
    client.insert(
        f"{database}.{ddl.REWARDS_TABLE}",
        [
            [
                reward_id or new_id(),
                rollout_id,
                task_id,
                0,
                name,
                float(value),
                step,
                target_span,
                "api",
                when or datetime.now(timezone.utc),
                {A.REWARD_TARGET: target},
            ]
        ],
        column_names=[
            "RewardId",
            "RolloutId",
            "TaskId",
            "Attempt",
            "Name",
            "Value",
            "Step",
            "TargetSpanId",
            "Source",
            "Timestamp",
            "Attributes",
        ],
    )


def _as_string(value: Any) -> str:
    """An attribute value as the contrib ClickHouse exporter stores it (pcommon AsString)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(list(value))


def rows_from_readable(spans: list[Any], service: str = "agent-svc") -> list[dict[str, Any]]:
    """OpenTelemetry SDK ``ReadableSpan``s as spans-table rows (what the contrib exporter would write)."""
    rows = []
    for s in spans:
        parent = s.parent
        rows.append(
            {
                "Timestamp": datetime.fromtimestamp(s.start_time / 1e9, tz=timezone.utc),
                "TraceId": f"{s.context.trace_id:032x}",
                "SpanId": f"{s.context.span_id:016x}",
                "ParentSpanId": f"{parent.span_id:016x}" if parent else "",
                "SpanName": s.name,
                "SpanKind": str(s.kind.name).title(),
                "ServiceName": service,
                "ResourceAttributes": {"service.name": service},
                "SpanAttributes": {k: _as_string(v) for k, v in (s.attributes or {}).items()},
                "Duration": max(0, (s.end_time or s.start_time) - s.start_time),
                "StatusCode": str(s.status.status_code.name).title(),
                "StatusMessage": s.status.description or "",
                "Events.Timestamp": [
                    datetime.fromtimestamp(e.timestamp / 1e9, tz=timezone.utc) for e in s.events
                ],
                "Events.Name": [e.name for e in s.events],
                "Events.Attributes": [
                    {k: _as_string(v) for k, v in (e.attributes or {}).items()} for e in s.events
                ],
            }
        )
    return rows
