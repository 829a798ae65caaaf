"""How to read a local ``model.generate(...)``: token ids are native here, so the span carries the RL
data (prompt/response token ids; logprobs when ``output_logits`` or ``output_scores`` is returned).

Prompt text is not recorded (there is no tokenizer in the call); token ids are the training data.
torch is not imported by this module at import time; it is already loaded when generate runs.
"""

from __future__ import annotations

from typing import Any

from lightspan.schemas import attributes as A

from .._llm import CallSpec, Request
from ..openai.patch import set_token_data


def _model_name(instance: Any) -> str:
    config = getattr(instance, "config", None)
    return (
        getattr(config, "_name_or_path", None)
        or getattr(config, "model_type", None)
        or type(instance).__name__
    )


def generate_request(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
    gen_config = kwargs.get("generation_config") or getattr(instance, "generation_config", None)

    def pick(name: str) -> Any:
        value = kwargs.get(name)
        return value if value is not None else getattr(gen_config, name, None)

    attrs: dict[str, Any] = {}
    for name, attr in (
        ("temperature", A.GEN_AI_REQUEST_TEMPERATURE),
        ("top_p", A.GEN_AI_REQUEST_TOP_P),
        ("max_new_tokens", A.GEN_AI_REQUEST_MAX_TOKENS),
    ):
        value = pick(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[attr] = value
    n = pick("num_return_sequences")
    if isinstance(n, int) and n != 1:
        attrs[A.GEN_AI_REQUEST_CHOICE_COUNT] = n
    ids = kwargs.get("input_ids")
    if ids is None:
        ids = kwargs.get("inputs", args[0] if args else None)
    eos = pick("eos_token_id")
    request = Request(model=_model_name(instance), attributes=attrs)
    request.state = {
        "input_ids": ids,
        "eos": set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None},
        "encoder_decoder": bool(getattr(getattr(instance, "config", None), "is_encoder_decoder", False)),
    }
    return request


def _trim(row: list[int], eos: set[int]) -> tuple[list[int], str]:
    for i, tok in enumerate(row):
        if tok in eos:
            return row[: i + 1], "stop"
    return row, "length"


def generate_response(attrs: dict[str, Any], output: Any, request: Request) -> None:
    sequences = getattr(output, "sequences", output)
    if not hasattr(sequences, "tolist"):
        return
    rows = sequences.tolist()
    prompt = request.state["input_ids"]
    prompt_rows = prompt.tolist() if hasattr(prompt, "tolist") else None
    if request.state["encoder_decoder"]:
        start = 1  # the decoder start token
    else:
        start = len(prompt_rows[0]) if prompt_rows else 0
    generated, reasons = [], []
    for row in rows:
        trimmed, reason = _trim(row[start:], request.state["eos"])
        generated.append(trimmed)
        reasons.append(reason)
    attrs[A.GEN_AI_RESPONSE_MODEL] = request.model or ""
    attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    if prompt_rows:
        attrs[A.GEN_AI_USAGE_INPUT_TOKENS] = sum(len(r) for r in prompt_rows)
    attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] = sum(len(g) for g in generated)
    logprobs = _logprobs(output, generated)
    prompt_ids = prompt_rows[0] if prompt_rows and len(prompt_rows) == 1 else prompt_rows
    set_token_data(attrs, prompt_ids, generated, logprobs if logprobs else [None] * len(generated))


def _logprobs(output: Any, generated: list[list[int]]) -> list[list[float]] | None:
    steps = getattr(output, "logits", None) or getattr(output, "scores", None)
    if not steps:
        return None
    import torch

    per_step = [torch.log_softmax(s.float(), dim=-1) for s in steps]
    result = []
    for b, tokens in enumerate(generated):
        result.append(
            [round(float(per_step[t][b, tok]), 6) for t, tok in enumerate(tokens) if t < len(per_step)]
        )
    return result


GENERATE = CallSpec(
    A.PROVIDER_TRANSFORMERS,
    A.OP_TEXT_COMPLETION,
    generate_request,
    generate_response,
    span_name=A.SPAN_TEXT_COMPLETION,
    pass_request=True,
)
