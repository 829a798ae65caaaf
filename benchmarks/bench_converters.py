"""Benchmark ``lightspan convert``: spans in the embedded store -> Parquet training rows.

Generates N rollouts of 20 spans each (root agent span, 6 steps of step/chat/tool spans, a reward
span; chat spans carry growing conversations and token ids) into an embedded chDB store once, then
converts them in a fresh process and reports spans/s and that process's peak RSS. A subset is also
converted by Agent Lightning's ``TracerTraceToTriplet`` (run in the separate ``.envs/agl`` venv,
see benchmarks/compare_agentlightning.py) for a side-by-side throughput number.

    python benchmarks/bench_converters.py            # 1,000,000 spans / 50,000 rollouts
    python benchmarks/bench_converters.py --quick    # 100,000 spans / 5,000 rollouts
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SPANS_PER_ROLLOUT = 20
STEPS = 6
WORDS = "the a graph node plan tool result answer city river capital population year search compute".split()


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _msgs(pairs: list[tuple[str, str]]) -> str:
    return json.dumps([{"role": r, "parts": [{"type": "text", "content": t}]} for r, t in pairs])


def rollout_rows(i: int, rng: random.Random, base: datetime) -> list[dict]:
    """The 20 spans of rollout ``i`` as spans-table rows (contrib-exporter style: RL columns by DEFAULT)."""
    from lightspan.schemas import attributes as A

    rid, task = f"rollout-{i:07d}", f"task-{i // 8:06d}"
    trace = f"{i:032x}"
    t = base + timedelta(seconds=i)
    ident = {A.ROLLOUT_ID: rid, A.TASK_ID: task, A.ATTEMPT: "0"}
    rows: list[dict] = []
    seq = [0]

    def add(name: str, attrs: dict, parent: str, dur_ms: int) -> str:
        seq[0] += 1
        sid = f"{i:010x}{seq[0]:06x}"
        rows.append(
            {
                "Timestamp": t + timedelta(milliseconds=seq[0] * 10),
                "TraceId": trace,
                "SpanId": sid,
                "ParentSpanId": parent,
                "SpanName": name,
                "SpanKind": "Internal",
                "ServiceName": "bench-agent",
                "ResourceAttributes": {"service.name": "bench-agent"},
                "SpanAttributes": {**ident, **attrs},
                "Duration": dur_ms * 1_000_000,
                "StatusCode": "Ok",
            }
        )
        return sid

    root = add(
        "invoke_agent solver",
        {A.GEN_AI_OPERATION_NAME: A.OP_INVOKE_AGENT, A.GEN_AI_AGENT_NAME: "solver"},
        "",
        STEPS * 30,
    )
    convo = [("system", "You are a careful agent."), ("user", _text(rng, 30))]
    prompt_ids = [rng.randrange(32000) for _ in range(60)]
    for s in range(STEPS):
        step = add(f"step {s}", {"bench.step": str(s)}, root, 25)
        answer = _text(rng, 20)
        resp_ids = [rng.randrange(32000) for _ in range(25)]
        add(
            "chat tiny",
            {
                A.GEN_AI_OPERATION_NAME: A.OP_CHAT,
                A.GEN_AI_PROVIDER_NAME: "openai",
                A.GEN_AI_REQUEST_MODEL: "tiny",
                A.GEN_AI_RESPONSE_MODEL: "tiny",
                A.GEN_AI_RESPONSE_ID: f"resp-{i}-{s}",
                A.GEN_AI_INPUT_MESSAGES: _msgs(convo),
                A.GEN_AI_OUTPUT_MESSAGES: _msgs([("assistant", answer)]),
                A.GEN_AI_USAGE_INPUT_TOKENS: str(len(prompt_ids)),
                A.GEN_AI_USAGE_OUTPUT_TOKENS: str(len(resp_ids)),
                A.LLM_PROMPT_TOKEN_IDS: json.dumps(prompt_ids),
                A.LLM_RESPONSE_TOKEN_IDS: json.dumps(resp_ids),
            },
            step,
            8,
        )
        result = _text(rng, 12)
        add(
            "execute_tool search",
            {
                A.GEN_AI_OPERATION_NAME: A.OP_EXECUTE_TOOL,
                A.GEN_AI_TOOL_NAME: "search",
                A.GEN_AI_TOOL_CALL_ARGUMENTS: json.dumps({"q": answer[:30]}),
                A.GEN_AI_TOOL_CALL_RESULT: json.dumps(result),
            },
            step,
            5,
        )
        convo = convo + [("assistant", answer), ("tool", result)]
        obs = [rng.randrange(32000) for _ in range(15)]
        prompt_ids = prompt_ids + resp_ids + obs
    add(
        "lightspan.reward",
        {A.GEN_AI_OPERATION_NAME: A.OP_REWARD, A.REWARD_VALUE: str(rng.choice([0.0, 0.5, 1.0]))},
        root,
        0,
    )
    assert len(rows) == SPANS_PER_ROLLOUT
    return rows


def generate(dsn: str, database: str, rollouts: int, batch: int = 2500) -> float:
    """Insert ``rollouts`` rollouts in bulk (once); returns seconds spent."""
    from lightspan.schemas import ddl
    from lightspan.storage import apply_schema, connect

    client = connect(dsn)
    apply_schema(client, database=database)
    have = client.query(f"SELECT count() FROM {database}.{ddl.SPANS_TABLE}").result_rows[0][0]
    if have == rollouts * SPANS_PER_ROLLOUT:
        print(f"store already holds {have} spans; not regenerating", flush=True)
        return _materialize(client, database)
    if have:
        client.command(f"TRUNCATE TABLE {database}.{ddl.SPANS_TABLE}")
    t0 = time.perf_counter()
    rng = random.Random(7)
    base = datetime(2026, 11, 1, tzinfo=timezone.utc)
    names = None
    for start in range(0, rollouts, batch):
        rows = [r for i in range(start, min(rollouts, start + batch)) for r in rollout_rows(i, rng, base)]
        names = names or list(rows[0])
        client.insert(
            f"{database}.{ddl.SPANS_TABLE}", [[r[n] for n in names] for r in rows], column_names=names
        )
        print(f"  generated {min(rollouts, start + batch) * SPANS_PER_ROLLOUT} spans", end="\r", flush=True)
    client.command(f"OPTIMIZE TABLE {database}.{ddl.SPANS_TABLE} FINAL")
    print()
    return time.perf_counter() - t0


def _materialize(client: Any, database: str) -> float:
    """A store generated before migration 7 (or 8) computes the parsed columns (and migration 8's
    ``ConverterAttributes``/``SpanNeeds``) on every read; store them once (what ``ALTER TABLE ...
    MATERIALIZE COLUMN`` does for a real upgraded store), so the benchmark reads what a store written
    after the migration holds. Returns seconds spent."""
    from lightspan.schemas import ddl

    t0 = time.perf_counter()
    table = f"{database}.{ddl.SPANS_TABLE}"
    where = f"database = '{database}' AND table = '{ddl.SPANS_TABLE}' AND active"
    for name in [*ddl.LLM_PARSED_COLUMNS, *getattr(ddl, "SPAN_NEEDS_COLUMNS", {})]:
        parts = client.query(f"SELECT count() FROM system.parts WHERE {where}").result_rows[0][0]
        have = client.query(
            f"SELECT count() FROM system.parts_columns WHERE {where} AND column = '{name}'"
        ).result_rows[0][0]
        if have < parts:
            print(f"  materializing {name} in {parts - have} part(s)", flush=True)
            client.command(f"ALTER TABLE {table} MATERIALIZE COLUMN {name} SETTINGS mutations_sync = 2")
    return time.perf_counter() - t0


def convert_phase(dsn: str, out: str, chunk: int) -> None:
    """Run in a fresh process: convert everything to Parquet rows and print a JSON line of results."""
    from lightspan.converters import ConvertConfig, convert

    def cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    cpu0, load0 = cpu(), os.getloadavg()[0]
    report = convert(
        ConvertConfig(
            dsn=dsn, output_dir=out, formats=("rows-parquet",), chunk_rollouts=chunk, validate=False
        )
    )
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # CPU seconds (all threads, ClickHouse's included) are far less sensitive to the shared machine's load
    # than wall time; the load average before and after says how shared it was.
    print(
        json.dumps(
            {
                "spans": report.spans_read,
                "seconds": report.seconds,
                "rollouts": report.rollouts_converted,
                "rows": report.rows_written.get("rows-parquet", 0),
                "skipped": dict(report.skipped),
                "peak_rss_mib": peak_kib / 1024,
                "cpu_seconds": cpu() - cpu0,
                "load_before": load0,
                "load_after": os.getloadavg()[0],
            }
        )
    )


def export_subset(dsn: str, database: str, n_rollouts: int, path: Path) -> int:
    """The spans of the first ``n_rollouts`` rollouts as JSON lines (what the Agent Lightning side reads)."""
    from lightspan.schemas import ddl
    from lightspan.storage import connect

    client = connect(dsn)
    sql = (
        f"SELECT RolloutId, TraceId, SpanId, ParentSpanId, SpanName, toUnixTimestamp64Nano(Timestamp), Duration,"
        f" SpanAttributes FROM {database}.{ddl.SPANS_TABLE} FINAL WHERE RolloutId IN (SELECT DISTINCT RolloutId"
        f" FROM {database}.{ddl.SPANS_TABLE} ORDER BY RolloutId LIMIT {n_rollouts}) ORDER BY RolloutId, Timestamp"
    )
    n = 0
    with open(path, "w") as fh:
        for rid, trace, sid, pid, name, start, dur, attrs in client.query(sql).result_rows:
            start, dur = int(start), int(dur)
            fh.write(
                json.dumps(
                    {
                        "rollout_id": rid,
                        "trace_id": trace,
                        "span_id": sid,
                        "parent_id": pid or None,
                        "name": name,
                        "start_ns": start,
                        "end_ns": start + dur,
                        "attributes": attrs,
                    }
                )
                + "\n"
            )
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100,000 spans / 5,000 rollouts")
    ap.add_argument("--rollouts", type=int, default=None, help="rollouts to generate (20 spans each)")
    ap.add_argument("--store", default=None, help="embedded store directory (default: a folder under /tmp)")
    ap.add_argument("--chunk-rollouts", type=int, default=1000, help="rollouts per ClickHouse read")
    ap.add_argument(
        "--agl-rollouts", type=int, default=500, help="subset converted by Agent Lightning (0: skip)"
    )
    ap.add_argument(
        "--phase", choices=["all", "generate", "convert", "export"], default="all", help=argparse.SUPPRESS
    )
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    rollouts = args.rollouts or (5_000 if args.quick else 50_000)
    store = args.store or f"/tmp/lightspan-bench-converters-{rollouts}"
    database = "bench"
    dsn = f"chdb://{store}?database={database}"
    if args.phase == "generate":
        print("generate_seconds", generate(dsn, database, rollouts))
        return
    if args.phase == "convert":
        convert_phase(dsn, args.out, args.chunk_rollouts)
        return
    if args.phase == "export":
        print(export_subset(dsn, database, args.agl_rollouts, Path(args.out)))
        return
    # Each phase runs in its own process: chDB opens one store per process, and the convert phase's
    # peak RSS must not include the data generation.
    me = [sys.executable, __file__, "--store", store, "--rollouts", str(rollouts)]
    print(
        f"store {store}: {rollouts} rollouts x {SPANS_PER_ROLLOUT} spans = {rollouts * SPANS_PER_ROLLOUT} spans"
    )
    gen = subprocess.run([*me, "--phase", "generate"], check=True, capture_output=True, text=True)
    print(gen.stdout.strip().splitlines()[-1])
    out = tempfile.mkdtemp(prefix="lightspan-bench-out-")
    try:
        proc = subprocess.run(
            [*me, "--phase", "convert", "--out", out, "--chunk-rollouts", str(args.chunk_rollouts)],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        parquet_mib = sum(f.stat().st_size for f in Path(out).rglob("*.parquet")) / 2**20
    finally:
        shutil.rmtree(out, ignore_errors=True)
    rate = result["spans"] / result["seconds"]
    print(
        f"lightspan: {result['spans']} spans, {result['rollouts']} rollouts -> {result['rows']} rows "
        f"({parquet_mib:.1f} MiB Parquet) in {result['seconds']:.2f}s = {rate:,.0f} spans/s; "
        f"peak RSS {result['peak_rss_mib']:.0f} MiB; skipped {result['skipped']}; "
        f"CPU {result['cpu_seconds']:.1f}s ({result['spans'] / result['cpu_seconds']:,.0f} spans per CPU-second); "
        f"load average {result['load_before']:.1f} -> {result['load_after']:.1f}"
    )
    agl_python = REPO / ".envs" / "agl" / "bin" / "python"
    if args.agl_rollouts and agl_python.exists():
        with tempfile.TemporaryDirectory() as tmp:
            subset = Path(tmp) / "subset.jsonl"
            subprocess.run(
                [*me, "--phase", "export", "--out", str(subset), "--agl-rollouts", str(args.agl_rollouts)],
                check=True,
                capture_output=True,
                text=True,
            )
            env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
            agl = subprocess.run(
                [
                    str(agl_python),
                    str(Path(__file__).parent / "compare_agentlightning.py"),
                    "--agl-bench",
                    str(subset),
                ],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            )
            a = json.loads(agl.stdout.strip().splitlines()[-1])
        agl_rate = a["spans"] / a["seconds"]
        print(
            f"agentlightning {a['version']} TracerTraceToTriplet: {a['spans']} spans, {a['rollouts']} rollouts -> "
            f"{a['triplets']} triplets in {a['seconds']:.2f}s = {agl_rate:,.0f} spans/s (in-memory spans, no store)"
        )
        print(f"speedup: {rate / agl_rate:.1f}x")
    elif args.agl_rollouts:
        print(f"agentlightning side skipped: {agl_python} not found (see docs/agentlightning-comparison.md)")


if __name__ == "__main__":
    main()
