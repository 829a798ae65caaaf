"""The contract's GenAI names equal the official semantic-conventions package's.

``lightspan.schemas.attributes`` spells the conventions' names as plain strings so that lightspan-schemas
stays dependency-free (every part installs it; the conventions' ``_incubating`` module is unstable and
already marks its gen_ai names as moving to a separate repository). This test is what keeps them from
drifting: each key the conventions define must have the conventions' value, under the same constant name.
"""

from __future__ import annotations

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as G
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as GM
from opentelemetry.semconv.attributes import error_attributes, server_attributes

from lightspan.instrumentation._metrics import DURATION_BUCKETS, TOKEN_BUCKETS
from lightspan.schemas import attributes as A


def _constants(module) -> dict[str, str]:
    return {k: v for k, v in vars(module).items() if k.isupper() and isinstance(v, str)}


SEMCONV = {**_constants(G), **_constants(GM), **_constants(server_attributes), **_constants(error_attributes)}
#: Keys lightspan spells with a gen_ai. prefix that the package has no attribute for, and why.
NOT_ATTRIBUTES = {
    "GEN_AI_EVALUATION_RESULT": "an event name; the package has no gen_ai events module",
    "OPENLLMETRY_PROMPT_PREFIX": "OpenLLMetry's indexed-key prefix, a foreign convention",
    "OPENLLMETRY_COMPLETION_PREFIX": "OpenLLMetry's indexed-key prefix, a foreign convention",
}


def test_every_name_the_conventions_define_has_their_value():
    ours = _constants(A)
    same_name = {k: (v, SEMCONV[k]) for k, v in ours.items() if k in SEMCONV}
    assert len(same_name) >= 40, "the comparison should cover the contract's GenAI keys"
    assert {k: pair for k, pair in same_name.items() if pair[0] != pair[1]} == {}


def test_every_gen_ai_key_of_the_contract_is_a_convention_key():
    values = set(SEMCONV.values())
    foreign = {
        k: v
        for k, v in _constants(A).items()
        if v.startswith("gen_ai.") and v not in values and k not in NOT_ATTRIBUTES
    }
    assert foreign == {}, "a gen_ai.* key the conventions do not define: use a lightspan.* key"


def test_enumerated_values_and_metric_buckets():
    assert {A.OP_CHAT, A.OP_TEXT_COMPLETION, A.OP_GENERATE_CONTENT, A.OP_EXECUTE_TOOL, A.OP_INVOKE_AGENT} <= {
        v.value for v in G.GenAiOperationNameValues
    }
    assert {A.PROVIDER_OPENAI, A.PROVIDER_ANTHROPIC} <= {v.value for v in G.GenAiProviderNameValues}
    assert (A.TOKEN_TYPE_INPUT, A.TOKEN_TYPE_OUTPUT) == (
        G.GenAiTokenTypeValues.INPUT.value,
        G.GenAiTokenTypeValues.OUTPUT.value,
    )
    # The conventions' advisory boundaries: powers of two from 10 ms, powers of four from 1 token.
    assert DURATION_BUCKETS == tuple(round(0.01 * 2**i, 2) for i in range(14))
    assert TOKEN_BUCKETS == tuple(4**i for i in range(14))
