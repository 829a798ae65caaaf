"""Two agents in one rollout, rewarded later: the shape of most production feedback.

A ``researcher`` agent asks the policy for a fact and a ``writer`` agent turns it into the reply; both talk
to an OpenAI-compatible server (vLLM, or lightspan's own ``PolicyServer``) through the real ``openai``
client, inside ONE ``rollout`` so that their calls share the rollout id and become one trajectory. The
rollout ends without a reward. Minutes (or days) later -- a user's thumbs-up, a test that passed -- the
reward is posted to the collector's ``POST /v1/rewards`` with the rollout id, and the converters join it
to the trajectory.

    lightspan collector --data-dir ./data &                     # OTLP on 4317/4318, rewards on 4318
    python examples/multi_agent_late_rewards.py --serve-tiny    # builds + serves a tiny local policy
    python examples/multi_agent_late_rewards.py --base-url http://vllm:8000/v1 --model my-model
    lightspan convert --dsn http://127.0.0.1:8123/lightspan --reward-name user_feedback --output ./converted

Without a collector running the agent still works; the export and the reward post log their failure.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time

import httpx
import openai
from opentelemetry import trace

import lightspan.instrumentation as ls
from lightspan.schemas import attributes as A

log = logging.getLogger("multi_agent")


def sub_agent(name: str, client: openai.OpenAI, model: str, prompt: str) -> str:
    """One agent's turn: an ``invoke_agent {name}`` span around its LLM call (stamped with the rollout)."""
    tracer = trace.get_tracer("examples.multi_agent")
    with tracer.start_as_current_span(
        A.SPAN_INVOKE_AGENT.format(name=name),
        attributes={A.GEN_AI_OPERATION_NAME: A.OP_INVOKE_AGENT, A.GEN_AI_AGENT_NAME: name},
    ):
        resp = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=16,
            temperature=1.0,
            logprobs=True,
            extra_body={"return_token_ids": True},  # vLLM / PolicyServer: token ids for RL
        )
        return resp.choices[0].message.content or ""


def post_late_reward(rewards_url: str, rollout_id: str, task_id: str, value: float) -> None:
    """What a feedback service does after the fact: one idempotent POST to the collector."""
    body = {"rollout_id": rollout_id, "task_id": task_id, "value": value, "name": "user_feedback"}
    try:
        httpx.post(rewards_url, json=body, timeout=10).raise_for_status()
        print(f"late reward {value} posted for rollout {rollout_id}")
    except httpx.HTTPError as exc:
        log.warning("could not post the late reward to %s: %s", rewards_url, exc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint (e.g. vLLM's /v1).")
    parser.add_argument("--model", default="policy", help="Model name the server serves.")
    parser.add_argument("--serve-tiny", action="store_true", help="Build and serve a tiny local policy.")
    parser.add_argument("--otlp-endpoint", default="http://localhost:4317", help="Collector OTLP gRPC.")
    parser.add_argument(
        "--rewards-url", default="http://localhost:4318/v1/rewards", help="Collector rewards API."
    )
    parser.add_argument("--question", default="city of alice ?")
    parser.add_argument("--task-id", default="team-demo-1")
    args = parser.parse_args()

    provider = ls.configure(endpoint=args.otlp_endpoint, service_name="multi-agent-example")
    server = None
    if args.serve_tiny or args.base_url is None:
        from lightspan.serving import PolicyServer
        from lightspan.training.tiny_model import build_tiny_model

        path = build_tiny_model(tempfile.mkdtemp(prefix="tiny-policy-"), texts=[args.question])
        server = PolicyServer(path, served_model_name=args.model).start()
        args.base_url = server.base_url
    client = openai.OpenAI(base_url=args.base_url, api_key="unused")
    try:
        with ls.rollout(task_id=args.task_id, attempt=0, agent_name="team") as run:
            fact = sub_agent("researcher", client, args.model, f"Find the fact: {args.question}")
            reply = sub_agent(
                "writer", client, args.model, f"Write the answer to {args.question} from: {fact}"
            )
            rollout_id = run.rollout_id
        print(f"rollout {rollout_id}: researcher said {fact!r}, writer said {reply!r}")
        provider.force_flush()  # the spans reach the collector before the reward refers to them
        time.sleep(0.5)  # ... a user reads the reply and clicks thumbs-up, later ...
        post_late_reward(args.rewards_url, rollout_id, args.task_id, 1.0)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
