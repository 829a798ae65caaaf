"""The demo's orchestration, one stage per function, in the order ``run_demo`` calls them.

    world -> warm start (SFT on imperfect planner traces) -> collector subprocess -> policy server
          -> tracing -> held-out eval before + sequential ReAct baseline
          -> [rollouts -> spans over OTLP -> store -> convert -> lightningrl -> reload -> eval] x rounds
          -> report (table shaped like the GAP paper's, plots)

Every rollout makes two policy calls (the plan, then the answer); training rows come only from the
store: the converter reads each round's rollouts through the collector's ClickHouse HTTP interface and
assigns credit (``DemoConfig.credit``).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

from lightspan.demo import world as W
from lightspan.demo.agent import (
    AGENT_NAME,
    EVAL_AGENT_NAME,
    REACT_AGENT_NAME,
    STEP_REWARD,
    Episode,
    run_episodes,
)
from lightspan.demo.warmstart import WarmStartConfig, build_policy

__all__ = [
    "SERVERS",
    "DemoConfig",
    "DemoReport",
    "EvalResult",
    "Hops",
    "Tracing",
    "World",
    "build_warm_policy",
    "collect_rollouts",
    "evaluate",
    "prepare_world",
    "run_demo",
    "setup_tracing",
    "start_policy_server",
    "train_policy",
]

Echo = Callable[[str], None]
#: Policy servers the demo can run against: ``lightspan`` (the embedded ``lightspan serve``, reloaded in
#: place) or ``vllm`` (real vLLM from its cached venv, each round published by full-weight reload +
#: prefix-cache reset, probe-verified, as a recorded policy version; see docs/serving.md).
SERVERS = ("lightspan", "vllm")
CREDITS = ("per_step", "grpo_rollout", "grpo", "identical")


@dataclass
class DemoConfig:
    """Everything ``lightspan demo`` can vary.

    n_rollouts: training rollouts per round (train tasks x ``group_size`` attempts, tasks cycled).
    rounds: on-policy rounds of rollouts -> convert -> lightningrl -> reload, each on the newest policy.
    group_size: attempts per task (the group GRPO advantages are normalized over).
    held_out: fraction of tasks kept out of training, evaluated before and after.
    eval_attempts: sampled attempts per held-out task (same seeds before and after).
    eval_concurrency: evaluation rollouts in flight at once (1: wall time per question is one
        question's latency, not queueing at the shared server).
    credit: credit assignment for the converter: ``per_step`` (the default) gives each call the step reward
        aimed at it (the plan call: validity + efficiency; the answer call: correctness); measured best
        with ``identical`` in benchmarks/bench_credit_strategies.py (docs/BENCHMARKS.md).
    server: which policy server: ``lightspan`` (embedded, the default) or ``vllm`` (real vLLM; the rounds
        publish through ``lightspan.training.publish`` and the rows carry policy versions).
    quick: a small run for the CI end-to-end test (seconds of training, not minutes).
    init_policy: start from this warm-started checkpoint instead of building one (benchmarks share one).
    """

    work_dir: Path = Path("lightspan-demo")
    n_rollouts: int = 480
    rounds: int = 3
    group_size: int = 8
    held_out: float = 0.25
    eval_attempts: int = 1
    eval_concurrency: int = 1
    seed: int = 0
    quick: bool = False
    temperature: float = 1.0
    concurrency: int = 8
    credit: str = "per_step"
    server: str = "lightspan"
    warmstart: WarmStartConfig = field(default_factory=WarmStartConfig)
    learning_rate: float = 3e-4
    num_train_epochs: float = 3.0
    batch_size: int = 16
    clip_epsilon: float = 0.2
    clip_epsilon_high: float = 5.0
    max_steps: int = -1
    otlp_endpoint: str | None = None
    max_eval_tasks: int | None = None
    baseline: bool = True
    init_policy: str | None = None

    def __post_init__(self) -> None:
        self.work_dir = Path(self.work_dir)
        if self.n_rollouts < self.group_size:
            raise ValueError(
                f"n_rollouts ({self.n_rollouts}) must be at least group_size ({self.group_size})"
            )
        if self.group_size < 2:
            raise ValueError(
                f"group_size must be >= 2 for group-normalized advantages, got {self.group_size}"
            )
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.credit not in CREDITS:
            raise ValueError(f"credit must be one of {', '.join(CREDITS)}, got {self.credit!r}")
        if self.server not in SERVERS:
            raise ValueError(f"server must be one of {', '.join(SERVERS)}, got {self.server!r}")
        if self.quick:
            self.n_rollouts = min(self.n_rollouts, 32)
            self.rounds = min(self.rounds, 2)
            self.eval_attempts = 1
            self.eval_concurrency = max(self.eval_concurrency, 4)
            self.max_eval_tasks = self.max_eval_tasks or 8
            self.max_steps = self.max_steps if self.max_steps > 0 else 4
            if self.warmstart == WarmStartConfig():
                self.warmstart = WarmStartConfig(sft_steps=30)
        if self.warmstart.seed != self.seed and self.warmstart == WarmStartConfig(
            sft_steps=self.warmstart.sft_steps
        ):
            self.warmstart = replace(self.warmstart, seed=self.seed)  # one --seed varies the whole run


@dataclass
class World:
    kb: W.KB
    train: list[W.Task]
    held_out: list[W.Task]


@dataclass
class EvalResult:
    """One evaluation, the columns of the GAP paper's tables (per question, means over rollouts)."""

    label: str
    agent: str
    n: int
    accuracy: float  # exact match
    valid_rate: float  # plans that could run (ReAct: every action parsed, and it answered)
    tool_calls: float  # per question whose plan ran (an invalid plan makes none)
    levels: float  # levels per plan that ran (ReAct: one per tool call)
    llm_calls: float
    response_tokens: float  # every token the policy generated for the question
    plan_tokens: float  # the planner's response (ReAct: all its turns)
    wall_s: float  # per question, measured one question at a time
    reward: float
    by_type: dict[str, float] = field(default_factory=dict)  # accuracy per question type
    invalid: dict[str, int] = field(default_factory=dict)  # invalid plans by kind

    @classmethod
    def of(cls, label: str, agent: str, episodes: list[Episode]) -> EvalResult:
        def mean(xs: Any) -> float:
            xs = list(xs)
            return statistics.fmean(xs) if xs else 0.0

        by_type: dict[str, list[float]] = defaultdict(list)
        for ep in episodes:
            by_type[ep.qtype].append(float(ep.correct))
        valid = [ep for ep in episodes if ep.valid]
        return cls(
            label,
            agent,
            len(episodes),
            mean(float(ep.correct) for ep in episodes),
            mean(float(ep.valid) for ep in episodes),
            mean(ep.tool_calls for ep in valid),
            mean(ep.levels for ep in valid),
            mean(ep.llm_calls for ep in episodes),
            mean(ep.response_tokens for ep in episodes),
            mean(ep.plan_tokens for ep in episodes),
            mean(ep.wall_s for ep in episodes),
            mean(ep.reward for ep in episodes),
            {k: mean(v) for k, v in sorted(by_type.items())},
            dict(Counter(ep.error_kind for ep in episodes if ep.error_kind)),
        )


@dataclass
class Tracing:
    """Where the agent's spans go: an in-process exporter (counts) and/or an OTLP endpoint.

    A context manager: on exit the provider is flushed (queued spans reach the collector while it
    still runs) and the in-process exporter stops recording; ``span_counts`` still reads what it has.
    """

    provider: Any
    memory: Any = None
    endpoint: str | None = None

    def flush(self) -> None:
        self.provider.force_flush()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self.memory is not None:
                self.memory.shutdown()

    def __enter__(self) -> Tracing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def span_counts(self) -> Counter[str]:
        if self.memory is None:
            return Counter()
        return Counter(s.name.split(" ")[0] for s in self.memory.get_finished_spans())


def _hop(label: str) -> Any:
    """A hop counter field; ``label`` is the sentence the summary line and ``report.md`` print for it."""
    return field(default=0, metadata={"label": label})


@dataclass
class Hops:
    """The count at every hop of the loop, summed over rounds (``report.json`` keys are the field names)."""

    training_rollouts: int = _hop("training rollouts run")
    training_llm_spans: int = _hop("LLM calls in training rollouts (spans)")
    trajectories: int = _hop("trajectories converted")
    trajectory_llm_calls: int = _hop("LLM calls in trajectories")
    training_rows: int = _hop("training rows written")
    spans_exported: int = _hop("spans exported over OTLP (all, incl. evaluations)")
    rows_stored: int = _hop("rows stored in ClickHouse")

    @classmethod
    def labels(cls) -> dict[str, str]:
        """Field name -> the human sentence for it, in field order."""
        return {f.name: f.metadata["label"] for f in fields(cls)}

    def labelled(self) -> list[tuple[str, int]]:
        """``(sentence, count)`` for every hop, in field order."""
        return [(label, getattr(self, name)) for name, label in self.labels().items()]

    def summary(self) -> str:
        return "; ".join(f"{label} = {n}" for label, n in self.labelled())

    def counts_match(self) -> bool:
        """Nothing lost or duplicated anywhere: every span exported is stored, every training LLM call
        became one call in a trajectory and one training row, and every training rollout one trajectory."""
        return (
            self.spans_exported == self.rows_stored
            and self.training_llm_spans == self.trajectory_llm_calls == self.training_rows
            and self.trajectories == self.training_rollouts
        )


@dataclass
class DemoReport:
    """Everything the demo measured; ``to_dict`` is what ``report.json`` holds."""

    work_dir: str
    policy_path: str
    trained_path: str | None
    served_path: str | None
    before: EvalResult
    after: EvalResult | None
    baseline: EvalResult | None
    rollouts: int
    train_reward: float
    train_steps: int
    hops: Hops
    counts_match: bool
    spans: dict[str, int]
    seconds: dict[str, float]
    paths: dict[str, str]
    rounds: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- stages ---------------------------------------------------------------------------------------
def prepare_world(cfg: DemoConfig) -> World:
    """The knowledge base and a seeded train / held-out split of its questions."""
    kb = W.build_kb(cfg.seed)
    train, held = W.split_tasks(kb, held_out=cfg.held_out, seed=cfg.seed)
    if cfg.max_eval_tasks:
        held = held[: cfg.max_eval_tasks]
    return World(kb, train, held)


def build_warm_policy(cfg: DemoConfig, world: World) -> str:
    """Build and warm-start the tiny policy in ``work_dir/policy-0`` (or use ``cfg.init_policy``)."""
    if cfg.init_policy:
        return cfg.init_policy
    return build_policy(cfg.work_dir / "policy-0", world.kb, world.train, cfg.warmstart)


def start_policy_server(
    model_path: str,
    server: str = "lightspan",
    *,
    dsn: str | None = None,
    log_path: Path | None = None,
    echo: Echo | None = None,
) -> Any:
    """Serve the policy on a free loopback port as model ``policy``.

    The returned object is what the loop needs of any policy server: ``base_url``, ``model_path``,
    ``reload(path)`` (publish a checkpoint and wait until it serves), ``stop()``, and ``with``.
    ``vllm``: real vLLM (:class:`lightspan.demo.vllm_policy.VLLMPolicy`); ``dsn`` is where its publishes
    are recorded as policy versions, ``log_path`` gets vLLM's log.
    """
    if server not in SERVERS:
        raise ValueError(f"server must be one of {', '.join(SERVERS)}, got {server!r}")
    if server == "vllm":
        from lightspan.demo.vllm_policy import VLLMPolicy

        policy = VLLMPolicy(model_path, dsn=dsn, log_path=log_path, echo=echo)
        try:
            return policy.start()
        except BaseException:
            policy.stop()
            raise
    from lightspan.serving import PolicyServer

    srv = PolicyServer(model_path, served_model_name="policy", device="cpu")
    try:
        return srv.start()
    except BaseException:
        srv.stop()  # a half-started server releases its socket and threads before the error propagates
        raise


def setup_tracing(cfg: DemoConfig) -> Tracing:
    """Instrument the agent: OTLP to ``cfg.otlp_endpoint`` when set, plus an in-process exporter for counts."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import lightspan.instrumentation as li

    if cfg.otlp_endpoint:
        provider = li.configure(endpoint=cfg.otlp_endpoint, service_name="lightspan-demo")
    else:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        li.instrument()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    from lightspan.instrumentation.processor import ensure_rollout_processor

    ensure_rollout_processor(provider)
    return Tracing(provider, memory, cfg.otlp_endpoint)


def _rollouts(
    cfg: DemoConfig,
    jobs: list[tuple[W.Task, int]],
    server: Any,
    world: World,
    desc: str,
    salt: int,
    agent_name: str = AGENT_NAME,
    *,
    concurrency: int | None = None,
    react: bool = False,
) -> list[Episode]:
    from tqdm import tqdm

    with tqdm(total=len(jobs), desc=desc, unit="rollout", leave=False, mininterval=2.0) as bar:
        return asyncio.run(
            run_episodes(
                jobs,
                base_url=server.base_url,
                kb=world.kb,
                temperature=cfg.temperature,
                seed_salt=salt,
                concurrency=concurrency or cfg.concurrency,
                on_done=lambda ep: bar.update(1),
                agent_name=agent_name,
                react=react,
            )
        )


def evaluate(cfg: DemoConfig, world: World, server: Any, label: str, *, react: bool = False) -> EvalResult:
    """The held-out tasks, ``eval_attempts`` seeded samples each (same seeds every time), run
    ``eval_concurrency`` at a time. Traced as agent ``kb-agent-eval`` (``kb-agent-react`` for the
    baseline), so a converter selecting ``agent_name="kb-agent"`` never trains on them."""
    jobs = [(t, a) for t in world.held_out for a in range(cfg.eval_attempts)]
    agent = REACT_AGENT_NAME if react else EVAL_AGENT_NAME
    episodes = _rollouts(
        cfg,
        jobs,
        server,
        world,
        f"eval {label}",
        salt=10_000 + cfg.seed,
        agent_name=agent,
        concurrency=cfg.eval_concurrency,
        react=react,
    )
    return EvalResult.of(label, "react" if react else "gap", episodes)


def collect_rollouts(cfg: DemoConfig, world: World, server: Any, round_: int = 1) -> list[Episode]:
    """``n_rollouts`` training rollouts: train tasks in a fixed order, ``group_size`` attempts each.

    Each round starts where the last one stopped in the task list, and samples with its own seeds.
    """
    n_tasks = cfg.n_rollouts // cfg.group_size
    start = (round_ - 1) * n_tasks
    tasks = [world.train[(start + i) % len(world.train)] for i in range(n_tasks)]
    base = (round_ - 1) * cfg.group_size
    jobs = [(t, base + a) for t in tasks for a in range(cfg.group_size)]
    return _rollouts(
        cfg, jobs, server, world, f"rollouts round {round_}", salt=cfg.seed + 1000 * (round_ - 1)
    )


def train_policy(cfg: DemoConfig, model_path: str, data: Any, output_dir: Path | None = None) -> Any:
    """One lightningrl run on ``data`` (rows, a Dataset, converter output or a DSN); returns its TrainResult."""
    from lightspan.training import TrainConfig, train

    names = {f.name for f in fields(TrainConfig)}
    # The trainer's option names are moving to TRL's (epsilon / epsilon_high); take whichever it has.
    clip = (
        {"epsilon": cfg.clip_epsilon, "epsilon_high": cfg.clip_epsilon_high}
        if "epsilon" in names
        else {"clip_epsilon": cfg.clip_epsilon, "clip_epsilon_high": cfg.clip_epsilon_high}
    )
    return train(
        TrainConfig(
            algo="lightningrl",
            model=model_path,
            data=data,
            output_dir=str(output_dir or cfg.work_dir / "train"),
            learning_rate=cfg.learning_rate,
            num_train_epochs=cfg.num_train_epochs,
            max_steps=cfg.max_steps,
            per_device_train_batch_size=cfg.batch_size,
            seed=cfg.seed,
            use_cpu=True,
            progress=False,
            save_steps=10_000,
            **clip,
        )
    )


def stored_rows(query_url: str) -> int:
    """Rows in the collector's spans table (deduplicated), read through its ClickHouse HTTP interface."""
    from lightspan.storage import connect

    client = connect(query_url)
    try:
        return int(client.query("SELECT count() FROM lightspan.otel_traces FINAL").result_rows[0][0])
    finally:
        client.close()


def wait_for_rows(query_url: str, expected: int, timeout: float = 180.0) -> int:
    """Poll until the collector has committed ``expected`` rows (it acknowledges before it writes)."""
    deadline = time.monotonic() + timeout
    have = stored_rows(query_url)
    while have < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        have = stored_rows(query_url)
    return have


def convert_rollouts(
    cfg: DemoConfig, query_url: str, since: Any = None, output_dir: Path | None = None
) -> Any:
    """Training rollouts (agent ``kb-agent``, started at or after ``since``) from the store ->
    Lightning JSONL + call rows + merged rows, with ``cfg.credit`` credit assignment."""
    from lightspan.converters import ConvertConfig, Selection, convert

    return convert(
        ConvertConfig(
            dsn=query_url,
            selection=Selection(agent_name=AGENT_NAME, since=since),
            credit=cfg.credit,
            reward_name=STEP_REWARD if cfg.credit == "per_step" else "primary",
            output_dir=str(output_dir or cfg.work_dir / "converted"),
            formats=("trajectory-jsonl", "rows-parquet", "merged"),
        )
    )


def _fresh(cfg: DemoConfig) -> None:
    """Start from an empty store, spool and outputs."""
    import shutil

    for name in ("store", "spool", "converted", "train", "policy-0"):
        shutil.rmtree(cfg.work_dir / name, ignore_errors=True)


def _timed(seconds: dict[str, float], name: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` and add its wall time to ``seconds[name]`` (stages repeated per round add up)."""
    started = time.perf_counter()
    value = fn()
    seconds[name] = round(seconds.get(name, 0.0) + time.perf_counter() - started, 1)
    return value


@dataclass
class RoundResult:
    """One on-policy round: its rollouts, the training it did, the held-out evaluation afterwards."""

    round: int
    rollouts: int
    train_reward: float
    train_tool_calls: float
    train_valid_rate: float
    rows: int
    steps: int
    cumulative_steps: int
    held_out: dict[str, Any]
    model_path: str


def _round(
    cfg: DemoConfig,
    r: int,
    world: World,
    server: Any,
    tracing: Tracing,
    collector: Any,
    model: str,
    hops: Hops,
    seconds: dict[str, float],
    echo: Echo,
    done_steps: int,
) -> tuple[RoundResult, Any, EvalResult]:
    """Rollouts on the current policy -> spans over OTLP -> store -> convert -> lightningrl -> reload -> eval."""
    from datetime import datetime, timezone

    timed = partial(_timed, seconds)
    since = datetime.now(timezone.utc)
    tracing.flush()
    llm_before = tracing.span_counts()["chat"]
    episodes = timed("rollouts", lambda: collect_rollouts(cfg, world, server, r))
    train_reward = statistics.fmean(ep.reward for ep in episodes)
    tracing.flush()
    counts = tracing.span_counts()
    exported = sum(counts.values())
    stored = timed("ingest_wait", lambda: wait_for_rows(collector.query_url, exported))
    hops.training_rollouts += len(episodes)
    hops.training_llm_spans += counts["chat"] - llm_before
    out = cfg.work_dir / "converted" / f"round-{r}"
    conv = timed("convert", lambda: convert_rollouts(cfg, collector.query_url, since=since, output_dir=out))
    hops.trajectories += conv.rollouts_converted
    hops.trajectory_llm_calls += conv.llm_calls
    hops.training_rows += conv.rows_written.get("rows-parquet", 0)
    echo(
        f"round {r}: {len(episodes)} rollouts (reward {train_reward:.3f}) -> store: {exported} spans exported so far, "
        f"{stored} rows stored -> {conv.rollouts_converted} trajectories, {conv.llm_calls} LLM calls, "
        f"{conv.rows_written.get('rows-parquet', 0)} rows ({cfg.credit})"
        + (f"; skipped {dict(conv.skipped)}: {conv.examples}" if conv.skipped else "")
    )
    result = timed(
        "train",
        lambda: train_policy(
            cfg, model, str(out / "rows-parquet"), output_dir=cfg.work_dir / "train" / f"round-{r}"
        ),
    )
    timed("reload", lambda: server.reload(result.model_path))
    held = timed("eval", lambda: evaluate(cfg, world, server, f"round {r}"))
    echo(
        f"round {r}: lightningrl {result.steps} steps on {result.num_rows} rows; held-out now: "
        + _short(held)
    )
    return (
        RoundResult(
            r,
            len(episodes),
            train_reward,
            statistics.fmean(ep.tool_calls for ep in episodes),
            statistics.fmean(float(ep.valid) for ep in episodes),
            result.num_rows,
            result.steps,
            done_steps + result.steps,
            asdict(held),
            result.model_path,
        ),
        result,
        held,
    )


def _short(e: EvalResult) -> str:
    return (
        f"accuracy {e.accuracy:.3f}, valid plans {e.valid_rate:.3f}, tool calls/q {e.tool_calls:.2f}, "
        f"levels/plan {e.levels:.2f}, response tokens/q {e.response_tokens:.1f}, wall {e.wall_s * 1000:.0f} ms/q"
    )


def run_demo(cfg: DemoConfig, echo: Echo = print) -> DemoReport:
    """Every stage in order, through the real parts; prints one line per stage and returns the numbers."""
    from lightspan.demo.collector_proc import start_collector
    from lightspan.demo.report import table_row, write_json, write_markdown, write_plots
    from lightspan.training.metrics import read_metrics

    if cfg.server not in SERVERS:
        raise ValueError(f"server must be one of {', '.join(SERVERS)}, got {cfg.server!r}")
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    _fresh(cfg)
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    timed = partial(_timed, seconds)
    world = prepare_world(cfg)
    echo(
        f"world: {len(world.kb.facts)} entities, {len(W.QUESTION_TYPES)} question types, "
        f"{len(world.train)} train / {len(world.held_out)} held-out questions"
    )
    policy = timed("warmstart", lambda: build_warm_policy(cfg, world))
    echo(
        f"policy: tiny model warm-started by SFT on imperfect planner traces in {policy} ({seconds['warmstart']}s)"
    )
    hops = Hops()
    rounds: list[RoundResult] = []
    metrics: list[dict[str, Any]] = []
    after = result = served = baseline = None
    # Everything that holds a process, thread or socket is entered on this one stack as soon as it exists,
    # and unwinds in reverse (policy server, tracing, collector subprocess) however the run ends.
    with ExitStack() as stack:
        collector = stack.enter_context(timed("collector_start", lambda: start_collector(cfg.work_dir)))
        echo(
            f"collector: OTLP {collector.otlp_endpoint}, store {cfg.work_dir / 'store'}, "
            f"query interface {collector.query_url}"
        )
        cfg.otlp_endpoint = collector.otlp_endpoint
        tracing = stack.enter_context(setup_tracing(cfg))
        if cfg.server == "vllm":
            echo("serving: starting vLLM (30-130 s; the first run on a machine also builds its venv)")
            server = stack.enter_context(
                timed(
                    "server_start",
                    lambda: start_policy_server(
                        policy,
                        cfg.server,
                        dsn=collector.query_url,
                        log_path=cfg.work_dir / "vllm.log",
                        echo=lambda msg: echo(f"  {msg}"),
                    ),
                )
            )
        else:
            server = stack.enter_context(start_policy_server(policy, cfg.server))
        echo(f"serving: {server.base_url} (model 'policy', {cfg.server}, openai client with token ids)")
        before = timed("eval_before", lambda: evaluate(cfg, world, server, "before"))
        echo("held-out before (warm start): " + _short(before))
        if cfg.baseline:
            baseline = timed("eval_baseline", lambda: evaluate(cfg, world, server, "react", react=True))
            echo("held-out sequential ReAct baseline (warm start): " + _short(baseline))
        model = policy
        for r in range(1, cfg.rounds + 1):
            offset = rounds[-1].cumulative_steps if rounds else 0
            summary, result, after = _round(
                cfg, r, world, server, tracing, collector, model, hops, seconds, echo, offset
            )
            metrics += [
                {**m, "step": m["step"] + offset} for m in read_metrics(result.metrics_path) if "step" in m
            ]
            rounds.append(summary)
            model = result.model_path
        served = server.model_path
        # The last hops, in the order the stack unwinds: no more requests, every span flushed and stored,
        # then the collector stopped. The stops are idempotent: on this path the stack finds them done.
        server.stop()
        tracing.flush()
        spans = dict(tracing.span_counts())
        hops.spans_exported = sum(spans.values())
        hops.rows_stored = wait_for_rows(collector.query_url, hops.spans_exported, timeout=60)
        echo(f"collector stopped (exit {collector.stop()})")
    seconds["total"] = round(time.perf_counter() - started, 1)
    counts_match = hops.counts_match()
    echo("hops: " + hops.summary())
    echo(f"counts match at every hop: {counts_match}")
    paths = {
        "work dir": str(cfg.work_dir),
        "embedded store": str(cfg.work_dir / "store"),
        "trajectories (Lightning JSONL)": str(cfg.work_dir / "converted" / "round-N" / "trajectory-jsonl"),
        "training rows (Parquet)": str(cfg.work_dir / "converted" / "round-N" / "rows-parquet"),
        "merged rows (token ids + loss masks)": str(cfg.work_dir / "converted" / "round-N" / "merged"),
        "trained policy": str(result.model_path if result else None),
        "training metrics": str(cfg.work_dir / "train" / "round-N" / "metrics.jsonl"),
        "collector log": str(collector.log_path),
        **({"vLLM log": str(cfg.work_dir / "vllm.log")} if cfg.server == "vllm" else {}),
        "plots": str(cfg.work_dir / "gap.png") + ", " + str(cfg.work_dir / "reward.png"),
        "report": str(cfg.work_dir / "report.md"),
    }
    report = DemoReport(
        str(cfg.work_dir),
        policy,
        result.model_path if result else None,
        served,
        before,
        after,
        baseline,
        sum(x.rollouts for x in rounds),
        statistics.fmean(x.train_reward for x in rounds) if rounds else 0.0,
        sum(x.steps for x in rounds),
        hops,
        counts_match,
        spans,
        seconds,
        paths,
        [asdict(x) for x in rounds],
        {
            "minimal plans (held-out)": (
                f"{statistics.fmean(t.min_calls for t in world.held_out):.2f} tool calls, "
                f"{statistics.fmean(t.min_levels for t in world.held_out):.2f} levels"
            ),
            "rollouts per round": cfg.n_rollouts,
            "rounds": cfg.rounds,
            "group size": cfg.group_size,
            "credit": cfg.credit,
            "server": cfg.server,
            "seed": cfg.seed,
            "eval attempts": cfg.eval_attempts,
            "eval concurrency": cfg.eval_concurrency,
        },
    )
    data = report.to_dict()
    write_plots(data, metrics, cfg.work_dir)
    write_markdown(data, cfg.work_dir / "report.md")
    write_json(data, cfg.work_dir / "report.json")
    echo(
        f"report: {cfg.work_dir / 'report.md'}, plots: {cfg.work_dir / 'gap.png'}, {cfg.work_dir / 'reward.png'}"
    )
    if after is not None:
        echo(table_row(asdict(after), f"GAP planner after {cfg.rounds} round(s)", header=True))
    return report
