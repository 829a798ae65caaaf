"""Benchmark the PolicyServer through the real openai client: latency, tokens/s, concurrency, reload time.

    .venv/bin/python benchmarks/bench_serving.py [--quick] [--hidden 64 --layers 2] [--device cpu]
    .venv/bin/python benchmarks/bench_serving.py --rollouts 400 [--concurrency 8]   # lightspan serve vs real vLLM

``--rollouts N`` runs demo-shaped rollouts (the demo agent's policy call: a facts + question prompt,
8 answer tokens, logprobs and token ids, through ``openai.AsyncOpenAI``, ``--concurrency`` at a time)
against ``lightspan serve`` and then real vLLM (``lightspan.serving.vllm_server``, its cached venv) on the
same model, tasks and seeds, in one run, and prints rollouts/s and vLLM's start-up time.

The model is the demo's size by default (tiny Llama, hidden 64, 2 layers); numbers are for the server's
overhead and the sampling loop, not for a real model (use vLLM for that).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MESSAGES = [
    {"role": "user", "content": "facts: alice lives in lyon . lyon is in france .\nq: country of alice ?"}
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="A few requests only.")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's)."
    )
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--rollouts", type=int, default=0, help="Compare servers on N demo-shaped rollouts.")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if args.rollouts:
        compare_servers(args.rollouts, args.concurrency, args.hidden, args.layers)
        return
    n = 20 if args.quick else args.requests
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    import openai

    from lightspan.serving import PolicyServer
    from lightspan.training.tiny_model import build_tiny_model

    path = build_tiny_model(
        tempfile.mkdtemp(prefix="bench-serving-"),
        texts=[MESSAGES[0]["content"]],
        hidden_size=args.hidden,
        num_layers=args.layers,
    )
    server = PolicyServer(path, served_model_name="policy", device=args.device).start()
    client = openai.OpenAI(base_url=server.base_url, api_key="x")
    kw: dict[str, Any] = dict(
        model="policy",
        messages=MESSAGES,
        max_tokens=args.max_tokens,
        logprobs=True,
        extra_body={"return_token_ids": True, "ignore_eos": True},
    )
    client.chat.completions.create(**kw)  # warm-up

    latencies, tokens = [], 0
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        resp = client.chat.completions.create(seed=i, **kw)
        latencies.append(time.perf_counter() - t0)
        tokens += resp.usage.completion_tokens
    seq_s = time.perf_counter() - started

    async def concurrent(c: int) -> tuple[float, int]:
        aclient = openai.AsyncOpenAI(base_url=server.base_url, api_key="x")
        gate = asyncio.Semaphore(c)

        async def one(i: int) -> int:
            async with gate:
                return (await aclient.chat.completions.create(seed=i, **kw)).usage.completion_tokens

        t0 = time.perf_counter()
        counts = await asyncio.gather(*(one(i) for i in range(n)))
        await aclient.close()
        return time.perf_counter() - t0, sum(counts)

    conc_s, conc_tokens = asyncio.run(concurrent(8))
    t0 = time.perf_counter()
    server.reload(path)
    reload_s = time.perf_counter() - t0
    server.stop()

    p50 = statistics.median(latencies) * 1000
    p95 = sorted(latencies)[int(0.95 * (len(latencies) - 1))] * 1000
    print(f"model: tiny Llama hidden={args.hidden} layers={args.layers} device={server.engine.device}")
    print(
        f"sequential: {n} requests, {n / seq_s:.1f} req/s, {tokens / seq_s:.0f} completion tok/s, "
        f"latency p50 {p50:.1f} ms p95 {p95:.1f} ms ({tokens / n:.1f} tokens/request)"
    )
    print(f"concurrency 8: {n / conc_s:.1f} req/s, {conc_tokens / conc_s:.0f} completion tok/s")
    print(f"reload: {reload_s * 1000:.0f} ms")


def _questions(n: int) -> list[list[dict[str, str]]]:
    people = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
    cities = ["lyon", "paris", "oslo", "rome", "bern", "kyiv", "riga", "lima"]
    out = []
    for i in range(n):
        p, c = people[i % len(people)], cities[(i * 3) % len(cities)]
        facts = f"facts: {p} lives in {c} . {p} works as a baker . {c} is in country{i % 5} ."
        out.append([{"role": "user", "content": f"{facts}\nq: country of {p} ?"}])
    return out


async def _rollouts(base_url: str, questions: list[list[dict[str, str]]], concurrency: int) -> float:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=300)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, messages: list[dict[str, str]]) -> None:
        async with gate:
            await client.chat.completions.create(
                model="policy",
                messages=messages,  # pyright: ignore[reportArgumentType]
                max_tokens=8,
                seed=i,
                logprobs=True,
                extra_body={"return_token_ids": True},
            )

    await one(0, questions[0])  # warm-up
    t0 = time.perf_counter()
    await asyncio.gather(*(one(i, q) for i, q in enumerate(questions)))
    seconds = time.perf_counter() - t0
    await client.close()
    return seconds


def compare_servers(n: int, concurrency: int, hidden: int, layers: int) -> None:
    """Rollouts/s of the same demo-shaped rollouts against lightspan serve, then real vLLM."""
    from lightspan.serving import PolicyServer
    from lightspan.serving.vllm_server import VLLMServer
    from lightspan.training.tiny_model import build_tiny_model

    questions = _questions(n)
    path = build_tiny_model(
        tempfile.mkdtemp(prefix="bench-serving-"),
        texts=[q[0]["content"] for q in questions[:50]],
        hidden_size=hidden,
        num_layers=layers,
    )
    print(f"load average at start: {os.getloadavg()[0]:.1f}; {n} rollouts, concurrency {concurrency}")
    with PolicyServer(path, served_model_name="policy", device="cpu") as srv:
        s = asyncio.run(_rollouts(srv.base_url, questions, concurrency))
    print(f"lightspan serve: {n / s:.1f} rollouts/s ({s:.1f} s)")
    vllm = VLLMServer(path, served_model_name="policy")
    with vllm:
        print(f"vLLM start-up: {vllm.startup_seconds:.1f} s")
        s = asyncio.run(_rollouts(vllm.base_url, questions, concurrency))
    print(f"vLLM: {n / s:.1f} rollouts/s ({s:.1f} s)")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
