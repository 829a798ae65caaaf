"""``lightspan schema``: apply, print and inspect the ClickHouse schema."""

from __future__ import annotations

import click

from lightspan.schemas import env

_dsn = click.option(
    "--dsn",
    envvar=env.LIGHTSPAN_CLICKHOUSE_DSN,
    show_envvar=True,
    help="chdb:///dir (embedded, default ~/.lightspan/data) or http(s)://user:pass@host:8123/db.",
)
_cluster = click.option(
    "--cluster",
    envvar=env.LIGHTSPAN_CLICKHOUSE_CLUSTER,
    show_envvar=True,
    default=None,
    help="Render ReplicatedMergeTree + Distributed tables ON CLUSTER NAME.",
)
_ttl = click.option(
    "--ttl-days",
    envvar=env.LIGHTSPAN_TTL_DAYS,
    show_envvar=True,
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Drop spans older than this many days (0 keeps them forever).",
)


@click.group()
def schema() -> None:
    """Apply, print or inspect the ClickHouse schema."""


@schema.command()
@_dsn
@_cluster
@_ttl
def apply(dsn: str | None, cluster: str | None, ttl_days: int) -> None:
    """Create or upgrade the tables (idempotent; a newer store than this lightspan is an error)."""
    from lightspan.schemas import ddl
    from lightspan.storage import SchemaError, StorageError, apply_schema, connect, parse_dsn

    try:
        parsed = parse_dsn(dsn)
        client = connect(parsed)
        applied = apply_schema(client, database=parsed.database, cluster=cluster, ttl_days=ttl_days)
    except (StorageError, SchemaError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    where = parsed.redacted()
    if applied:
        click.echo(f"applied migrations {applied} to {where} (schema version {ddl.SCHEMA_VERSION})")
    else:
        click.echo(f"schema already at version {ddl.SCHEMA_VERSION} on {where}; nothing to do")


@schema.command("print")
@click.option("--database", default=env.DEFAULT_DATABASE, show_default=True, help="Database name.")
@_cluster
@_ttl
def print_(database: str, cluster: str | None, ttl_days: int) -> None:
    """Print the DDL (single node, or --cluster NAME) without touching any store."""
    from lightspan.schemas import ddl

    try:
        click.echo(ddl.render(ddl.Layout(database=database, cluster=cluster, ttl_days=ttl_days)))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@schema.command()
@_dsn
def version(dsn: str | None) -> None:
    """Print the schema version of a store and of this lightspan."""
    from lightspan.schemas import ddl
    from lightspan.storage import StorageError, connect, current_version, parse_dsn

    try:
        parsed = parse_dsn(dsn)
        have = current_version(connect(parsed), parsed.database)
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"store {parsed.redacted()}: version {have}; lightspan knows version {ddl.SCHEMA_VERSION}")


@schema.command()
@click.option(
    "--data-dir",
    envvar=env.LIGHTSPAN_DATA_DIR,
    show_envvar=True,
    default=env.DEFAULT_DATA_DIR,
    show_default=True,
    help="Embedded chDB directory to own and serve.",
)
@click.option(
    "--endpoint",
    default="127.0.0.1:8123",
    show_default=True,
    help="host:port to listen on (port 0 picks a free one).",
)
@click.option("--database", default=env.DEFAULT_DATABASE, show_default=True, help="Default database.")
@click.option("--password", default=None, help="Require this ClickHouse password.")
@click.option(
    "--read-write/--read-only",
    "read_write",
    default=None,
    help="Allow inserts and DDL (default: only on loopback; beyond it the interface is read-only).",
)
@click.option("--apply/--no-apply", "apply_", default=True, show_default=True, help="Apply the schema first.")
def serve(
    data_dir: str, endpoint: str, database: str, password: str | None, read_write: bool | None, apply_: bool
) -> None:
    """Own an embedded store and serve ClickHouse's HTTP query interface for it until SIGTERM/SIGINT.

    Other processes (a collector with --dsn http://host:port/db, converters, trainers) then use it as
    they would a ClickHouse server.
    """
    import signal
    import threading
    from pathlib import Path

    from lightspan.storage import StorageError, apply_schema, connect
    from lightspan.storage.http_interface import ClickHouseHTTPInterface

    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"expected host:port, got {endpoint!r}", param_hint="--endpoint")
    try:
        client = connect(f"chdb://{Path(data_dir).expanduser()}")
        if apply_:
            apply_schema(client, database=database)
    except (StorageError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    readonly = None if read_write is None else not read_write
    qi = ClickHouseHTTPInterface(
        client,
        host,
        int(port),
        lock=threading.Lock(),
        database=database,
        password=password,
        readonly=readonly,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    qi.start()
    click.echo(f"serving {data_dir} at {qi.url}{' (read-only)' if qi.readonly else ''}", err=True)
    while not stop.wait(0.5):
        pass
    qi.stop()
    client.close()
