"""What to convert and how: :class:`Selection` (which rollouts) and :class:`ConvertConfig` (everything)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from lightspan.schemas.conventions import ROLLOUT_SOURCES
from lightspan.schemas.rows import CREDIT_STRATEGIES

#: Output formats ``convert`` can write, each into its own folder under ``output_dir``.
FORMATS = (
    "trajectory-json",  # one validated Lightning JSON file per rollout
    "trajectory-jsonl",  # the same documents, one per line
    "rows-parquet",  # call-level training rows
    "rows-jsonl",
    "sft",  # reward-filtered prompt/completion
    "kto",  # prompt, completion, label
    "dpo",  # prompt, chosen, rejected from rollouts of one task
    "lightningrl",  # LightningRL columns of the call rows
    "merged",  # trajectory-level rows with loss masks (needs token ids)
)
DEFAULT_FORMATS = ("trajectory-json", "rows-parquet")


@dataclass
class Selection:
    """Which rollouts to convert. Every filter runs inside ClickHouse; unset filters select everything.

    since / until:  the rollout's first span started in ``[since, until)``.
    service:        some span of the rollout came from this ``service.name``.
    agent_name:     some span of the rollout carries this ``gen_ai.agent.name``.
    task_ids / rollout_ids: only these tasks / rollouts.
    finished_only:  only rollouts that ended: a root span (no parent) or a reward was recorded.
    incremental:    only rollouts with spans or posted rewards ingested since the stored watermark
                    ``watermark_name``; the watermark advances after a successful run.
    rollout_sources: which links of the rollout-identity chain make a rollout: ``explicit``
                    (``lightspan.rollout.id`` / ``agentlightning.rollout_id``), ``session`` (a session or
                    conversation id), ``trace`` (the trace itself). Spans whose rollout comes from a source
                    left out belong to no rollout and are counted in the report.
    """

    since: datetime | None = None
    until: datetime | None = None
    service: str | None = None
    agent_name: str | None = None
    task_ids: list[str] | None = None
    rollout_ids: list[str] | None = None
    finished_only: bool = False
    incremental: bool = False
    watermark_name: str = "default"
    rollout_sources: tuple[str, ...] = ROLLOUT_SOURCES

    def __post_init__(self) -> None:
        if isinstance(self.rollout_sources, str):
            self.rollout_sources = tuple(v.strip() for v in self.rollout_sources.split(",") if v.strip())
        self.rollout_sources = tuple(self.rollout_sources)
        unknown = sorted(set(self.rollout_sources) - set(ROLLOUT_SOURCES))
        if unknown or not self.rollout_sources:
            raise ValueError(
                f"rollout_sources must name some of {list(ROLLOUT_SOURCES)}, got {list(self.rollout_sources)}"
            )
        if self.since and self.until and self.since >= self.until:
            raise ValueError(f"since ({self.since}) must be before until ({self.until})")
        if not self.watermark_name:
            raise ValueError("watermark_name must not be empty")
        for name in ("task_ids", "rollout_ids"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, str) or not all(isinstance(v, str) for v in value)):
                raise ValueError(f"{name} must be a list of strings, got {value!r}")


@dataclass
class ConvertConfig:
    """Everything ``convert`` needs. Bad values raise ``ValueError`` naming the field and the fix.

    dsn:            ``chdb:///dir`` or ``http://host:port/db`` (None: LIGHTSPAN_CLICKHOUSE_DSN, then the default).
    selection:      which rollouts (see :class:`Selection`).
    agent_match:    regex on the call's agent name; only matching calls become training rows
                    (like Agent Lightning's ``agent_match``); None keeps every call.
    credit:         one of ``identical``, ``discounted``, ``per_step``, ``grpo``, ``grpo_rollout``.
    gamma:          discount for ``discounted`` (reward_i = R * gamma ** (N - i), i = 0..N-1).
    output_dir:     where the formats are written (one folder per format).
    formats:        subset of :data:`FORMATS`.
    chunk_rollouts: rollouts rebuilt per ClickHouse read (memory is bounded by this, not the total).
    reward_name:    the reward that is the rollout's final reward.
    sft_min_reward: SFT keeps calls of rollouts whose final reward is >= this.
    kto_threshold:  KTO label is True when the final reward is >= this.
    dpo_min_margin: DPO pairs need final rewards differing by more than this.
    require_reward: rollouts without any reward are skipped (reason ``no_reward``); False gives them 0.
    validate:       validate every Lightning JSON document against the schema before writing it.
    grpo_epsilon:   added to the group std in GRPO normalization.
    """

    dsn: str | None = None
    selection: Selection = field(default_factory=Selection)
    agent_match: str | None = None
    credit: str = "identical"
    gamma: float = 0.99
    output_dir: str = "lightspan-out"
    formats: tuple[str, ...] = DEFAULT_FORMATS
    chunk_rollouts: int = 1000
    reward_name: str = "primary"
    sft_min_reward: float = 1.0
    kto_threshold: float = 0.5
    dpo_min_margin: float = 0.0
    require_reward: bool = True
    validate: bool = True
    grpo_epsilon: float = 1e-6
    show_progress: bool = False

    def __post_init__(self) -> None:
        if self.credit not in CREDIT_STRATEGIES:
            raise ValueError(f"credit must be one of {list(CREDIT_STRATEGIES)}, got {self.credit!r}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if isinstance(self.formats, str):
            self.formats = tuple(f.strip() for f in self.formats.split(",") if f.strip())
        self.formats = tuple(self.formats)
        unknown = sorted(set(self.formats) - set(FORMATS))
        if unknown:
            raise ValueError(f"unknown formats {unknown}; choose from {list(FORMATS)}")
        if not self.formats:
            raise ValueError(f"formats must name at least one of {list(FORMATS)}")
        if self.chunk_rollouts < 1:
            raise ValueError(f"chunk_rollouts must be a positive integer, got {self.chunk_rollouts}")
        if self.agent_match is not None:
            try:
                re.compile(self.agent_match)
            except re.error as exc:
                raise ValueError(f"agent_match is not a valid regex ({exc}): {self.agent_match!r}") from None
        if not self.reward_name:
            raise ValueError("reward_name must not be empty")
        if self.grpo_epsilon < 0:
            raise ValueError(f"grpo_epsilon must be >= 0, got {self.grpo_epsilon}")

    @property
    def groups_by_task(self) -> bool:
        """Whether rollouts of one task must be converted together (group credit or DPO pairs)."""
        return self.credit in ("grpo", "grpo_rollout") or "dpo" in self.formats


__all__ = ["ConvertConfig", "DEFAULT_FORMATS", "FORMATS", "Selection"]
