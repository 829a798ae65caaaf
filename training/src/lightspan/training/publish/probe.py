"""The probe: does the server now answer with the checkpoint's weights?

One greedy request to the server (``logprobs`` + ``return_token_ids``), then the same prompt and
completion through the checkpoint locally with transformers (and peft for an adapter): the per-token
logprobs must agree within a tolerance. Two different policies disagree by far more than fp32 noise
(a stale prefix cache was off by 0.47 nat), so agreement means the new weights serve.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .servers import PublishError

__all__ = ["PROBE_MESSAGES", "ProbeResult", "is_adapter", "adapter_base", "local_logprobs", "probe"]

PROBE_MESSAGES = [{"role": "user", "content": "lightspan publish probe: answer in a few words."}]


@dataclass(frozen=True)
class ProbeResult:
    max_abs_diff: float
    tokens: int
    server_logprobs: list[float]
    local_logprobs: list[float]


def is_adapter(path: str | Path) -> bool:
    """A PEFT adapter folder (``lightspan train --lora`` output without ``--merge-lora``)."""
    return (Path(path) / "adapter_config.json").is_file()


def adapter_base(path: str | Path) -> str | None:
    """The base model an adapter was trained on, as recorded in its ``adapter_config.json``."""
    try:
        cfg = json.loads((Path(path) / "adapter_config.json").read_text())
    except (OSError, ValueError):
        return None
    base = cfg.get("base_model_name_or_path")
    return str(base) if base else None


def _load(checkpoint: str, base_model: str | None) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if is_adapter(checkpoint):
        from peft import PeftModel

        base = base_model or adapter_base(checkpoint)
        if not base or not Path(base).is_dir():
            raise PublishError(
                f"the adapter {checkpoint!r} names base model {base!r}, which is not a local directory; "
                "pass base_model= (--base-model) with the base checkpoint the server runs"
            )
        model = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(base, dtype="float32"), checkpoint
        )
        tok_dir = checkpoint if (Path(checkpoint) / "tokenizer_config.json").is_file() else base
    else:
        model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype="float32")
        tok_dir = checkpoint
    return model.eval(), AutoTokenizer.from_pretrained(tok_dir)


def local_logprobs(
    checkpoint: str, prompt_ids: list[int], completion_ids: list[int], *, base_model: str | None = None
) -> list[float]:
    """Log-probabilities of ``completion_ids`` after ``prompt_ids`` under ``checkpoint`` (fp32, CPU)."""
    import torch

    model, _ = _load(checkpoint, base_model)
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + completion_ids])).logits[0].float()
    lp = torch.log_softmax(logits[len(prompt_ids) - 1 : -1], dim=-1)
    return lp.gather(1, torch.tensor(completion_ids)[:, None])[:, 0].tolist()


def _render(checkpoint: str, base_model: str | None) -> list[int]:
    _, tok = _load(checkpoint, base_model)
    text = tok.apply_chat_template(PROBE_MESSAGES, add_generation_prompt=True, tokenize=False)
    return list(tok(text, add_special_tokens=False)["input_ids"])


def probe(
    base_url: str,
    model: str,
    checkpoint: str,
    *,
    base_model: str | None = None,
    max_tokens: int = 8,
    timeout: float = 120.0,
) -> ProbeResult:
    """Greedy-decode the probe on the server as ``model``; compare its logprobs with ``checkpoint``'s."""
    body = {
        "model": model,
        "messages": PROBE_MESSAGES,
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": 0,
        "logprobs": True,
        "return_token_ids": True,
    }
    resp = httpx.post(f"{base_url.rstrip('/')}/chat/completions", json=body, timeout=timeout)
    if resp.status_code != 200:
        raise PublishError(
            f"the probe request for model {model!r} failed ({resp.status_code}: {resp.text[:300]})"
        )
    data = resp.json()
    choice = data["choices"][0]
    content = (choice.get("logprobs") or {}).get("content") or []
    served = [float(c["logprob"]) for c in content]
    ids = choice.get("token_ids")
    if not served or not ids:
        raise PublishError(
            f"the server returned no logprobs or token ids for {model!r}; the probe needs both "
            "(vLLM >= 0.10 returns them with return_token_ids)"
        )
    prompt_ids = data.get("prompt_token_ids") or _render(checkpoint, base_model)
    local = local_logprobs(checkpoint, list(prompt_ids), list(ids), base_model=base_model)
    diff = max(abs(a - b) for a, b in zip(served, local, strict=True))
    return ProbeResult(max_abs_diff=diff, tokens=len(ids), server_logprobs=served, local_logprobs=local)
