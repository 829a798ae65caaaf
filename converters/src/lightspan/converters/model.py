"""In-memory form of a rebuilt rollout: its ordered LLM calls, tool observations, rewards and GAP graph.

These are what credit assignment and every exporter work on; they hold plain Python values only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Message = dict[str, str]  # {"role": ..., "content": ...}


class ArrowRef:
    """A value still inside an Arrow column (row ``row`` of ``array``): converted to Python only when read.

    Messages and token ids parsed by ClickHouse stay Arrow all the way to Parquet (``take``), so the
    bulk of a span's bytes never becomes Python objects on the rows path.
    """

    __slots__ = ("array", "row")

    def __init__(self, array: Any, row: int):
        self.array, self.row = array, row

    def get(self) -> Any:
        return self.array[self.row].as_py()


class _Lazy:
    """Dataclass field descriptor that materializes an :class:`ArrowRef` on first read."""

    def __init__(self, default: Any = None):
        self.default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self.default
        value = obj.__dict__.get(self.slot, self.default)
        if type(value) is ArrowRef:
            value = value.get()
            obj.__dict__[self.slot] = value
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.slot] = value


@dataclass
class LLMCall:
    """One logical LLM call (duplicate spans of the same call already removed)."""

    span_id: str
    trace_id: str
    parent_span_id: str | None
    start_ns: int
    end_ns: int
    prompt: list[Message] = _Lazy()  # type: ignore[assignment]
    completion: list[Message] = _Lazy()  # type: ignore[assignment]
    model: str = ""
    agent_name: str = ""
    response_id: str = ""
    prompt_token_ids: list[int] | None = _Lazy()  # type: ignore[assignment]
    completion_token_ids: list[int] | None = _Lazy()  # type: ignore[assignment]
    completion_logprobs: list[float] | None = _Lazy()  # type: ignore[assignment]
    input_tokens: int = 0
    output_tokens: int = 0
    gap_node_id: str = ""
    step: int = 0  # index among the rollout's calls, in rebuilt order
    trainable: bool = True  # matched agent_match (only trainable calls become rows)
    reward: float = 0.0  # credit after assign_credit
    advantage: float = 0.0
    policy_version: int = -1  # set by converters/policy.py (-1: unknown); fast() leaves the default

    def __post_init__(self) -> None:
        d = self.__dict__  # read raw values: a property read would materialize an ArrowRef
        if d.get("_prompt") is None:
            d["_prompt"] = []
        if d.get("_completion") is None:
            d["_completion"] = []

    @classmethod
    def fast(
        cls,
        span_id: str,
        trace_id: str,
        parent_span_id: str | None,
        start_ns: int,
        end_ns: int,
        prompt: Any,
        completion: Any,
        model: str,
        agent_name: str,
        response_id: str,
        prompt_token_ids: Any,
        completion_token_ids: Any,
        completion_logprobs: Any,
        input_tokens: int,
        output_tokens: int,
        gap_node_id: str,
        step: int,
    ) -> LLMCall:
        """The same object as the dataclass constructor builds, without its per-field descriptor calls
        (the rebuild makes one per LLM span)."""
        obj = cls.__new__(cls)
        obj.__dict__.update(
            span_id=span_id,
            trace_id=trace_id,
            parent_span_id=parent_span_id,
            start_ns=start_ns,
            end_ns=end_ns,
            _prompt=[] if prompt is None else prompt,
            _completion=[] if completion is None else completion,
            model=model,
            agent_name=agent_name,
            response_id=response_id,
            _prompt_token_ids=prompt_token_ids,
            _completion_token_ids=completion_token_ids,
            _completion_logprobs=completion_logprobs,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            gap_node_id=gap_node_id,
            step=step,
            trainable=True,
            reward=0.0,
            advantage=0.0,
        )
        return obj

    def raw(self, name: str) -> Any:
        """A field's value without materializing it (an :class:`ArrowRef` stays one)."""
        return self.__dict__.get("_" + name) if name in _LAZY_FIELDS else getattr(self, name)

    @property
    def response_text(self) -> str:
        return "".join(m.get("content", "") for m in self.completion)


_LAZY_FIELDS = {"prompt", "completion", "prompt_token_ids", "completion_token_ids", "completion_logprobs"}


@dataclass
class ToolObservation:
    """A tool execution between calls; its result is what the next prompt usually observes."""

    span_id: str
    parent_span_id: str | None
    start_ns: int
    end_ns: int
    tool_name: str
    arguments: Any = None
    result: Any = None
    error: str | None = None
    gap_node_id: str = ""


@dataclass
class Reward:
    """A reward from any source; ``step``/``span_id`` set when it targets one LLM call."""

    value: float
    name: str = "primary"
    source: str = "span"  # span | posted | evaluation | agentlightning | function
    step: int | None = None
    span_id: str | None = None
    timestamp_ns: int | None = None


@dataclass
class GapGraph:
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[list[str]] = field(default_factory=list)
    levels: list[list[str]] = field(default_factory=list)


@dataclass
class Trajectory:
    """One rollout rebuilt from its spans."""

    rollout_id: str
    task_id: str = ""
    attempt: int = 0
    agent_name: str = ""
    task_type: str = ""
    service_name: str = ""
    created_ns: int = 0
    trace_ids: list[str] = field(default_factory=list)
    calls: list[LLMCall] = field(default_factory=list)
    tools: list[ToolObservation] = field(default_factory=list)
    rewards: list[Reward] = field(default_factory=list)
    gap: GapGraph | None = None
    final_reward: float | None = None
    warnings: list[str] = field(default_factory=list)
    #: LLM spans left out, as ``(reason, message)`` (e.g. ``no_content`` with how to turn capture on).
    skipped_calls: list[tuple[str, str]] = field(default_factory=list)

    @property
    def trainable_calls(self) -> list[LLMCall]:
        return [c for c in self.calls if c.trainable]


__all__ = ["ArrowRef", "GapGraph", "LLMCall", "Message", "Reward", "ToolObservation", "Trajectory"]
