"""``lightspan``: one entry point; subcommands are loaded lazily from the part that owns them.

Bad arguments exit 2 with one line on stderr (``lightspan: error: ...``); runtime failures exit 1.
"""

from __future__ import annotations

import sys
from importlib import import_module

import click

from lightspan.cli.version import __version__

#: subcommand -> ("module:attribute" of a click command, one-line help shown without importing it,
#: the `lightspan[extra]` that installs the part owning it)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "schema": ("lightspan.storage.cli:schema", "Apply, print or inspect the ClickHouse schema.", "collector"),
    "collector": (
        "lightspan.collector.cli:collector",
        "Run the OTLP collector (gRPC 4317, HTTP 4318) into ClickHouse.",
        "collector",
    ),
    "convert": (
        "lightspan.converters.cli:convert",
        "Rebuild trajectories from ClickHouse and write training datasets.",
        "convert",
    ),
    "train": ("lightspan.training.cli:train", "Train a policy on converted trajectories with TRL.", "train"),
    "publish": (
        "lightspan.training.publish.cli:publish",
        "Push a trained checkpoint to a running vLLM or lightspan serve, verified by a probe.",
        "train",
    ),
    "serve": (
        "lightspan.serving.cli:serve",
        "Serve a local checkpoint behind an OpenAI-compatible endpoint.",
        "serve",
    ),
    "demo": (
        "lightspan.demo.cli:demo",
        "Run the whole loop on the embedded default: agent, collector, convert, train.",
        "demo",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when invoked (an agent never imports torch)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target[0].split(":")
        extra = target[2]
        try:
            module = import_module(module_name)
        except ImportError as exc:
            raise click.ClickException(
                f"'lightspan {name}' is not available in this install ({exc}). "
                f"Install it with: pip install 'lightspan[{extra}]'"
            ) from exc
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List subcommands from the static table, so `lightspan --help` imports no part."""
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="lightspan")
def cli() -> None:
    """lightspan: agent executions -> OpenTelemetry spans -> ClickHouse -> trajectories -> TRL training."""


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; usage errors become one line on stderr and exit code 2."""
    try:
        rv = cli.main(args=argv, prog_name="lightspan", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx else "lightspan"
        click.echo(f"{cmd}: error: {exc.format_message()} (see '{cmd} --help')", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"lightspan: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("lightspan: aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
