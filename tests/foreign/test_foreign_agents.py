"""Third-party instrumentations only, no lightspan code in the agent: real packages in their own venvs,
the official OTLP exporter, a real ``lightspan collector`` process, the local OpenAI-compatible server,
then ``convert``, checked call by call (order, prompts, responses, tool calls, observations, usage, rewards).

The venvs are built once and cached (tests/foreign/venvs.py); a package that cannot be installed skips
its test with pip's message.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lightspan.converters import ConvertConfig, Selection, Trajectory, convert, iter_trajectories
from tests.foreign.venvs import VenvUnavailable, venv_python
from tests.support.llm_server import LLMServer, Reply, ToolCall

pytestmark = pytest.mark.slow
_RUNS = itertools.count()
AGENT = Path(__file__).with_name("agent.py")
LIGHTSPAN = Path(sys.executable).with_name("lightspan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CollectorProcess:
    """``lightspan collector`` as its own process on free loopback ports."""

    def __init__(self, tmp: Path):
        self.http, self.grpc, self.query_port = _free_port(), _free_port(), _free_port()
        self.log = open(tmp / "collector.log", "w")  # noqa: SIM115 - closed in stop()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIGHTSPAN_"))}
        self.proc = subprocess.Popen(
            [
                str(LIGHTSPAN),
                "collector",
                "--data-dir",
                str(tmp / "data"),
                "--http-endpoint",
                f"127.0.0.1:{self.http}",
                "--grpc-endpoint",
                f"127.0.0.1:{self.grpc}",
                "--query-endpoint",
                f"127.0.0.1:{self.query_port}",
                "--batch-timeout",
                "0.1",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"collector did not get ready: {(tmp / 'collector.log').read_text()[-2000:]}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    @property
    def dsn(self) -> str:
        return f"http://127.0.0.1:{self.query_port}/lightspan"

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        import clickhouse_connect

        client = clickhouse_connect.get_client(dsn=self.dsn)
        try:
            return [tuple(r) for r in client.query(sql).result_rows]
        finally:
            client.close()

    def post_reward(self, doc: dict[str, Any]) -> None:
        req = urllib.request.Request(
            f"{self.endpoint}/v1/rewards",
            data=json.dumps(doc).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def collector(tmp_path_factory) -> Iterator[CollectorProcess]:
    c = CollectorProcess(tmp_path_factory.mktemp("foreign-collector"))
    yield c
    c.stop()


def _reply(body: dict[str, Any]) -> Reply:
    """The model: call add(k, 3) for 'What is k+3?', then answer with the tool's result."""
    msgs = body["messages"]
    question = next(m["content"] for m in msgs if m.get("role") == "user")
    k = int(re.search(r"What is (\d+)\+3", question).group(1))  # type: ignore[union-attr]
    if any(m.get("role") == "tool" for m in msgs):
        return Reply(f"The answer is {k + 3}")
    return Reply(tool_calls=[ToolCall("add", {"a": k, "b": 3}, id=f"call_{k}")])


def run_agent(name: str, collector: CollectorProcess, episodes: int, env_extra: dict[str, str]) -> str:
    """Run tests/foreign/agent.py in ``name``'s venv; return the service name its spans carry."""
    try:
        python = venv_python(name)
    except VenvUnavailable as exc:
        pytest.skip(f"{name} cannot be installed here: {exc}")
    before = _count(collector)
    service = f"foreign-{name}-{next(_RUNS)}"
    with LLMServer(reply=_reply) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIGHTSPAN_", "OPENAI_"))}
        env.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
                "OPENAI_BASE_URL": server.openai_url,
                "OPENAI_API_KEY": "test",
                "FOREIGN_AGENT_SERVICE": service,
                **env_extra,
            }
        )
        out = subprocess.run(
            [str(python), str(AGENT), name, str(episodes)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        assert len(server.requests) == 2 * episodes
    deadline = time.monotonic() + 30  # acknowledged spans are spooled; wait for the insert
    while _count(collector) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    return service


def _count(collector: CollectorProcess) -> int:
    return int(collector.query("SELECT count() FROM lightspan.otel_traces")[0][0])


def trajectories(collector: CollectorProcess, service: str) -> dict[str, Trajectory]:
    cfg = ConvertConfig(dsn=collector.dsn, selection=Selection(service=service))
    return {t.rollout_id: t for t in iter_trajectories(cfg)}


def check_episode(t: Trajectory, k: int) -> None:
    """The two calls of episode k, in order: a tool call, then the answer that observed its result."""
    assert len(t.calls) == 2, [c.completion for c in t.calls]
    first, second = t.calls
    assert [m["role"] for m in first.prompt] == ["system", "user"]
    assert first.prompt[1]["content"] == f"What is {k}+3?"
    call = json.loads(first.completion[0]["content"])["tool_call"]
    assert (call["name"], call["arguments"]) == ("add", {"a": k, "b": 3})
    assert [m["role"] for m in second.prompt] == ["system", "user", "assistant", "tool"]
    assert second.prompt[3]["content"] == str(k + 3)
    assert json.loads(second.prompt[2]["content"])["tool_call"]["name"] == "add"
    assert second.completion == [{"role": "assistant", "content": f"The answer is {k + 3}"}]
    assert first.input_tokens > 0 and second.output_tokens == 4
    assert first.model == "tiny" and [c.step for c in t.calls] == [0, 1]


def by_session(collector: CollectorProcess, service: str) -> dict[str, Trajectory]:
    """Session rollouts (the agent's session ids are ``{service}-session-{k}``) as ``session-{k}``."""
    return {rid.removeprefix(f"{service}-"): t for rid, t in trajectories(collector, service).items()}


def by_episode(collector: CollectorProcess, service: str) -> list[Trajectory]:
    """Trace rollouts in episode order (by their first span)."""
    return sorted(trajectories(collector, service).values(), key=lambda t: t.created_ns)


def test_openinference_openai(collector):
    service = run_agent("openinference-openai", collector, 2, {})
    collector.post_reward({"session_id": f"{service}-session-1", "value": 0.7})  # by the id the user has
    trajs = by_session(collector, service)
    assert sorted(trajs) == ["session-0", "session-1"]  # the session is the rollout; the root joined it
    for k in (0, 1):
        t = trajs[f"session-{k}"]
        check_episode(t, k)
        assert (t.task_id, t.attempt, t.agent_name) == ("add-3", k, f"episode {k}")
    assert trajs["session-0"].final_reward == 1.0  # the gen_ai.evaluation.result event on the root
    assert trajs["session-1"].final_reward == 0.7  # a posted reward wins over the evaluation event


def test_openllmetry_openai(collector):
    service = run_agent("openllmetry-openai", collector, 2, {"TRACELOOP_TRACE_CONTENT": "true"})
    trajs = by_episode(collector, service)
    assert len(trajs) == 2  # no session: one rollout per trace (episode)
    collector.post_reward({"trace_id": trajs[1].rollout_id, "value": 0.25})
    trajs = by_episode(collector, service)
    for k, t in enumerate(trajs):
        check_episode(t, k)
        assert t.rollout_id == t.trace_ids[0]
    assert [t.final_reward for t in trajs] == [1.0, 0.25]


OPENAI_V2 = {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental"}


def test_openai_v2_content_on_spans(collector):
    env = {**OPENAI_V2, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only"}
    service = run_agent("openai-v2", collector, 2, env)
    trajs = by_episode(collector, service)
    for k, t in enumerate(trajs):
        check_episode(t, k)
    assert [t.final_reward for t in trajs] == [1.0, 0.0]


def test_openai_v2_content_as_log_records(collector):
    """event_only: the spans hold no content; the OTLP log records (POST /v1/logs) do, joined by span id."""
    env = {**OPENAI_V2, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "event_only"}
    service = run_agent("openai-v2", collector, 1, env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        logs = collector.query(f"SELECT count() FROM lightspan.otel_logs WHERE ServiceName = '{service}'")
        if logs[0][0] >= 2:
            break
        time.sleep(0.2)
    (t,) = trajectories(collector, service).values()
    check_episode(t, 0)


def test_openai_v2_without_content_is_reported_with_the_switch(collector, tmp_path):
    service = run_agent(
        "openai-v2", collector, 1, {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental"}
    )
    report = convert(
        ConvertConfig(dsn=collector.dsn, output_dir=str(tmp_path), selection=Selection(service=service))
    )
    assert report.rollouts_converted == 0 and report.calls_skipped == {"no_content": 2}
    assert "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT" in report.summary()


def test_openinference_langchain_agent_with_a_tool(collector):
    service = run_agent("openinference-langchain", collector, 2, {})
    trajs = by_session(collector, service)
    assert sorted(trajs) == ["session-0", "session-1"]
    for k in (0, 1):
        t = trajs[f"session-{k}"]
        check_episode(t, k)
        (tool,) = t.tools  # the TOOL span: its arguments and result, not the serialized ToolMessage
        assert (tool.tool_name, tool.arguments, tool.result) == ("add", {"a": k, "b": 3}, k + 3)
        assert t.calls[0].end_ns <= tool.start_ns <= t.calls[1].start_ns
        assert (t.task_id, t.attempt) == ("add-3", k)
    assert [trajs[f"session-{k}"].final_reward for k in (0, 1)] == [1.0, 0.0]


def test_the_third_party_packages_stay_out_of_lightspans_own_environment():
    """They live in their cached venvs only: lightspan's install (and this interpreter) never sees them."""
    import importlib.util

    from tests.foreign.venvs import root

    repo = Path(__file__).resolve().parents[2]
    assert not root().resolve().is_relative_to(repo)
    for module in (
        "openinference.instrumentation.openai",
        "openinference.instrumentation.langchain",
        "opentelemetry.instrumentation.openai_v2",
        "opentelemetry.instrumentation.openai",
    ):  # (LangChain itself may be in lightspan's dev venv, for lightspan's own LangChain instrumentation)
        try:
            found = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            found = None
        assert found is None, f"{module} leaked into {sys.prefix}"


def test_openinference_beside_lightspans_own_instrumentation_is_one_call_per_request(collector):
    """Two instrumentations on one openai client record each request twice (nested LLM spans): one row
    each, with lightspan's token ids; emit_reward's reward span and evaluation event count once."""
    from tests.support.llm_server import token_ids_for

    service = run_agent("openinference-openai+lightspan", collector, 2, {})
    llm_spans = collector.query(
        f"SELECT count() FROM lightspan.otel_traces WHERE ServiceName = '{service}' AND Operation = 'chat'"
    )[0][0]
    assert llm_spans == 8  # 2 episodes x 2 requests x 2 instrumentations
    trajs = trajectories(collector, service)
    assert sorted(trajs) == [f"{service}-r0", f"{service}-r1"]
    for k in (0, 1):
        t = trajs[f"{service}-r{k}"]
        check_episode(t, k)
        assert t.calls[1].completion_token_ids == token_ids_for(f"The answer is {k + 3}")
        assert (t.task_id, t.attempt, t.agent_name) == ("add-3", k, "calculator")
        assert [(w.source, w.value) for w in t.rewards] == [("span", 1.0 if k == 0 else 0.0)]
