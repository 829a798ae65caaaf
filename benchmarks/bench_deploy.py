"""Insert throughput of the spans table for the two write paths of deploy/: rows shaped like the contrib
ClickHouse exporter's (22 otel_traces columns, ClickHouse computes the RL columns from their DEFAULTs)
versus rows carrying every column (what the lightspan collector writes). Embedded chDB, one process.

    python benchmarks/bench_deploy.py            # 200k rows per path
    python benchmarks/bench_deploy.py --quick    # 20k rows per path
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timedelta, timezone

from lightspan.schemas import attributes as A
from lightspan.schemas import ddl
from lightspan.storage import apply_schema, connect

T0 = datetime(2026, 11, 23, tzinfo=timezone.utc)


def exporter_rows(n: int, offset: int = 0) -> list[list]:
    msgs = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "x" * 200}]}])
    rows = []
    for i in range(offset, offset + n):
        attrs = {
            A.ROLLOUT_ID: f"r{i // 8}",
            A.TASK_ID: f"t{i // 64}",
            A.ATTEMPT: "1",
            A.GEN_AI_OPERATION_NAME: "chat",
            A.GEN_AI_PROVIDER_NAME: "openai",
            A.GEN_AI_REQUEST_MODEL: "m",
            A.GEN_AI_USAGE_INPUT_TOKENS: "100",
            A.GEN_AI_USAGE_OUTPUT_TOKENS: "20",
            A.GEN_AI_INPUT_MESSAGES: msgs,
        }
        rows.append(
            [
                T0 + timedelta(microseconds=i),
                f"{i // 8:032x}",
                f"{i:016x}",
                "",
                "",
                "chat m",
                "Client",
                "agent",
                {"service.name": "agent"},
                "scope",
                "1",
                attrs,
                1000,
                "Unset",
                "",
                [],
                [],
                [],
                [],
                [],
                [],
                [],
            ]
        )
    return rows


def full_rows(rows: list[list]) -> list[list]:
    extra = []
    for r in rows:
        a = r[11]
        extra.append(
            r
            + [
                a[A.ROLLOUT_ID],
                a[A.TASK_ID],
                1,
                "chat",
                "",
                "openai",
                "m",
                "",
                "",
                "",
                "",
                100,
                20,
                None,
                "",
                -1,
                "",
                datetime.now(timezone.utc),
            ]
        )
    return extra


def run(n: int, batch: int) -> dict[str, float]:
    client = connect(f"chdb://{tempfile.mkdtemp(prefix='bench-deploy-')}")
    apply_schema(client, database="lightspan")
    table = f"lightspan.{ddl.SPANS_TABLE}"
    out = {}
    for label, cols, make in (
        ("exporter (22 columns, DEFAULTs computed)", list(ddl.OTEL_TRACES_COLUMNS), lambda r: r),
        ("lightspan collector (all columns)", ddl.SPANS_COLUMNS, full_rows),
    ):
        batches = [make(exporter_rows(batch, k)) for k in range(0, n, batch)]
        client.command(f"TRUNCATE TABLE {table}")
        start = time.perf_counter()
        for b in batches:
            client.insert(table, b, column_names=cols)
        out[label] = n / (time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k rows per path instead of 200k")
    parser.add_argument("--batch", type=int, default=10_000, help="rows per INSERT (default 10000)")
    args = parser.parse_args()
    n = 20_000 if args.quick else 200_000
    for label, rate in run(n, args.batch).items():
        print(f"{label}: {rate:,.0f} rows/s ({n} rows, {args.batch} per INSERT)")


if __name__ == "__main__":
    main()
