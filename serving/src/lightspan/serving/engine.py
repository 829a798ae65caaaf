"""The generation engine: one transformers checkpoint, a hand-written sampling loop over its KV cache.

Why a loop of our own instead of ``model.generate``: RL needs, per sampled token, its id and its
log-probability under the policy, the way vLLM returns them; the loop yields them token by token, which
also gives streaming for free. The ``n`` choices of one request decode together as one batch.

Logprobs are those of the model's own distribution (``log_softmax`` of the raw logits, temperature 1),
what a trainer recomputes for the importance ratio -- vLLM's ``logprobs_mode="raw_logprobs"``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Engine", "SamplingParams", "TokenEvent"]


@dataclass(frozen=True)
class SamplingParams:
    """What one request asks of the sampler (already validated by ``serving.protocol``)."""

    max_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    seed: int | None = None
    stop: tuple[str, ...] = ()
    top_logprobs: int = 0
    ignore_eos: bool = False


@dataclass
class TokenEvent:
    """One sampled token of one choice: what both the plain and the streamed answer are built from."""

    index: int
    token_id: int
    logprob: float
    text_delta: str
    top: list[tuple[int, float]] = field(default_factory=list)
    finish_reason: str | None = None


class Engine:
    """A loaded checkpoint: tokenizer, chat template and model on one device.

    Not thread-safe by itself: the server runs every generation on one worker thread.
    """

    def __init__(self, model_path: str | Path, *, device: str | None = None, dtype: str = "auto") -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"model path {str(path)!r} is not a directory holding a checkpoint")
        self.model_path = str(path)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = _resolve_dtype(dtype, self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        if self.tokenizer.chat_template is None:
            raise ValueError(
                f"the tokenizer in {self.model_path!r} has no chat template; chat completions need one"
            )
        self.model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=torch_dtype).to(self.device)
        self.model.eval()
        self.max_context = int(getattr(self.model.config, "max_position_embeddings", 0) or 1 << 30)
        self.eos_ids = _eos_ids(self.model, self.tokenizer)
        self._lock = threading.Lock()

    # -- prompts ------------------------------------------------------------------------------------
    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> list[int]:
        """Token ids of ``messages`` through the chat template, with the generation prompt appended."""
        text = self.tokenizer.apply_chat_template(
            messages, tools=tools, add_generation_prompt=True, tokenize=False
        )
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def token_text(self, token_id: int) -> str:
        """The text of one token as OpenAI's ``logprobs.content[].token`` shows it."""
        return self.tokenizer.decode([token_id], skip_special_tokens=False)

    def check(self, prompt_ids: list[int], params: SamplingParams) -> None:
        """Refuse a request that cannot fit the model's context, before any work starts."""
        if len(prompt_ids) + params.max_tokens > self.max_context:
            raise ValueError(
                f"prompt ({len(prompt_ids)} tokens) + max_tokens ({params.max_tokens}) exceeds the model's "
                f"context of {self.max_context} tokens; shorten the messages or lower max_tokens"
            )

    # -- sampling -----------------------------------------------------------------------------------
    def generate(
        self, prompt_ids: list[int], params: SamplingParams, cancel: threading.Event | None = None
    ) -> Iterator[TokenEvent]:
        """Sample ``params.n`` completions of ``prompt_ids``, yielding one event per sampled token.

        A choice ends on an end-of-sequence token (kept in its token ids, not in its text), on a stop
        string (text cut before it) or at ``max_tokens`` (``finish_reason="length"``).
        """
        import torch

        self.check(prompt_ids, params)
        with self._lock, torch.inference_mode():
            gen = torch.Generator(device=self.device)
            if params.seed is not None:
                gen.manual_seed(params.seed)
            else:
                gen.seed()
            n = params.n
            input_ids = torch.tensor([prompt_ids] * n, dtype=torch.long, device=self.device)
            done = [False] * n
            sampled: list[list[int]] = [[] for _ in range(n)]
            texts = [""] * n
            past = None
            hold = max((len(x) for x in params.stop), default=1) - 1
            for step in range(params.max_tokens):
                if cancel is not None and cancel.is_set():
                    return
                out = self.model(input_ids=input_ids, past_key_values=past, use_cache=True)
                past = out.past_key_values
                logits = out.logits[:, -1, :].float()
                logprobs = torch.log_softmax(logits, dim=-1)
                next_ids = _sample(logits, params.temperature, params.top_p, gen)
                chosen_lp = logprobs.gather(1, next_ids[:, None])[:, 0]
                top = None
                if params.top_logprobs:
                    top = torch.topk(logprobs, params.top_logprobs, dim=-1)
                for i in range(n):
                    if done[i]:
                        continue
                    tid = int(next_ids[i])
                    sampled[i].append(tid)
                    event = TokenEvent(index=i, token_id=tid, logprob=float(chosen_lp[i]), text_delta="")
                    if top is not None:
                        event.top = list(zip(top.indices[i].tolist(), top.values[i].tolist(), strict=True))
                    full = self.tokenizer.decode(sampled[i], skip_special_tokens=True)
                    if tid in self.eos_ids and not params.ignore_eos:
                        event.finish_reason = "stop"
                    elif (cut := _find_stop(full, params.stop)) is not None:
                        full, event.finish_reason = full[:cut], "stop"
                    elif step == params.max_tokens - 1:
                        event.finish_reason = "length"
                    # Text is released only once it cannot change: hold back what a stop string could
                    # still claim and an incomplete UTF-8 sequence (vLLM does the same when streaming).
                    end = len(full)
                    if event.finish_reason is None:
                        end -= hold
                        if full.endswith("\ufffd"):
                            end = min(end, len(full) - 1)
                    if end > len(texts[i]) and full.startswith(texts[i]):
                        event.text_delta = full[len(texts[i]) : end]
                        texts[i] = full[:end]
                    done[i] = event.finish_reason is not None
                    yield event
                if all(done):
                    return
                input_ids = next_ids[:, None]


def _sample(logits: Any, temperature: float, top_p: float, gen: Any) -> Any:
    """Greedy at temperature 0, else nucleus sampling from ``softmax(logits / temperature)``."""
    import torch

    if temperature == 0:
        return torch.argmax(logits, dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, sorted_idx = torch.sort(probs, descending=True, dim=-1)
        keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < top_p  # always keeps the top token
        sorted_probs = sorted_probs * keep
        probs = torch.zeros_like(probs).scatter(1, sorted_idx, sorted_probs)
    # multinomial on CPU generators must sample on the generator's device
    return torch.multinomial(probs, 1, generator=gen)[:, 0]


def _find_stop(text: str, stops: tuple[str, ...]) -> int | None:
    """Index where the earliest stop string starts in ``text``, or None."""
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """End-of-sequence ids from the generation config and the tokenizer (either may list several)."""
    ids: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return frozenset(ids)


def _resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        return (
            torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
        )
    choices = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in choices:
        raise ValueError(f"dtype must be one of {['auto', *choices]}, got {dtype!r}")
    return choices[dtype]
