"""Rewards: a ``lightspan.reward`` span inside the current rollout, and the GenAI conventions' own
``gen_ai.evaluation.result`` event on the span it judges (the rollout's span), so tools that read only
the standard form see it too. The converters count the two forms of one reward once.

Rewards that arrive after the rollout ended go through the collector's API instead.
"""

from __future__ import annotations

import logging
import math

from opentelemetry import trace

from lightspan.schemas import attributes as A

from .rollout import current_rollout, get_tracer

_log = logging.getLogger(__name__)


def emit_reward(
    value: float,
    *,
    name: str = A.REWARD_DEFAULT_NAME,
    step: int | None = None,
    span_id: str | None = None,
) -> None:
    """Record a reward for the current rollout.

    :param value: a finite number.
    :param name: which reward (several may be recorded: ``primary``, ``format``, ...).
    :param step: the index of the LLM call (0-based, in rollout order) the reward targets, if any.
    :param span_id: the hex span id of the LLM call the reward targets, if known.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"reward value must be a number, got {type(value).__name__}: {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"reward value must be finite, got {value!r}.")
    if not isinstance(name, str) or not name:
        raise ValueError(f"reward name must be a non-empty string, got {name!r}.")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise ValueError(f"reward step must be a non-negative integer or None, got {step!r}.")
    if span_id is not None:
        _check_span_id(span_id)
    if current_rollout() is None:
        _log.warning(
            "lightspan: emit_reward(%s=%r) outside a rollout; the reward has no rollout id", name, value
        )
    attrs: dict[str, object] = {
        A.GEN_AI_OPERATION_NAME: A.OP_REWARD,
        A.REWARD_VALUE: value,
        A.REWARD_NAME: name,
    }
    if step is not None:
        attrs[A.REWARD_STEP] = step
    if span_id is not None:
        attrs[A.REWARD_SPAN_ID] = span_id.lower()
    get_tracer().start_span(A.SPAN_REWARD, attributes=attrs).end()
    if step is None and span_id is None:
        _evaluation_event(name, value)


def _evaluation_event(name: str, value: float) -> None:
    """``gen_ai.evaluation.result`` on the rollout's span (else the current one) while it records.

    Targeted rewards (``step``/``span_id``) judge an LLM call that has ended, so they keep the reward
    span only.
    """
    rollout = current_rollout()
    span = rollout.span if rollout is not None and rollout.span is not None else trace.get_current_span()
    if span.is_recording():
        span.add_event(
            A.GEN_AI_EVALUATION_RESULT,
            {A.GEN_AI_EVALUATION_NAME: name, A.GEN_AI_EVALUATION_SCORE_VALUE: value},
        )


def _check_span_id(span_id: object) -> None:
    ok = isinstance(span_id, str) and len(span_id) == 16
    if ok:
        try:
            int(span_id, 16)
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(f"span_id must be 16 hex characters (an OTel span id), got {span_id!r}.")
