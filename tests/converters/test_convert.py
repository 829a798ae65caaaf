"""``convert`` end to end on the embedded engine: rows written the way the collector or the contrib exporter writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightspan.converters import FORMATS, ConvertConfig, Selection, convert, iter_trajectories, load_rows
from lightspan.schemas import attributes as A
from lightspan.schemas import validate_trajectory
from lightspan.schemas.rows import CALL_ROW_COLUMNS
from tests.converters.builder import Rollout


def run(store, out: Path, **kw):
    kw.setdefault("formats", FORMATS)
    return convert(ConvertConfig(dsn=store.dsn, output_dir=str(out), **kw))


def doc(out: Path, rollout_id: str) -> dict:
    d = json.loads((out / "trajectory-json" / f"{rollout_id}.json").read_text())
    validate_trajectory(d)
    return d


def solver_rollout(rid: str = "r1", task: str = "t1", reward: float = 1.0, **kw) -> Rollout:
    r = Rollout(rid, task, **kw)
    root = r.agent("solver")
    r.chat(
        "What is 2+3?",
        "call add",
        parent=root,
        system="be brief",
        prompt_ids=[1, 2, 3],
        response_ids=[4, 5],
        logprobs=[-0.1, -0.2],
    )
    r.tool("add", {"a": 2, "b": 3}, 5, parent=root)
    r.chat(
        [("user", "What is 2+3?"), ("assistant", "call add"), ("tool", "5")],
        "5",
        parent=root,
        prompt_ids=[1, 2, 3, 4, 5, 6, 7],
        response_ids=[8],
    )
    r.reward(reward, parent=root)
    return r


@pytest.mark.parametrize("mode", ["contrib", "collector"])
def test_single_rollout_every_format(store, tmp_path, mode):
    store.insert(solver_rollout().rows, mode=mode)
    report = run(store, tmp_path)
    assert (report.rollouts_seen, report.rollouts_converted, report.rollouts_skipped) == (1, 1, 0)
    assert report.spans_read == 5 and report.llm_calls == 2
    d = doc(tmp_path, "r1")
    assert d["final_reward"] == 1.0 and d["task_id"] == "t1" and d["agent_name"] == "solver"
    assert [s["span_type"] for s in d["spans"]] == ["llm_call", "tool_call", "llm_call"]
    first = d["spans"][0]
    assert first["input"]["messages"][0] == {"role": "system", "content": "be brief"}
    assert first["output"]["response"] == "call add" and first["output"]["logprobs"] == [-0.1, -0.2]
    assert d["spans"][1]["input"] == {"tool_name": "add", "parameters": {"a": 2, "b": 3}}
    assert d["spans"][1]["output"]["result"] == 5
    rows = load_rows(tmp_path / "rows-parquet").to_list()
    assert list(rows[0]) == list(CALL_ROW_COLUMNS)
    assert [(r["step"], r["reward"], r["is_last"]) for r in rows] == [(0, 1.0, False), (1, 1.0, True)]
    assert rows[0]["prompt_token_ids"] == [1, 2, 3] and rows[1]["completion"] == [
        {"role": "assistant", "content": "5"}
    ]
    assert load_rows(tmp_path / "rows-jsonl").to_list() == rows
    jsonl = [
        json.loads(x)
        for x in (next((tmp_path / "trajectory-jsonl").glob("part-*.jsonl"))).read_text().splitlines()
    ]
    assert jsonl == [d]
    merged = load_rows(tmp_path / "merged").to_list()
    assert merged == [
        {
            "rollout_id": "r1",
            "task_id": "t1",
            "input_ids": [1, 2, 3, 4, 5, 6, 7, 8],
            "loss_mask": [0, 0, 0, 1, 1, 0, 0, 1],
            "reward": 1.0,
            "advantage": 1.0,
        }
    ]
    assert load_rows(tmp_path / "sft").column_names == ["prompt", "completion"]
    assert load_rows(tmp_path / "kto").to_list()[0]["label"] is True


def test_multi_agent_order_and_agent_match(store, tmp_path):
    r = Rollout("m1")
    root = r.agent("orchestrator")
    r.chat("plan it", "delegate", parent=root)
    a = r.agent("researcher", parent=root)
    b = r.agent("writer", parent=root)
    # interleaved in time: depth-first order keeps each sub-agent's calls together
    r.chat("research 1", "found 1", parent=a)
    r.chat("write 1", "draft 1", parent=b)
    r.chat("research 2", "found 2", parent=a)
    r.chat("write 2", "draft 2", parent=b)
    r.reward(0.5, parent=root)
    store.insert(r.rows)
    trajs = list(iter_trajectories(ConvertConfig(dsn=store.dsn)))
    assert [c.prompt[-1]["content"] for c in trajs[0].calls] == [
        "plan it",
        "research 1",
        "research 2",
        "write 1",
        "write 2",
    ]
    assert [c.agent_name for c in trajs[0].calls] == [
        "orchestrator",
        "researcher",
        "researcher",
        "writer",
        "writer",
    ]
    run(store, tmp_path, agent_match="^writer$", credit="discounted", gamma=0.5, formats=("rows-parquet",))
    rows = load_rows(tmp_path / "rows-parquet").to_list()
    assert [(r["agent_name"], r["step"], r["reward"]) for r in rows] == [
        ("writer", 3, 0.125),
        ("writer", 4, 0.25),
    ]


def test_streaming_and_duplicate_spans_of_one_call(store, tmp_path):
    r = Rollout("s1")
    root = r.agent("solver")
    # litellm's span wraps the openai span of the same call (same response id); only the inner one has token ids
    outer = r.chat(
        "hello", "hi there", parent=root, response_id="resp-1", extra={A.LLM_STREAMING: "true"}, dur_ms=50
    )
    r.chat("hello", "hi there", parent=outer, response_id="resp-1", prompt_ids=[1], response_ids=[2, 3])
    # a span recorded while an outer instrumentor already records the call
    r.chat("hello", "hi there", parent=outer, extra={A.LLM_SUPPRESSED: "true"})
    r.chat("next", "streamed answer", parent=root, extra={A.LLM_STREAMING: "true"})
    r.reward(1.0, parent=root)
    store.insert(r.rows)
    report = run(store, tmp_path, formats=("rows-parquet",))
    rows = load_rows(tmp_path / "rows-parquet").to_list()
    assert report.llm_calls == 2
    assert [r["completion"][0]["content"] for r in rows] == ["hi there", "streamed answer"]
    assert rows[0]["span_id"] == outer and rows[0]["completion_token_ids"] == [2, 3]


def test_gap_rollout_graph_levels_and_nodes(store, tmp_path):
    r = Rollout("g1")
    root = r.agent("gap")
    graph = {
        "nodes": [
            {"id": "s1", "description": "find A"},
            {"id": "s2", "description": "find B"},
            {"id": "s3", "description": "combine", "depends": ["s1", "s2"]},
        ]
    }
    plan = r.span(
        "plan gap", {A.GEN_AI_OPERATION_NAME: A.OP_PLAN, A.GAP_GRAPH: json.dumps(graph)}, parent=root
    )
    r.chat("decompose the question", "s1, s2 -> s3", parent=plan)
    for level, nodes in enumerate([["s1", "s2"], ["s3"]]):
        lv = r.span(
            f"gap.level {level}",
            {
                A.GEN_AI_OPERATION_NAME: A.OP_GAP_LEVEL,
                A.GAP_LEVEL: str(level),
                A.GAP_LEVEL_WIDTH: str(len(nodes)),
            },
            parent=root,
        )
        for n in nodes:
            node = r.span(
                f"gap.node {n}",
                {A.GEN_AI_OPERATION_NAME: A.OP_GAP_NODE, A.GAP_NODE_ID: n, A.GAP_NODE_STATUS: "done"},
                parent=lv,
            )
            r.tool("search", {"q": n}, f"result {n}", parent=node)
            r.chat(f"answer {n}", f"done {n}", parent=node)
    r.reward(1.0, parent=root)
    store.insert(r.rows)
    run(store, tmp_path, formats=("trajectory-json",))
    d = doc(tmp_path, "g1")
    assert d["gap"]["levels"] == [["s1", "s2"], ["s3"]]
    assert sorted(map(tuple, d["gap"]["edges"])) == [("s1", "s3"), ("s2", "s3")]
    assert {n["id"]: (n["level"], n.get("status")) for n in d["gap"]["nodes"]} == {
        "s1": (0, "done"),
        "s2": (0, "done"),
        "s3": (1, "done"),
    }
    llm = [s for s in d["spans"] if s["span_type"] == "llm_call"]
    assert [s["metadata"]["gap_node_id"] for s in llm] == [None, "s1", "s2", "s3"]
    tools = [s for s in d["spans"] if s["span_type"] == "tool_call"]
    assert [s["metadata"]["gap_node_id"] for s in tools] == ["s1", "s2", "s3"]


def test_late_and_step_targeted_rewards(store, tmp_path):
    r = Rollout("late1", "t1")
    root = r.agent("solver")
    c0 = r.chat("q", "a0", parent=root)
    r.chat("q2", "a1", parent=root)
    r.reward(0.1, parent=root)  # in-rollout reward, superseded by the later posted one
    store.insert(r.rows)
    store.post_reward("late1", 0.9)
    store.post_reward("late1", 0.3, step=1)
    store.post_reward("late1", 0.2, target_span=c0)
    run(store, tmp_path, credit="per_step", formats=("trajectory-json", "rows-parquet"))
    d = doc(tmp_path, "late1")
    assert d["final_reward"] == 0.9
    assert sorted((x["source"], x["value"], x["step"]) for x in d["rewards"]) == [
        ("posted", 0.2, 0),
        ("posted", 0.3, 1),
        ("posted", 0.9, None),
        ("span", 0.1, None),
    ]
    rows = load_rows(tmp_path / "rows-parquet").to_list()
    assert [round(x["reward"], 9) for x in rows] == [0.2, 1.2]  # step rewards; final added to the last call


def test_missing_parents_and_several_traces(store, tmp_path):
    r = Rollout("x1")
    # process A: its parent (the caller in another process) was never exported
    r.chat("first", "one", parent="deadbeefdeadbeef", trace_id="a" * 32)
    # process B, another trace, later
    b_root = r.agent("worker", trace_id="b" * 32)
    r.chat("second", "two", parent=b_root, trace_id="b" * 32)
    r.reward(1.0, trace_id="b" * 32)
    store.insert(r.rows)
    report = run(store, tmp_path, formats=("trajectory-json",))
    d = doc(tmp_path, "x1")
    assert report.rollouts_converted == 1 and report.warnings >= 1
    assert [s["output"]["response"] for s in d["spans"]] == ["one", "two"]
    assert d["otel_trace_ids"] == ["a" * 32, "b" * 32]


def test_broken_input_is_skipped_with_a_reason_and_never_stops_the_run(store, tmp_path):
    good = solver_rollout("good")
    bad = Rollout("bad")
    bad.chat("x", "y", extra={A.GEN_AI_INPUT_MESSAGES: '[{"role": "user", "parts": ['})
    bad.reward(1.0)
    noreward = Rollout("noreward")
    noreward.chat("x", "y")
    nollm = Rollout("nollm")
    nollm.tool("t", {}, 1)
    nollm.reward(1.0)
    badtokens = Rollout("badtokens")
    badtokens.chat("x", "y", extra={A.LLM_PROMPT_TOKEN_IDS: "[1, 2"})
    badtokens.reward(1.0)
    store.insert(good.rows + bad.rows + noreward.rows + nollm.rows + badtokens.rows)
    report = run(store, tmp_path, formats=("rows-parquet",))
    assert report.rollouts_seen == 5 and report.rollouts_converted == 1
    assert dict(report.skipped) == {"bad_json": 2, "no_reward": 1, "no_llm_calls": 1}
    assert (
        "gen_ai.input.messages" in report.examples["bad_json"] or "token_ids" in report.examples["bad_json"]
    )
    assert "skipped bad_json: 2" in report.summary()
    assert {r["rollout_id"] for r in load_rows(tmp_path / "rows-parquet").to_list()} == {"good"}
    report = run(store, tmp_path / "again", formats=("rows-parquet",), require_reward=False)
    assert report.rollouts_converted == 2  # the rollout without a reward now converts with reward 0


def test_trl_views_sft_kto_dpo(store, tmp_path):
    rows = []
    for rid, reward, answer in [("p1", 1.0, "5"), ("p2", 0.0, "6"), ("p3", 0.5, "5!")]:
        r = Rollout(rid, "add-task")
        root = r.agent("solver")
        r.chat("What is 2+3?", answer, parent=root)
        r.reward(reward, parent=root)
        rows += r.rows
    store.insert(rows)
    run(store, tmp_path, formats=("sft", "kto", "dpo", "lightningrl"), sft_min_reward=0.5, kto_threshold=0.75)
    sft = load_rows(tmp_path / "sft", keep_ids=True).to_list()
    assert sorted((r["rollout_id"], r["completion"][0]["content"]) for r in sft) == [
        ("p1", "5"),
        ("p3", "5!"),
    ]
    kto = load_rows(tmp_path / "kto", keep_ids=True).to_list()
    assert {r["rollout_id"]: r["label"] for r in kto} == {"p1": True, "p2": False, "p3": False}
    dpo = load_rows(tmp_path / "dpo").to_list()
    assert dpo == [
        {
            "prompt": [{"role": "user", "content": "What is 2+3?"}],
            "chosen": [{"role": "assistant", "content": "5"}],
            "rejected": [{"role": "assistant", "content": "6"}],
        }
    ]
    assert load_rows(tmp_path / "lightningrl").column_names == [
        "rollout_id",
        "task_id",
        "step",
        "prompt",
        "completion",
        "prompt_token_ids",
        "completion_token_ids",
        "completion_logprobs",
        "reward",
        "advantage",
        "policy_version",
    ]


def test_grpo_groups_stay_whole_across_chunks(store, tmp_path):
    rows = []
    for i, (task, reward) in enumerate([("ta", 1.0), ("ta", 0.0), ("ta", 0.5), ("tb", 1.0), ("tb", 0.0)]):
        r = Rollout(f"g{i}", task)
        r.chat("q", "a")
        r.reward(reward)
        rows += r.rows
    store.insert(rows)
    run(store, tmp_path, credit="grpo_rollout", formats=("rows-parquet",), chunk_rollouts=1, grpo_epsilon=0.0)
    adv = {r["rollout_id"]: round(r["advantage"], 6) for r in load_rows(tmp_path / "rows-parquet").to_list()}
    # ta: [1, 0, 0.5] mean 0.5 std 0.5 ; tb: [1, 0] mean 0.5 std sqrt(0.5)
    assert adv == {
        "g0": 1.0,
        "g1": -1.0,
        "g2": 0.0,
        "g3": round(0.5 / 0.5**0.5, 6),
        "g4": -round(0.5 / 0.5**0.5, 6),
    }


def test_selection_filters_run_in_clickhouse(store, tmp_path):
    from datetime import timedelta

    from tests.converters.builder import BASE

    a = solver_rollout("sa", "t1", service="svc-a")
    b = solver_rollout("sb", "t2", service="svc-b", start=BASE + timedelta(hours=2))
    c = Rollout("sc", "t3")  # unfinished: no root span without parent... and no reward
    c.chat("q", "a", parent="0000000000000abc")
    store.insert(a.rows + b.rows + c.rows)

    def selected(**sel) -> set[str]:
        trajs = iter_trajectories(
            ConvertConfig(dsn=store.dsn, selection=Selection(**sel), require_reward=False)
        )
        return {t.rollout_id for t in trajs}

    assert selected() == {"sa", "sb", "sc"}
    assert selected(service="svc-b") == {"sb"}
    assert selected(task_ids=["t1", "t3"]) == {"sa", "sc"}
    assert selected(rollout_ids=["sb"]) == {"sb"}
    assert selected(since=BASE + timedelta(hours=1)) == {"sb"}
    assert selected(until=BASE + timedelta(hours=1)) == {"sa", "sc"}
    assert selected(agent_name="solver") == {"sa", "sb"}
    assert selected(finished_only=True) == {"sa", "sb"}


def test_http_dsn_reads_through_the_query_interface(store, tmp_path):
    from lightspan.storage.http_interface import ClickHouseHTTPInterface

    store.insert(solver_rollout("h1").rows)
    with ClickHouseHTTPInterface(store.client, port=0, database=store.database) as http:
        report = convert(
            ConvertConfig(dsn=http.url, output_dir=str(tmp_path), formats=("trajectory-json", "rows-parquet"))
        )
    assert report.rollouts_converted == 1
    assert doc(tmp_path, "h1")["final_reward"] == 1.0


MESSAGE_SHAPES = [
    [{"role": "user", "parts": [{"type": "text", "content": "semconv"}]}],
    [{"role": "user", "parts": [{"type": "text", "content": "a"}, {"type": "text", "content": "b"}]}],
    [{"role": "user", "content": "plain"}],
    [{"role": "user", "content": [{"type": "text", "text": "openai content parts"}]}],
    [{"role": "user", "content": {"nested": 1}}],
    [{"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}],
    [{"role": "assistant", "parts": [{"type": "tool_call", "id": "1", "name": "f", "arguments": {"x": 1}}]}],
    [{"parts": [{"type": "text", "content": "no role"}]}],
    [],
]


@pytest.mark.parametrize("shape", range(len(MESSAGE_SHAPES)))
def test_clickhouse_parsing_matches_python_parsing(store, shape):
    """Messages parsed inside ClickHouse (the fast path) or in Python (the rest) come out the same."""
    from lightspan.converters.mapping import parse_messages, with_system

    raw = json.dumps(MESSAGE_SHAPES[shape])
    system = json.dumps([{"type": "text", "content": "sys"}])
    r = Rollout(f"shape{shape}")
    r.chat(
        "x",
        "y",
        extra={
            A.GEN_AI_INPUT_MESSAGES: raw,
            A.GEN_AI_SYSTEM_INSTRUCTIONS: system,
            A.GEN_AI_OUTPUT_MESSAGES: raw,
            A.LLM_PROMPT_TOKEN_IDS: "[1, 2]",
            A.LLM_RESPONSE_LOGPROBS: "[-0.5, 0]",
        },
    )
    r.reward(1.0)
    store.insert(r.rows)
    trajs = list(iter_trajectories(ConvertConfig(dsn=store.dsn)))
    if not MESSAGE_SHAPES[shape]:  # no completion content: the call is skipped (and reported), not trained on
        assert trajs == []
        return
    call = trajs[0].calls[0]
    assert call.prompt == with_system(parse_messages(raw), system)
    assert call.completion == parse_messages(raw, A.GEN_AI_OUTPUT_MESSAGES, "assistant")
    assert call.prompt_token_ids == [1, 2] and call.completion_logprobs == [-0.5, 0.0]


def test_token_ids_with_a_bad_element_never_stop_the_run(store, tmp_path):
    good = solver_rollout("tok-good")
    bad = Rollout("tok-bad")
    bad.chat("x", "y", extra={A.LLM_PROMPT_TOKEN_IDS: '[1, "x", 3]'})
    bad.reward(1.0)
    store.insert(good.rows + bad.rows)
    report = run(store, tmp_path, formats=("rows-parquet",))
    rows = {r["rollout_id"]: r for r in load_rows(tmp_path / "rows-parquet").to_list()}
    assert "tok-good" in rows
    # either the rollout is skipped as bad JSON, or its row is dropped and counted: never garbage ids
    assert report.skipped.get("bad_json", 0) + report.rows_dropped == 1
    assert "tok-bad" not in rows
