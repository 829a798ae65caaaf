"""``convert``: select rollouts in ClickHouse, rebuild them chunk by chunk, assign credit, write outputs."""

from __future__ import annotations

import logging
import queue
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import datasets_rows as D
from .config import ConvertConfig
from .credit import assign_credit
from .fastpath import FAST_CREDIT, plain_call_rows
from .lightning import to_lightning
from .model import Trajectory
from .outputs import OutputSet
from .policy import PolicyTimeline
from .reader import SpanReader
from .rebuild import SkipRollout, rebuild

_log = logging.getLogger(__name__)


@dataclass
class ConvertReport:
    """What a ``convert`` run did. ``skipped`` maps a reason to how many rollouts it cost."""

    rollouts_seen: int = 0
    rollouts_converted: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> one message, for the summary
    spans_read: int = 0
    llm_calls: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    files_written: list[str] = field(default_factory=list)
    rows_superseded: int = 0
    merged_calls_without_token_ids: int = 0
    rows_dropped: int = 0  # rows whose values Arrow could not store (e.g. a string among token ids)
    #: LLM calls left out of converted or skipped rollouts, by reason (``no_content``), with one message.
    calls_skipped: Counter[str] = field(default_factory=Counter)
    call_examples: dict[str, str] = field(default_factory=dict)
    #: Spans of the selection's window that belong to no converted rollout, by why (``no_id``, or the
    #: rollout source the selection leaves out: ``explicit``, ``session``, ``trace``).
    spans_without_rollout: dict[str, int] = field(default_factory=dict)
    #: Posted rewards whose id names no rollout, trace or session in the store, and a few of those ids.
    rewards_unmatched: int = 0
    unmatched_reward_ids: list[str] = field(default_factory=list)
    warnings: int = 0
    watermark_before: datetime | None = None
    watermark_after: datetime | None = None
    seconds: float = 0.0

    @property
    def rollouts_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def spans_per_second(self) -> float:
        return self.spans_read / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        lines = [
            f"rollouts: {self.rollouts_seen} seen, {self.rollouts_converted} converted, {self.rollouts_skipped} skipped",
            f"spans read: {self.spans_read} ({self.spans_per_second:,.0f}/s over {self.seconds:.2f}s); "
            f"llm calls: {self.llm_calls}",
        ]
        for reason, n in sorted(self.skipped.items()):
            lines.append(f"  skipped {reason}: {n} (e.g. {self.examples.get(reason, '')})")
        for fmt, n in sorted(self.rows_written.items()):
            lines.append(f"  {fmt}: {n} {'files' if fmt == 'trajectory-json' else 'rows'}")
        if self.rows_superseded:
            lines.append(f"  replaced {self.rows_superseded} rows of re-converted rollouts")
        if self.rows_dropped:
            lines.append(f"  dropped {self.rows_dropped} rows with values of the wrong type")
        for reason, n in sorted(self.calls_skipped.items()):
            lines.append(f"  llm calls skipped {reason}: {n} (e.g. {self.call_examples.get(reason, '')})")
        if self.spans_without_rollout:
            by = ", ".join(f"{why}: {n}" for why, n in sorted(self.spans_without_rollout.items()))
            lines.append(
                f"  spans in no rollout: {sum(self.spans_without_rollout.values())} ({by}; see"
                " docs/converters.md#rollout-identity)"
            )
        if self.rewards_unmatched:
            lines.append(
                f"  rewards matching no rollout, trace or session: {self.rewards_unmatched}"
                f" (e.g. {', '.join(self.unmatched_reward_ids)})"
            )
        if self.watermark_after is not None:
            lines.append(f"watermark: {self.watermark_before} -> {self.watermark_after}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rollouts_seen": self.rollouts_seen,
            "rollouts_converted": self.rollouts_converted,
            "rollouts_skipped": self.rollouts_skipped,
            "skipped": dict(self.skipped),
            "spans_read": self.spans_read,
            "llm_calls": self.llm_calls,
            "rows_written": dict(self.rows_written),
            "files_written": list(self.files_written),
            "rows_superseded": self.rows_superseded,
            "rows_dropped": self.rows_dropped,
            "calls_skipped": dict(self.calls_skipped),
            "call_examples": dict(self.call_examples),
            "spans_without_rollout": dict(self.spans_without_rollout),
            "rewards_unmatched": self.rewards_unmatched,
            "unmatched_reward_ids": list(self.unmatched_reward_ids),
            "seconds": self.seconds,
        }


def _skip(report: ConvertReport, reason: str, message: str) -> None:
    report.skipped[reason] += 1
    report.examples.setdefault(reason, message[:200])
    _log.info("skipped rollout: %s", message)


def _skip_calls(report: ConvertReport, skipped: list[tuple[str, str]]) -> None:
    for reason, message in skipped:
        report.calls_skipped[reason] += 1
        report.call_examples.setdefault(reason, message[:300])


def _rollouts_with_logs(batch: Any, logs: dict[str, Any]) -> set[str]:
    """Rollouts of the chunk with a GenAI log event on one of their spans (the rebuild joins those)."""
    if not logs:
        return set()
    sid, rid = batch.cols["sid"], batch.cols["rid"]
    return {rid[i] for _, a, b in batch.segments for i in range(a, b) if sid[i] in logs}


_DONE = object()
#: Threads (each with its own client) fetching chunks; two keep both cores of a small machine busy.
FETCH_THREADS = 2


def _prefetched(
    pager: SpanReader, readers: list[SpanReader], watermark: datetime | None, chunk_rollouts: int
) -> Iterator[tuple[Any, ...]]:
    """(rollout ids, spans, posted rewards) per chunk, in order, read ahead by background threads.

    ClickHouse (chDB or HTTP) works outside the GIL, so reading the next chunks overlaps with rebuilding
    this one. ``pager`` pages through the rollout ids; chunk k is fetched by reader k % len(readers), each
    on its own thread with its own client (a chDB handle or HTTP session runs one query at a time), so
    with two readers two chunks' queries run on two cores. Each reader's queue holds one chunk: at
    most ``2 * len(readers) + 1`` chunks are in memory, however many rollouts there are.
    """
    stop = threading.Event()
    n = len(readers)
    inbox: list[queue.Queue[Any]] = [queue.Queue(maxsize=1) for _ in range(n)]
    outbox: list[queue.Queue[Any]] = [queue.Queue(maxsize=1) for _ in range(n)]

    def put(q: queue.Queue[Any], item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def page() -> None:
        k = 0
        try:
            for ids in pager.iter_chunks(watermark, chunk_rollouts):
                if not put(inbox[k % n], [r for _, r in ids]):
                    return
                k += 1
        except BaseException as exc:  # handed on in order to the consumer, which re-raises it
            put(inbox[k % n], exc)
            return
        for j in range(n):
            put(inbox[(k + j) % n], _DONE)

    def fetch(reader: SpanReader, src: queue.Queue[Any], dst: queue.Queue[Any]) -> None:
        while not stop.is_set():
            try:
                ids = src.get(timeout=0.2)
            except queue.Empty:
                continue
            if ids is _DONE or isinstance(ids, BaseException):
                put(dst, ids)
                return
            try:
                spans = reader.fetch_spans(ids)
                item = (
                    ids,
                    spans,
                    reader.fetch_posted_rewards(ids, spans),
                    reader.fetch_logs(spans.trace_ids()),
                )
            except BaseException as exc:
                put(dst, exc)
                return
            if not put(dst, item):
                return

    threads = [threading.Thread(target=page, name="lightspan-convert-pager", daemon=True)]
    threads += [
        threading.Thread(
            target=fetch, args=(r, inbox[j], outbox[j]), name=f"lightspan-convert-reader-{j}", daemon=True
        )
        for j, r in enumerate(readers)
    ]
    for t in threads:
        t.start()
    try:
        k = 0
        while True:
            item = outbox[k % n].get()
            k += 1
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)


def _fast_ok(config: ConvertConfig) -> bool:
    """Whether the chunk-wide fast path (converters/fastpath.py) can produce this run's outputs."""
    return (
        set(config.formats) == {"rows-parquet"}
        and config.agent_match is None
        and config.credit in FAST_CREDIT
    )


def _chunks(
    config: ConvertConfig,
    report: ConvertReport,
    reader: SpanReader,
    watermark: datetime | None,
    fast: bool = False,
    fetchers: list[SpanReader] | None = None,
) -> Iterator[tuple[list[Trajectory], Any]]:
    """Rebuilt, credited trajectories, one chunk (whole task groups when needed) at a time; with ``fast``,
    also the call rows of the chunk's plain rollouts (:class:`PlainRows`), which are not rebuilt."""
    pattern = re.compile(config.agent_match) if config.agent_match else None
    # Policy versions (converters/policy.py): the publish time line, read once per run.
    timeline = PolicyTimeline.load(reader.client, reader.db)
    for rollout_ids, batch, posted, logs in _prefetched(
        reader, fetchers or [reader], watermark, config.chunk_rollouts
    ):
        report.rollouts_seen += len(rollout_ids)
        report.spans_read += batch.num_rows
        found = {rid for rid, _, _ in batch.segments}
        for rid in rollout_ids:
            if rid not in found:  # its spans vanished between the two queries (TTL, deletion)
                _skip(report, "no_spans", f"rollout {rid} has no spans any more")
        plain = None
        if fast and batch.table is not None and batch.segments:
            from .outputs import _arrow_schema

            plain = plain_call_rows(
                batch.table,
                batch.arrays or {},
                batch.segments,
                posted,
                _arrow_schema("rows-parquet"),
                credit=config.credit,
                gamma=config.gamma,
                reward_name=config.reward_name,
                with_logs=_rollouts_with_logs(batch, logs),
                policy=timeline,
            )
        trajs: list[Trajectory] = []
        for s, (rid, a, b) in enumerate(batch.segments):
            if plain is not None and plain.plain[s]:
                continue
            try:
                traj = rebuild(
                    rid,
                    batch.cols,
                    a,
                    b,
                    posted.get(rid),
                    logs=logs,
                    agent_match=pattern,
                    reward_name=config.reward_name,
                    require_reward=config.require_reward,
                )
            except SkipRollout as exc:
                _skip_calls(report, exc.skipped_calls)
                _skip(report, exc.reason, f"{rid}: {exc.detail or exc.reason}")
                continue
            except Exception as exc:  # broken input must never stop the run
                _skip(report, "error", f"{rid}: {type(exc).__name__}: {exc}")
                continue
            report.warnings += len(traj.warnings)
            _skip_calls(report, traj.skipped_calls)
            trajs.append(traj)
        timeline.annotate(trajs)  # policy_version of every call
        assign_credit(
            trajs,
            config.credit,
            gamma=config.gamma,
            reward_name=config.reward_name,
            epsilon=config.grpo_epsilon,
        )
        yield trajs, (batch.segments, plain)


def iter_trajectories(config: ConvertConfig, report: ConvertReport | None = None) -> Iterator[Trajectory]:
    """Rebuilt, credited trajectories of the selection (no files written, no watermark moved)."""
    from lightspan.storage import connect, parse_dsn

    parsed = parse_dsn(config.dsn)
    client = connect(parsed)
    extra: list[Any] = []
    try:
        _check_schema(client, parsed.database)
        reader = SpanReader(client, parsed.database, config.selection, group_by_task=config.groups_by_task)
        extra = [connect(parsed) for _ in range(FETCH_THREADS)]
        fetchers = [SpanReader(c, parsed.database, config.selection) for c in extra]
        watermark = reader.read_watermark() if config.selection.incremental else None
        for chunk, _ in _chunks(config, report or ConvertReport(), reader, watermark, fetchers=fetchers):
            yield from chunk
    finally:
        for c in extra:
            c.close()
        client.close()


def _write_plain(
    out: OutputSet,
    trajs: list[Trajectory],
    segments: list[tuple[str, int, int]],
    plain: Any,
    report: ConvertReport,
) -> list[tuple[str, str]]:
    """rows-parquet for a chunk with fast-path rows: both kinds in segment order (as ``rebuild`` would
    have produced them); returns ``(rollout id, task id)`` of every rollout written."""
    import numpy as np

    by_rid = {t.rollout_id: t for t in trajs}
    done: list[tuple[str, str]] = []
    bounds = np.searchsorted(plain.row_seg, np.arange(len(segments) + 1))
    s = 0
    while s < len(segments):
        e = s
        if plain.plain[s]:
            while e < len(segments) and plain.plain[e]:
                done.append((segments[e][0], plain.tasks[e]))
                report.llm_calls += int(plain.calls[e])
                e += 1
            lo, hi = int(bounds[s]), int(bounds[e])
            report.rows_dropped += out.write_table("rows-parquet", plain.table.slice(lo, hi - lo))
            report.rollouts_converted += e - s
        else:
            while e < len(segments) and not plain.plain[e]:
                e += 1
            run = [by_rid[rid] for rid, _, _ in segments[s:e] if rid in by_rid]
            for t in _write_chunk_trajs(out, run, report):
                done.append((t.rollout_id, t.task_id))
                report.rollouts_converted += 1
        s = e
    return done


def _write_chunk_trajs(out: OutputSet, trajs: list[Trajectory], report: ConvertReport) -> list[Trajectory]:
    rows: list[dict[str, Any]] = []
    written: list[Trajectory] = []
    for t in trajs:
        try:
            r = D.call_rows(t)
        except Exception as exc:  # broken input must never stop the run
            _skip(report, "error", f"{t.rollout_id}: {type(exc).__name__}: {exc}")
            continue
        rows.extend(r)
        report.llm_calls += len(t.calls)
        written.append(t)
    report.rows_dropped += out.write("rows-parquet", rows)
    return written


def _write_chunk(
    config: ConvertConfig, out: OutputSet, trajs: list[Trajectory], report: ConvertReport
) -> list[Trajectory]:
    """Write every format for ``trajs``; returns the trajectories written (a rollout whose document fails
    validation, or whose rows cannot be built, is skipped and counted, never stopping the run)."""
    from lightspan.schemas import TrajectoryValidationError, validate_trajectory

    fmts = set(config.formats)
    want_json = fmts & {"trajectory-json", "trajectory-jsonl"}
    call_rows: list[dict[str, Any]] = []
    sft: list[dict[str, Any]] = []
    kto: list[dict[str, Any]] = []
    merged: list[dict[str, Any]] = []
    docs: list[dict[str, Any]] = []
    written: list[Trajectory] = []
    for t in trajs:
        try:
            doc = to_lightning(t) if want_json else None
            if doc is not None and config.validate:
                validate_trajectory(doc)
            rows = D.call_rows(t) if fmts & {"rows-parquet", "rows-jsonl", "lightningrl"} else []
            sft_rows = D.sft_rows(t, config.sft_min_reward) if "sft" in fmts else []
            kto_rows = D.kto_rows(t, config.kto_threshold) if "kto" in fmts else []
            merged_rows, missing = D.merged_rows(t) if "merged" in fmts else ([], 0)
        except TrajectoryValidationError as exc:
            _skip(report, "invalid_trajectory", f"{t.rollout_id}: {exc}")
            continue
        except Exception as exc:  # broken input must never stop the run
            _skip(report, "error", f"{t.rollout_id}: {type(exc).__name__}: {exc}")
            continue
        if doc is not None:
            if "trajectory-json" in fmts:
                out.write_json(doc)
            docs.append(doc)
        call_rows.extend(rows)
        sft.extend(sft_rows)
        kto.extend(kto_rows)
        merged.extend(merged_rows)
        report.merged_calls_without_token_ids += missing
        report.llm_calls += len(t.calls)
        written.append(t)
    dropped = out.write("trajectory-jsonl", docs)
    dropped += out.write("rows-parquet", call_rows)
    dropped += out.write("rows-jsonl", call_rows)
    if "lightningrl" in fmts:
        dropped += out.write("lightningrl", D.lightningrl_rows(call_rows))
    dropped += out.write("sft", sft)
    dropped += out.write("kto", kto)
    dropped += out.write("merged", merged)
    if "dpo" in fmts:
        groups: dict[str, list[Trajectory]] = {}
        for t in written:
            if t.task_id:
                groups.setdefault(t.task_id, []).append(t)
        dropped += out.write(
            "dpo", [row for g in groups.values() for row in D.dpo_rows(g, config.dpo_min_margin)]
        )
    report.rows_dropped += dropped
    return written


def convert(config: ConvertConfig) -> ConvertReport:
    """Convert the selected rollouts into ``config.formats`` under ``config.output_dir``.

    Broken rollouts are skipped and counted in the report; store errors raise
    ``lightspan.storage.StorageError``. An incremental run moves the watermark only after every
    output is complete.
    """
    from lightspan.storage import connect, parse_dsn

    t0 = time.perf_counter()
    report = ConvertReport()
    parsed = parse_dsn(config.dsn)
    client = connect(parsed)
    extra: list[Any] = []
    try:
        extra = [connect(parsed) for _ in range(FETCH_THREADS)]
        return _convert(config, client, parsed.database, report, t0, extra)
    finally:
        for c in extra:
            c.close()
        client.close()


def _check_schema(client: Any, database: str) -> None:
    from lightspan.storage import StorageError, current_version

    if current_version(client, database) < 3:
        raise StorageError(
            f"database {database!r} has no lightspan schema (or an old one); "
            "run 'lightspan schema apply --dsn ...' (the collector applies it on start)"
        )


def _left_out(reader: SpanReader, watermark: datetime | None, report: ConvertReport) -> None:
    """What the store holds that this run could not use: spans in no rollout, rewards matching nothing."""
    report.spans_without_rollout = reader.spans_without_rollout(watermark)
    report.rewards_unmatched, report.unmatched_reward_ids = reader.unmatched_rewards()
    for why, n in report.spans_without_rollout.items():
        _log.warning("%d span(s) belong to no rollout (%s); see docs/converters.md#rollout-identity", n, why)
    if report.rewards_unmatched:
        _log.warning("%d posted reward(s) match no rollout, trace or session", report.rewards_unmatched)


def _convert(
    config: ConvertConfig, client: Any, database: str, report: ConvertReport, t0: float, extra: list[Any]
) -> ConvertReport:
    _check_schema(client, database)
    reader = SpanReader(client, database, config.selection, group_by_task=config.groups_by_task)
    fetchers = [SpanReader(c, database, config.selection) for c in extra]
    sel = config.selection
    watermark = reader.read_watermark() if sel.incremental else None
    high_water = reader.current_high_water() if sel.incremental else None
    report.watermark_before = watermark
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    out = OutputSet(config.output_dir, config.formats, run_id)
    seen_rollouts: set[str] = set()
    seen_tasks: set[str] = set()
    progress = None
    if config.show_progress:
        from tqdm import tqdm

        progress = tqdm(unit=" rollouts", desc="convert", leave=False)
    try:
        for trajs, (segments, plain) in _chunks(
            config, report, reader, watermark, fast=_fast_ok(config), fetchers=fetchers
        ):
            if plain is not None:
                done = _write_plain(out, trajs, segments, plain, report)
            else:
                written = _write_chunk(config, out, trajs, report)
                done = [(t.rollout_id, t.task_id) for t in written]
                report.rollouts_converted += len(written)
            for rid, task in done:
                seen_rollouts.add(rid)
                if task:
                    seen_tasks.add(task)
            if progress is not None:
                progress.n = report.rollouts_seen
                progress.set_postfix(spans=report.spans_read, skipped=report.rollouts_skipped, refresh=False)
                progress.refresh()
    finally:
        out.close()
        if progress is not None:
            progress.close()
    _left_out(reader, watermark, report)
    report.rows_superseded = out.supersede(seen_rollouts, seen_tasks)
    report.rows_written = out.rows_written()
    report.files_written = [str(f) for f in out.files]
    if sel.incremental and high_water is not None:
        reader.write_watermark(high_water)
        report.watermark_after = high_water
    report.seconds = time.perf_counter() - t0
    return report


__all__ = ["ConvertReport", "convert", "iter_trajectories"]
