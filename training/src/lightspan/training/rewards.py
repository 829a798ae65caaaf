"""Reward functions, each normalized to [0, 1], and a way to score rows after the fact.

Binary success is too sparse for agents; the usual recipe is a weighted sum of a correctness
score (exact match, token F1, SQL execution match) and a format score. Every function here
returns a float in [0, 1], takes plain strings, and imports nothing heavy, so an agent can call
one and pass the value to ``lightspan.emit_reward`` while it runs, or a job can score converted
rows later against ground truth with :func:`score_rows`.

>>> from lightspan.training import rewards
>>> qa = rewards.weighted({rewards.token_f1: 0.8, rewards.format_score: 0.2})
>>> round(qa("Paris", "paris"), 2)
1.0
"""

from __future__ import annotations

import collections
import json
import re
import sqlite3
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: A reward function: (prediction, ground_truth) -> float in [0, 1].
RewardFn = Callable[[str, Any], float]

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """SQuAD-style normalization: lower case, no punctuation, no articles, single spaces."""
    text = str(text).lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _clip(value: float) -> float:
    return 0.0 if value != value else max(0.0, min(1.0, float(value)))  # NaN -> 0


def exact_match(prediction: str, ground_truth: str | Iterable[str], *, normalize: bool = True) -> float:
    """1.0 when the prediction equals the ground truth (or any of several), else 0.0."""
    truths = [ground_truth] if isinstance(ground_truth, str) else list(ground_truth)
    norm = normalize_answer if normalize else (lambda s: str(s).strip())
    pred = norm(prediction)
    return 1.0 if any(pred == norm(t) for t in truths) else 0.0


def token_f1(prediction: str, ground_truth: str | Iterable[str]) -> float:
    """Token-overlap F1 between normalized answers (max over several ground truths)."""
    truths = [ground_truth] if isinstance(ground_truth, str) else list(ground_truth)
    pred_tokens = normalize_answer(prediction).split()
    best = 0.0
    for truth in truths:
        true_tokens = normalize_answer(truth).split()
        if not pred_tokens or not true_tokens:
            best = max(best, float(pred_tokens == true_tokens))
            continue
        common = collections.Counter(pred_tokens) & collections.Counter(true_tokens)
        overlap = sum(common.values())
        if overlap == 0:
            continue
        precision = overlap / len(pred_tokens)
        recall = overlap / len(true_tokens)
        best = max(best, 2 * precision * recall / (precision + recall))
    return _clip(best)


def format_score(
    prediction: str,
    ground_truth: Any = None,
    *,
    pattern: str | None = None,
    json_keys: Iterable[str] | None = None,
    max_chars: int | None = None,
) -> float:
    """How well-formed the answer is, the mean of the checks that apply.

    Checks: non-empty; matches ``pattern`` (``re.search``, DOTALL) when given; parses as a JSON
    object holding ``json_keys`` when given; at most ``max_chars`` long when given. With no
    options it scores 1.0 for any non-empty answer. ``ground_truth`` is ignored (same signature
    as the other rewards, so it combines with :func:`weighted`).
    """
    text = "" if prediction is None else str(prediction)
    checks = [bool(text.strip())]
    if pattern is not None:
        checks.append(re.search(pattern, text, re.DOTALL) is not None)
    if json_keys is not None:
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        checks.append(isinstance(obj, dict) and all(k in obj for k in json_keys))
    if max_chars is not None:
        checks.append(len(text) <= max_chars)
    return sum(checks) / len(checks)


_SQL_FENCE = re.compile(r"```(?:sql)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_sql(text: str) -> str:
    """The SQL inside a fenced code block when there is one, else the text itself, stripped."""
    match = _SQL_FENCE.search(text or "")
    return (match.group(1) if match else (text or "")).strip()


def _run_sql(conn: sqlite3.Connection, sql: str) -> list[tuple] | None:
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.Error:
        return None


def sql_execution_match(
    prediction: str,
    ground_truth: str,
    *,
    database: str | sqlite3.Connection,
    order_matters: bool | None = None,
) -> float:
    """1.0 when the predicted SQL returns the same rows as the ground-truth SQL on a sqlite database.

    ``database`` is a path (opened read-only) or an open connection. Rows compare as multisets
    unless the ground truth has ``ORDER BY`` (or ``order_matters=True``). A prediction that fails
    to run scores 0.0; a ground truth that fails to run raises ``ValueError``.
    """
    own = not isinstance(database, sqlite3.Connection)
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True) if own else database
    try:
        truth = _run_sql(conn, extract_sql(ground_truth))
        if truth is None:
            raise ValueError(f"ground-truth SQL does not run on {database!r}: {ground_truth!r}")
        pred = _run_sql(conn, extract_sql(prediction))
    finally:
        if own:
            conn.close()
    if pred is None:
        return 0.0
    ordered = order_matters if order_matters is not None else "order by" in ground_truth.lower()
    if ordered:
        return float(pred == truth)
    return float(collections.Counter(map(repr, pred)) == collections.Counter(map(repr, truth)))


def is_valid_sql(prediction: str, ground_truth: Any = None, *, database: str | sqlite3.Connection) -> float:
    """1.0 when the SQL prepares on the database (``EXPLAIN`` succeeds): the format score for SQL."""
    own = not isinstance(database, sqlite3.Connection)
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True) if own else database
    try:
        return 0.0 if _run_sql(conn, "EXPLAIN " + extract_sql(prediction)) is None else 1.0
    finally:
        if own:
            conn.close()


def weighted(components: Mapping[RewardFn, float] | Iterable[tuple[RewardFn, float]]) -> RewardFn:
    """Combine rewards as a weighted mean: ``sum(w_i * r_i) / sum(w_i)``, so the result stays in [0, 1].

    ``components`` maps each reward function to a non-negative weight (``functools.partial`` binds
    options such as ``database=``). Weights need not sum to 1; they are normalized.
    """
    pairs = list(components.items() if isinstance(components, Mapping) else components)
    if not pairs:
        raise ValueError("weighted() needs at least one (reward_fn, weight) pair.")
    for fn, w in pairs:
        if not callable(fn):
            raise TypeError(f"weighted(): {fn!r} is not callable; pass reward functions as keys.")
        if w < 0:
            raise ValueError(
                f"weighted(): weight {w} for {getattr(fn, '__name__', fn)} is negative; use >= 0."
            )
    total = sum(w for _, w in pairs)
    if total <= 0:
        raise ValueError("weighted(): weights sum to 0; give at least one a positive weight.")

    def combined(prediction: str, ground_truth: Any) -> float:
        return _clip(sum(w * _clip(fn(prediction, ground_truth)) for fn, w in pairs) / total)

    combined.__name__ = "weighted(" + ", ".join(f"{getattr(f, '__name__', 'fn')}={w}" for f, w in pairs) + ")"
    return combined


def completion_text(row: Mapping[str, Any]) -> str:
    """The assistant text of a training row (``completion`` messages joined), or a plain string."""
    completion = row.get("completion")
    if isinstance(completion, str):
        return completion
    if not completion:
        return ""
    return "".join(str(m.get("content") or "") for m in completion if isinstance(m, Mapping))


def score_rows(
    rows: Iterable[Mapping[str, Any]],
    reward_fn: RewardFn,
    ground_truth: Mapping[str, Any] | Callable[[Mapping[str, Any]], Any],
    *,
    only_last: bool = True,
) -> list[dict[str, Any]]:
    """Score training rows after the fact: returns copies with ``reward`` (and ``final_reward``) set.

    ``ground_truth`` maps a task id to its answer, or is a function of the row. With
    ``only_last`` (default) each rollout's last call (``is_last``, else highest ``step``) is scored
    and its value becomes the reward of every call of that rollout (LightningRL's identical credit);
    otherwise each call is scored on its own. Rows whose task has no ground truth are returned
    unchanged. Recompute advantages afterwards with :func:`group_advantages`.
    """
    rows = [dict(r) for r in rows]
    lookup = ground_truth if callable(ground_truth) else (lambda r: ground_truth.get(r.get("task_id")))
    if not only_last:
        for r in rows:
            truth = lookup(r)
            if truth is not None:
                r["reward"] = _clip(reward_fn(completion_text(r), truth))
        return rows
    by_rollout: dict[Any, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in rows:
        by_rollout[r.get("rollout_id")].append(r)
    for calls in by_rollout.values():
        last = [c for c in calls if c.get("is_last")] or [max(calls, key=lambda c: c.get("step") or 0)]
        truth = lookup(last[0])
        if truth is None:
            continue
        value = _clip(reward_fn(completion_text(last[0]), truth))
        for c in calls:
            c["reward"] = value
            c["final_reward"] = value
    return rows


def group_advantages(
    rows: Iterable[Mapping[str, Any]], *, scale: bool = True, eps: float = 1e-6
) -> list[dict[str, Any]]:
    """GRPO advantages: each row's ``reward`` minus the mean over rows of its task (divided by the std).

    Rewards are taken per rollout (one value per ``rollout_id``), so a long rollout does not weigh
    more in its task's mean. A task with a single rollout gets advantage 0.
    """
    rows = [dict(r) for r in rows]
    per_task: dict[Any, dict[Any, float]] = collections.defaultdict(dict)
    for r in rows:
        per_task[r.get("task_id")].setdefault(r.get("rollout_id"), float(r.get("reward") or 0.0))
    stats = {}
    for task, rewards_by_rollout in per_task.items():
        values = list(rewards_by_rollout.values())
        mean = sum(values) / len(values)
        std = (
            (sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5
            if len(values) > 1
            else 0.0
        )
        stats[task] = (mean, std)
    for r in rows:
        mean, std = stats[r.get("task_id")]
        adv = float(r.get("reward") or 0.0) - mean
        r["advantage"] = adv / (std + eps) if scale and std > 0 else adv
    return rows


__all__ = [
    "RewardFn",
    "completion_text",
    "exact_match",
    "extract_sql",
    "format_score",
    "group_advantages",
    "is_valid_sql",
    "normalize_answer",
    "score_rows",
    "sql_execution_match",
    "token_f1",
    "weighted",
]
