"""A GAP agent: plan "populations of the capitals of France and Germany" as a task graph, run the
independent lookups at once, and print the answer, the graph and the spans it produced.

    .venv/bin/python examples/gap_agent.py                      # explicit plan, no LLM needed
    .venv/bin/python examples/gap_agent.py --base-url http://127.0.0.1:8000/v1 --model my-model
                                                                # the LLM plans and answers (OpenAI API)
"""

from __future__ import annotations

import argparse
import asyncio

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lightspan.instrumentation import tool
from lightspan.instrumentation.gap import GAPPlanner

FACTS = {
    "capital of France": "Paris",
    "capital of Germany": "Berlin",
    "population of Paris": "2.1 million",
    "population of Berlin": "3.9 million",
}

PLAN_PER_CITY = """
<plan>
<graph>
  <node id="s1">search("capital of France")</node>
  <node id="s2">search("capital of Germany")</node>
  <node id="s3" depends="s1">search("population of {s1}")</node>
  <node id="s4" depends="s2">search("population of {s2}")</node>
</graph>
</plan>
"""


@tool
async def search(query: str) -> str:
    """Look a fact up (a stand-in for a web search: 50 ms per call)."""
    await asyncio.sleep(0.05)
    return FACTS.get(query, "unknown")


async def main(args: argparse.Namespace) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    llm = None
    if args.base_url:
        import openai

        from lightspan.instrumentation import instrument

        instrument()  # LLM calls become `chat {model}` spans under the plan span
        llm = openai.AsyncOpenAI(base_url=args.base_url, api_key=args.api_key)
    planner = GAPPlanner(llm, model=args.model, tools=[search], agent_name="geo")
    query = "What are the populations of the capitals of France and Germany?"
    result = await planner.execute_plan(query, plan_text=None if llm else PLAN_PER_CITY)

    print(f"Answer: {result['answer']}")
    print(f"Plan from: {result['plan_source']}, levels: {result['graph']['levels']}")
    print(
        f"Speedup: {result['speedup_factor']:.1f}x  Total time: {result['total_time_ms']:.0f}ms  "
        f"Tool calls: {result['tool_calls']}"
    )
    print("\nSpans (parents first):")
    spans = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time)
    depth = {}
    for span in spans:
        parent = span.parent.span_id if span.parent else None
        depth[span.context.span_id] = depth.get(parent, -1) + 1
        print("  " * depth[span.context.span_id] + span.name)
    planner.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run a GAP plan with parallel tool calls.")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint for planning (default: explicit plan)")
    parser.add_argument("--model", default="gpt-4o-mini", help="model name sent to --base-url")
    parser.add_argument("--api-key", default="unused", help="API key for --base-url")
    asyncio.run(main(parser.parse_args()))
