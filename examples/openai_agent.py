"""A small tool-using agent on the openai client, instrumented by lightspan without setup code.

Run it under OpenTelemetry's launcher; lightspan's distro and instrumentors do the rest::

    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 \\
    OPENAI_BASE_URL=http://localhost:8000/v1 OPENAI_API_KEY=... \\
    opentelemetry-instrument python examples/openai_agent.py --task "What is (2 + 3) * 4?" --expect 20

Every LLM call becomes a ``chat {model}`` span, every tool an ``execute_tool {name}`` span, the run
an ``invoke_agent calculator`` span, and the check against ``--expect`` a ``lightspan.reward`` span;
all carry the rollout, task and attempt ids. Pass ``--token-ids`` against a vLLM server to record
token ids and logprobs for RL.
"""

from __future__ import annotations

import argparse
import json
import os

import openai

from lightspan.instrumentation import emit_reward, rollout, tool, tool_call_id


@tool
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


TOOLS = {t.tool_name: t for t in (add, multiply)}
SCHEMA = [
    {
        "type": "function",
        "function": {
            "name": t.tool_name,
            "description": t.tool_description,
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"],
            },
        },
    }
    for t in TOOLS.values()
]


def solve(client: openai.OpenAI, model: str, task: str, token_ids: bool, max_turns: int = 5) -> str:
    """Call the model, run the tools it asks for, repeat until it answers."""
    messages: list[dict] = [
        {"role": "system", "content": "You are a calculator. Use the tools, then answer with the number."},
        {"role": "user", "content": task},
    ]
    extra = {"extra_body": {"return_token_ids": True}, "logprobs": True} if token_ids else {}
    for _ in range(max_turns):
        reply = client.chat.completions.create(model=model, messages=messages, tools=SCHEMA, **extra)
        message = reply.choices[0].message
        if not message.tool_calls:
            return message.content or ""
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            with tool_call_id(call.id):
                result = TOOLS[call.function.name](**json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="What is (2 + 3) * 4?")
    parser.add_argument(
        "--expect", default="20", help="the right answer; reward 1.0 when it appears in the reply"
    )
    parser.add_argument("--task-id", default="calc-1")
    parser.add_argument("--attempt", type=int, default=0)
    parser.add_argument("--model", default=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    parser.add_argument(
        "--token-ids", action="store_true", help="ask a vLLM server for token ids and logprobs"
    )
    args = parser.parse_args()

    client = openai.OpenAI()  # OPENAI_BASE_URL / OPENAI_API_KEY from the environment
    with rollout(args.task_id, attempt=args.attempt, agent_name="calculator") as run:
        answer = solve(client, args.model, args.task, args.token_ids)
        emit_reward(1.0 if args.expect in answer else 0.0)
    print(json.dumps({"rollout_id": run.rollout_id, "answer": answer}))


if __name__ == "__main__":
    main()
