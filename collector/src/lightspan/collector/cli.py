"""``lightspan collector``: run the collector until SIGTERM/SIGINT, then flush and exit."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time

import click

from lightspan.schemas import env

_STD = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update({k: v for k, v in vars(record).items() if k not in _STD and k != "message"})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


@click.command("collector", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar=env.LIGHTSPAN_COLLECTOR_CONFIG,
    help="YAML config file.",
)
@click.option(
    "--dsn",
    help="ClickHouse: chdb:///dir or http://host:8123/db (default: embedded).",
)
@click.option("--data-dir", help="Embedded store directory (default ~/.lightspan/data).")
@click.option(
    "--grpc-endpoint",
    help="OTLP/gRPC listen address (default 0.0.0.0:4317; 'off' disables).",
)
@click.option(
    "--http-endpoint",
    help="OTLP/HTTP listen address (default 0.0.0.0:4318; 'off' disables).",
)
@click.option(
    "--query-endpoint",
    help="ClickHouse HTTP query interface for the embedded store (default 127.0.0.1:8123; 'off' disables).",
)
@click.option("--spool-dir", help="Write-ahead spool directory.")
@click.option(
    "--auth-token",
    help="Require 'Authorization: Bearer <token>' from clients.",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM certificate (enables TLS).",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM private key.",
)
@click.option(
    "--batch-max-spans",
    type=click.IntRange(min=1),
    help="Spans per insert at most.",
)
@click.option(
    "--batch-timeout",
    "batch_timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds before a partial batch is written.",
)
@click.option(
    "--queue-max-spans",
    type=click.IntRange(min=1),
    help="Spans in memory before backpressure.",
)
@click.option(
    "--queue-max-bytes",
    type=click.IntRange(min=1),
    help="Bytes of acknowledged requests in memory (and of requests being decoded) before backpressure.",
)
@click.option(
    "--batch-max-bytes",
    type=click.IntRange(min=1),
    help="Request bytes per insert at most (bounds the writer's memory).",
)
@click.option(
    "--max-request-bytes",
    type=click.IntRange(min=1),
    help="Largest export (after decompression).",
)
@click.option(
    "--max-attribute-bytes",
    type=click.IntRange(min=0),
    help="Per-attribute size limit (0 = none).",
)
@click.option("--redact-drop", help="Comma-separated attribute keys/patterns to drop.")
@click.option("--redact-hash", help="Comma-separated attribute keys/patterns to hash.")
@click.option(
    "--no-fsync",
    "no_fsync",
    is_flag=True,
    default=False,
    help="Do not fsync the spool before acknowledging (unsafe).",
)
@click.option(
    "--log-level",
    envvar=env.LIGHTSPAN_LOG_LEVEL,
    default="info",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    show_default=True,
)
@click.option(
    "--log-format",
    envvar=env.LIGHTSPAN_LOG_FORMAT,
    default="json",
    type=click.Choice(["json", "text"]),
    show_default=True,
)
def collector(
    config_path: str | None, no_fsync: bool, log_level: str, log_format: str, **options: object
) -> None:
    """Run the OTLP collector (gRPC 4317, HTTP 4318) into ClickHouse (embedded chDB by default).

    Settings resolve as flags, then LIGHTSPAN_* environment variables, then the --config YAML file,
    then defaults (docs/collector.md lists each setting's variable).

    Point agents at it with OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317. Readers in other
    processes use the query URL it logs (a clickhouse-connect DSN). SIGTERM/SIGINT flush and exit.
    """
    from lightspan.collector import Collector, CollectorConfig

    setup_logging(log_level, log_format)
    if no_fsync:
        options["spool_fsync"] = False
    try:
        config = CollectorConfig.load(config_path, **options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    service = Collector(config)
    try:
        service.start()
    except Exception as exc:
        raise click.ClickException(f"collector failed to start: {exc}") from None
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        logging.getLogger("lightspan.collector").info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    click.echo(
        f"lightspan collector: OTLP gRPC :{service.grpc_port}  OTLP HTTP :{service.http_port}  "
        f"query {service.query_url or '-'}",
        err=True,
    )
    while not stop.wait(0.5):
        pass
    flushed = service.stop(timeout=30)
    if not flushed:
        raise click.ClickException(
            "stopped before everything was written; the spool replays it on the next start"
        )


def _name_env_vars() -> None:
    """Show each setting's variable in --help; the value is read by CollectorConfig.load (flags > env >
    file), not by click, so the CLI and the API resolve alike."""
    from .config import ENV_VARS

    for param in collector.params:
        var = ENV_VARS.get(param.name or "")
        if isinstance(param, click.Option) and var:
            param.help = f"{param.help} [env: {var}]"


_name_env_vars()
