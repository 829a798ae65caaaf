"""GenAI client metrics through the official OTLP metrics exporter, into a real gRPC sink."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from lightspan.instrumentation._metrics import DURATION_BUCKETS, TOKEN_BUCKETS
from lightspan.instrumentation.anthropic import AnthropicInstrumentor
from lightspan.instrumentation.openai import OpenAIInstrumentor
from lightspan.schemas import attributes as A
from tests.support.llm_server import Reply
from tests.support.otlp_sink import OTLPSink

MSGS: list[Any] = [{"role": "user", "content": "two words"}]


@pytest.fixture
def metered(instrumented):
    """openai and anthropic instrumented with a MeterProvider exporting over OTLP/gRPC to a sink."""
    with OTLPSink() as sink:
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=sink.endpoint, insecure=True), export_interval_millis=3_600_000
        )
        provider = MeterProvider(metric_readers=[reader])
        insts = [OpenAIInstrumentor(), AnthropicInstrumentor()]
        for inst in insts:
            inst.uninstrument()
            inst.instrument(meter_provider=provider)
        try:
            yield sink, provider
        finally:
            for inst in insts:  # back to the session's set-up (global providers)
                inst.uninstrument()
                inst.instrument()
            provider.shutdown()


def _by_name(metrics):
    out: dict[str, list] = {}
    for m in metrics:
        out.setdefault(m.name, []).append(m)
    return out


def test_duration_and_token_usage_histograms_arrive_over_otlp(exporter, server, metered):
    sink, provider = metered
    oai = openai.OpenAI(base_url=server.openai_url, api_key="test", max_retries=0)
    ant = anthropic.Anthropic(base_url=server.url, api_key="test", max_retries=0)
    server.queue("one two three", "streamed four five", Reply(error=(400, "bad model")), "claude says hi")
    oai.chat.completions.create(model="m", messages=MSGS)
    list(oai.chat.completions.create(model="m", messages=MSGS, stream=True))
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="m", messages=MSGS)
    ant.messages.create(model="claude-x", max_tokens=8, messages=MSGS)
    assert provider.force_flush(10_000)
    metrics = _by_name(
        sink.wait_for_metrics(
            lambda ms: (
                {m.name for m in ms} >= {A.GEN_AI_CLIENT_OPERATION_DURATION, A.GEN_AI_CLIENT_TOKEN_USAGE}
            ),
            timeout=20,
        )
    )

    durations = metrics[A.GEN_AI_CLIENT_OPERATION_DURATION]
    assert {m.unit for m in durations} == {"s"}
    points = [p for m in durations for p in m.points]
    assert all(p.bounds == DURATION_BUCKETS for p in points)  # the conventions' advisory boundaries
    ok = [p for p in points if A.ERROR_TYPE not in p.attributes]
    failed = [p for p in points if A.ERROR_TYPE in p.attributes]
    by_provider = {p.attributes[A.GEN_AI_PROVIDER_NAME]: p for p in ok}
    assert by_provider["openai"].count == 2 and by_provider["anthropic"].count == 1
    assert by_provider["openai"].attributes == {
        A.GEN_AI_OPERATION_NAME: "chat",
        A.GEN_AI_PROVIDER_NAME: "openai",
        A.GEN_AI_REQUEST_MODEL: "m",
        A.GEN_AI_RESPONSE_MODEL: "m",
        A.SERVER_ADDRESS: "127.0.0.1",
        A.SERVER_PORT: server.port,
    }
    (error,) = failed
    assert error.count == 1 and error.attributes[A.ERROR_TYPE] == "BadRequestError"
    assert A.GEN_AI_RESPONSE_MODEL not in error.attributes

    usage = metrics[A.GEN_AI_CLIENT_TOKEN_USAGE]
    assert {m.unit for m in usage} == {"{token}"}
    tokens = {
        (p.attributes[A.GEN_AI_PROVIDER_NAME], p.attributes[A.GEN_AI_TOKEN_TYPE]): p
        for m in usage
        for p in m.points
    }
    assert all(p.bounds == TOKEN_BUCKETS for p in tokens.values())
    assert A.ERROR_TYPE not in {k for p in tokens.values() for k in p.attributes}
    # two openai calls with usage (the streamed one through the usage chunk lightspan asked for)
    assert (tokens["openai", "input"].count, tokens["openai", "input"].sum) == (2, 4)
    assert (tokens["openai", "output"].count, tokens["openai", "output"].sum) == (2, 6)
    assert (tokens["anthropic", "output"].sum, tokens["anthropic", "input"].sum) == (3, 2)
    scopes = {m.scope for m in durations}
    assert scopes == {"lightspan.instrumentation.openai", "lightspan.instrumentation.anthropic"}
