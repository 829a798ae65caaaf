"""Incremental conversion, foreign (unmapped) spans and the ``lightspan convert`` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from lightspan.converters import ConvertConfig, Selection, convert, load_rows
from lightspan.converters.cli import convert as convert_cmd
from lightspan.schemas import attributes as A
from lightspan.schemas import validate_trajectory
from tests.converters.builder import Rollout


def simple(rid: str, task: str = "t", reward: float | None = 1.0, answer: str = "a") -> Rollout:
    r = Rollout(rid, task)
    root = r.agent("solver")
    r.chat("q", answer, parent=root)
    if reward is not None:
        r.reward(reward, parent=root)
    return r


def test_incremental_runs_add_only_new_work_and_never_duplicate(store, tmp_path):
    cfg: dict[str, Any] = dict(
        dsn=store.dsn,
        output_dir=str(tmp_path),
        formats=("trajectory-json", "rows-parquet", "rows-jsonl", "dpo"),
        selection=Selection(incremental=True, watermark_name="test"),
    )
    store.insert(simple("i1").rows + simple("i2", reward=0.0, answer="b").rows)
    first = convert(ConvertConfig(**cfg))
    assert first.rollouts_converted == 2 and first.watermark_after is not None
    # nothing new: nothing converted, nothing written
    again = convert(ConvertConfig(**cfg))
    assert again.rollouts_seen == 0
    # a new rollout of another task, and a late reward for i2
    store.insert(simple("i3", task="u").rows)
    store.post_reward("i2", 0.5)
    third = convert(ConvertConfig(**cfg))
    assert (
        third.rollouts_converted == 3
    )  # i3, i2 (its new reward) and, as dpo pairs by task, i2's task mate i1
    rows = load_rows(tmp_path / "rows-parquet").to_list()
    assert sorted(r["rollout_id"] for r in rows) == ["i1", "i2", "i3"]
    assert {r["rollout_id"]: r["reward"] for r in rows}["i2"] == 0.5
    assert sorted(r["rollout_id"] for r in load_rows(tmp_path / "rows-jsonl").to_list()) == ["i1", "i2", "i3"]
    assert len(load_rows(tmp_path / "dpo").to_list()) == 1
    assert json.loads((tmp_path / "trajectory-json" / "i2.json").read_text())["final_reward"] == 0.5
    # a full (non-incremental) re-run into the same folder replaces rather than appends
    convert(ConvertConfig(**{**cfg, "selection": Selection()}))
    assert len(load_rows(tmp_path / "rows-parquet").to_list()) == 3


def test_incremental_grpo_reconverts_the_whole_task_group(store, tmp_path):
    cfg: dict[str, Any] = dict(
        dsn=store.dsn,
        output_dir=str(tmp_path),
        formats=("rows-parquet",),
        credit="grpo",
        selection=Selection(incremental=True),
        grpo_epsilon=0.0,
    )
    store.insert(simple("a1", reward=1.0).rows)
    convert(ConvertConfig(**cfg))
    store.insert(simple("a2", reward=0.0).rows)
    report = convert(ConvertConfig(**cfg))
    assert report.rollouts_converted == 2 and report.rows_superseded == 1
    adv = {r["rollout_id"]: round(r["advantage"], 6) for r in load_rows(tmp_path / "rows-parquet").to_list()}
    assert adv == {"a1": 0.707107, "a2": -0.707107}


def test_foreign_spans_openinference_openllmetry_and_agentlightning(store, tmp_path):
    r = Rollout("agl-1", stamp=False)  # no lightspan keys: an Agent Lightning tracer's spans
    ident = {A.AGL_ROLLOUT_ID: "agl-1", A.AGL_ATTEMPT_ID: "2"}
    agent = r.span("agent run", {**ident, A.OI_AGENT_NAME: "sql-agent"})
    r.span(
        "ChatCompletion",
        {
            **ident,
            A.OPENINFERENCE_SPAN_KIND: "LLM",
            A.OI_LLM_MODEL_NAME: "m",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "write sql",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "SELECT 1",
        },
        parent=agent,
    )
    r.span(
        "openai.chat",
        {
            **ident,
            A.OPENLLMETRY_REQUEST_TYPE: "chat",
            A.OLD_GEN_AI_SYSTEM: "openai",
            A.GEN_AI_REQUEST_MODEL: "m",
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "fix it",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "SELECT 2",
        },
        parent=agent,
    )
    r.span(
        A.AGL_ANNOTATION_SPAN,
        {**ident, "agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": "0.75"},
        parent=agent,
    )
    store.insert(r.rows)
    report = convert(
        ConvertConfig(
            dsn=store.dsn,
            output_dir=str(tmp_path),
            formats=("trajectory-json", "rows-parquet"),
            agent_match="sql",
        )
    )
    assert report.rollouts_converted == 1, report.summary()
    d = json.loads((tmp_path / "trajectory-json" / "agl-1.json").read_text())
    validate_trajectory(d)
    assert d["final_reward"] == 0.75 and d["attempt"] == 2 and d["rewards"][0]["source"] == "agentlightning"
    rows = load_rows(tmp_path / "rows-parquet").to_list()
    assert [(x["prompt"][0]["content"], x["completion"][0]["content"], x["agent_name"]) for x in rows] == [
        ("write sql", "SELECT 1", "sql-agent"),
        ("fix it", "SELECT 2", "sql-agent"),
    ]


def test_cli_converts_and_prints_a_summary(store, tmp_path, monkeypatch):
    store.insert(simple("c1").rows)
    monkeypatch.setenv("LIGHTSPAN_CLICKHOUSE_DSN", store.dsn)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        convert_cmd, ["-o", str(out), "-f", "trajectory-json,sft", "--credit", "discounted", "-q"]
    )
    assert res.exit_code == 0, res.output
    assert "1 converted" in res.output and "sft: 1 rows" in res.output
    assert (out / "trajectory-json" / "c1.json").exists()
    res = CliRunner().invoke(convert_cmd, ["-o", str(out), "--json", "-f", "rows-parquet"])
    assert json.loads(res.output)["rows_written"] == {"rows-parquet": 1}


def test_cli_rejects_bad_arguments_with_exit_2(store, tmp_path):
    runner = CliRunner()
    res = runner.invoke(convert_cmd, ["--dsn", store.dsn, "-f", "parquet"])
    assert res.exit_code == 2 and "choose from" in res.output
    res = runner.invoke(convert_cmd, ["--dsn", store.dsn, "--credit", "ppo"])
    assert res.exit_code == 2
    res = runner.invoke(convert_cmd, ["--dsn", store.dsn, "--agent-match", "("])
    assert res.exit_code == 2 and "agent_match" in res.output
    res = runner.invoke(convert_cmd, ["--dsn", "ftp://nowhere", "-o", str(tmp_path)])
    assert res.exit_code == 1 and "unknown DSN scheme" in res.output
    no_schema = store.dsn.replace(store.database, store.database + "_empty")
    res = runner.invoke(convert_cmd, ["--dsn", no_schema, "-o", str(tmp_path)])
    assert res.exit_code == 1 and "lightspan schema apply" in res.output


def test_lightspan_cli_lists_convert(tmp_path):
    from lightspan.cli.main import SUBCOMMANDS

    module, attr = SUBCOMMANDS["convert"][0].split(":")
    import importlib

    assert getattr(importlib.import_module(module), attr) is convert_cmd


def test_load_rows_explains_a_wrong_folder(tmp_path: Path):
    import pytest

    with pytest.raises(FileNotFoundError, match="format folder"):
        load_rows(tmp_path)


def test_incremental_without_groups_converts_exactly_the_changed_rollouts(store, tmp_path):
    cfg: dict[str, Any] = dict(
        dsn=store.dsn,
        output_dir=str(tmp_path),
        formats=("rows-parquet",),
        selection=Selection(incremental=True),
    )
    store.insert(simple("n1").rows + simple("n2", reward=0.0).rows)
    assert convert(ConvertConfig(**cfg)).rollouts_converted == 2
    store.insert(simple("n3").rows)
    store.post_reward("n2", 0.5)
    report = convert(ConvertConfig(**cfg))
    assert report.rollouts_converted == 2 and report.rows_superseded == 1
    assert sorted(r["rollout_id"] for r in load_rows(tmp_path / "rows-parquet").to_list()) == [
        "n1",
        "n2",
        "n3",
    ]
