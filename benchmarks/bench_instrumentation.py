"""Added latency per instrumented LLM / tool call on the caller's thread, side by side in one run.

Variants (same process, same SDK pipeline: RolloutSpanProcessor + BatchSpanProcessor into an exporter
that drops everything, all inside a rollout):

- ``none``          the call itself (a function returning a prebuilt ``openai`` ChatCompletion).
- ``bare-static``   a bare OTel span with the same attributes, values precomputed (pure SDK cost).
- ``bare-inline``   a bare OTel span with the same attributes built from the call inline, as
                    hand-written instrumentation must (messages to JSON, response fields read).
- ``bare-metrics``  ``bare-inline`` plus the two GenAI histograms recorded by hand (duration, input and
                    output tokens) with the same attributes: like for like with lightspan, which records them.
- ``lightspan``     the same function wrapped by lightspan's openai chat wrapper (span + GenAI metrics into
                    an SDK MeterProvider).
- ``tool-bare`` / ``tool-lightspan``: a bare span with tool attributes vs ``@tool``.
- ``e2e-10ms``      a 10 ms call with and without lightspan's wrapper (added share of the call).

Goal: lightspan <= 1.5x bare-inline, and added cost < 1% of a 10 ms call.

    python benchmarks/bench_instrumentation.py            # full run
    python benchmarks/bench_instrumentation.py --quick    # small run
    python benchmarks/bench_instrumentation.py --no-metrics   # spans only (no SDK MeterProvider)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import wrapt
from openai.types.chat import ChatCompletion
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from lightspan.instrumentation import rollout, tool
from lightspan.instrumentation._instrumentor import telemetry_for
from lightspan.instrumentation._llm import make_wrapper
from lightspan.instrumentation._metrics import GenAIMetrics
from lightspan.instrumentation.openai.patch import CHAT
from lightspan.instrumentation.processor import RolloutSpanProcessor
from lightspan.schemas import attributes as A


class DropExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS

    def shutdown(self):
        return None


MESSAGES = [
    {"role": "system", "content": "You are a careful assistant that answers with one number."},
    {"role": "user", "content": "What is (2 + 3) * 4? Think step by step and answer briefly."},
]
RESPONSE = ChatCompletion.model_validate(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "tiny",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {"role": "assistant", "content": "2 + 3 = 5, and 5 * 4 = 20. The answer is 20."},
            }
        ],
        "usage": {"prompt_tokens": 31, "completion_tokens": 17, "total_tokens": 48},
    }
)


def fake_create(*, model: str, messages: list, **kwargs) -> ChatCompletion:
    return RESPONSE


def slow_create(*, model: str, messages: list, **kwargs) -> ChatCompletion:
    deadline = time.perf_counter() + 0.010
    while time.perf_counter() < deadline:  # busy-wait: sleep granularity would swamp microseconds
        pass
    return RESPONSE


def build(tracer: trace.Tracer):
    instrumented = wrapt.FunctionWrapper(
        fake_create,
        make_wrapper(CHAT, telemetry_for(None, None, "lightspan.instrumentation.openai"), is_async=False),
    )
    instrumented_slow = wrapt.FunctionWrapper(
        slow_create,
        make_wrapper(CHAT, telemetry_for(None, None, "lightspan.instrumentation.openai"), is_async=False),
    )
    in_json = json.dumps(
        [{"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]} for m in MESSAGES]
    )
    out_json = json.dumps(
        [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": RESPONSE.choices[0].message.content}],
                "finish_reason": "stop",
            }
        ]
    )
    static = {
        A.GEN_AI_OPERATION_NAME: "chat",
        A.GEN_AI_PROVIDER_NAME: "openai",
        A.GEN_AI_REQUEST_MODEL: "tiny",
        A.GEN_AI_INPUT_MESSAGES: in_json,
    }
    static_resp = {
        A.GEN_AI_RESPONSE_ID: "chatcmpl-1",
        A.GEN_AI_RESPONSE_MODEL: "tiny",
        A.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
        A.GEN_AI_USAGE_INPUT_TOKENS: 31,
        A.GEN_AI_USAGE_OUTPUT_TOKENS: 17,
        A.GEN_AI_OUTPUT_MESSAGES: out_json,
    }

    def bare_static():
        span = tracer.start_span("chat tiny", kind=trace.SpanKind.CLIENT, attributes=static)
        with trace.use_span(span, end_on_exit=False):
            fake_create(model="tiny", messages=MESSAGES)
        span.set_attributes(static_resp)
        span.end()

    def bare_inline():
        attrs = {
            A.GEN_AI_OPERATION_NAME: "chat",
            A.GEN_AI_PROVIDER_NAME: "openai",
            A.GEN_AI_REQUEST_MODEL: "tiny",
            A.GEN_AI_INPUT_MESSAGES: json.dumps(
                [{"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]} for m in MESSAGES]
            ),
        }
        span = tracer.start_span("chat tiny", kind=trace.SpanKind.CLIENT, attributes=attrs)
        with trace.use_span(span, end_on_exit=False):
            r = fake_create(model="tiny", messages=MESSAGES)
        c = r.choices[0]
        span.set_attributes(
            {
                A.GEN_AI_RESPONSE_ID: r.id,
                A.GEN_AI_RESPONSE_MODEL: r.model,
                A.GEN_AI_RESPONSE_FINISH_REASONS: [c.finish_reason],
                A.GEN_AI_USAGE_INPUT_TOKENS: r.usage.prompt_tokens,
                A.GEN_AI_USAGE_OUTPUT_TOKENS: r.usage.completion_tokens,
                A.GEN_AI_OUTPUT_MESSAGES: json.dumps(
                    [
                        {
                            "role": c.message.role,
                            "parts": [{"type": "text", "content": c.message.content}],
                            "finish_reason": c.finish_reason,
                        }
                    ]
                ),
            }
        )
        span.end()

    hand = GenAIMetrics(metrics.get_meter("bench"))

    def bare_metrics():
        start = time.perf_counter()
        bare_inline()
        base = {
            A.GEN_AI_OPERATION_NAME: "chat",
            A.GEN_AI_PROVIDER_NAME: "openai",
            A.GEN_AI_REQUEST_MODEL: "tiny",
            A.GEN_AI_RESPONSE_MODEL: RESPONSE.model,
        }
        usage = RESPONSE.usage
        assert usage is not None
        hand.tokens.record(usage.prompt_tokens, {**base, A.GEN_AI_TOKEN_TYPE: "input"})
        hand.tokens.record(usage.completion_tokens, {**base, A.GEN_AI_TOKEN_TYPE: "output"})
        hand.duration.record(time.perf_counter() - start, base)

    def plain_add(a, b):
        return a + b

    traced_add = tool(plain_add)

    def tool_bare():
        span = tracer.start_span(
            "execute_tool plain_add",
            attributes={
                A.GEN_AI_OPERATION_NAME: "execute_tool",
                A.GEN_AI_TOOL_NAME: "plain_add",
                A.GEN_AI_TOOL_TYPE: "function",
                A.GEN_AI_TOOL_CALL_ID: "call_1",
                A.GEN_AI_TOOL_CALL_ARGUMENTS: json.dumps({"a": 2, "b": 3}),
            },
        )
        with trace.use_span(span, end_on_exit=False):
            result = plain_add(2, 3)
        span.set_attribute(A.GEN_AI_TOOL_CALL_RESULT, json.dumps(result))
        span.end()

    return {
        "none": lambda: fake_create(model="tiny", messages=MESSAGES),
        "bare-static": bare_static,
        "bare-inline": bare_inline,
        "bare-metrics": bare_metrics,
        "lightspan": lambda: instrumented(model="tiny", messages=MESSAGES),
        "tool-none": lambda: plain_add(2, 3),
        "tool-bare": tool_bare,
        "tool-lightspan": lambda: traced_add(2, 3),
    }, (
        lambda: slow_create(model="tiny", messages=MESSAGES),
        lambda: instrumented_slow(model="tiny", messages=MESSAGES),
    )


def per_call_us(fn: Callable[[], object], n: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean per-call time of ``n`` calls, in microseconds."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter_ns() - start) / n / 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small run (seconds)")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument(
        "--no-metrics", action="store_true", help="no SDK MeterProvider: GenAI metrics go to the no-op meter"
    )
    args = parser.parse_args()
    n, repeats, slow_n = (300, 5, 20) if args.quick else (3000, 9, 100)

    provider = TracerProvider()
    provider.add_span_processor(RolloutSpanProcessor())
    provider.add_span_processor(BatchSpanProcessor(DropExporter(), max_queue_size=65536))
    trace.set_tracer_provider(provider)
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    if not args.no_metrics:
        metrics.set_meter_provider(meter_provider)
    variants, (slow_plain, slow_traced) = build(trace.get_tracer("bench"))

    results: dict[str, float] = {}
    with rollout("bench-task"):
        for fn in variants.values():  # warm-up
            for _ in range(200):
                fn()
        # Interleave rounds so machine noise hits every variant alike.
        rounds: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(3):
            for name, fn in variants.items():
                rounds[name].append(per_call_us(fn, n, repeats))
        results = {k: statistics.median(v) for k, v in rounds.items()}
        slow = {"plain": [], "traced": []}
        for _ in range(3):
            slow["plain"].append(per_call_us(slow_plain, slow_n, 3))
            slow["traced"].append(per_call_us(slow_traced, slow_n, 3))
    provider.shutdown()
    meter_provider.shutdown()

    added = {
        "bare-static": results["bare-static"] - results["none"],
        "bare-inline": results["bare-inline"] - results["none"],
        "bare-metrics": results["bare-metrics"] - results["none"],
        "lightspan": results["lightspan"] - results["none"],
        "tool-bare": results["tool-bare"] - results["tool-none"],
        "tool-lightspan": results["tool-lightspan"] - results["tool-none"],
    }
    slow_added = statistics.median(slow["traced"]) - statistics.median(slow["plain"])
    ratio_inline = added["lightspan"] / added["bare-inline"]
    ratio_static = added["lightspan"] / added["bare-static"]
    ratio_metrics = added["lightspan"] / added["bare-metrics"]
    ratio_tool = added["tool-lightspan"] / added["tool-bare"]
    share = added["lightspan"] / 10_000 * 100
    summary = {
        "per_call_us": results,
        "added_us": added,
        "e2e_10ms_added_us": slow_added,
        "ratio_vs_bare_inline": ratio_inline,
        "ratio_vs_bare_static": ratio_static,
        "ratio_vs_bare_metrics": ratio_metrics,
        "ratio_tool": ratio_tool,
        "share_of_10ms_call_pct": share,
        "e2e_share_pct": slow_added / 10_000 * 100,
        "goal_met": ratio_inline <= 1.5 and share < 1.0,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{'variant':<16}{'per call (us)':>15}{'added (us)':>12}")
    for name, value in results.items():
        print(f"{name:<16}{value:>15.2f}{added.get(name, 0.0):>12.2f}")
    print(
        f"lightspan / bare-inline span: {ratio_inline:.2f}x   lightspan / bare-static span: {ratio_static:.2f}x"
    )
    print(f"lightspan / bare span + hand-recorded GenAI metrics: {ratio_metrics:.2f}x")
    print(f"@tool / bare tool span: {ratio_tool:.2f}x")
    print(
        f"added per call = {share:.3f}% of a 10 ms call; measured on a 10 ms call: +{slow_added:.1f} us "
        f"({slow_added / 10_000 * 100:.3f}%)"
    )
    print("goal (<= 1.5x bare-inline span and < 1% of 10 ms):", "MET" if summary["goal_met"] else "NOT MET")


if __name__ == "__main__":
    main()
