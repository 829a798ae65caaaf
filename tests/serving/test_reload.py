"""Reloading a new checkpoint: later requests see it, an in-flight request finishes on the old one."""

from __future__ import annotations

import httpx
import openai
import pytest

MESSAGES = [{"role": "user", "content": "hello world"}]


@pytest.fixture()
def fresh_server(tiny_models):
    from lightspan.serving import PolicyServer

    srv = PolicyServer(tiny_models[0], served_model_name="policy", device="cpu").start()
    yield srv
    srv.stop()


def _greedy_ids(client, max_tokens=12):
    """Greedy token ids and their logprobs (two random-init models may agree on ids, never on logprobs)."""
    resp = client.chat.completions.create(
        model="policy",
        messages=MESSAGES,
        temperature=0,
        logprobs=True,
        max_tokens=max_tokens,
        extra_body={"return_token_ids": True},
    )
    choice = resp.choices[0]
    return choice.token_ids, [round(c.logprob, 5) for c in choice.logprobs.content]


def test_reload_endpoint_switches_the_model(fresh_server, tiny_models):
    client = openai.OpenAI(base_url=fresh_server.base_url, api_key="x", max_retries=0)
    before = _greedy_ids(client)
    resp = httpx.post(f"{fresh_server.base_url}/admin/reload", json={"model": tiny_models[1]}, timeout=60)
    assert resp.status_code == 200 and resp.json()["checkpoint"] == tiny_models[1]
    assert client.models.list().data[0].root == tiny_models[1]
    after = _greedy_ids(client)
    assert after != before
    fresh_server.reload(tiny_models[0])  # and back, through the Python API
    assert _greedy_ids(client) == before


def test_in_flight_stream_finishes_on_the_old_checkpoint(fresh_server, tiny_models):
    client = openai.OpenAI(base_url=fresh_server.base_url, api_key="x", max_retries=0)
    old = _greedy_ids(client, max_tokens=24)
    stream = client.chat.completions.create(
        model="policy",
        messages=MESSAGES,
        temperature=0,
        max_tokens=24,
        stream=True,
        logprobs=True,
        extra_body={"return_token_ids": True},
    )
    ids, logprobs = [], []
    chunks = iter(stream)
    next(chunks)  # the role chunk: the request is admitted and pinned to the old engine
    fresh_server.reload(tiny_models[1])
    for chunk in chunks:
        for choice in chunk.choices:
            ids += getattr(choice, "token_ids", None) or []
            logprobs += [round(c.logprob, 5) for c in choice.logprobs.content]
    assert (ids, logprobs) == old
    assert _greedy_ids(client, max_tokens=24) != old


def test_reload_of_a_missing_path_is_refused_and_keeps_serving(fresh_server, tiny_models, tmp_path):
    resp = httpx.post(f"{fresh_server.base_url}/admin/reload", json={"model": str(tmp_path / "nope")})
    assert resp.status_code == 400 and "nope" in resp.json()["error"]["message"]
    assert fresh_server.model_path == tiny_models[0]
    assert httpx.post(f"{fresh_server.base_url}/admin/reload", json={}).status_code == 400
