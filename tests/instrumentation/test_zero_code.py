"""Zero-code: the example agent under ``opentelemetry-instrument`` exports the contract (spans and the
GenAI metrics) over real OTLP/gRPC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightspan.schemas import attributes as A
from tests.support.llm_server import LLMServer, Reply, ToolCall, token_ids_for
from tests.support.otlp_sink import OTLPSink

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = Path(sys.executable).with_name("opentelemetry-instrument")


def _script(body):
    """First turn: call both tools; second turn: answer with their result."""
    if any(m.get("role") == "tool" for m in body["messages"]):
        return Reply("The answer is 20")
    return Reply(
        tool_calls=[
            ToolCall("add", {"a": 2, "b": 3}, id="call_add"),
            ToolCall("multiply", {"a": 5, "b": 4}, id="call_mul"),
        ]
    )


@pytest.mark.slow
def test_example_agent_under_opentelemetry_instrument_exports_everything():
    assert LAUNCHER.exists(), "opentelemetry-instrument is installed with opentelemetry-instrumentation"
    with LLMServer(reply=_script) as server, OTLPSink() as sink:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIGHTSPAN_"))}
        env.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,  # the endpoint, and ...
                "OTEL_METRICS_EXPORTER": "otlp",  # ... the GenAI metrics too (the distro defaults to none)
                "OPENAI_BASE_URL": server.openai_url,
                "OPENAI_API_KEY": "test",
            }
        )
        out = subprocess.run(
            [
                str(LAUNCHER),
                sys.executable,
                str(REPO / "examples" / "openai_agent.py"),
                "--task-id",
                "calc-9",
                "--attempt",
                "2",
                "--model",
                "tiny",
                "--token-ids",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["answer"] == "The answer is 20"
        spans = sink.wait_for(lambda s: any(x.name == "invoke_agent calculator" for x in s), timeout=30)
        metrics = sink.wait_for_metrics(
            lambda ms: (
                {A.GEN_AI_CLIENT_OPERATION_DURATION, A.GEN_AI_CLIENT_TOKEN_USAGE} <= {m.name for m in ms}
            ),
            timeout=30,
        )
    duration = [p for m in metrics if m.name == A.GEN_AI_CLIENT_OPERATION_DURATION for p in m.points]
    assert sum(p.count for p in duration) == 2  # the two chat calls
    assert {p.attributes[A.GEN_AI_REQUEST_MODEL] for p in duration} == {"tiny"}
    usage = {
        p.attributes[A.GEN_AI_TOKEN_TYPE]: p
        for m in metrics
        if m.name == A.GEN_AI_CLIENT_TOKEN_USAGE
        for p in m.points
    }
    assert usage["input"].count == usage["output"].count == 2
    by_name: dict[str, list] = {}
    for s in spans:
        by_name.setdefault(s.name, []).append(s)
    assert sorted(by_name) == [
        "chat tiny",
        "execute_tool add",
        "execute_tool multiply",
        "invoke_agent calculator",
        "lightspan.reward",
    ]
    assert len(by_name["chat tiny"]) == 2
    agent = by_name["invoke_agent calculator"][0]
    assert {s.attributes[A.ROLLOUT_ID] for s in spans} == {result["rollout_id"]}
    assert {s.attributes[A.TASK_ID] for s in spans} == {"calc-9"}
    assert {s.attributes[A.ATTEMPT] for s in spans} == {2}
    assert {s.trace_id for s in spans} == {agent.trace_id}
    assert all(s.parent_span_id == agent.span_id for s in spans if s is not agent)
    first, second = by_name["chat tiny"]
    assert first.attributes[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert first.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert json.loads(first.attributes[A.GEN_AI_TOOL_DEFINITIONS])[0]["name"] == "add"
    assert (
        json.loads(second.attributes[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"]
        == "The answer is 20"
    )
    roles = [m["role"] for m in json.loads(second.attributes[A.GEN_AI_INPUT_MESSAGES])]
    assert roles == ["system", "user", "assistant", "tool", "tool"]
    assert json.loads(second.attributes[A.LLM_RESPONSE_TOKEN_IDS]) == token_ids_for("The answer is 20")
    assert A.LLM_PROMPT_TOKEN_IDS in second.attributes and A.LLM_RESPONSE_LOGPROBS in second.attributes
    add_span = by_name["execute_tool add"][0]
    assert add_span.attributes[A.GEN_AI_TOOL_CALL_ID] == "call_add"
    assert json.loads(add_span.attributes[A.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"a": 2, "b": 3}
    assert add_span.attributes[A.GEN_AI_TOOL_CALL_RESULT] == "5"
    assert by_name["execute_tool multiply"][0].attributes[A.GEN_AI_TOOL_CALL_RESULT] == "20"
    reward = by_name["lightspan.reward"][0]
    assert reward.attributes[A.REWARD_VALUE] == 1.0 and reward.attributes[A.REWARD_NAME] == "primary"
    assert agent.resource.get("telemetry.sdk.language") == "python"
