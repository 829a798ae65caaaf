"""``lightspan publish``: push a checkpoint to a running policy server, verify it, record its version."""

from __future__ import annotations

import json
import os

import click

from lightspan.schemas.env import LIGHTSPAN_CLICKHOUSE_DSN


@click.command("publish")
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--server",
    "server_url",
    required=True,
    help="The policy server: http://HOST:PORT (vLLM or lightspan serve; a trailing /v1 is fine).",
)
@click.option(
    "--dsn",
    default=None,
    help=f"ClickHouse store to take the version from and record it in (default: ${LIGHTSPAN_CLICKHOUSE_DSN}; "
    "none: not recorded).",
)
@click.option(
    "--mechanism",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "vllm-lora", "vllm-reload", "lightspan-reload"]),
    help="auto: vLLM LoRA load for an adapter, vLLM full-weight reload otherwise, or lightspan serve's reload.",
)
@click.option(
    "--version", "version", type=click.IntRange(0), default=None, help="Version number to publish as."
)
@click.option(
    "--base-model",
    default=None,
    help="Local base checkpoint of an adapter (default: from adapter_config.json).",
)
@click.option(
    "--tolerance", type=float, default=None, help="Largest probe logprob difference accepted (default 2e-3)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def publish(
    checkpoint: str,
    server_url: str,
    dsn: str | None,
    mechanism: str,
    version: int | None,
    base_model: str | None,
    tolerance: float | None,
    as_json: bool,
) -> None:
    """Publish CHECKPOINT (full weights or a LoRA adapter) to a running policy server."""
    from lightspan.training.publish import DEFAULT_TOLERANCE, PublishError, publish_checkpoint

    try:
        result = publish_checkpoint(
            checkpoint,
            server_url,
            dsn=dsn or os.environ.get(LIGHTSPAN_CLICKHOUSE_DSN) or None,
            mechanism=mechanism,
            version=version,
            base_model=base_model,
            tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
            log=lambda msg: click.echo(msg, err=True),
        )
    except PublishError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(result.as_dict()) if as_json else result.summary())
