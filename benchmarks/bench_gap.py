"""GAP planner benchmark: sequential (ReAct-style) vs level-synchronous vs dependency-driven execution.

A synthetic multi-hop suite of mixed graph shapes (chains, fan-in, paired two-hop lookups, diamonds,
``search("A | B | C")`` fan-outs, wide parallel sets, random DAGs, single lookups) whose ``search``
tool sleeps for a latency drawn from a lognormal distribution (skewed; clipped to 1-20 ms). Every
query runs under all three schedulers in one process, interleaved, and is compared with its
critical-path lower bound (the longest chain of tool latencies). Then the same suite with zero-latency
tools measures the scheduler's own overhead per node, with tracing off and with an SDK tracer
provider recording every span (plan, level, node and tool spans).

    .venv/bin/python benchmarks/bench_gap.py            # 240 queries
    .venv/bin/python benchmarks/bench_gap.py --quick    # 48 queries
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, field

from tqdm import tqdm

from lightspan.instrumentation.gap import GAPPlanner, Graph, parse_plan

MODES = ("sequential", "level", "dependency")


@dataclass
class Query:
    qid: int
    shape: str
    plan: str
    latency_s: dict[str, float] = field(default_factory=dict)  # per tool argument
    node_parts: dict[str, list[str]] = field(default_factory=dict)  # node id -> tool arguments

    def bound_ms(self) -> float:
        """Critical path with each node as long as its slowest fan-out part."""
        graph = Graph.from_tasks(parse_plan(self.plan))
        durations = {
            n: 1000.0 * max(self.latency_s[a] for a in parts) for n, parts in self.node_parts.items()
        }
        return graph.critical_path(durations)[0]

    def serial_ms(self) -> float:
        return 1000.0 * sum(self.latency_s.values())


def _shape(rng: random.Random, qid: int) -> tuple[str, list[tuple[str, list[str], list[str]]]]:
    """(shape name, [(node id, fan-out parts, depends)])."""
    shape = rng.choice(
        ["chain", "fan_in", "two_hop_pairs", "diamond", "fanout_search", "wide", "random_dag", "single"]
    )
    nodes: list[tuple[str, list[str], list[str]]] = []
    if shape == "chain":
        for i in range(rng.randint(2, 4)):
            nodes.append((f"s{i + 1}", [f"q{qid} hop{i + 1}"], [f"s{i}"] if i else []))
    elif shape == "fan_in":
        k = rng.randint(2, 5)
        nodes += [(f"s{i + 1}", [f"q{qid} fact{i + 1}"], []) for i in range(k)]
        nodes.append((f"s{k + 1}", [f"q{qid} combine"], [f"s{i + 1}" for i in range(k)]))
    elif shape == "two_hop_pairs":
        m = rng.randint(2, 3)
        for j in range(m):
            nodes.append((f"s{j + 1}", [f"q{qid} entity{j + 1}"], []))
            nodes.append((f"s{m + j + 1}", [f"q{qid} attribute of entity{j + 1}"], [f"s{j + 1}"]))
        nodes.append((f"s{2 * m + 1}", [f"q{qid} compare"], [f"s{m + j + 1}" for j in range(m)]))
    elif shape == "diamond":
        nodes = [
            ("s1", [f"q{qid} root"], []),
            ("s2", [f"q{qid} left"], ["s1"]),
            ("s3", [f"q{qid} right"], ["s1"]),
            ("s4", [f"q{qid} join"], ["s2", "s3"]),
        ]
    elif shape == "fanout_search":
        parts = [f"q{qid} part{i + 1}" for i in range(rng.randint(2, 4))]
        nodes = [("s1", parts, []), ("s2", [f"q{qid} follow-up"], ["s1"])]
    elif shape == "wide":
        nodes = [(f"s{i + 1}", [f"q{qid} item{i + 1}"], []) for i in range(rng.randint(3, 6))]
    elif shape == "random_dag":
        for i in range(rng.randint(5, 8)):
            deps = [f"s{j + 1}" for j in range(i) if rng.random() < 0.3]
            nodes.append((f"s{i + 1}", [f"q{qid} node{i + 1}"], deps))
    else:
        nodes = [("s1", [f"q{qid} lookup"], [])]
    return shape, nodes


def make_suite(n: int, seed: int, median_ms: float, sigma: float) -> list[Query]:
    rng = random.Random(seed)
    suite = []
    for qid in range(n):
        shape, nodes = _shape(rng, qid)
        query = Query(qid=qid, shape=shape, plan="")
        lines = ["<plan><graph>"]
        for node_id, parts, deps in nodes:
            refs = "".join(f" {{{d}}}" for d in deps)
            arg = " | ".join(p + refs for p in parts)
            depends = f' depends="{",".join(deps)}"' if deps else ""
            lines.append(f'  <node id="{node_id}"{depends}>search("{arg}")</node>')
            query.node_parts[node_id] = parts
            for part in parts:
                query.latency_s[part] = min(
                    0.020, max(0.001, rng.lognormvariate(0.0, sigma) * median_ms / 1000.0)
                )
        lines.append("</graph></plan>")
        query.plan = "\n".join(lines)
        suite.append(query)
    return suite


def make_tool(latency_s: dict[str, float], zero: bool, actual_s: dict[str, float] | None = None):
    async def search(query: str) -> str:
        key = _strip_refs(query)
        if not zero:
            started = time.perf_counter()
            await asyncio.sleep(latency_s[key])
            if actual_s is not None:  # what the call really took on this (shared) machine
                actual_s[key] = time.perf_counter() - started
        return f"<{key}>"

    return search


def _strip_refs(text: str) -> str:
    # arguments carry the filled-in results of dependencies after the part name: "q3 hop2 <q3 hop1>"
    return text.split(" <", 1)[0]


async def run_suite(
    suite: list[Query], zero: bool, concurrency: int, desc: str, wrap: bool = True
) -> dict[str, dict]:
    latencies = {k: v for q in suite for k, v in q.latency_s.items()}
    actual: dict[str, float] = {}
    tool = make_tool(latencies, zero, actual)
    if not wrap:
        tool.tool_name = "search"  # counts as already decorated: no @tool wrapper, no execute_tool span
    planners = {
        m: GAPPlanner(tools={"search": tool}, scheduler=m, max_concurrency=concurrency, node_timeout_s=5.0)
        for m in MODES
    }
    out = {
        m: {
            "wall_ms": [],
            "total_ms": [],
            "measured_cp_ms": [],
            "actual_cp_ms": [],
            "cpu_ms": 0.0,
            "tool_calls": 0,
            "nodes": 0,
            "failed": 0,
        }
        for m in MODES
    }
    for i, query in enumerate(tqdm(suite, desc=desc, unit="query", file=sys.stderr, leave=False)):
        order = MODES[i % 3 :] + MODES[: i % 3]  # rotate so load spikes hit every mode alike
        graph = Graph.from_tasks(parse_plan(query.plan))
        for mode in order:
            cpu = time.process_time()
            result = await planners[mode].execute_plan(f"query {query.qid}", plan_text=query.plan)
            rec = out[mode]
            rec["cpu_ms"] += (time.process_time() - cpu) * 1000.0
            if not zero:
                durations = {
                    n: 1000.0 * max(actual[a] for a in parts) for n, parts in query.node_parts.items()
                }
                rec["actual_cp_ms"].append(graph.critical_path(durations)[0])
            rec["wall_ms"].append(result["execution_time_ms"])
            rec["total_ms"].append(result["total_time_ms"])
            rec["measured_cp_ms"].append(result["critical_path_ms"])
            rec["tool_calls"] += result["tool_calls"]
            rec["nodes"] += result["task_count"]
            rec["failed"] += len(result["failed"]) + len(result["skipped"])
    for planner in planners.values():
        planner.close()
    return out


async def best_of(
    repeats: int, suite: list[Query], concurrency: int, desc: str, wrap: bool = True
) -> dict[str, dict]:
    """Zero-latency runs, repeated; per scheduler the run with the least CPU time (the machine is shared)."""
    best: dict[str, dict] = {}
    for r in range(repeats):
        out = await run_suite(suite, True, concurrency, f"{desc} ({r + 1}/{repeats})", wrap=wrap)
        for mode, rec in out.items():
            if mode not in best or rec["cpu_ms"] < best[mode]["cpu_ms"]:
                best[mode] = rec
    return best


def summarize(
    suite: list[Query],
    timed: dict[str, dict],
    bare: dict[str, dict],
    zero_off: dict[str, dict],
    gap_spans: dict[str, dict],
    zero_on: dict[str, dict],
) -> dict:
    bound = sum(q.bound_ms() for q in suite)
    serial = sum(q.serial_ms() for q in suite)
    nodes = sum(len(q.node_parts) for q in suite)
    modes = {}
    for mode in MODES:
        rec = timed[mode]
        wall = sum(rec["wall_ms"])
        modes[mode] = {
            "wall_ms": wall,
            "total_ms": sum(rec["total_ms"]),
            "vs_bound": wall / bound,
            "vs_measured_cp": wall / sum(rec["measured_cp_ms"]),
            "vs_actual_tool_cp": wall / sum(rec["actual_cp_ms"]),
            "cpu_us_per_node_scheduler": 1000.0 * bare[mode]["cpu_ms"] / bare[mode]["nodes"],
            "cpu_us_per_node_traced": 1000.0 * zero_on[mode]["cpu_ms"] / zero_on[mode]["nodes"],
            "median_query_ms": statistics.median(rec["wall_ms"]),
            "tool_calls": rec["tool_calls"],
            "failed_or_skipped": rec["failed"],
            "scheduler_us_per_node": 1000.0 * sum(bare[mode]["wall_ms"]) / bare[mode]["nodes"],
            "scheduler_us_per_node_with_parse": 1000.0 * sum(bare[mode]["total_ms"]) / bare[mode]["nodes"],
            "overhead_us_per_node_untraced": 1000.0
            * sum(zero_off[mode]["total_ms"])
            / zero_off[mode]["nodes"],
            "gap_spans_us_per_node": 1000.0 * sum(gap_spans[mode]["total_ms"]) / gap_spans[mode]["nodes"],
            "gap_spans_cpu_us_per_node": 1000.0 * gap_spans[mode]["cpu_ms"] / gap_spans[mode]["nodes"],
            "overhead_us_per_node_traced": 1000.0 * sum(zero_on[mode]["total_ms"]) / zero_on[mode]["nodes"],
            "exec_overhead_us_per_node_traced": 1000.0
            * sum(zero_on[mode]["wall_ms"])
            / zero_on[mode]["nodes"],
        }
    seq, dep, lvl = (modes[m]["wall_ms"] for m in ("sequential", "dependency", "level"))
    shapes: dict[str, int] = {}
    for q in suite:
        shapes[q.shape] = shapes.get(q.shape, 0) + 1
    return {
        "queries": len(suite),
        "nodes": nodes,
        "tool_latency_sum_ms": serial,
        "critical_path_bound_ms": bound,
        "shapes": shapes,
        "modes": modes,
        "dependency_latency_reduction_vs_sequential": 1 - dep / seq,
        "level_latency_reduction_vs_sequential": 1 - lvl / seq,
        "dependency_vs_level": dep / lvl,
    }


def _latency_table(s: dict) -> list[str]:
    lines = [
        "| scheduler | wall (ms) | vs critical-path bound (planned latencies) "
        "| vs critical path of the tools' actual durations | vs critical path of measured node times "
        "| median query (ms) | tool calls |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode, m in s["modes"].items():
        lines.append(
            f"| {mode} | {m['wall_ms']:.0f} | {m['vs_bound']:.3f}x | {m['vs_actual_tool_cp']:.3f}x | "
            f"{m['vs_measured_cp']:.3f}x | {m['median_query_ms']:.1f} | {m['tool_calls']} |"
        )
    dep = s["modes"]["dependency"]
    return lines + [
        "",
        f"latency reduction vs sequential: dependency {100 * s['dependency_latency_reduction_vs_sequential']:.1f}%, "
        f"level {100 * s['level_latency_reduction_vs_sequential']:.1f}% (goal >= 30%); "
        f"dependency-driven / level-synchronous wall time: {s['dependency_vs_level']:.3f}x",
        f"dependency-driven vs critical-path bound: +{100 * (dep['vs_bound'] - 1):.1f}% with planned latencies, "
        f"+{100 * (dep['vs_actual_tool_cp'] - 1):.1f}% with the tools' actual durations (goal <= 5%)",
    ]


def report(result: dict, args: argparse.Namespace) -> str:
    off, on = result["tracing_off"], result["tracing_on"]
    lines = [
        f"queries: {off['queries']}  nodes: {off['nodes']}  shapes: {off['shapes']}",
        f"tool latency: lognormal median {args.median_ms} ms sigma {args.sigma}, clipped to 1-20 ms; "
        f"sum of all latencies {off['tool_latency_sum_ms']:.0f} ms; critical-path bound "
        f"{off['critical_path_bound_ms']:.0f} ms",
        "",
        "Latency suite, tracing off (no tracer provider; tools still wrapped by @tool):",
        "",
        *_latency_table(off),
        "",
        "Latency suite, tracing on (SDK TracerProvider + BatchSpanProcessor; plan/level/node/tool spans):",
        "",
        *_latency_table(on),
        "",
        f"Overhead per node, zero-latency tools, best of {args.overhead_repeats} runs (us per node):",
        "",
        "| scheduler | scheduler only: wall of execution | scheduler only: CPU of execute_plan "
        "| + GAP spans (SDK): CPU | + @tool wrapper, tracing off: wall | + @tool spans, tracing on: wall "
        "| + @tool spans, tracing on: CPU |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode, m in off["modes"].items():
        lines.append(
            f"| {mode} | {m['scheduler_us_per_node']:.1f} | {m['cpu_us_per_node_scheduler']:.1f} | "
            f"{m['gap_spans_cpu_us_per_node']:.1f} | {m['overhead_us_per_node_untraced']:.1f} | "
            f"{m['overhead_us_per_node_traced']:.1f} | {m['cpu_us_per_node_traced']:.1f} |"
        )
    dep = off["modes"]["dependency"]
    lines += [
        "",
        f"scheduler overhead per node (dependency-driven, no tracing): {dep['scheduler_us_per_node']:.1f} us wall, "
        f"{dep['cpu_us_per_node_scheduler']:.1f} us CPU (goal < 100 us); with GAP spans recorded by the SDK: "
        f"{dep['gap_spans_cpu_us_per_node']:.1f} us CPU",
    ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict:
    suite = make_suite(args.queries, args.seed, args.median_ms, args.sigma)
    bare = await best_of(
        args.overhead_repeats, suite, args.concurrency, "scheduler overhead, no @tool", wrap=False
    )
    zero_off = await best_of(args.overhead_repeats, suite, args.concurrency, "overhead, tracing off")
    timed_off = await run_suite(suite, False, args.concurrency, "latency suite, tracing off")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans):  # noqa: ANN001 - SDK signature
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=65536))
    trace.set_tracer_provider(provider)
    gap_spans = await best_of(
        args.overhead_repeats, suite, args.concurrency, "GAP spans, no @tool", wrap=False
    )
    zero_on = await best_of(args.overhead_repeats, suite, args.concurrency, "overhead, tracing on")
    timed = await run_suite(suite, False, args.concurrency, "latency suite, tracing on")
    provider.shutdown()
    return {
        "tracing_off": summarize(suite, timed_off, bare, zero_off, gap_spans, zero_on),
        "tracing_on": summarize(suite, timed, bare, zero_off, gap_spans, zero_on),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=240, help="number of synthetic queries (default 240)")
    parser.add_argument("--quick", action="store_true", help="small run: 48 queries")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--median-ms", type=float, default=5.0, help="median tool latency (ms)")
    parser.add_argument("--sigma", type=float, default=0.6, help="lognormal sigma of tool latency")
    parser.add_argument("--concurrency", type=int, default=8, help="GAPPlanner max_concurrency")
    parser.add_argument(
        "--overhead-repeats",
        type=int,
        default=3,
        help="zero-latency overhead runs per setting; the least-CPU run is reported (default 3)",
    )
    parser.add_argument("--json", help="also write the summary as JSON to this path")
    args = parser.parse_args(argv)
    if args.quick:
        args.queries = 48
    if args.queries < 1:
        parser.error("--queries must be at least 1")
    if args.overhead_repeats < 1:
        parser.error("--overhead-repeats must be at least 1")
    started = time.perf_counter()
    summary = asyncio.run(main_async(args))
    print(report(summary, args))
    print(f"\nbenchmark wall time: {time.perf_counter() - started:.1f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
