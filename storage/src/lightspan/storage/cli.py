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
