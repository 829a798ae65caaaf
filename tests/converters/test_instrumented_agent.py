"""End to end from the agent side: lightspan's instrumentation records a real openai client talking to a local
server, the spans land in the store as the contrib exporter writes them, and ``convert`` rebuilds the rollout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

openai = pytest.importorskip("openai")
instrumentation = pytest.importorskip("lightspan.instrumentation")

from lightspan.converters import ConvertConfig, convert, iter_trajectories, load_rows  # noqa: E402
from tests.converters.builder import rows_from_readable  # noqa: E402
from tests.support.llm_server import LLMServer, Reply, ToolCall, token_ids_for  # noqa: E402
from tests.support.spans import memory_exporter, memory_provider  # noqa: E402


def test_instrumented_agent_rollout_becomes_training_rows(store, tmp_path):
    from lightspan.instrumentation import emit_reward, instrument, rollout, tool

    memory_provider()
    instrument()
    exporter = memory_exporter()

    @tool
    def add(a: int, b: int) -> int:
        return a + b

    with LLMServer() as server:
        client = openai.OpenAI(base_url=server.openai_url, api_key="test", max_retries=0)
        server.queue(
            Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3}, id="call_1")]), Reply("the sum is 5")
        )
        with rollout("task-e2e", rollout_id="e2e-1", agent_name="calc") as r:
            msgs = [{"role": "user", "content": "what is 2 plus 3"}]
            first = client.chat.completions.create(
                model="tiny", messages=msgs, extra_body={"return_token_ids": True}
            )
            call = first.choices[0].message.tool_calls[0]
            result = add(2, 3)
            msgs += [
                first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": str(result)},
            ]
            stream = client.chat.completions.create(
                model="tiny", messages=msgs, stream=True, extra_body={"return_token_ids": True}
            )
            answer = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
            emit_reward(1.0 if "5" in answer else 0.0)
        assert r.rollout_id == "e2e-1"
    spans = [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get("lightspan.rollout.id") == "e2e-1"
    ]
    store.insert(rows_from_readable(spans))
    (traj,) = iter_trajectories(ConvertConfig(dsn=store.dsn))
    assert traj.task_id == "task-e2e" and traj.final_reward == 1.0 and traj.agent_name == "calc"
    # emit_reward also wrote the conventions' evaluation event on the rollout span: one reward, not two
    (agent_span,) = [s for s in spans if s.name == "invoke_agent calc"]
    assert [e.name for e in agent_span.events] == ["gen_ai.evaluation.result"]
    assert [(w.source, w.value) for w in traj.rewards] == [("span", 1.0)]
    assert len(traj.calls) == 2 and [t.tool_name for t in traj.tools] == ["add"]
    assert traj.calls[0].prompt[-1] == {"role": "user", "content": "what is 2 plus 3"}
    assert traj.calls[1].completion[0]["content"] == "the sum is 5"
    assert traj.calls[1].prompt[-1]["role"] == "tool"
    assert traj.calls[1].completion_token_ids == token_ids_for("the sum is 5")
    report = convert(
        ConvertConfig(dsn=store.dsn, output_dir=str(tmp_path), formats=("trajectory-json", "sft"))
    )
    assert report.rollouts_converted == 1
    assert len(load_rows(tmp_path / "sft").to_list()) == 2
