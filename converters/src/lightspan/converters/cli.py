"""``lightspan convert``: rebuild trajectories from ClickHouse and write training datasets."""

from __future__ import annotations

import json
import os
from datetime import datetime

import click

from lightspan.schemas import env
from lightspan.schemas.rows import CREDIT_STRATEGIES

from .config import DEFAULT_FORMATS, FORMATS


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _one_line(message: str, limit: int = 400) -> str:
    """Store errors quote the whole query (long IN lists): keep the first line, cut to ``limit``."""
    first = message.strip().splitlines()[0] if message.strip() else message
    return first if len(first) <= limit else first[:limit] + " ..."


def _formats(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    items = tuple(_split(value) or [])
    unknown = sorted(set(items) - set(FORMATS))
    if unknown or not items:
        raise click.BadParameter(f"unknown formats {unknown or items}; choose from {', '.join(FORMATS)}")
    return items


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--dsn",
    envvar=env.LIGHTSPAN_CLICKHOUSE_DSN,
    show_envvar=True,
    help="chdb:///dir (embedded, default ~/.lightspan/data) or http(s)://user:pass@host:8123/db.",
)
@click.option(
    "-o",
    "--output-dir",
    "--output",
    envvar=env.LIGHTSPAN_OUTPUT_DIR,
    show_envvar=True,
    default="lightspan-out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the formats are written.",
)
@click.option(
    "-f",
    "--formats",
    default=",".join(DEFAULT_FORMATS),
    show_default=True,
    callback=_formats,
    help=f"Comma-separated subset of: {', '.join(FORMATS)}.",
)
@click.option(
    "--credit",
    type=click.Choice(CREDIT_STRATEGIES),
    default="identical",
    show_default=True,
    help="Credit assignment strategy.",
)
@click.option(
    "--gamma",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=0.99,
    show_default=True,
    help="Discount for --credit discounted.",
)
@click.option(
    "--agent-match", default=None, help="Regex on agent names: only matching agents' calls become rows."
)
@click.option(
    "--since", type=click.DateTime(), default=None, help="Rollouts that started at or after this time (UTC)."
)
@click.option(
    "--until", type=click.DateTime(), default=None, help="Rollouts that started before this time (UTC)."
)
@click.option("--service", default=None, help="Only rollouts with spans from this service.name.")
@click.option("--agent-name", default=None, help="Only rollouts in which this agent (gen_ai.agent.name) ran.")
@click.option("--task-ids", default=None, help="Comma-separated task ids.")
@click.option("--rollout-ids", default=None, help="Comma-separated rollout ids.")
@click.option(
    "--finished-only", is_flag=True, help="Only rollouts that ended (a root span or a reward was stored)."
)
@click.option(
    "--incremental", is_flag=True, help="Only rollouts with data ingested since the last incremental run."
)
@click.option(
    "--watermark-name",
    default="default",
    show_default=True,
    help="Name of the stored watermark (one per pipeline that converts incrementally).",
)
@click.option(
    "--rollout-sources",
    default="explicit,session,trace",
    show_default=True,
    help="Which links of the rollout-identity chain make a rollout: explicit (lightspan.rollout.id,"
    " agentlightning.rollout_id), session (session.id, gen_ai.conversation.id, ...), trace. Spans of the"
    " others are reported as belonging to no rollout.",
)
@click.option(
    "--reward-name", default="primary", show_default=True, help="The reward used as the final reward."
)
@click.option(
    "--sft-min-reward",
    type=float,
    default=1.0,
    show_default=True,
    help="SFT keeps rollouts whose final reward is at least this.",
)
@click.option(
    "--kto-threshold",
    type=float,
    default=0.5,
    show_default=True,
    help="KTO label is true when the final reward is at least this.",
)
@click.option(
    "--chunk-rollouts",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Rollouts per ClickHouse read (bounds memory).",
)
@click.option(
    "--allow-no-reward",
    is_flag=True,
    help="Convert rollouts without a reward (reward 0) instead of skipping.",
)
@click.option("--no-validate", is_flag=True, help="Skip JSON Schema validation of Lightning documents.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def convert(
    dsn: str | None,
    output_dir: str,
    formats: tuple[str, ...],
    credit: str,
    gamma: float,
    agent_match: str | None,
    since: datetime | None,
    until: datetime | None,
    service: str | None,
    agent_name: str | None,
    task_ids: str | None,
    rollout_ids: str | None,
    finished_only: bool,
    incremental: bool,
    watermark_name: str,
    rollout_sources: str,
    reward_name: str,
    sft_min_reward: float,
    kto_threshold: float,
    chunk_rollouts: int,
    allow_no_reward: bool,
    no_validate: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Rebuild Agent-Lightning trajectories from the spans in ClickHouse and write training datasets.

    \b
    Example:
      lightspan convert --dsn chdb:///var/lib/lightspan -o out --credit grpo \\
          -f trajectory-json,rows-parquet,sft,dpo --finished-only --incremental
    """
    from lightspan.storage import StorageError

    from .config import ConvertConfig, Selection
    from .pipeline import convert as run

    try:
        selection = Selection(
            since=since,
            until=until,
            service=service,
            agent_name=agent_name,
            task_ids=_split(task_ids),
            rollout_ids=_split(rollout_ids),
            finished_only=finished_only,
            incremental=incremental,
            watermark_name=watermark_name,
            rollout_sources=tuple(_split(rollout_sources) or ()),
        )
        config = ConvertConfig(
            dsn=dsn,
            selection=selection,
            agent_match=agent_match,
            credit=credit,
            gamma=gamma,
            output_dir=output_dir,
            formats=formats,
            chunk_rollouts=chunk_rollouts,
            reward_name=reward_name,
            sft_min_reward=sft_min_reward,
            kto_threshold=kto_threshold,
            require_reward=not allow_no_reward,
            validate=not no_validate,
            show_progress=not quiet and not as_json,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    try:
        report = run(config)
    except StorageError as exc:
        raise click.ClickException(_one_line(str(exc))) from None
    except Exception as exc:  # a store or disk failure: one line, exit 1
        raise click.ClickException(_one_line(f"convert failed: {type(exc).__name__}: {exc}")) from None
    if as_json:
        click.echo(json.dumps(report.as_dict(), default=str, indent=1))
    else:
        click.echo(report.summary())
        click.echo(f"output: {os.path.abspath(output_dir)}")


__all__ = ["convert"]
