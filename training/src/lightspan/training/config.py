"""``TrainConfig``: one config for every algorithm, from Python, YAML or the CLI.

Fields follow TRL's habit: each has ``metadata={"help": ...}`` and a line in the docstring, and
``__post_init__`` errors say what to change. Nothing heavy is imported here.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightspan.schemas import env
from lightspan.schemas.settings import SettingsFile, load_settings

ALGOS = ("lightningrl", "sft", "kto", "dpo")
KTO_LABEL_SOURCES = ("advantage", "reward")
LOSS_AGGREGATIONS = ("token_mean", "sequence_mean")


@dataclass
class TrainConfig:
    """What to train, on what, and how.

    Parameters:
        algo (`str`, defaults to `"lightningrl"`): one of ``lightningrl``, ``sft``, ``kto``, ``dpo``.
        model (`str`): local path (or hub name where a hub is reachable) of a causal LM with a chat template.
        data (`str` | `datasets.Dataset`): converter output (Parquet/JSONL file or directory), a Dataset, or a
            ClickHouse DSN (``chdb:///dir``, ``http://host:8123/db``) read through ``lightspan.converters``.
        credit (`str`, defaults to `"grpo"`): credit assignment the converters apply when ``data`` is a DSN.
        output_dir (`str`, defaults to `$LIGHTSPAN_OUTPUT_DIR/train` or `"lightspan-train"`): checkpoints,
            metrics and the final model go here.
        learning_rate (`float`, defaults to `1e-5`): peak learning rate (AdamW).
        num_train_epochs (`float`, defaults to `1.0`): passes over the data; ignored when ``max_steps > 0``.
        max_steps (`int`, defaults to `-1`): optimizer steps to run; ``-1`` derives them from the epochs.
        per_device_train_batch_size (`int`, defaults to `8`): rows per device per micro-batch.
        gradient_accumulation_steps (`int`, defaults to `1`): micro-batches per optimizer step.
        max_length (`int`, defaults to `2048`): prompt + completion tokens kept per row (prompt cut from the left).
        lr_scheduler_type (`str`, defaults to `"constant"`): transformers scheduler name.
        warmup_ratio (`float`, defaults to `0.0`): fraction of steps spent warming up.
        max_grad_norm (`float`, defaults to `1.0`): gradient clipping.
        lora (`bool`, defaults to `False`): train a LoRA adapter (peft) instead of all weights.
        lora_r (`int`, defaults to `16`): LoRA rank.
        lora_alpha (`int`, defaults to `32`): LoRA scaling.
        lora_dropout (`float`, defaults to `0.0`): LoRA dropout.
        lora_target_modules (`list[str]`, *optional*): modules to adapt; default ``"all-linear"``.
        merge_lora (`bool`, defaults to `True`): also save the merged full model (what vLLM loads) at the end.
        save_steps (`int`, defaults to `500`): checkpoint every N optimizer steps (and always at the end).
        save_total_limit (`int`, *optional*): keep at most this many checkpoints.
        resume_from_checkpoint (`str` | `bool`, *optional*): a checkpoint directory, or ``True`` for the
            latest one in ``output_dir``.
        clip_epsilon (`float`, defaults to `0.2`): PPO clip range below 1 (lightningrl).
        clip_epsilon_high (`float`, *optional*): clip range above 1; defaults to ``clip_epsilon``.
        loss_aggregation (`str`, defaults to `"token_mean"`): ``token_mean`` over all completion tokens of a
            batch, or ``sequence_mean`` (mean per sequence, then over sequences) (lightningrl).
        padding_free (`bool`, defaults to `False`): pack each micro-batch into one row with ``position_ids``
            (no pad tokens; best with flash attention on GPU) (lightningrl).
        sft_min_reward (`float`, defaults to `0.5`): SFT keeps rows whose reward is at least this.
        kto_label_from (`str`, defaults to `"advantage"`): KTO marks a row desirable when its ``advantage > 0``
            (``"advantage"``) or its ``reward >= sft_min_reward`` (``"reward"``).
        dpo_min_margin (`float`, defaults to `0.0`): DPO pairs need chosen reward - rejected reward above this.
        beta (`float`, defaults to `0.1`): KTO/DPO temperature.
        use_cpu (`bool`, *optional*): force CPU; default: CPU when no CUDA device is visible.
        bf16 (`bool`, *optional*): bf16 mixed precision; default: on where the GPU supports it, off on CPU.
        gradient_checkpointing (`bool`, *optional*): default: on for GPU, off on CPU.
        attn_implementation (`str`, *optional*): e.g. ``"sdpa"``, ``"flash_attention_2"``.
        seed (`int`, defaults to `42`): seed for data order and init.
        logging_steps (`int`, defaults to `1`): log metrics every N optimizer steps.
        metrics_file (`str`, *optional*): JSONL metrics path; default ``<output_dir>/metrics.jsonl``.
        tensorboard (`bool`, defaults to `False`): also log to TensorBoard (``<output_dir>/runs``, or ``$TENSORBOARD_LOGGING_DIR``).
        progress (`bool`, defaults to `True`): show a progress bar with per-step metrics.
        trainer_kwargs (`dict`, *optional*): extra fields passed to the TRL/transformers config as is.
    """

    algo: str = field(default="lightningrl", metadata={"help": f"Algorithm: one of {', '.join(ALGOS)}."})
    model: str | None = field(default=None, metadata={"help": "Path or name of the causal LM to train."})
    data: Any = field(
        default=None,
        metadata={
            "help": "Converter output (Parquet/JSONL file or dir), a datasets.Dataset, or a ClickHouse DSN."
        },
    )
    credit: str = field(default="grpo", metadata={"help": "Credit assignment when data is a DSN."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Where checkpoints, metrics and the model go."}
    )
    learning_rate: float = field(default=1e-5, metadata={"help": "Peak learning rate."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Epochs; ignored when max_steps > 0."})
    max_steps: int = field(default=-1, metadata={"help": "Optimizer steps; -1 derives them from epochs."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Rows per device per micro-batch."})
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Micro-batches per optimizer step."}
    )
    max_length: int = field(default=2048, metadata={"help": "Max prompt + completion tokens per row."})
    lr_scheduler_type: str = field(default="constant", metadata={"help": "transformers scheduler name."})
    warmup_ratio: float = field(default=0.0, metadata={"help": "Warmup fraction of total steps."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm."})
    lora: bool = field(default=False, metadata={"help": "Train a LoRA adapter (peft)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "LoRA target modules (default all-linear)."}
    )
    merge_lora: bool = field(default=True, metadata={"help": "Also save the merged model at the end."})
    save_steps: int = field(default=500, metadata={"help": "Checkpoint every N steps (and at the end)."})
    save_total_limit: int | None = field(default=None, metadata={"help": "Keep at most N checkpoints."})
    resume_from_checkpoint: str | bool | None = field(
        default=None, metadata={"help": "Checkpoint dir, or true for the latest in output_dir."}
    )
    clip_epsilon: float = field(default=0.2, metadata={"help": "PPO clip range below 1 (lightningrl)."})
    clip_epsilon_high: float | None = field(
        default=None, metadata={"help": "PPO clip range above 1 (default clip_epsilon)."}
    )
    loss_aggregation: str = field(
        default="token_mean",
        metadata={"help": f"lightningrl loss aggregation: {', '.join(LOSS_AGGREGATIONS)}."},
    )
    padding_free: bool = field(
        default=False, metadata={"help": "Pack micro-batches without padding (lightningrl)."}
    )
    sft_min_reward: float = field(default=0.5, metadata={"help": "SFT keeps rows with reward >= this."})
    kto_label_from: str = field(
        default="advantage", metadata={"help": "KTO label source: advantage or reward."}
    )
    dpo_min_margin: float = field(default=0.0, metadata={"help": "DPO pairs need a reward gap above this."})
    beta: float = field(default=0.1, metadata={"help": "KTO/DPO beta."})
    use_cpu: bool | None = field(default=None, metadata={"help": "Force CPU (default: when no CUDA)."})
    bf16: bool | None = field(default=None, metadata={"help": "bf16 mixed precision (default: GPU support)."})
    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "Gradient checkpointing (default: GPU on, CPU off)."}
    )
    attn_implementation: str | None = field(default=None, metadata={"help": "Attention kernel, e.g. sdpa."})
    seed: int = field(default=42, metadata={"help": "Random seed."})
    logging_steps: int = field(default=1, metadata={"help": "Log every N steps."})
    metrics_file: str | None = field(default=None, metadata={"help": "JSONL metrics path."})
    tensorboard: bool = field(default=False, metadata={"help": "Also log to TensorBoard."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})
    trainer_kwargs: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "Extra fields for the TRL/transformers config."}
    )

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {list(ALGOS)}, got {self.algo!r}.")
        if not self.model:
            raise ValueError(
                "model is required: pass a local model path (e.g. from build_tiny_model) or a name."
            )
        if self.data is None or (isinstance(self.data, str) and not self.data.strip()):
            raise ValueError(
                "data is required: pass the converters' output path, a datasets.Dataset, or a DSN."
            )
        if self.output_dir is None:
            base = os.environ.get(env.LIGHTSPAN_OUTPUT_DIR)
            self.output_dir = str(Path(base) / "train") if base else "lightspan-train"
        self.output_dir = str(self.output_dir)
        if isinstance(self.data, Path):
            self.data = str(self.data)
        positive_ints = (
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "max_length",
            "save_steps",
            "logging_steps",
            "lora_r",
            "lora_alpha",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}.")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(
                f"max_steps must be -1 (use epochs) or a positive integer, got {self.max_steps}."
            )
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            raise ValueError(
                f"num_train_epochs must be > 0 when max_steps is -1, got {self.num_train_epochs}."
            )
        if not 0 < self.clip_epsilon < 1:
            raise ValueError(
                f"clip_epsilon must be in (0, 1), got {self.clip_epsilon}. 0.2 is the usual value."
            )
        if self.clip_epsilon_high is not None and self.clip_epsilon_high <= 0:
            raise ValueError(f"clip_epsilon_high must be > 0, got {self.clip_epsilon_high}.")
        if self.loss_aggregation not in LOSS_AGGREGATIONS:
            raise ValueError(
                f"loss_aggregation must be one of {list(LOSS_AGGREGATIONS)}, got {self.loss_aggregation!r}."
            )
        from lightspan.schemas.rows import CREDIT_STRATEGIES

        if self.credit not in CREDIT_STRATEGIES:
            raise ValueError(f"credit must be one of {list(CREDIT_STRATEGIES)}, got {self.credit!r}.")
        if self.kto_label_from not in KTO_LABEL_SOURCES:
            raise ValueError(
                f"kto_label_from must be one of {list(KTO_LABEL_SOURCES)}, got {self.kto_label_from!r}."
            )
        if self.algo == "kto" and self.per_device_train_batch_size < 2:
            raise ValueError(
                "kto needs per_device_train_batch_size >= 2 (its KL term pairs rows within a batch). "
                "Set per_device_train_batch_size=2 or more."
            )
        if self.use_cpu is False and not _cuda_available():
            raise ValueError(
                "use_cpu=False but no CUDA device is visible. Leave use_cpu unset or run on a GPU."
            )
        if self.bf16 and self.resolved_use_cpu() and not self.trainer_kwargs.get("allow_cpu_bf16"):
            raise ValueError("bf16=True on CPU is slow and lossy here. Leave bf16 unset (auto) on CPU.")
        if not isinstance(self.trainer_kwargs, dict):
            raise ValueError(f"trainer_kwargs must be a mapping, got {type(self.trainer_kwargs).__name__}.")

    # --- resolved settings ------------------------------------------------------------------------
    def resolved_use_cpu(self) -> bool:
        """``use_cpu`` with the default applied: CPU when no CUDA device is visible."""
        return (not _cuda_available()) if self.use_cpu is None else bool(self.use_cpu)

    def resolved_bf16(self) -> bool:
        """``bf16`` with the default applied: on where the GPU supports it, off on CPU."""
        if self.bf16 is not None:
            return bool(self.bf16)
        if self.resolved_use_cpu():
            return False
        import torch

        return bool(torch.cuda.is_bf16_supported())

    def resolved_gradient_checkpointing(self) -> bool:
        """On for GPU (memory), off on CPU (speed), unless set."""
        if self.gradient_checkpointing is not None:
            return bool(self.gradient_checkpointing)
        return not self.resolved_use_cpu()

    def resolved_metrics_file(self) -> str:
        return self.metrics_file or str(Path(self.output_dir) / "metrics.jsonl")

    # --- construction -----------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
        """Read a YAML mapping of fields; ``overrides`` that are not ``None`` win (CLI flags over file).

        The only environment variable, ``LIGHTSPAN_OUTPUT_DIR``, is ``output_dir``'s default (see
        ``__post_init__``), so it never beats the file.
        """
        file = SettingsFile(path, parse=_yaml_load, format="YAML")
        fields: dict[str, None] = dict.fromkeys(cls.field_names())  # values as YAML types them
        values = load_settings(fields, file=file, overrides=overrides, what="TrainConfig field(s)")
        return cls(**values)


def _yaml_load(text: str) -> object:
    import yaml  # imported only when a config file is read

    return yaml.safe_load(text)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - training needs torch anyway
        return False
    return bool(torch.cuda.is_available())


__all__ = ["ALGOS", "TrainConfig"]
