"""The attribute contract: every key DESIGN.md names is a constant, spelled once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lightspan.schemas import attributes as A
from lightspan.schemas import env, rows

DESIGN = Path(__file__).resolve().parents[3] / "shared" / "DESIGN.md"


def _constant_values(module) -> dict[str, str]:
    return {k: v for k, v in vars(module).items() if k.isupper() and isinstance(v, str)}


@pytest.mark.skipif(not DESIGN.exists(), reason="shared/DESIGN.md is not beside this checkout")
def test_every_key_in_design_is_a_constant():
    text = DESIGN.read_text()
    keys = set(re.findall(r"`((?:gen_ai|lightspan|agentlightning)\.[a-z_.]+)`", text))
    keys |= set(re.findall(r"\(`((?:gen_ai|lightspan)\.[a-z_.]+)`", text))
    values = set(_constant_values(A).values())
    # "gen_ai.usage.input_tokens` / `output_tokens" names the second key by suffix.
    keys.discard("gen_ai.usage")
    # `lightspan.<part>` names a part (an import path), not a key: every folder with a src/lightspan/<part>/.
    parts = {p.name for p in (Path(__file__).resolve().parents[2]).glob("*/src/lightspan/*")}
    assert {"collector", "instrumentation", "storage"} <= parts
    keys -= {f"lightspan.{part}" for part in parts}
    missing = sorted(k for k in keys if k not in values and not k.endswith("."))
    assert not missing, f"keys named in DESIGN.md without a constant in schemas/attributes.py: {missing}"


def test_no_key_is_spelled_twice():
    values = _constant_values(A)
    allowed_aliases = {
        "BAGGAGE_ROLLOUT_ID",
        "BAGGAGE_TASK_ID",
        "BAGGAGE_ATTEMPT",
        "BAGGAGE_TASK_TYPE",
        "REWARD_VALUE",
        "OP_REWARD",
        "SPAN_REWARD",
        "OP_PLAN",
    }
    seen: dict[str, str] = {}
    for name, value in values.items():
        if (
            name in allowed_aliases
            or name.startswith(("SPAN_", "OP_", "PROVIDER_"))
            or name.endswith("_SPAN")
        ):
            continue
        assert value not in seen, f"{name} and {seen[value]} both spell {value!r}"
        seen[value] = name


def test_env_vars_are_named_for_themselves():
    for name, value in _constant_values(env).items():
        if name.startswith(("LIGHTSPAN_", "OTEL_")):
            assert name == value


def test_row_contract_lists_every_credit_strategy_and_column():
    assert rows.CREDIT_STRATEGIES == ("identical", "discounted", "per_step", "grpo", "grpo_rollout")
    assert set(rows.LIGHTNINGRL_COLUMNS) <= set(rows.CALL_ROW_COLUMNS)
