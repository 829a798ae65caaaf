"""``lightspan train``: the trainer job on the command line (flags override the YAML config)."""

from __future__ import annotations

import json
import logging

import click

from lightspan.schemas import env
from lightspan.training.config import ALGOS
from lightspan.training.rl_knobs import IMPORTANCE_SAMPLING_CHOICES, LOSS_TYPES, STALE_ROW_RULES


@click.command("train", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML file of TrainConfig fields; flags given here override it.",
)
@click.option("--algo", type=click.Choice(ALGOS), default=None, help="Algorithm (default lightningrl).")
@click.option("--model", default=None, help="Path (or name) of the causal LM to train.")
@click.option(
    "--data",
    default=None,
    envvar=env.LIGHTSPAN_CLICKHOUSE_DSN,
    show_envvar=True,
    help="Converter output (Parquet/JSONL file or dir) or a ClickHouse DSN.",
)
@click.option(
    "--output",
    "output_dir",
    default=None,
    envvar=env.LIGHTSPAN_OUTPUT_DIR,
    show_envvar=True,
    help="Output directory for checkpoints, metrics and the final model.",
)
@click.option(
    "--learning-rate", "--lr", "learning_rate", type=float, default=None, help="Peak learning rate."
)
@click.option(
    "--epochs", "num_train_epochs", type=float, default=None, help="Epochs (when --max-steps unset)."
)
@click.option("--max-steps", type=int, default=None, help="Optimizer steps to run.")
@click.option(
    "--batch-size",
    "per_device_train_batch_size",
    type=int,
    default=None,
    help="Rows per device per micro-batch.",
)
@click.option(
    "--grad-accum", "gradient_accumulation_steps", type=int, default=None, help="Micro-batches per step."
)
@click.option("--max-length", type=int, default=None, help="Max prompt + completion tokens per row.")
@click.option("--lora/--no-lora", default=None, help="Train a LoRA adapter.")
@click.option("--lora-r", type=int, default=None, help="LoRA rank.")
@click.option("--save-steps", type=int, default=None, help="Checkpoint every N steps.")
@click.option(
    "--resume",
    "resume_from_checkpoint",
    default=None,
    help="Checkpoint directory to resume from, or 'latest' (the newest complete one; none: from step 0).",
)
@click.option(
    "--loss-type",
    type=click.Choice(LOSS_TYPES),
    default=None,
    help="lightningrl loss normalization, TRL's names (default dapo).",
)
@click.option(
    "--epsilon", type=float, default=None, help="PPO clip range below 1 (lightningrl, default 0.2)."
)
@click.option("--epsilon-high", type=float, default=None, help="PPO clip range above 1 (default --epsilon).")
@click.option("--clip-epsilon", type=float, default=None, help="Deprecated: use --epsilon.")
@click.option(
    "--beta", type=float, default=None, help="lightningrl: KL to the start model (0); kto/dpo: beta (0.1)."
)
@click.option(
    "--rpo-alpha", type=float, default=None, help="dpo: weight of the chosen answer's NLL (1; 0: plain DPO)."
)
@click.option("--num-iterations", type=int, default=None, help="PPO epochs over each batch (lightningrl).")
@click.option(
    "--importance-sampling-mode",
    type=click.Choice(IMPORTANCE_SAMPLING_CHOICES),
    default=None,
    help="Off-policy weight pi_old/pi_behaviour (default sequence_mask).",
)
@click.option("--importance-sampling-cap", type=float, default=None, help="Upper bound of that weight (3.0).")
@click.option(
    "--max-staleness", type=int, default=None, help="Rows more than N policy versions old are --stale-rows."
)
@click.option(
    "--stale-rows", type=click.Choice(STALE_ROW_RULES), default=None, help="drop (default) or downweight."
)
@click.option(
    "--padding-free/--padded", "padding_free", default=None, help="Pack micro-batches (lightningrl)."
)
@click.option("--cpu", "use_cpu", is_flag=True, default=None, help="Force CPU.")
@click.option("--seed", type=int, default=None, help="Random seed.")
@click.option("--metrics-file", default=None, help="JSONL metrics path (default <output>/metrics.jsonl).")
@click.option("--tensorboard/--no-tensorboard", default=None, help="Also log to TensorBoard.")
@click.option(
    "--no-progress", "no_progress", is_flag=True, help="No progress bar (metrics still go to the file)."
)
@click.option(
    "--publish-to",
    default=None,
    metavar="URL",
    envvar=env.LIGHTSPAN_PUBLISH_TO,
    show_envvar=True,
    help="Publish the final model to this running policy server (vLLM or lightspan serve), probe-verified.",
)
@click.option(
    "--publish-dsn",
    default=None,
    metavar="DSN",
    help=f"Store for the policy version record (default: --data if a DSN, else ${env.LIGHTSPAN_CLICKHOUSE_DSN}).",
)
def train(config_path: str | None, no_progress: bool, **flags) -> None:
    """Train a policy on converted trajectories with TRL.

    \b
    Examples:
      lightspan train --model ./tiny --data ./converted --output ./run
      lightspan train --algo sft --model ./tiny --data chdb:///data/lightspan --output ./run
      lightspan train --config train.yaml --max-steps 100
      lightspan train --lora --model ./tiny --data ./converted --publish-to http://127.0.0.1:8000
    """
    from lightspan.training.config import TrainConfig
    from lightspan.training.job import train as run_training

    if no_progress:
        flags["progress"] = False
    try:
        if config_path:
            config = TrainConfig.from_yaml(config_path, **flags)
        else:
            config = TrainConfig(**{k: v for k, v in flags.items() if v is not None})
    except (ValueError, TypeError) as exc:
        raise click.UsageError(str(exc)) from exc
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    click.echo(f"lightspan train: {config.algo} on {config.data} -> {config.output_dir}", err=True)
    try:
        result = run_training(config)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        json.dumps(
            {
                "model_path": result.model_path,
                "adapter_path": result.adapter_path,
                "steps": result.steps,
                "metrics_path": result.metrics_path,
                "last_metrics": result.metrics,
                "published": result.published,
                "resume": result.resume,
            },
            indent=2,
        )
    )


__all__ = ["train"]
