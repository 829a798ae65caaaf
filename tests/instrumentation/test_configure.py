"""configure(): real OTLP exporters (gRPC default, HTTP optional) into real sinks, in fresh processes
(the global tracer provider can be set once per process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightspan.instrumentation.config import make_exporter
from lightspan.schemas import attributes as A
from tests.support.otlp_sink import OTLPHTTPSink, OTLPSink

REPO = Path(__file__).resolve().parents[2]

AGENT = """
import sys
from lightspan.instrumentation import configure, emit_reward, rollout, tool
{configure}
assert configure() is provider, "configure must be idempotent"

@tool
def lookup(q):
    return q.upper()

with rollout("task-c", attempt=1, agent_name="cfg"):
    lookup("x")
    emit_reward(0.25)
provider.shutdown()
"""


def _run(configure_line: str, extra_env: dict[str, str] | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIGHTSPAN_"))}
    env.update(extra_env or {})
    out = subprocess.run(
        [sys.executable, "-c", AGENT.format(configure=configure_line)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]


def _check(spans, service):
    names = sorted(s.name for s in spans)
    assert names == ["execute_tool lookup", "invoke_agent cfg", "lightspan.reward"]
    assert {s.resource["service.name"] for s in spans} == {service}
    assert len({s.attributes[A.ROLLOUT_ID] for s in spans}) == 1
    assert {s.attributes[A.TASK_ID] for s in spans} == {"task-c"}
    tool_span = next(s for s in spans if s.name == "execute_tool lookup")
    assert tool_span.attributes[A.GEN_AI_TOOL_CALL_RESULT] == "X"


def test_configure_grpc_default_with_headers():
    with OTLPSink() as sink:
        _run(
            f"provider = configure({sink.endpoint!r}, 'svc-grpc', headers={{'x-team': 'rl'}}, instrument=False)"
        )
        spans = sink.wait_for(lambda s: len(s) >= 3)
    _check(spans, "svc-grpc")
    assert sink.metadata[0]["x-team"] == "rl"


def test_configure_http_protobuf():
    with OTLPHTTPSink() as sink:
        _run(f"provider = configure({sink.endpoint!r}, 'svc-http', protocol='http/protobuf')")
        spans = sink.wait_for(lambda s: len(s) >= 3)
    _check(spans, "svc-http")


def test_configure_from_standard_otel_env_and_capture_switch():
    with OTLPSink() as sink:
        _run(
            "provider = configure()",
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
                "OTEL_SERVICE_NAME": "svc-env",
                "LIGHTSPAN_CAPTURE_CONTENT": "false",
            },
        )
        spans = sink.wait_for(lambda s: len(s) >= 3)
    tool_span = next(s for s in spans if s.name == "execute_tool lookup")
    assert {s.resource["service.name"] for s in spans} == {"svc-env"}
    assert A.GEN_AI_TOOL_CALL_RESULT not in tool_span.attributes
    assert tool_span.attributes[A.GEN_AI_TOOL_NAME] == "lookup"


def test_bad_protocol_is_named():
    with pytest.raises(
        ValueError, match=r"protocol must be one of \['grpc', 'http/protobuf'\], got 'thrift'"
    ):
        make_exporter("http://127.0.0.1:1", protocol="thrift")
