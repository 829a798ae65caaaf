"""Rollout identity for spans of any instrumentation: the DDL chain, its Python twin, trace adoption,
the migration of existing tables, and what the report says about spans in no rollout."""

from __future__ import annotations

import json
import uuid

import pytest

from lightspan.converters import ConvertConfig, Selection, convert, iter_trajectories
from lightspan.schemas import attributes as A
from lightspan.schemas import conventions as C
from lightspan.schemas import ddl
from tests.converters.builder import Rollout, new_id

TL = A.TRACELOOP_ASSOCIATION_PREFIX
ATTRS = [
    {A.ROLLOUT_ID: "r-1", A.TASK_ID: "t-1", A.ATTEMPT: "2", A.GEN_AI_AGENT_NAME: "solver"},
    {A.AGL_ROLLOUT_ID: "agl-1", A.AGL_ATTEMPT_ID: "3", A.OI_SESSION_ID: "s-ignored"},
    {
        A.OI_SESSION_ID: "s-1",
        A.OI_METADATA: json.dumps({"task_id": "t-m", "attempt": 4}),
        A.OI_AGENT_NAME: "oi",
    },
    {A.GEN_AI_CONVERSATION_ID: "conv-1", TL + "task_id": "t-tl", TL + "attempt": "5"},
    {TL + "session_id": "tl-s", A.OPENLLMETRY_SPAN_KIND: "workflow", A.OPENLLMETRY_ENTITY_NAME: "wf"},
    {TL + "rollout_id": "tl-r"},
    {A.OI_METADATA: json.dumps({"rollout_id": 17, "session_id": "ignored"})},
    {A.OI_METADATA: json.dumps({"session_id": "meta-s"})},
    {A.OI_METADATA: "not json"},
    {},
]


def test_the_ddl_chain_and_its_python_twin_agree(store):
    """Rows written by any exporter get the chain from the DEFAULTs; conventions.rollout_identity says the same."""
    r = Rollout("unused", stamp=False)
    for attrs in ATTRS:
        r.span("s", attrs)
    store.insert(r.rows)
    got = store.client.query(
        f"SELECT SpanAttributes, TraceId, RolloutId, RolloutSource, TaskId, Attempt, AgentName"
        f" FROM {store.database}.{ddl.SPANS_TABLE} ORDER BY Timestamp"
    ).result_rows
    for attrs, trace, rid, source, task, attempt, agent in got:
        assert (rid, source) == C.rollout_identity(attrs, trace), attrs
        assert source == C.rollout_source(attrs)
        assert (task, attempt, agent) == (C.task_id_of(attrs), C.attempt_of(attrs), C.agent_name_of(attrs)), (
            attrs
        )
    assert [g[3] for g in got] == [
        "explicit", "explicit", "session", "session", "session", "explicit", "explicit", "session", "trace", "trace"
    ]  # fmt: skip
    assert got[2][4:] == ("t-m", 4, "oi") and got[4][6] == "wf" and got[6][2] == "17"


def _oi_episode(session: str, trace: str, k: int, *, evaluation: float | None = None) -> Rollout:
    """An OpenInference-style episode: an id-less root span (the agent's own) around session-stamped calls."""
    r = Rollout(session, stamp=False, trace_id=trace)
    events = None
    if evaluation is not None:
        events = [
            (
                A.GEN_AI_EVALUATION_RESULT,
                {A.GEN_AI_EVALUATION_NAME: "primary", A.GEN_AI_EVALUATION_SCORE_VALUE: evaluation},
            )
        ]
    root = r.span(f"episode {k}", {}, dur_ms=100, events=events)
    stamp = {A.OI_SESSION_ID: session, A.OI_METADATA: json.dumps({"task_id": "add", "attempt": k})}
    r.chat(f"q{k}", "first", parent=root, extra=stamp)
    r.chat(f"q{k}", "second", parent=root, extra=stamp)
    return r


def test_session_rollouts_take_in_the_id_less_root_of_their_trace(store, tmp_path):
    """The episode root (no session id) joins the session's rollout: its evaluation is the rollout's reward."""
    store.insert(_oi_episode("sess-a", new_id(32), 0, evaluation=1.0).rows)
    store.insert(_oi_episode("sess-b", new_id(32), 1, evaluation=0.0).rows)
    report = convert(
        ConvertConfig(dsn=store.dsn, output_dir=str(tmp_path), selection=Selection(finished_only=True))
    )
    assert (report.rollouts_seen, report.rollouts_converted) == (2, 2), report.summary()
    trajs = {t.rollout_id: t for t in iter_trajectories(ConvertConfig(dsn=store.dsn))}
    assert set(trajs) == {"sess-a", "sess-b"}
    a = trajs["sess-a"]
    assert (a.task_id, a.final_reward, a.agent_name) == ("add", 1.0, "episode 0")
    assert [c.response_text for c in a.calls] == ["first", "second"]
    assert trajs["sess-b"].attempt == 1 and trajs["sess-b"].final_reward == 0.0
    assert report.spans_without_rollout == {}


def test_trace_rollouts_rewards_by_trace_id_and_the_chain_configured_off_the_trace(store, tmp_path):
    trace = new_id(32)
    r = Rollout("x", stamp=False, trace_id=trace)
    root = r.span("episode", {})
    r.chat("q", "a", parent=root)
    store.insert(r.rows)
    store.post_reward(trace, 0.75, target="trace")  # by trace id, as a user of openai-v2 only has
    store.post_reward("nobody-" + uuid.uuid4().hex[:6], 1.0)
    (traj,) = list(iter_trajectories(ConvertConfig(dsn=store.dsn)))
    assert (traj.rollout_id, traj.final_reward) == (trace, 0.75)
    full = convert(ConvertConfig(dsn=store.dsn, output_dir=str(tmp_path / "a")))
    assert full.rewards_unmatched == 1 and full.unmatched_reward_ids[0].startswith("nobody-")
    assert "rewards matching no rollout" in full.summary()
    # The chain without its last link: the spans belong to no rollout, and the report says so.
    off = convert(
        ConvertConfig(
            dsn=store.dsn,
            output_dir=str(tmp_path / "b"),
            selection=Selection(rollout_sources=("explicit", "session")),
        )
    )
    assert off.rollouts_seen == 0 and off.spans_without_rollout == {"trace": 2}
    assert "spans in no rollout: 2 (trace: 2" in off.summary()


def test_rewards_posted_by_session_id_reach_an_explicit_rollout(store):
    r = Rollout("explicit-1")
    root = r.agent("a", **{})
    r.chat("q", "a", parent=root, extra={A.GEN_AI_CONVERSATION_ID: "conv-9"})
    store.insert(r.rows)
    store.post_reward("conv-9", 0.5, target="session")
    (traj,) = list(iter_trajectories(ConvertConfig(dsn=store.dsn)))
    assert traj.rollout_id == "explicit-1" and traj.final_reward == 0.5


def test_bad_rollout_sources_are_refused():
    with pytest.raises(ValueError, match="rollout_sources must name some of"):
        Selection(rollout_sources=("explicit", "user"))
    assert Selection(rollout_sources="explicit, trace").rollout_sources == ("explicit", "trace")  # type: ignore[arg-type]


def test_migration_gives_an_existing_table_the_chain(store, tmp_path):
    """A store made before the chain: old rows keep no id (reported), new rows get the chain."""
    from lightspan.storage import apply_schema

    db, t = store.database, f"{store.database}.{ddl.SPANS_TABLE}"
    old = "if(SpanAttributes['lightspan.rollout.id'] != '', SpanAttributes['lightspan.rollout.id'], '')"
    store.client.command(f"ALTER TABLE {t} MODIFY COLUMN RolloutId String DEFAULT {old}")
    store.client.command(f"ALTER TABLE {t} DROP COLUMN RolloutSource")
    store.client.command(
        f"ALTER TABLE {db}.{ddl.MIGRATIONS_TABLE} DELETE WHERE Version >= 6 SETTINGS mutations_sync = 1"
    )
    before = Rollout("x", stamp=False)
    before.chat("q", "a")
    store.insert(before.rows)
    assert 6 in apply_schema(store.client, database=db)
    after = Rollout("x", stamp=False)
    after.chat("q", "a")
    store.insert(after.rows)
    rows = store.client.query(
        f"SELECT RolloutId, RolloutSource, TraceId FROM {t} ORDER BY IngestedAt"
    ).result_rows
    assert rows[0][0] == "" and rows[1][0] == rows[1][2] and rows[1][1] == "trace"
    report = convert(ConvertConfig(dsn=store.dsn, output_dir=str(tmp_path), require_reward=False))
    assert report.rollouts_converted == 1 and report.spans_without_rollout == {"no_id": 1}


def test_the_cli_reports_spans_in_no_rollout(store, tmp_path):
    from click.testing import CliRunner

    from lightspan.converters.cli import convert as convert_cmd

    r = Rollout("x", stamp=False)
    r.chat("q", "a")
    store.insert(r.rows)
    args = ["--dsn", store.dsn, "-o", str(tmp_path), "-q", "--rollout-sources", "explicit,session"]
    res = CliRunner().invoke(convert_cmd, args)
    assert res.exit_code == 0, res.output
    assert "rollouts: 0 seen" in res.output and "spans in no rollout: 1 (trace: 1" in res.output
    bad = CliRunner().invoke(convert_cmd, ["--dsn", store.dsn, "--rollout-sources", "user"])
    assert bad.exit_code == 2 and "rollout_sources must name some of" in bad.output


def test_the_migration_alters_both_tables_on_a_cluster():
    sql = ddl.render(ddl.Layout(cluster="c"))
    for table in ("otel_traces_local", "otel_traces"):
        assert f"ALTER TABLE lightspan.{table} ON CLUSTER 'c' MODIFY COLUMN `RolloutId` String DEFAULT" in sql
        assert f"ALTER TABLE lightspan.{table} ON CLUSTER 'c' ADD COLUMN IF NOT EXISTS `RolloutSource`" in sql


def test_incremental_runs_pick_up_a_late_reward_posted_by_trace_id(store, tmp_path):
    trace = new_id(32)
    store.insert(_oi_episode("sess-late", trace, 0).rows)

    def run():
        sel = Selection(incremental=True, watermark_name="late")
        return convert(
            ConvertConfig(dsn=store.dsn, output_dir=str(tmp_path), require_reward=False, selection=sel)
        )

    assert run().rollouts_converted == 1
    assert run().rollouts_seen == 0
    store.post_reward(trace, 0.5, target="trace")  # the trace of the session rollout (its root's)
    again = run()
    assert again.rollouts_converted == 1
    doc = json.loads((tmp_path / "trajectory-json" / "sess-late.json").read_text())
    assert doc["final_reward"] == 0.5
