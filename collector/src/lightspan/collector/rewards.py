"""Rewards posted after a rollout ended (``POST /v1/rewards``): validation and rows of the rewards table.

Body: one object or a list of objects ``{"rollout_id" | "session_id" | "trace_id", "value", "name"?,
"step"?, "task_id"?, "attempt"?, "span_id"?, "reward_id"?, "timestamp"?, "attributes"?}``. Without
``reward_id`` the id is a hash of the reward's content, so a client that retries the same post stores it once.

A reward names its rollout by whichever id the sender has: the rollout id, a session or conversation id
(``session.id``, ``gen_ai.conversation.id``, ...), or a trace id (32 hex digits). The id is stored in
``RolloutId`` with its kind in ``Attributes['lightspan.reward.target']``; the converters resolve it when
they convert, so a reward may arrive before the spans it names.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any

from lightspan.schemas import attributes as A

#: The fields that can name a reward's rollout, and the kind each records.
ID_FIELDS = {"rollout_id": "rollout", "session_id": "session", "trace_id": "trace"}
#: Attribute recording which kind of id the reward was posted with.
TARGET_ATTRIBUTE = A.REWARD_TARGET

_ALLOWED = {
    "rollout_id",
    "session_id",
    "trace_id",
    "value",
    "name",
    "step",
    "task_id",
    "attempt",
    "span_id",
    "reward_id",
    "timestamp",
    "attributes",
}


class InvalidReward(ValueError):
    """A reward that cannot be stored; the message names the field."""


def _str(doc: dict, key: str, i: int, default: str = "") -> str:
    value = doc.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidReward(f"reward[{i}].{key} must be a string, got {type(value).__name__}")
    return value


def _int(doc: dict, key: str, i: int, default: int, minimum: int) -> int:
    value = doc.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidReward(f"reward[{i}].{key} must be an integer >= {minimum}, got {value!r}")
    return value


def parse_rewards(body: bytes) -> list[dict[str, Any]]:
    """Validated rewards from a JSON body; raise :class:`InvalidReward` naming the first problem."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidReward(f"body is not valid JSON: {exc}") from None
    docs = doc if isinstance(doc, list) else [doc]
    if not docs:
        raise InvalidReward("no rewards given: send an object or a non-empty list of objects")
    out = []
    now = time.time_ns()
    for i, d in enumerate(docs):
        if not isinstance(d, dict):
            raise InvalidReward(f"reward[{i}] must be an object, got {type(d).__name__}")
        unknown = sorted(set(d) - _ALLOWED)
        if unknown:
            raise InvalidReward(f"reward[{i}] has unknown fields {unknown}; allowed: {sorted(_ALLOWED)}")
        given = [f for f in ID_FIELDS if _str(d, f, i)]
        if not given:
            raise InvalidReward(
                f"reward[{i}].rollout_id is required (a non-empty string), or session_id or trace_id instead"
            )
        if len(given) > 1:
            raise InvalidReward(
                f"reward[{i}] names its rollout twice ({given}): send one of {list(ID_FIELDS)}"
            )
        kind = ID_FIELDS[given[0]]
        rollout_id = _str(d, given[0], i)
        if kind == "trace":
            rollout_id = rollout_id.lower()
            if len(rollout_id) != 32 or any(c not in "0123456789abcdef" for c in rollout_id):
                raise InvalidReward(
                    f"reward[{i}].trace_id must be 32 hex digits (an OTel trace id), got {rollout_id!r}"
                )
        value = d.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidReward(f"reward[{i}].value must be a finite number, got {value!r}")
        attrs = d.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise InvalidReward(f"reward[{i}].attributes must be an object of strings")
        ts = d.get("timestamp")
        if ts is not None and (isinstance(ts, bool) or not isinstance(ts, (int, float)) or ts < 0):
            raise InvalidReward(f"reward[{i}].timestamp must be unix seconds (a number), got {ts!r}")
        row = {
            "RolloutId": rollout_id,
            "TaskId": _str(d, "task_id", i),
            "Attempt": _int(d, "attempt", i, 0, 0),
            "Name": _str(d, "name", i, A.REWARD_DEFAULT_NAME) or A.REWARD_DEFAULT_NAME,
            "Value": float(value),
            "Step": _int(d, "step", i, -1, -1),
            "TargetSpanId": _str(d, "span_id", i),
            "Source": "api",
            "Timestamp": int(ts * 1e9) if ts is not None else now,
            "Attributes": {
                **{str(k): v if isinstance(v, str) else json.dumps(v) for k, v in attrs.items()},
                TARGET_ATTRIBUTE: kind,
            },
        }
        reward_id = _str(d, "reward_id", i)
        if not reward_id:
            key = [
                row[k] for k in ("RolloutId", "TaskId", "Attempt", "Name", "Value", "Step", "TargetSpanId")
            ]
            reward_id = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32]
        row["RewardId"] = reward_id
        out.append(row)
    return out


def to_columns(rows: list[dict[str, Any]]) -> dict[str, list]:
    from .writer import REWARD_COLUMNS

    return {c: [r[c] for r in rows] for c in REWARD_COLUMNS}
