"""PolicyServer through the real ``openai`` client: what an agent (and the RL pipeline) relies on."""

from __future__ import annotations

import httpx
import openai
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

MESSAGES = [{"role": "system", "content": "answer briefly"}, {"role": "user", "content": "hello world"}]


def _greedy(client, max_tokens=12, **kw):
    return client.chat.completions.create(
        model="policy", messages=MESSAGES, temperature=0, max_tokens=max_tokens, **kw
    )


def test_plain_completion_has_openai_shape(client):
    resp = client.chat.completions.create(model="policy", messages=MESSAGES, max_tokens=8, seed=1)
    choice = resp.choices[0]
    assert resp.model == "policy" and resp.object == "chat.completion"
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in {"stop", "length"}
    assert 1 <= resp.usage.completion_tokens <= 8
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_token_ids_and_logprobs_match_the_tokenizer_and_model(client, server, tiny_models):
    resp = client.chat.completions.create(
        model="policy",
        messages=MESSAGES,
        max_tokens=10,
        seed=7,
        logprobs=True,
        extra_body={"return_token_ids": True},
    )
    tok = AutoTokenizer.from_pretrained(tiny_models[0])
    expected_prompt = tok(
        tok.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False),
        add_special_tokens=False,
    )["input_ids"]
    prompt_ids = resp.prompt_token_ids
    choice = resp.choices[0]
    ids = choice.token_ids
    assert prompt_ids == expected_prompt
    assert len(prompt_ids) == resp.usage.prompt_tokens
    assert len(ids) == resp.usage.completion_tokens == len(choice.logprobs.content)
    assert tok.decode(ids, skip_special_tokens=True) == choice.message.content
    assert [c.token for c in choice.logprobs.content] == [tok.decode([i]) for i in ids]
    # The logprobs are the policy's own: recompute them with a forward pass over prompt + completion.
    model = AutoModelForCausalLM.from_pretrained(tiny_models[0]).eval()
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + ids])).logits[0].float()
    lp = torch.log_softmax(logits[len(prompt_ids) - 1 : -1], dim=-1)
    recomputed = lp.gather(1, torch.tensor(ids)[:, None])[:, 0]
    served = torch.tensor([c.logprob for c in choice.logprobs.content])
    assert torch.allclose(served, recomputed, atol=1e-4)


def test_seed_makes_sampling_reproducible_and_n_gives_choices(client):
    a = client.chat.completions.create(
        model="policy", messages=MESSAGES, max_tokens=8, seed=3, n=3, extra_body={"return_token_ids": True}
    )
    b = client.chat.completions.create(
        model="policy", messages=MESSAGES, max_tokens=8, seed=3, n=3, extra_body={"return_token_ids": True}
    )
    assert [c.index for c in a.choices] == [0, 1, 2]
    assert [c.token_ids for c in a.choices] == [c.token_ids for c in b.choices]
    assert a.usage.completion_tokens == sum(len(c.token_ids) for c in a.choices)


def test_greedy_equals_argmax_decoding(client, tiny_models):
    resp = _greedy(client, max_tokens=6, extra_body={"return_token_ids": True})
    model = AutoModelForCausalLM.from_pretrained(tiny_models[0]).eval()
    ids = list(resp.prompt_token_ids)
    with torch.no_grad():
        for _ in resp.choices[0].token_ids:
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    assert ids[len(resp.prompt_token_ids) :] == resp.choices[0].token_ids


def test_stream_matches_plain_and_reports_usage(client):
    plain = _greedy(client, extra_body={"return_token_ids": True})
    stream = client.chat.completions.create(
        model="policy",
        messages=MESSAGES,
        temperature=0,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
        logprobs=True,
        extra_body={"return_token_ids": True},
    )
    text, ids, logprobs, usage, finish = "", [], [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            ids += getattr(choice, "token_ids", None) or []
            if choice.logprobs and choice.logprobs.content:
                logprobs += [c.logprob for c in choice.logprobs.content]
            finish = choice.finish_reason or finish
    assert text == plain.choices[0].message.content
    assert ids == plain.choices[0].token_ids and len(logprobs) == len(ids)
    assert finish == plain.choices[0].finish_reason
    assert usage.completion_tokens == plain.usage.completion_tokens
    assert usage.prompt_tokens == plain.usage.prompt_tokens


def test_stop_string_cuts_the_text(client):
    def sample(**kw):  # seeded sampling draws the same tokens up to the stop
        return client.chat.completions.create(model="policy", messages=MESSAGES, max_tokens=16, seed=11, **kw)

    full = sample().choices[0].message.content
    assert len(full) >= 6, full
    stop = full[3:5]
    cut = sample(stop=[stop]).choices[0]
    assert cut.message.content == full[: full.index(stop)]
    assert cut.finish_reason == "stop"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"temperature": 3.5}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"n": 99}, "n"),
        ({"max_tokens": 100000}, "max_tokens"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(client, kwargs, param):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="policy", messages=MESSAGES, **kwargs)
    assert param in str(info.value)


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=2)


def test_models_and_health(client, server, tiny_models):
    models = client.models.list()
    assert [m.id for m in models.data] == ["policy"]
    health = httpx.get(f"http://127.0.0.1:{server.port}/health").json()
    assert health["status"] == "ok" and health["checkpoint"] == tiny_models[0]
