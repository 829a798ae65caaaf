"""Flattening, convention mapping (checked on the stored row), redaction, size limit, spool and config, without sockets."""

from __future__ import annotations

import json
import os

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from lightspan.collector import CollectorConfig
from lightspan.collector.otlp import flatten, float_str
from lightspan.collector.redact import Redactor, hash_value
from lightspan.collector.spool import KIND_TRACES, Spool
from lightspan.schemas import attributes as A
from lightspan.schemas import env


def _one(attrs: dict, name: str = "s", redactor: Redactor | None = None) -> tuple[dict, dict]:
    req = ExportTraceServiceRequest()
    span = (
        req.resource_spans.add()
        .scope_spans.add()
        .spans.add(name=name, trace_id=os.urandom(16), span_id=os.urandom(8))
    )
    for k, v in attrs.items():
        val = (
            AnyValue(string_value=v)
            if isinstance(v, str)
            else AnyValue(int_value=v)
            if isinstance(v, int)
            else AnyValue(double_value=v)
        )
        span.attributes.append(KeyValue(key=k, value=val))
    flat = flatten(req, redactor)
    row = {k: v[0] for k, v in flat.columns.items()}
    return row["SpanAttributes"], row


def _stored(client, attrs: dict, name: str = "s") -> tuple[dict, dict]:
    """Flatten, write through the collector's ClickHouse sink, and read the stored row back (RL columns
    are filled by the table's DEFAULT expressions from the mapped attributes)."""
    from lightspan.collector.writer import ClickHouseSink
    from lightspan.schemas import ddl

    attrs_out, row = _one(attrs, name)
    flat_cols = {k: [v] for k, v in row.items()}
    ClickHouseSink(client, "lightspan").write_spans(flat_cols, 1)
    names = list(ddl.LIGHTSPAN_SPAN_COLUMNS)
    got = client.query(
        f"SELECT {', '.join(names)} FROM lightspan.otel_traces FINAL WHERE SpanId = {{s:String}}",
        parameters={"s": row["SpanId"]},
    ).result_rows[0]
    return attrs_out, {**row, **dict(zip(names, got, strict=True))}


@pytest.mark.parametrize(
    "value,text",
    [(1.0, "1"), (0.5, "0.5"), (1e-7, "1e-7"), (0.00001, "0.00001"), (1e21, "1e+21"), (-2.25, "-2.25")],
)
def test_doubles_print_like_go_json(value, text):
    assert float_str(value) == text


def test_openinference_llm_span_maps_to_contract(ch_client):
    attrs, row = _stored(
        ch_client,
        {
            A.OPENINFERENCE_SPAN_KIND: "LLM",
            A.OI_LLM_MODEL_NAME: "gpt-4o",
            A.OI_LLM_PROVIDER: "openai",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "hi",
            A.OI_LLM_TOKEN_COUNT_PROMPT: 5,
            A.OI_LLM_TOKEN_COUNT_COMPLETION: 2,
        },
    )
    assert (
        row["Operation"],
        row["RequestModel"],
        row["ProviderName"],
        row["InputTokens"],
        row["OutputTokens"],
    ) == ("chat", "gpt-4o", "openai", 5, 2)
    assert json.loads(attrs[A.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]}
    ]
    assert attrs[A.MAPPED_FROM] == "openinference"


def test_openllmetry_and_old_genai_keys_map_without_overwriting(ch_client):
    attrs, row = _stored(
        ch_client,
        {
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": "be brief",
            A.OPENLLMETRY_REQUEST_TYPE: "chat",
            A.OLD_GEN_AI_SYSTEM: "anthropic",
            A.OLD_GEN_AI_USAGE_PROMPT_TOKENS: 9,
            A.GEN_AI_USAGE_INPUT_TOKENS: 11,
        },
    )
    assert row["Operation"] == "chat" and row["ProviderName"] == "anthropic"
    assert row["InputTokens"] == 11  # the contract key the span already had wins
    assert json.loads(attrs[A.GEN_AI_INPUT_MESSAGES])[0]["role"] == "system"


def test_agent_lightning_reward_spans_become_reward_rows(ch_client):
    _, row = _stored(
        ch_client,
        {
            A.AGL_ROLLOUT_ID: "ro-1",
            f"{A.AGL_REWARD_PREFIX}.0.name": "acc",
            f"{A.AGL_REWARD_PREFIX}.0.value": 0.75,
        },
        name=A.AGL_ANNOTATION_SPAN,
    )
    assert (row["RolloutId"], row["RewardValue"], row["RewardName"], row["Operation"]) == (
        "ro-1",
        0.75,
        A.REWARD_DEFAULT_NAME,
        A.OP_REWARD,
    )
    _, legacy = _stored(ch_client, {A.AGL_LEGACY_REWARD_KEY: 1.0}, name=A.AGL_LEGACY_REWARD_SPAN)
    assert (legacy["RewardValue"], legacy["RewardName"]) == (1.0, "primary")


def test_redaction_drops_and_hashes_and_size_limit_keeps_json_valid():
    red = Redactor(drop=["secret", "*.api_key"], hash=["user.email"], max_attribute_bytes=100)
    big = json.dumps([{"role": "user", "content": "x" * 500}])
    attrs, _ = _one(
        {
            "secret": "a",
            "openai.api_key": "k",
            "user.email": "a@b.c",
            A.GEN_AI_INPUT_MESSAGES: big,
            "plain": "é" * 200,
        },
        redactor=red,
    )
    assert "secret" not in attrs and "openai.api_key" not in attrs
    assert attrs["user.email"] == hash_value("a@b.c")
    assert len(attrs[A.GEN_AI_INPUT_MESSAGES].encode()) <= 100 and isinstance(
        json.loads(attrs[A.GEN_AI_INPUT_MESSAGES]), str
    )
    assert len(attrs["plain"].encode()) <= 100
    assert set(attrs[A.TRUNCATED].split(",")) == {A.GEN_AI_INPUT_MESSAGES, "plain"}


def test_spool_replays_uncommitted_records_and_ignores_a_torn_tail(tmp_path):
    sp = Spool(tmp_path)
    a = sp.append(KIND_TRACES, b"first")
    sp.append(KIND_TRACES, b"second")
    sp.commit({a: 1})
    sp._file.write(b"\x10\x00\x00\x00garbage")  # a crash mid-write leaves a torn record
    sp._file.close()
    again = Spool(tmp_path)
    got = [(kind, payload) for _, kind, payload in again.replay()]
    assert got == [
        (KIND_TRACES, b"first"),
        (KIND_TRACES, b"second"),
    ]  # same segment: both kept until all committed
    again.commit({a: 2})
    again.close()
    assert list(tmp_path.iterdir()) == []  # committed and empty segments are removed


def test_config_precedence_flags_then_env_then_yaml_then_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv(env.LIGHTSPAN_BATCH_MAX_SPANS, "111")
    monkeypatch.setenv(env.LIGHTSPAN_QUEUE_MAX_SPANS, "not-a-number")  # bad env: warn and fall back
    monkeypatch.setenv(env.LIGHTSPAN_REDACT_DROP, "a,b")
    assert CollectorConfig.load().batch_max_spans == 111
    assert CollectorConfig.load().queue_max_spans == 50_000
    assert CollectorConfig.load().redact_drop == ["a", "b"]
    path = tmp_path / "c.yaml"
    path.write_text("batch_max_spans: 222\nbatch_timeout_s: 3\nauth_token: t\n")
    loaded = CollectorConfig.load(path)
    assert (loaded.batch_max_spans, loaded.batch_timeout_s) == (111, 3.0)  # env beats the file
    assert CollectorConfig.load(path, batch_max_spans=333).batch_max_spans == 333  # a flag beats env
    monkeypatch.delenv(env.LIGHTSPAN_BATCH_MAX_SPANS)
    assert CollectorConfig.load(path).batch_max_spans == 222  # the file beats the default
    path.write_text("batch_max_span: 1\n")
    with pytest.raises(ValueError, match="unknown settings \\['batch_max_span'\\]"):
        CollectorConfig.load(path)
    with pytest.raises(ValueError, match="queue_max_spans .* must be >= batch_max_spans"):
        CollectorConfig.load(batch_max_spans=10, queue_max_spans=5)
    with pytest.raises(ValueError, match="max_request_bytes .* must be <= queue_max_bytes"):
        CollectorConfig.load(max_request_bytes=10_000, queue_max_bytes=5_000)
    with pytest.raises(ValueError, match="grpc_endpoint"):
        CollectorConfig(grpc_endpoint="nope")


def test_cli_resolves_settings_like_the_api(tmp_path, monkeypatch):
    """`lightspan collector` and CollectorConfig.load agree: flags > env > file > defaults."""
    from click.testing import CliRunner

    import lightspan.collector as api
    from lightspan.collector.cli import collector

    seen: list[CollectorConfig] = []

    class Capture:
        def __init__(self, config):
            seen.append(config)

        def start(self):
            raise RuntimeError("captured")

    monkeypatch.setattr(api, "Collector", Capture)
    path = tmp_path / "c.yaml"
    path.write_text("batch_max_spans: 222\nbatch_timeout_s: 3\nqueue_max_spans: 90000\n")
    monkeypatch.setenv(env.LIGHTSPAN_BATCH_MAX_SPANS, "111")
    monkeypatch.setenv(env.LIGHTSPAN_QUEUE_MAX_SPANS, "80000")
    args = ["--config", str(path), "--queue-max-spans", "70000", "--log-format", "text"]
    CliRunner().invoke(collector, args)
    cfg = seen[0]
    assert (cfg.queue_max_spans, cfg.batch_max_spans, cfg.batch_timeout_s) == (70_000, 111, 3.0)
    assert cfg == CollectorConfig.load(path, queue_max_spans=70_000)


def test_cli_help_and_bad_arguments():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "lightspan.cli", "collector", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "--grpc-endpoint" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "lightspan.cli", "collector", "--batch-max-spans", "0"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    bad = subprocess.run(
        [sys.executable, "-m", "lightspan.cli", "collector", "--grpc-endpoint", "x"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "grpc_endpoint" in bad.stderr


def test_spool_concurrent_appends_across_segment_rotations_do_not_deadlock(tmp_path):
    """Rotation (segment full) racing a group fsync used to take the two spool locks in opposite order."""
    import threading
    import time

    spool = Spool(tmp_path / "spool", fsync=True, segment_bytes=4096)
    done: list[int] = []

    def work() -> None:
        for _ in range(60):
            spool.append(KIND_TRACES, os.urandom(1500))
        done.append(1)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60  # a liveness bound, not a speed assertion: healthy runs take < 1 s
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0))
    assert len(done) == 8, "spool appends hung (lock-order deadlock)"
    spool.close()
    replayed = list(Spool(tmp_path / "spool").replay())
    assert len(replayed) == 8 * 60  # every appended record is on disk, none torn
