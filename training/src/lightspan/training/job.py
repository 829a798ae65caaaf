"""``train(config)``: load rows and model, build the algorithm's TRL trainer, train, save, report.

Every algorithm shares the same steps: rows -> (view) -> trainer -> checkpoints every ``save_steps``
and at the end -> final model (full weights, or a LoRA adapter plus, by default, the merged model) ->
``TrainResult``. Multi-GPU is the same call under ``accelerate launch`` / ``torchrun``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightspan.training.config import TrainConfig


def _has_activation_checkpointing() -> bool:
    from dataclasses import fields

    from transformers import TrainingArguments

    return any(f.name == "activation_checkpointing" for f in fields(TrainingArguments))


log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run produced.

    ``metrics`` holds the last step's log (loss, rl/* statistics, tokens_per_s, ...) merged with the
    run summary (train_loss, train_runtime). ``model_path`` is what a server loads: the full model, or for LoRA the merged model when
    ``merge_lora`` (else the adapter). ``adapter_path`` is set for LoRA runs.
    """

    output_dir: str
    model_path: str
    steps: int
    metrics_path: str
    metrics: dict[str, Any] = field(default_factory=dict)
    adapter_path: str | None = None
    num_rows: int = 0
    checkpoints: list[str] = field(default_factory=list)


def _looks_like_path(model: str) -> bool:
    """A local path rather than a hub id ``org/name``: absolute, relative (./, ../, ~) or deeper than org/name."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model


def _load_model(cfg: TrainConfig):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if cfg.model and _looks_like_path(cfg.model) and not Path(cfg.model).expanduser().exists():
        raise FileNotFoundError(f"model path {cfg.model!r} does not exist.")
    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    except OSError as exc:
        raise RuntimeError(f"cannot load a tokenizer from {cfg.model!r}: {exc}") from exc
    if tokenizer.chat_template is None:
        raise ValueError(
            f"the tokenizer of {cfg.model!r} has no chat template; training rows are chat messages."
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if cfg.resolved_bf16() else torch.float32}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    try:
        model = AutoModelForCausalLM.from_pretrained(cfg.model, **kwargs)
    except OSError as exc:
        raise RuntimeError(f"cannot load a causal LM from {cfg.model!r}: {exc}") from exc
    return model, tokenizer


def _peft_config(cfg: TrainConfig):
    if not cfg.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.lora_target_modules or "all-linear",
        task_type="CAUSAL_LM",
    )


def _common_args(cfg: TrainConfig) -> dict[str, Any]:
    """TrainingArguments shared by every algorithm."""
    use_cpu = cfg.resolved_use_cpu()
    gc = cfg.resolved_gradient_checkpointing()
    args: dict[str, Any] = {
        "output_dir": cfg.output_dir,
        "learning_rate": cfg.learning_rate,
        "num_train_epochs": cfg.num_train_epochs,
        "max_steps": cfg.max_steps,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "lr_scheduler_type": cfg.lr_scheduler_type,
        "warmup_steps": cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio
        "max_grad_norm": cfg.max_grad_norm,
        "save_strategy": "steps",
        "save_steps": cfg.save_steps,
        "save_total_limit": cfg.save_total_limit,
        "logging_steps": cfg.logging_steps,
        "report_to": ["tensorboard"] if cfg.tensorboard else "none",
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "use_cpu": use_cpu,
        "bf16": cfg.resolved_bf16(),
        "gradient_checkpointing": gc,
        "disable_tqdm": not cfg.progress,
        "include_num_input_tokens_seen": "non_padding",
        "dataloader_num_workers": 0,
        "save_only_model": False,
    }
    if gc:
        args["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    if _has_activation_checkpointing():
        # transformers >= 5 renamed gradient_checkpointing*; setting the new names avoids its FutureWarning
        # (TRL's configs still default the old name to True, which the new name then overrides).
        args["activation_checkpointing"] = args.pop("gradient_checkpointing")
        if "gradient_checkpointing_kwargs" in args:
            args["activation_checkpointing_kwargs"] = args.pop("gradient_checkpointing_kwargs")
    args.update(cfg.trainer_kwargs)
    args.pop("allow_cpu_bf16", None)
    return args


def _build_trainer(cfg: TrainConfig, rows: Any, model: Any, tokenizer: Any, callbacks: list) -> Any:
    from lightspan.training import data as D
    from lightspan.training.metrics import MeteredMixin

    common = _common_args(cfg)
    peft_config = _peft_config(cfg)
    if cfg.algo == "lightningrl":
        from lightspan.training.lightningrl import LightningRLConfig, LightningRLTrainer

        if peft_config is not None:
            from peft import get_peft_model

            if cfg.resolved_gradient_checkpointing():
                model.enable_input_require_grads()
            model = get_peft_model(model, peft_config)
        args = LightningRLConfig(
            **common,
            clip_epsilon=cfg.clip_epsilon,
            clip_epsilon_high=cfg.clip_epsilon_high,
            loss_aggregation=cfg.loss_aggregation,
            max_length=cfg.max_length,
            padding_free=cfg.padding_free,
        )
        return LightningRLTrainer(
            model=model, args=args, train_dataset=rows, processing_class=tokenizer, callbacks=callbacks
        )
    if cfg.algo == "sft":
        from trl import SFTConfig, SFTTrainer

        trainer_cls = type("LightspanSFTTrainer", (MeteredMixin, SFTTrainer), {})
        args = SFTConfig(**common, max_length=cfg.max_length, completion_only_loss=True)
        dataset = D.sft_view(rows, cfg.sft_min_reward)
    elif cfg.algo == "kto":
        from trl import KTOConfig, KTOTrainer

        trainer_cls = type("LightspanKTOTrainer", (MeteredMixin, KTOTrainer), {})
        args = KTOConfig(**common, max_length=cfg.max_length, beta=cfg.beta)
        dataset = D.kto_view(rows, cfg.kto_label_from, cfg.sft_min_reward)
    else:
        from trl import DPOConfig, DPOTrainer

        trainer_cls = type("LightspanDPOTrainer", (MeteredMixin, DPOTrainer), {})
        args = DPOConfig(**common, max_length=cfg.max_length, beta=cfg.beta)
        dataset = D.dpo_view(rows, cfg.dpo_min_margin)
    return trainer_cls(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )


def _resume_arg(cfg: TrainConfig) -> str | bool | None:
    value = cfg.resume_from_checkpoint
    if value in (None, False, "", "false", "False"):
        return None
    if value in (True, "true", "True", "latest"):
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(cfg.output_dir) if Path(cfg.output_dir).is_dir() else None
        if last is None:
            raise FileNotFoundError(
                f"resume_from_checkpoint=True but {cfg.output_dir!r} has no checkpoint-* directory; "
                "pass a checkpoint path or leave resume unset."
            )
        return last
    if not Path(str(value)).is_dir():
        raise FileNotFoundError(f"resume_from_checkpoint {value!r} is not a checkpoint directory.")
    return str(value)


def train(config: TrainConfig) -> TrainResult:
    """Run one training job described by ``config`` and return where everything went.

    >>> from lightspan.training import TrainConfig, train, build_tiny_model  # doctest: +SKIP
    >>> result = train(TrainConfig(model=build_tiny_model("tiny"), data="converted/", max_steps=10))  # doctest: +SKIP
    """
    import transformers
    from transformers import PrinterCallback

    from lightspan.training.data import load_dataset_source
    from lightspan.training.metrics import JsonlMetricsCallback

    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # rows never leave the machine; neither do pings
    transformers.set_seed(config.seed)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    resume = _resume_arg(config)
    rows = load_dataset_source(config.data, out, credit=config.credit)
    model, tokenizer = _load_model(config)
    metrics_cb = JsonlMetricsCallback(config.resolved_metrics_file(), config.algo)
    trainer = _build_trainer(config, rows, model, tokenizer, [metrics_cb])
    if not config.progress:
        trainer.remove_callback(PrinterCallback)
    trainer.train(resume_from_checkpoint=resume)  # save_strategy="steps" also checkpoints the last step
    final_dir = out / "final"
    trainer.save_model(str(final_dir))
    tokenizer.save_pretrained(str(final_dir))
    model_path, adapter_path = str(final_dir), None
    if config.lora:
        adapter_path = str(final_dir)
        if config.merge_lora and trainer.is_world_process_zero():
            merged_dir = out / "merged"
            merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
            merged.save_pretrained(str(merged_dir))
            tokenizer.save_pretrained(str(merged_dir))
            model_path = str(merged_dir)
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    checkpoints = sorted(
        (str(p) for p in out.glob(f"{PREFIX_CHECKPOINT_DIR}-*")), key=lambda p: int(p.rsplit("-", 1)[1])
    )
    return TrainResult(
        output_dir=str(out),
        model_path=model_path,
        steps=int(trainer.state.global_step),
        metrics_path=str(metrics_cb.path),
        metrics={**metrics_cb.last_step, **metrics_cb.last},
        adapter_path=adapter_path,
        num_rows=len(rows),
        checkpoints=checkpoints,
    )


__all__ = ["TrainResult", "train"]
