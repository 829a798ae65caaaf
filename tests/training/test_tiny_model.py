"""build_tiny_model: what the demo and the policy server rely on."""

from __future__ import annotations

import subprocess
import sys


def test_tiny_model_loads_offline_and_renders_chat(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Which color is task 3?"}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhich color is task 3?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert (
        tok.eos_token == "<|im_end|>" and tok.pad_token == "<|pad|>" and tok.pad_token_id != tok.eos_token_id
    )
    assert model.config.eos_token_id == tok.eos_token_id == model.generation_config.eos_token_id
    assert model.config.vocab_size == len(tok)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text  # byte-level: round-trips exactly, no <unk>
    assert tok.unk_token_id not in tok("naïve 東京 ✓", add_special_tokens=False)["input_ids"]


def test_rewards_import_stays_light():
    code = (
        "import sys; from lightspan.training import rewards; import lightspan.training as t; "
        "assert rewards.exact_match('a', 'a') == 1.0; "
        "assert not {'torch', 'transformers', 'trl'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
