"""deploy/clickhouse: the checked-in DDL equals what lightspan renders, and ClickHouse's own parser
(chDB's formatQuery: a parser-only check, ON CLUSTER cannot run without a cluster) accepts every
statement of the cluster DDL: ReplicatedReplacingMergeTree local tables under Distributed tables
sharded by rollout."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from deploy_test_helpers import DEPLOY, chdb_client

from lightspan.schemas import ddl

CH_DIR = DEPLOY / "clickhouse"
TABLES = [
    ddl.MIGRATIONS_TABLE,
    ddl.SPANS_TABLE,
    ddl.REWARDS_TABLE,
    ddl.WATERMARKS_TABLE,
    ddl.LOGS_TABLE,
    ddl.POLICY_VERSIONS_TABLE,
]


def statements(script: str) -> list[str]:
    """The statements of a rendered script, comment lines dropped."""
    out = []
    for chunk in script.split(";\n"):
        body = "\n".join(line for line in chunk.splitlines() if not line.lstrip().startswith("--")).strip()
        if body:
            out.append(body)
    return out


def sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@pytest.fixture(scope="module")
def client():
    c = chdb_client("deploy_ddl_check")
    yield c
    c.command("DROP DATABASE IF EXISTS deploy_ddl_check")


def test_checked_in_files_are_current():
    done = subprocess.run(
        [sys.executable, str(CH_DIR / "render.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    single, cluster = (CH_DIR / "single.sql").read_text(), (CH_DIR / "cluster.sql").read_text()
    assert single.endswith(ddl.render(ddl.Layout(database="lightspan")) + "\n")
    assert cluster.endswith(ddl.render(ddl.Layout(database="lightspan", cluster="lightspan")) + "\n")


def test_check_mode_reports_drift(tmp_path):
    shutil.copy(CH_DIR / "render.py", tmp_path / "render.py")
    (tmp_path / "single.sql").write_text(CH_DIR.joinpath("single.sql").read_text())
    (tmp_path / "cluster.sql").write_text("-- hand-edited\n")
    done = subprocess.run(
        [sys.executable, str(tmp_path / "render.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "stale: cluster.sql" in done.stderr


def test_cluster_ddl_parses_in_clickhouse(client):
    stmts = statements((CH_DIR / "cluster.sql").read_text())
    alters = [s for s in stmts if s.startswith("ALTER TABLE")]
    assert alters, "the rollout-identity migration alters existing tables"
    assert len(stmts) == 1 + 2 * len(TABLES) + len(alters)
    for stmt in stmts:
        formatted = client.query(f"SELECT formatQuery({sql_string(stmt)})").result_rows[0][0]
        assert "ON CLUSTER lightspan" in formatted, formatted[:120]


def test_parser_check_rejects_broken_sql(client):
    broken = statements((CH_DIR / "cluster.sql").read_text())[3].replace("ORDER BY", "ORDER")
    with pytest.raises(Exception, match="Syntax error"):
        client.query(f"SELECT formatQuery({sql_string(broken)})")


def test_replicated_local_tables_under_distributed_tables():
    text = (CH_DIR / "cluster.sql").read_text()
    for table in TABLES:
        local = f"{table}_local"
        engine = re.search(
            rf"lightspan\.{local} ON CLUSTER 'lightspan'\n\(.*?\)\nENGINE = (\w+)\('([^']+)', '([^']+)'",
            text,
            re.S,
        )
        assert engine, f"no local table {local}"
        assert engine.group(1).startswith("Replicated") and engine.group(1).endswith("MergeTree")
        assert (
            engine.group(2) == f"/clickhouse/tables/{{shard}}/lightspan/{local}"
            and engine.group(3) == "{replica}"
        )
        dist = re.search(
            rf"lightspan\.{table} ON CLUSTER 'lightspan' AS lightspan\.{local}\n"
            rf"ENGINE = Distributed\('lightspan', 'lightspan', '{local}', (.+)\);",
            text,
        )
        assert dist, f"no Distributed table over {local}"


def _shard_key(table: str) -> str:
    text = (CH_DIR / "cluster.sql").read_text()
    return re.search(rf"Distributed\('lightspan', 'lightspan', '{table}_local', (.+)\);", text).group(1)


def test_a_rollouts_spans_and_rewards_share_a_shard(client):
    """The sharding keys are valid over the tables' columns, and send one rollout to one shard."""
    single = ddl.render(ddl.Layout(database="deploy_ddl_check"))
    for stmt in statements(single):
        client.command(stmt)
    for table in TABLES:
        client.query(f"SELECT {_shard_key(table)} FROM deploy_ddl_check.{table} LIMIT 0")
    spans_key, rewards_key = _shard_key(ddl.SPANS_TABLE), _shard_key(ddl.REWARDS_TABLE)
    assert "RolloutId" in spans_key and "RolloutId" in rewards_key
    row = client.query(
        f"SELECT {spans_key}, {rewards_key} FROM (SELECT 'r-42' AS RolloutId, 'abc' AS TraceId)"
    ).result_rows[0]
    assert row[0] == row[1]
    # Spans outside any rollout spread by trace instead of piling onto one shard.
    a, b = client.query(
        f"SELECT {spans_key} FROM (SELECT '' AS RolloutId, arrayJoin(['t1', 't2']) AS TraceId)"
    ).result_rows
    assert a != b
