"""Issue 18 prototype (benchmarks/bench_collector.py --engine-parse): ClickHouse parsing the OTLP request
bytes itself stores, span for span and column for column, what the Python path (otlp.flatten and the
collector's sink) stores, and leaves to Python exactly the spans its SQL does not reproduce."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_collector.py"


def _bench():  # noqa: ANN202 - a script loaded by path
    spec = importlib.util.spec_from_file_location("bench_collector", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_collector", module)
    spec.loader.exec_module(module)
    return module


def test_engine_parse_stores_the_rows_the_python_path_stores(ch_client, tmp_path: Path) -> None:
    bench = _bench()
    out = bench.engine_parse_check(
        [bench.make_edge_request(), bench.make_request(32, seed=3)], ch_client, str(tmp_path)
    )
    stored = ch_client.command(
        "SELECT count() FROM system.columns WHERE database = 'lightspan' AND table = 'otel_traces' "
        "AND default_kind != 'ALIAS' AND name != 'IngestedAt'"
    )
    assert out["columns_compared"] == int(str(stored)) > 40  # every stored column, DEFAULT/MATERIALIZED too
    assert out["differences"] == {}
    assert out["extra_in_engine"] == []
    # Spans the SQL leaves to Python (arrays/maps, duplicate keys, foreign conventions, a reward span, a value
    # over the size limit) are exactly those its probe names and the only ones the engine did not store.
    assert set(out["routed"]) == bench.EDGE_ROUTED
    assert set(out["missing_from_engine"]) == bench.EDGE_ROUTED
    # 32 bench spans + 6 stored edge spans (3 edge spans are invalid: neither path stores them).
    assert out["rows_engine"] == 32 + 6
    assert out["rows_python"] == out["rows_engine"] + len(bench.EDGE_ROUTED)
