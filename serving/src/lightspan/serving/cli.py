"""``lightspan serve``: serve a local checkpoint behind an OpenAI-compatible endpoint until Ctrl-C."""

from __future__ import annotations

import click


@click.command("serve")
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Checkpoint directory (transformers format, with a tokenizer that has a chat template).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one.",
)
@click.option("--device", default=None, help="torch device (default: cuda if available, else cpu).")
@click.option(
    "--dtype",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
    help="Weights dtype.",
)
@click.option(
    "--served-model-name",
    default=None,
    help="Name clients pass as `model` (default: the --model path, as vLLM does).",
)
def serve(
    model_path: str, host: str, port: int, device: str | None, dtype: str, served_model_name: str | None
) -> None:
    """Serve MODEL at http://HOST:PORT/v1 (chat completions, models, health, admin/reload)."""
    from lightspan.serving.server import PolicyServer

    try:
        server = PolicyServer(
            model_path, host=host, port=port, device=device, dtype=dtype, served_model_name=served_model_name
        ).start()
    except (OSError, ValueError, RuntimeError) as exc:
        raise click.ClickException(f"cannot serve {model_path}: {exc}") from exc
    click.echo(
        f"serving {server.model_path} as '{server.served_model_name}' at {server.base_url} (Ctrl-C stops)"
    )
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
