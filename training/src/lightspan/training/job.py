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
    published: dict[str, Any] | None = None  # PublishResult.as_dict() when publish_to was set
    # When resuming: {"from": checkpoint or None, "step", "skipped_incomplete": [dirs], "metrics_dropped": n}
    resume: dict[str, Any] | None = None


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


def _scheduler(cfg: TrainConfig) -> str:
    """transformers' ``constant`` schedule ignores warmup: with ``warmup_ratio > 0`` use its warmup variant
    (otherwise a requested warmup would silently not happen)."""
    if cfg.warmup_ratio > 0 and cfg.lr_scheduler_type == "constant":
        return "constant_with_warmup"
    return cfg.lr_scheduler_type


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
        "lr_scheduler_type": _scheduler(cfg),
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
        from lightspan.training.rl_knobs import rl_knob_values

        args = LightningRLConfig(
            **common,
            **rl_knob_values(cfg),
            beta=cfg.beta
            if cfg.beta is not None
            else 0.0,  # TrainConfig resolves None to 0.0 for lightningrl
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
        args = KTOConfig(
            **{
                "desirable_weight": cfg.kto_desirable_weight,
                "undesirable_weight": cfg.kto_undesirable_weight,
                **common,
            },
            max_length=cfg.max_length,
            beta=cfg.beta if cfg.beta is not None else 0.1,  # TrainConfig resolves None to 0.1 for kto/dpo
        )
        dataset = D.kto_view(rows, cfg.kto_label_from, cfg.sft_min_reward)
    else:
        from trl import DPOConfig, DPOTrainer

        trainer_cls = type("LightspanDPOTrainer", (MeteredMixin, DPOTrainer), {})
        if cfg.rpo_alpha and "loss_type" not in cfg.trainer_kwargs:
            # RPO: DPO alone lets the chosen answer's log-prob fall with the rejected one (docs/training.md).
            common = {**common, "loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, cfg.rpo_alpha]}
        args = DPOConfig(**common, max_length=cfg.max_length, beta=cfg.beta if cfg.beta is not None else 0.1)
        dataset = D.dpo_view(rows, cfg.dpo_min_margin)
    return trainer_cls(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )


def _is_main_process() -> bool:
    """Rank 0, or no launcher: the one process that edits the output dir (as transformers' ``should_save``)."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def _resume_wanted(cfg: TrainConfig) -> bool:
    return cfg.resume_from_checkpoint not in (None, False, "", "false", "False")


def _resume_arg(cfg: TrainConfig) -> tuple[str | None, int, list[str]]:
    """The checkpoint to resume from, its step, and the incomplete folders skipped; ``latest`` (or ``True``)
    is the newest *complete* checkpoint.

    Folders a kill left half-written are skipped with a warning naming each (and removed by the main
    process); with no complete checkpoint ``latest`` trains from step 0 with a warning, so a restart
    loop that always passes ``--resume latest`` survives a kill before the first save too.
    """
    from lightspan.training import checkpoints

    if not _resume_wanted(cfg):
        return None, 0, []
    value = cfg.resume_from_checkpoint
    need_optimizer = not cfg.trainer_kwargs.get("save_only_model", False)
    if value in (True, "true", "True", "latest"):
        point = checkpoints.latest_complete(str(cfg.output_dir), need_optimizer=need_optimizer)
        if _is_main_process():
            checkpoints.discard(point.skipped)
        if point.path is None:
            log.warning(
                "resume latest: %s holds no complete checkpoint; training from step 0", cfg.output_dir
            )
        else:
            log.info("resuming from %s (step %d)", point.path, point.step)
        return point.path, point.step, [folder for folder, _ in point.skipped]
    path = Path(str(value))
    if not path.is_dir():
        raise FileNotFoundError(f"resume_from_checkpoint {value!r} is not a checkpoint directory.")
    reason = checkpoints.incomplete_reason(path, need_optimizer=need_optimizer)
    if reason is not None:
        raise ValueError(
            f"checkpoint {value!r} is incomplete: {reason}. Pass 'latest' to resume from the newest complete one."
        )
    import json

    state = json.loads((path / checkpoints.TRAINER_STATE).read_text(encoding="utf-8"))
    return str(path), int(state.get("global_step", 0)), []


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
    resume, resume_step, skipped = _resume_arg(config)
    resume_info = None
    rows = load_dataset_source(config.data, out, credit=config.credit)
    model, tokenizer = _load_model(config)
    metrics_cb = JsonlMetricsCallback(config.resolved_metrics_file(), config.algo)
    if _resume_wanted(config) and _is_main_process():
        from lightspan.training.checkpoints import trim_metrics

        kept, dropped = trim_metrics(metrics_cb.path, resume_step)  # the steps after the checkpoint run again
        resume_info = {
            "from": resume,
            "step": resume_step,
            "skipped_incomplete": skipped,
            "metrics_dropped": dropped,
        }
        metrics_cb.last_step = next((r for r in reversed(kept) if "loss" in r), {})
    elif _is_main_process():
        from lightspan.training.checkpoints import set_aside_metrics

        if (moved := set_aside_metrics(metrics_cb.path)) is not None:
            log.warning("%s held an earlier run's metrics: moved to %s", metrics_cb.path, moved.name)
    trainer = _build_trainer(config, rows, model, tokenizer, [metrics_cb])
    if not config.progress:
        trainer.remove_callback(PrinterCallback)
    if resume is not None and 0 < config.max_steps <= resume_step:
        # transformers, resumed mid-epoch at max_steps, would still run one step: load, don't train.
        from lightspan.training.checkpoints import load_weights

        log.warning(
            "%s is at step %d and the run stops at step %d: nothing left to train (raise max_steps to go on); "
            "final model written again",
            resume,
            resume_step,
            config.max_steps,
        )
        load_weights(trainer.accelerator.unwrap_model(trainer.model), resume)
        trainer.state.global_step = resume_step
    else:
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
    published = (
        _publish(config, model_path, adapter_path)
        if config.publish_to and trainer.is_world_process_zero()
        else None
    )
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
        published=published,
        resume=resume_info,
    )


def _publish(cfg: TrainConfig, model_path: str, adapter_path: str | None) -> dict[str, Any]:
    """Publish the final model to ``cfg.publish_to``, probe-verified, and record its version.

    A failure raises (after the model is saved): a loop that keeps serving the old policy unnoticed
    would train on stale data.
    """
    from lightspan.schemas import env
    from lightspan.training.data import is_dsn
    from lightspan.training.publish.publisher import publish_final_model

    assert cfg.publish_to is not None
    dsn = (
        cfg.publish_dsn
        or (cfg.data if is_dsn(cfg.data) else None)
        or os.environ.get(env.LIGHTSPAN_CLICKHOUSE_DSN)
        or None
    )
    try:
        result = publish_final_model(
            model_path,
            cfg.publish_to,
            adapter_path=adapter_path,
            base_model=cfg.model,
            dsn=dsn,
            log=log.info,
        )
    except RuntimeError as exc:
        raise RuntimeError(
            f"training finished ({model_path}) but publishing to {cfg.publish_to} failed: {exc}"
        ) from exc
    log.info(result.summary())
    return result.as_dict()


__all__ = ["TrainResult", "train"]
