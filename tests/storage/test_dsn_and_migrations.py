"""DSN parsing, connection errors and versioned migrations."""

from __future__ import annotations

import pytest

from lightspan.schemas import ddl
from lightspan.storage import SchemaError, StorageError, apply_schema, connect, current_version, parse_dsn


def test_embedded_forms(tmp_path, monkeypatch):
    monkeypatch.delenv("LIGHTSPAN_CLICKHOUSE_DSN", raising=False)
    assert parse_dsn(f"chdb://{tmp_path}").path == str(tmp_path)
    assert parse_dsn(str(tmp_path)).kind == "chdb"
    monkeypatch.setenv("LIGHTSPAN_DATA_DIR", str(tmp_path / "d"))
    assert parse_dsn(None).path == str(tmp_path / "d")
    monkeypatch.setenv("LIGHTSPAN_CLICKHOUSE_DSN", "http://ch:8123/x")
    assert parse_dsn(None).host == "ch"


def test_server_forms(monkeypatch):
    monkeypatch.setenv("LIGHTSPAN_CLICKHOUSE_PASSWORD", "from-env")
    d = parse_dsn("http://alice:s%40cret@db.example:9000/traces?max_threads=2")
    assert (d.host, d.port, d.username, d.password, d.database, d.secure) == (
        "db.example",
        9000,
        "alice",
        "s@cret",
        "traces",
        False,
    )
    assert d.settings == {"max_threads": "2"}
    assert "s@cret" not in d.redacted()
    s = parse_dsn("https://db.example/")
    assert (s.port, s.secure, s.password, s.database) == (8443, True, "from-env", "lightspan")


@pytest.mark.parametrize(
    "dsn, message",
    [
        ("ftp://host/db", "unknown DSN scheme 'ftp'"),
        ("http:///db", "needs a host"),
        ("http://host:notaport/db", "bad port"),
        ("http://host/db?secure=maybe", "secure must be one of"),
    ],
)
def test_bad_dsns_name_the_problem(dsn, message):
    with pytest.raises(StorageError, match=message):
        parse_dsn(dsn)


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(StorageError, match="cannot open ClickHouse at http://default@127.0.0.1:1/lightspan"):
        connect("http://127.0.0.1:1/lightspan", connect_timeout=1)


def test_migrations_are_idempotent_and_versioned(chdb_dsn, closing):
    client = closing(connect(chdb_dsn))
    assert current_version(client, "lightspan") == 0
    assert apply_schema(client, database="lightspan") == [m.version for m in ddl.MIGRATIONS]
    assert apply_schema(client, database="lightspan") == []
    assert current_version(client, "lightspan") == ddl.SCHEMA_VERSION
    tables = {r[0] for r in client.query("SHOW TABLES FROM lightspan").result_rows}
    assert {ddl.SPANS_TABLE, ddl.REWARDS_TABLE, ddl.WATERMARKS_TABLE, ddl.MIGRATIONS_TABLE} <= tables


def test_a_staged_upgrade_stops_at_up_to_and_resumes_from_there(chdb_dsn, closing):
    client = closing(connect(chdb_dsn))
    first = ddl.MIGRATIONS[-2].version
    assert apply_schema(client, database="lightspan", up_to=first) == [
        m.version for m in ddl.MIGRATIONS if m.version <= first
    ]
    assert current_version(client, "lightspan") == first
    assert apply_schema(client, database="lightspan") == [ddl.SCHEMA_VERSION]


def test_newer_schema_than_code_is_refused(chdb_dsn, closing):
    client = closing(connect(chdb_dsn))
    apply_schema(client, database="lightspan")
    client.insert(
        f"lightspan.{ddl.MIGRATIONS_TABLE}",
        [[ddl.SCHEMA_VERSION + 5, "from the future"]],
        column_names=["Version", "Description"],
    )
    with pytest.raises(
        SchemaError, match=f"schema version {ddl.SCHEMA_VERSION + 5}, newer than this lightspan"
    ):
        apply_schema(client, database="lightspan")


def test_cluster_layout_renders_replicated_and_distributed():
    sql = ddl.render(ddl.Layout(database="ls", cluster="prod", ttl_days=30))
    assert "CREATE TABLE IF NOT EXISTS ls.otel_traces_local ON CLUSTER 'prod'" in sql
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/ls/otel_traces_local', '{replica}')" in sql
    )
    assert (
        "ENGINE = Distributed('prod', 'ls', 'otel_traces_local', cityHash64(if(RolloutId != '', RolloutId, TraceId)))"
        in sql
    )
    assert "TTL toDateTime(Timestamp) + toIntervalDay(30)" in sql
    with pytest.raises(ValueError, match="cluster name"):
        ddl.Layout(cluster="bad name;")


def test_every_rendered_statement_parses_in_clickhouse(ch_client):
    for layout in (ddl.Layout(), ddl.Layout(cluster="c1", ttl_days=7)):
        for stmt in ddl.render(layout).split(";\n"):
            body = "\n".join(line for line in stmt.splitlines() if not line.startswith("--")).strip()
            if body:
                ch_client.query("SELECT formatQuery({q:String})", parameters={"q": body})


def test_ttl_setting_applies(tmp_path, closing):
    client = closing(connect(f"chdb://{tmp_path}"))
    apply_schema(client, database="lightspan", ttl_days=3)
    ddl_text = client.command("SHOW CREATE TABLE lightspan.otel_traces")
    assert "toIntervalDay(3)" in ddl_text
