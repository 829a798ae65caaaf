"""Local transformers generate on a tiny randomly initialised Llama built here (no hub)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lightspan.instrumentation import rollout  # noqa: E402
from lightspan.schemas import attributes as A  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        eos_token_id=63,
        bos_token_id=1,
        pad_token_id=0,
    )
    config._name_or_path = "tiny-llama"
    return transformers.LlamaForCausalLM(config).eval()


def _spans(exporter):
    return [s for s in exporter.get_finished_spans() if s.name.startswith("text_completion")]


def test_generate_records_token_ids_and_logprobs(exporter, instrumented, model):
    prompt = torch.tensor([[1, 5, 9, 12]])
    with rollout("t-local") as r:
        out = model.generate(
            input_ids=prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=5,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
        )
    (span,) = _spans(exporter)
    a = span.attributes
    generated = out.sequences[0, 4:].tolist()
    if 63 in generated:
        generated = generated[: generated.index(63) + 1]
    assert span.name == "text_completion tiny-llama"
    assert a[A.GEN_AI_OPERATION_NAME] == A.OP_TEXT_COMPLETION and a[A.GEN_AI_PROVIDER_NAME] == "transformers"
    assert json.loads(a[A.LLM_PROMPT_TOKEN_IDS]) == [1, 5, 9, 12]
    assert json.loads(a[A.LLM_RESPONSE_TOKEN_IDS]) == generated
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (4, len(generated))
    expected = [
        float(torch.log_softmax(out.logits[t][0].float(), -1)[tok]) for t, tok in enumerate(generated)
    ]
    assert json.loads(a[A.LLM_RESPONSE_LOGPROBS]) == pytest.approx(expected, abs=1e-5)
    assert a[A.GEN_AI_REQUEST_MAX_TOKENS] == 5 and a[A.ROLLOUT_ID] == r.rollout_id


def test_generate_plain_tensor_output_and_batch(exporter, instrumented, model):
    prompt = torch.tensor([[1, 5], [1, 7]])
    out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=3, do_sample=False)
    assert out.shape[0] == 2  # the caller's result is untouched
    (span,) = _spans(exporter)
    ids = json.loads(span.attributes[A.LLM_RESPONSE_TOKEN_IDS])
    assert len(ids) == 2 and all(isinstance(row, list) for row in ids)
    assert json.loads(span.attributes[A.LLM_PROMPT_TOKEN_IDS]) == [[1, 5], [1, 7]]
    assert A.LLM_RESPONSE_LOGPROBS not in span.attributes
