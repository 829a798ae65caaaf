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
from lightspan.training.rl_knobs import RLKnobs

ALGOS = ("lightningrl", "sft", "kto", "dpo")
KTO_LABEL_SOURCES = ("advantage", "reward")


@dataclass
class TrainConfig(RLKnobs):
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
        resume_from_checkpoint (`str` | `bool`, *optional*): a checkpoint directory, or ``True`` / ``"latest"``
            for the newest *complete* one in ``output_dir`` (half-written ones are skipped with a warning; with
            none, training starts from step 0 with a warning). See docs/training.md, "Checkpoints and resume".
        loss_type (`str`, defaults to `"dapo"`): lightningrl loss normalization, TRL's ``grpo`` | ``bnpo`` |
            ``dr_grpo`` | ``dapo``; ``dapo`` (TRL's default) divides by the optimizer step's completion tokens, so
            it is the same under any gradient accumulation / rank split.
        epsilon (`float`, defaults to `0.2`): PPO clip range below 1 (lightningrl; TRL ``epsilon``).
        epsilon_high (`float`, *optional*): clip range above 1; defaults to ``epsilon``.
        delta (`float`, *optional*): two-sided clipping, the ratio is also capped at ``delta`` (TRL ``delta``).
        num_iterations (`int`, defaults to `1`): PPO epochs over each optimizer step's batch (TRL's).
        importance_sampling_mode (`str`, defaults to `"sequence_mask"`, TRL's default): off-policy weight
            ``pi_old / pi_behaviour``: ``token|sequence`` x ``truncate|mask``, or ``none`` (TRL
            ``vllm_importance_sampling_mode``).
        importance_sampling_cap (`float`, *optional*, defaults to `3.0`): upper bound of that weight (TRL
            ``vllm_importance_sampling_clip_max``); ``importance_sampling_min`` the lower one (``..._clip_min``).
        max_staleness (`int`, *optional*): rows whose ``policy_version`` is more than this many versions behind
            ``current_policy_version`` (default: the newest in the data) are dropped (``stale_rows="drop"``) or
            down-weighted x0.5 per version past the bound (``"downweight"``); counted either way.
        clip_epsilon, clip_epsilon_high, loss_aggregation: deprecated names of ``epsilon``, ``epsilon_high`` and
            ``loss_type`` (``token_mean`` -> ``bnpo``, ``sequence_mean`` -> ``grpo``); a warning says so.
        padding_free (`bool`, defaults to `False`): pack each micro-batch into one row with ``position_ids``
            (no pad tokens; best with flash attention on GPU) (lightningrl).
        sft_min_reward (`float`, defaults to `0.5`): SFT keeps rows whose reward is at least this.
        kto_label_from (`str`, defaults to `"advantage"`): KTO marks a row desirable when its ``advantage > 0``
            (``"advantage"``) or its ``reward >= sft_min_reward`` (``"reward"``).
        kto_desirable_weight (`float`, defaults to `1.0`): KTO's weight of desirable rows (TRL ``desirable_weight``).
        kto_undesirable_weight (`float`, defaults to `0.5`): KTO's weight of undesirable rows (TRL
            ``undesirable_weight``, whose default is 1.0): at 1.0 the undesirable pull dragged the desirable
            answer's log-prob down with it from a warm start (docs/training.md, "KTO and DPO").
        dpo_min_margin (`float`, defaults to `0.0`): DPO pairs need chosen reward - rejected reward above this.
        rpo_alpha (`float`, *optional*, defaults to `1.0`): DPO adds ``rpo_alpha`` x the chosen answer's NLL
            (RPO; TRL ``loss_type=["sigmoid", "sft"]``, ``loss_weights=[1, rpo_alpha]``) so the chosen answer's own
            probability does not collapse; ``0`` or ``None``: TRL's plain sigmoid DPO.
        beta (`float`, *optional*): lightningrl: k3 KL coefficient to the starting model (default 0, no
            reference model); KTO/DPO: their temperature (default 0.1).
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
        publish_to (`str`, *optional*): a running policy server (vLLM or ``lightspan serve``,
            ``http://host:port``) to publish the final model to once training ends, probe-verified
            (``lightspan.training.publish``): a LoRA run's adapter to vLLM, else the full (merged) weights.
        publish_dsn (`str`, *optional*): store that gets the policy version record; default ``data`` when it
            is a DSN, else ``$LIGHTSPAN_CLICKHOUSE_DSN``, else none (published, not recorded).
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
    padding_free: bool = field(
        default=False, metadata={"help": "Pack micro-batches without padding (lightningrl)."}
    )
    sft_min_reward: float = field(default=0.5, metadata={"help": "SFT keeps rows with reward >= this."})
    kto_label_from: str = field(
        default="advantage", metadata={"help": "KTO label source: advantage or reward."}
    )
    kto_desirable_weight: float = field(default=1.0, metadata={"help": "KTO weight of desirable rows."})
    kto_undesirable_weight: float = field(
        default=0.5, metadata={"help": "KTO weight of undesirable rows (TRL's default: 1.0)."}
    )
    dpo_min_margin: float = field(default=0.0, metadata={"help": "DPO pairs need a reward gap above this."})
    rpo_alpha: float | None = field(
        default=1.0, metadata={"help": "DPO: weight of the chosen answer's NLL (RPO); 0: plain DPO."}
    )
    beta: float | None = field(
        default=None, metadata={"help": "lightningrl: KL to the start model (0); KTO/DPO: beta (0.1)."}
    )
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
    publish_to: str | None = field(
        default=None, metadata={"help": "Policy server URL to publish the final model to (probe-verified)."}
    )
    publish_dsn: str | None = field(
        default=None, metadata={"help": "Store for the policy version record (default: data if a DSN)."}
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
        from lightspan.training.rl_knobs import resolve_aliases, validate_rl_knobs

        resolve_aliases(self)  # clip_epsilon / clip_epsilon_high / loss_aggregation -> TRL's names, warned
        validate_rl_knobs(self)
        for name in ("kto_desirable_weight", "kto_undesirable_weight"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}.")
        if self.rpo_alpha is not None and self.rpo_alpha < 0:
            raise ValueError(f"rpo_alpha must be >= 0 (0 or None: plain DPO), got {self.rpo_alpha}.")
        if self.beta is None:
            self.beta = 0.0 if self.algo == "lightningrl" else 0.1
        if self.algo == "lightningrl" and self.beta < 0:
            raise ValueError(f"beta (the KL coefficient) must be >= 0 for lightningrl, got {self.beta}.")
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
        if self.publish_to is not None and not str(self.publish_to).startswith(("http://", "https://")):
            raise ValueError(
                f"publish_to must be a policy server URL (http://host:port), got {self.publish_to!r}."
            )
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
