"""LightningRL training throughput and MFU, side by side with TRL's stock SFTTrainer on the same data.

Model: a random-init Qwen2 config the size of Qwen2.5-0.5B (~494M parameters; nothing downloaded).
Data: synthetic single-turn samples shaped like lightspan's call rows (prompt/completion token ids,
behaviour logprobs, advantages), variable lengths. Both trainers see the same samples, batch size
and precision; the stock floor is ``SFTTrainer`` with padded batches and full-vocabulary logits.
lightspan's path packs each micro-batch padding-free (``position_ids``, flash attention when
installed, else SDPA with packed-sequence masks) and runs the LM head only where a completion token
is predicted.

    python benchmarks/bench_training_gpu.py                      # GPU: 0.5B model, both trainers
    python benchmarks/bench_training_gpu.py --quick              # GPU: 3 timed steps each
    python benchmarks/bench_training_gpu.py --smoke              # CPU smoke run anywhere (numbers mean little)

Needs: torch, transformers, accelerate, datasets and lightspan's training + schemas packages importable
(installed, or ``PYTHONPATH=training/src:schemas/src``); TRL (``trl==1.16.0``) only for the SFTTrainer side
(``--only lightningrl`` runs without it); ``flash-attn`` optional (else SDPA). Nothing is downloaded.

tokens/s counts real (non-pad) tokens. MFU = 6 * params * tokens/s / peak bf16 FLOP/s (attention
FLOPs left out, so MFU is slightly understated); peak comes from the GPU name or ``--peak-tflops``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--tiny", action="store_true", help="tiny model and data")
    p.add_argument("--smoke", action="store_true", help="--device cpu --tiny, 1 warmup + 2 timed steps")
    p.add_argument("--quick", action="store_true", help="fewer steps")
    p.add_argument("--steps", type=int, default=None, help="timed optimizer steps per trainer")
    p.add_argument("--warmup-steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument(
        "--prompt-len", type=int, default=None, help="max prompt tokens (lengths vary down to half)"
    )
    p.add_argument("--completion-len", type=int, default=None, help="max completion tokens")
    p.add_argument("--peak-tflops", type=float, default=None, help="override the GPU's peak bf16 TFLOP/s")
    p.add_argument("--only", choices=("lightningrl", "sft"), default=None)
    p.add_argument("--json", dest="json_out", default=None, help="write results here as JSON")
    a = p.parse_args(argv)
    if a.smoke:
        a.device, a.tiny = "cpu", True
        a.steps = a.steps or 2
    a.steps = a.steps or (3 if a.tiny or a.quick else 20)
    a.warmup_steps = a.warmup_steps if a.warmup_steps is not None else (1 if a.tiny or a.quick else 3)
    a.batch_size = a.batch_size or (4 if a.tiny else 16)
    a.prompt_len = a.prompt_len or (48 if a.tiny else 1024)
    a.completion_len = a.completion_len or (16 if a.tiny else 256)
    return a


def model_config(tiny: bool):
    from transformers import Qwen2Config

    if tiny:
        return Qwen2Config(
            vocab_size=512,
            hidden_size=64,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            tie_word_embeddings=True,
        )
    # Qwen2.5-0.5B shapes.
    return Qwen2Config(
        vocab_size=151936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        rope_theta=1000000.0,
    )


def synthetic_rows(n: int, vocab: int, prompt_len: int, completion_len: int, seed: int = 0) -> list[dict]:
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        p = rng.randint(max(1, prompt_len // 2), prompt_len)
        c = rng.randint(max(1, completion_len // 2), completion_len)
        rows.append(
            {
                "rollout_id": f"r{i}",
                "task_id": f"t{i // 4}",
                "step": 0,
                "prompt": [{"role": "user", "content": "x"}],
                "completion": [{"role": "assistant", "content": "y"}],
                "prompt_token_ids": [rng.randrange(10, vocab) for _ in range(p)],
                "completion_token_ids": [rng.randrange(10, vocab) for _ in range(c)],
                "completion_logprobs": [-rng.uniform(5, 15) for _ in range(c)],
                "reward": float(i % 2),
                "advantage": rng.gauss(0, 1),
            }
        )
    return rows


def attn_impl(device: str) -> str:
    if device == "cuda":
        try:
            # Optional on GPU machines; absent here, so the type checker is told it may be missing.
            import flash_attn  # noqa: F401  # pyright: ignore[reportMissingImports]

            return "flash_attention_2"
        except ImportError:
            pass
    return "sdpa"


class StepTimer:
    """A TrainerCallback that times optimizer steps after warmup and counts the real tokens they saw."""

    def __init__(self, warmup: int, device: str) -> None:
        from transformers import TrainerCallback

        timer = self

        class _CB(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                timer.mark(state)

        self.callback = _CB()
        self.warmup, self.device = warmup, device
        self.t0 = self.tok0 = None
        self.t1 = self.tok1 = None

    def mark(self, state) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
        now, seen = time.perf_counter(), state.num_input_tokens_seen
        if state.global_step == self.warmup:
            self.t0, self.tok0 = now, seen
        self.t1, self.tok1 = now, seen

    def tokens_per_s(self) -> float:
        return (self.tok1 - self.tok0) / (self.t1 - self.t0)


def run_one(kind: str, a: argparse.Namespace, rows: list[dict], tok, out_dir: str) -> dict:
    import datasets
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    bf16 = a.device == "cuda" and torch.cuda.is_bf16_supported()
    cfg = model_config(a.tiny)
    cfg._attn_implementation = attn_impl(a.device) if kind == "lightningrl" else "sdpa"
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16 if bf16 else torch.float32)
    n_params = sum(p.numel() for p in model.parameters())
    steps = a.warmup_steps + a.steps
    timer = StepTimer(a.warmup_steps, a.device)
    common: dict[str, Any] = dict(
        output_dir=out_dir,
        per_device_train_batch_size=a.batch_size,
        max_steps=steps,
        learning_rate=1e-6,
        logging_steps=1000,
        save_strategy="no",
        report_to="none",
        bf16=bf16,
        use_cpu=a.device == "cpu",
        gradient_checkpointing=False,
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        seed=0,
    )
    if kind == "lightningrl":
        from lightspan.training.lightningrl import LightningRLConfig, LightningRLTrainer

        args = LightningRLConfig(**common, padding_free=True, max_length=a.prompt_len + a.completion_len)
        trainer = LightningRLTrainer(
            model=model, args=args, train_dataset=rows, processing_class=tok, callbacks=[timer.callback]
        )
    else:
        from trl import SFTConfig, SFTTrainer

        ds = datasets.Dataset.from_list(
            [
                {
                    "input_ids": r["prompt_token_ids"] + r["completion_token_ids"],
                    "completion_mask": [0] * len(r["prompt_token_ids"])
                    + [1] * len(r["completion_token_ids"]),
                }
                for r in rows
            ]
        )
        args = SFTConfig(
            **common,
            max_length=a.prompt_len + a.completion_len,
            completion_only_loss=True,
            packing=False,
            padding_free=False,
        )
        trainer = SFTTrainer(
            model=model, args=args, train_dataset=ds, processing_class=tok, callbacks=[timer.callback]
        )
    if a.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    tps = timer.tokens_per_s()
    result = {
        "trainer": kind,
        "params": n_params,
        "tokens_per_s": round(tps, 1),
        "attn": cfg._attn_implementation,
        "bf16": bf16,
        "timed_steps": a.steps,
    }
    peak = a.peak_tflops
    if a.device == "cuda":
        name = torch.cuda.get_device_name(0)
        peak = peak or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        result.update(gpu=name, gpu_mem_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2))
    else:
        import resource  # CPU: the process's peak resident memory so far (covers every run before this one)

        result["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    if peak:
        result["mfu"] = round(6 * n_params * tps / (peak * 1e12), 4)
    del trainer, model
    if a.device == "cuda":
        torch.cuda.empty_cache()
    return result


def missing_requirements(kinds: list[str]) -> list[str]:
    """Packages this run needs that do not import here, each with what needs it."""
    import importlib.util

    need = {
        "torch": "both",
        "transformers": "both",
        "accelerate": "both",
        "datasets": "both",
        "lightspan.schemas": "both (lightspan-schemas)",
        "lightspan.training": "both (lightspan-training)",
    }
    if "sft" in kinds:
        need["trl"] = "the SFTTrainer side (pip install trl==1.16.0, or pass --only lightningrl)"
    missing = []
    for module, why in need.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(f"{module} ({why})")
    return missing


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    kinds = [k for k in ("lightningrl", "sft") if not a.only or k == a.only]
    missing = missing_requirements(kinds)
    if missing:
        print(f"bench_training_gpu: missing Python packages: {'; '.join(missing)}", file=sys.stderr)
        return 2
    import torch

    if a.device == "cuda" and not torch.cuda.is_available():
        print(
            "bench_training_gpu: no CUDA GPU is visible here; this benchmark needs one. "
            "For a smoke run on CPU use: --smoke",
            file=sys.stderr,
        )
        return 2
    if a.device == "cpu":
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    from lightspan.training.tiny_model import build_tokenizer

    tok = build_tokenizer()
    cfg = model_config(a.tiny)
    n_rows = a.batch_size * (a.warmup_steps + a.steps)
    rows = synthetic_rows(n_rows, cfg.vocab_size, a.prompt_len, a.completion_len)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            r = run_one(kind, a, rows, tok, os.path.join(tmp, kind))
            print(json.dumps(r), flush=True)
            results.append(r)
    if len(results) == 2:
        speedup = results[0]["tokens_per_s"] / results[1]["tokens_per_s"]
        print(f"lightningrl vs stock SFTTrainer: {speedup:.2f}x tokens/s", flush=True)
        summary = {"speedup_vs_sft": round(speedup, 2)}
    else:
        summary = {}
    import importlib.metadata as md

    versions = {}
    for dist in ("torch", "transformers", "trl", "accelerate", "flash-attn"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    report = {
        "device": a.device,
        "versions": versions,
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "tiny": a.tiny,
        "batch_size": a.batch_size,
        "prompt_len": a.prompt_len,
        "completion_len": a.completion_len,
        "results": results,
        **summary,
    }
    if a.json_out:
        with open(a.json_out, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
