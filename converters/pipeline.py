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
from .lightning import to_lightning
from .model import Trajectory
from .outputs import OutputSet
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
            "seconds": self.seconds,
        }


def _skip(report: ConvertReport, reason: str, message: str) -> None:
    report.skipped[reason] += 1
    report.examples.setdefault(reason, message[:200])
    _log.info("skipped rollout: %s", message)


_DONE = object()


def _prefetched(reader: SpanReader, watermark: datetime | None, chunk_rollouts: int) -> Iterator[tuple[Any, ...]]:
    """(rollout ids, spans, posted rewards) per chunk, read one chunk ahead by a background thread.

    ClickHouse (chDB or HTTP) works outside the GIL, so reading the next chunk overlaps with rebuilding
    this one. Every query runs on that one thread (an HTTP session allows no concurrent queries), and the
    queue holds one chunk, so at most three chunks are in memory.
    """
    out: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for ids in reader.iter_chunks(watermark, chunk_rollouts):
                rollout_ids = [r for _, r in ids]
                item = (rollout_ids, reader.fetch_spans(rollout_ids), reader.fetch_posted_rewards(rollout_ids))
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)
            return
        put(_DONE)

    thread = threading.Thread(target=work, name="lightspan-convert-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def _chunks(config: ConvertConfig, report: ConvertReport, reader: SpanReader, watermark: datetime | None
            ) -> Iterator[list[Trajectory]]:
    """Rebuilt, credited trajectories, one chunk (whole task groups when needed) at a time."""
    pattern = re.compile(config.agent_match) if config.agent_match else None
    for rollout_ids, batch, posted in _prefetched(reader, watermark, config.chunk_rollouts):
        report.rollouts_seen += len(rollout_ids)
        report.spans_read += batch.num_rows
        found = {rid for rid, _, _ in batch.segments}
        for rid in rollout_ids:
            if rid not in found:  # its spans vanished between the two queries (TTL, deletion)
                _skip(report, "no_spans", f"rollout {rid} has no spans any more")
        trajs: list[Trajectory] = []
        for rid, a, b in batch.segments:
            try:
                traj = rebuild(
                    rid, batch.cols, a, b, posted.get(rid),
                    agent_match=pattern, reward_name=config.reward_name, require_reward=config.require_reward,
                )
            except SkipRollout as exc:
                _skip(report, exc.reason, f"{rid}: {exc.detail or exc.reason}")
                continue
            except Exception as exc:  # broken input must never stop the run
                _skip(report, "error", f"{rid}: {type(exc).__name__}: {exc}")
                continue
            report.warnings += len(traj.warnings)
            trajs.append(traj)
        assign_credit(trajs, config.credit, gamma=config.gamma, reward_name=config.reward_name,
                      epsilon=config.grpo_epsilon)
        yield trajs


def iter_trajectories(config: ConvertConfig, report: ConvertReport | None = None) -> Iterator[Trajectory]:
    """Rebuilt, credited trajectories of the selection (no files written, no watermark moved)."""
    from lightspan.storage import connect, parse_dsn

    parsed = parse_dsn(config.dsn)
    client = connect(parsed)
    try:
        _check_schema(client, parsed.database)
        reader = SpanReader(client, parsed.database, config.selection, group_by_task=config.groups_by_task)
        watermark = reader.read_watermark() if config.selection.incremental else None
        for chunk in _chunks(config, report or ConvertReport(), reader, watermark):
            yield from chunk
    finally:
        client.close()


def _write_chunk(config: ConvertConfig, out: OutputSet, trajs: list[Trajectory], report: ConvertReport
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
        dropped += out.write("dpo", [row for g in groups.values() for row in D.dpo_rows(g, config.dpo_min_margin)])
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
    try:
        return _convert(config, client, parsed.database, report, t0)
    finally:
        client.close()


def _check_schema(client: Any, database: str) -> None:
    from lightspan.storage import StorageError, current_version

    if current_version(client, database) < 3:
        raise StorageError(
            f"database {database!r} has no lightspan schema (or an old one); "
            "run 'lightspan schema apply --dsn ...' (the collector applies it on start)"
        )


def _convert(config: ConvertConfig, client: Any, database: str, report: ConvertReport, t0: float) -> ConvertReport:
    _check_schema(client, database)
    reader = SpanReader(client, database, config.selection, group_by_task=config.groups_by_task)
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
        for trajs in _chunks(config, report, reader, watermark):
            written = _write_chunk(config, out, trajs, report)
            for t in written:
                seen_rollouts.add(t.rollout_id)
                if t.task_id:
                    seen_tasks.add(t.task_id)
            report.rollouts_converted += len(written)
            if progress is not None:
                progress.n = report.rollouts_seen
                progress.set_postfix(spans=report.spans_read, skipped=report.rollouts_skipped, refresh=False)
                progress.refresh()
    finally:
        out.close()
        if progress is not None:
            progress.close()
    report.rows_superseded = out.supersede(seen_rollouts, seen_tasks)
    report.rows_written = out.rows_written()
    report.files_written = [str(f) for f in out.files]
    if sel.incremental and high_water is not None:
        reader.write_watermark(high_water)
        report.watermark_after = high_water
    report.seconds = time.perf_counter() - t0
    return report


__all__ = ["ConvertReport", "convert", "iter_trajectories"]
