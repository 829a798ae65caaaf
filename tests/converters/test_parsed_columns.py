"""Migrations 7 (LLM content parsed once at insert) and 8 (the converter's attributes and the per-row
``SpanNeeds`` mask) change no output: the same varied corpus converts to the same rows and documents
whether the columns were computed at insert, computed on read for rows stored before a migration, or
computed by the query on a store that never got it (the reader's pre-migration SQL)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from lightspan.converters import ConvertConfig, convert, load_rows
from lightspan.converters.reader import SpanReader
from lightspan.schemas import attributes as A
from lightspan.schemas import ddl
from lightspan.storage import apply_schema
from tests.converters.builder import BASE, Rollout, insert_spans, msgs, post_reward
from tests.converters.conftest import _connect
from tests.converters.test_fastpath import _plain, _special

FORMATS = ("rows-parquet", "trajectory-jsonl", "sft", "merged")


def _content_variants() -> list[Rollout]:
    """LLM spans whose content ClickHouse parses exactly, and every kind it leaves to Python."""
    r = Rollout("content", "t9")
    root = r.agent("solver")
    r.chat("with system", "ok", parent=root, system="be brief", prompt_ids=[], response_ids=[0, -1])
    tool_call = json.dumps(
        [
            {
                "role": "assistant",
                "parts": [{"type": "tool_call", "name": "add", "id": "c1", "arguments": {"a": 1}}],
            }
        ]
    )
    r.chat("call a tool", "", parent=root, extra={A.GEN_AI_OUTPUT_MESSAGES: tool_call})
    openai = json.dumps([{"role": "user", "content": [{"type": "text", "text": "array content"}]}])
    r.chat("", "x", parent=root, extra={A.GEN_AI_INPUT_MESSAGES: openai})
    r.chat(
        "plain content", "z", parent=root, extra={A.GEN_AI_INPUT_MESSAGES: '[{"role":"user","content":"hi"}]'}
    )
    r.chat("lp empty", "v", parent=root, logprobs=[], prompt_ids=[1, 2, 3])
    r.chat("ids too long", "u", parent=root, extra={A.LLM_PROMPT_TOKEN_IDS: "[1234567890123456789]"})
    r.chat("no text", "", parent=root, prompt_ids=[1], response_ids=[2])
    r.reward(0.5, parent=root)
    broken = Rollout("broken", "t9")  # skipped as bad_json, the same way on every path
    broken.chat("broken", "y", extra={A.GEN_AI_INPUT_MESSAGES: '[{"role": "user", "parts": ['})
    broken.chat("lp nulls", "w", logprobs=[-0.1, None], response_ids=[5, 6])  # type: ignore[list-item]
    broken.reward(1.0)
    foreign = Rollout("foreign", "t9")  # OpenInference as the contrib exporter stores it: unmapped
    froot = foreign.agent("oi")
    foreign.span(
        "ChatCompletion",
        {
            A.OPENINFERENCE_SPAN_KIND: "LLM",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "2+3?",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "5",
            "llm.model_name": "m",
        },
        parent=froot,
    )
    foreign.span(
        "add", {A.OPENINFERENCE_SPAN_KIND: "TOOL", A.OI_TOOL_NAME: "add", "input.value": "{}"}, parent=froot
    )
    foreign.reward(1.0, parent=froot)
    evaluated = Rollout("evaluated", "t9")
    eroot = evaluated.agent("judge")
    evaluated.chat(
        "judged",
        "fine",
        parent=eroot,
        events=[
            (
                A.GEN_AI_EVALUATION_RESULT,
                {A.GEN_AI_EVALUATION_NAME: "primary", A.GEN_AI_EVALUATION_SCORE_VALUE: 0.75},
            )
        ],
    )
    return [r, broken, foreign, evaluated]


def _corpus() -> list[dict[str, Any]]:
    plain = [_plain(f"p{i}", f"t{i % 3}", [0.0, 0.5, 1.0][i % 3], agents=1 + i % 3) for i in range(5)]
    rows: list[dict[str, Any]] = []
    for r in plain + list(_special().values()) + _content_variants():
        rows += r.rows
    return rows


def _store_at(version: int) -> tuple[Any, str, str]:
    """A fresh database with migrations up to ``version`` applied (as an older lightspan left it)."""
    database = f"conv_{uuid.uuid4().hex[:12]}"
    client, dsn = _connect(database)
    apply_schema(client, database=database, up_to=version)
    return client, database, dsn


def _outputs(dsn: str, out: Any, **kw: Any) -> dict[str, Any]:
    report = convert(ConvertConfig(dsn=dsn, output_dir=str(out), formats=FORMATS, validate=False, **kw))
    got: dict[str, Any] = {
        "report": {k: v for k, v in report.as_dict().items() if k not in ("seconds", "files_written")}
    }
    for fmt in FORMATS:
        if fmt == "trajectory-jsonl":
            docs = [
                json.loads(line)
                for p in sorted((out / fmt).glob("part-*.jsonl"))
                for line in p.read_text().splitlines()
            ]
            got[fmt] = sorted(docs, key=lambda d: json.dumps(d, sort_keys=True))
        else:
            got[fmt] = load_rows(out / fmt, keep_ids=True).to_list()
    fast = convert(
        ConvertConfig(dsn=dsn, output_dir=str(out / "fast"), formats=("rows-parquet",), validate=False, **kw)
    )
    got["fast"] = load_rows(out / "fast" / "rows-parquet").to_list()
    got["fast_report"] = fast.rows_written
    return got


def _parts_with(client: Any, database: str, column: str) -> tuple[int, int]:
    where = f"database = '{database}' AND table = '{ddl.SPANS_TABLE}' AND active"
    parts = client.query(f"SELECT count() FROM system.parts WHERE {where}").result_rows[0][0]
    have = client.query(
        f"SELECT count() FROM system.parts_columns WHERE {where} AND column = '{column}'"
    ).result_rows[0][0]
    return int(have), int(parts)


def _half_migrated(rows: list[dict], start: int, column: str) -> tuple[Any, str, str]:
    """A store at schema ``start`` holding the first half of ``rows``, upgraded to the newest schema (migration
    ``start + 1`` adds ``column``), then given the second half: old parts compute the new columns on read."""
    client, database, dsn = _store_at(start)
    # no background merge may rewrite the old part (a merge computes and stores the new columns)
    client.command(f"SYSTEM STOP MERGES {database}.{ddl.SPANS_TABLE}")
    half = len(rows) // 2
    insert_spans(client, database, rows[:half])
    assert start + 1 in apply_schema(client, database=database)
    insert_spans(client, database, rows[half:])
    have, parts = _parts_with(client, database, column)
    assert have < parts
    return client, database, dsn


@pytest.mark.parametrize("credit", ["identical", "discounted"])
def test_parsed_at_insert_on_read_and_by_the_query_give_the_same_outputs(tmp_path, credit):
    rows = _corpus()
    stores = {}
    # after: written with migration 7 (columns computed at insert); the "collector" mode writes the RL
    # columns itself, as the lightspan collector does
    client, database, dsn = _store_at(ddl.SCHEMA_VERSION)
    insert_spans(client, database, rows, "collector")
    stores["after"] = (client, database, dsn)
    # upgraded: half the rows stored before migration 7, half after (old parts compute the columns on read)
    stores["upgraded"] = _half_migrated(rows, 6, "LlmParsed")
    # upgraded from 7: half the rows stored before migration 8 (ConverterAttributes/SpanNeeds on read)
    stores["upgraded7"] = _half_migrated(rows, 7, "SpanNeeds")
    # at 7: the span query reads SpanAttributes and Events of every row (the converter before migration 8)
    client, database, dsn = _store_at(7)
    insert_spans(client, database, rows)
    reader = SpanReader(client, database, ConvertConfig(dsn=dsn).selection)
    assert reader.has_parsed_columns and not reader.has_needs_columns
    stores["at7"] = (client, database, dsn)
    # never migrated: the reader's query computes the same expressions (the converter before migration 7)
    client, database, dsn = _store_at(6)
    insert_spans(client, database, rows)
    assert not SpanReader(client, database, ConvertConfig(dsn=dsn).selection).has_parsed_columns
    stores["before"] = (client, database, dsn)
    try:
        for client, database, _ in stores.values():
            post_reward(client, database, "posted", 0.25, when=BASE, reward_id="r1")
        got = {name: _outputs(dsn, tmp_path / name, credit=credit) for name, (_, _, dsn) in stores.items()}
        assert got["after"]["rows-parquet"], "the corpus converts to rows"
        assert any(r["rollout_id"] == "foreign" for r in got["after"]["rows-parquet"])
        assert any(r["rollout_id"] == "content" for r in got["after"]["rows-parquet"])
        for name in ("upgraded", "upgraded7", "at7", "before"):
            for key in got["after"]:
                assert got[name][key] == got["after"][key], f"{name}: {key} differs"
    finally:
        for client, database, _ in stores.values():
            client.command(f"DROP DATABASE IF EXISTS {database}")
            client.close()


def test_the_parsed_columns_hold_what_the_converter_reads(store):
    """Exact parses land in the typed columns with their bit set; the rest stays text (bit clear, empty)."""
    r = Rollout("cols")
    r.chat("hi", "there", system="sys", prompt_ids=[1, 2], response_ids=[3], logprobs=[-0.5])
    r.chat("ids", "x", extra={A.LLM_PROMPT_TOKEN_IDS: "[1.5]", A.GEN_AI_INPUT_MESSAGES: "not json"})
    store.insert(r.rows)
    got = store.client.query(
        f"SELECT LlmParsed, LlmInputMessages, LlmOutputMessages, LlmPromptTokenIds, LlmResponseTokenIds,"
        f" LlmResponseLogprobs FROM {store.database}.{ddl.SPANS_TABLE} ORDER BY Timestamp"
    ).result_rows
    full = ddl.PARSED_INPUT | ddl.PARSED_OUTPUT | ddl.PARSED_PROMPT_IDS | ddl.PARSED_RESPONSE_IDS
    assert got[0] == (
        full | ddl.PARSED_LOGPROBS | ddl.PARSED_HAS_TEXT,
        [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}],
        [{"role": "assistant", "content": "there"}],
        [1, 2],
        [3],
        [-0.5],
    )
    assert got[1] == (ddl.PARSED_OUTPUT, [], [{"role": "assistant", "content": "x"}], [], [], [])


def test_span_needs_marks_the_rows_whose_map_or_events_the_converter_reads(store):
    """``SpanNeeds`` is 0 for plain lightspan spans (tool spans included: their attributes are in
    ``ConverterAttributes``) and has the right bit for foreign spans, unparsed content and evaluations."""
    r = Rollout("needs")
    root = r.agent("solver")
    r.chat("hi", "there", parent=root, prompt_ids=[1, 2], response_ids=[3])
    r.tool("add", {"a": 1}, 2, parent=root)
    r.chat("ids", "x", parent=root, extra={A.LLM_PROMPT_TOKEN_IDS: "[1.5]"})
    r.span("ChatCompletion", {A.OPENINFERENCE_SPAN_KIND: "LLM"}, parent=root)
    r.chat(
        "judged",
        "fine",
        parent=root,
        events=[(A.GEN_AI_EVALUATION_RESULT, {A.GEN_AI_EVALUATION_NAME: "primary"})],
    )
    r.reward(1.0, parent=root)
    store.insert(r.rows)
    got = store.client.query(
        f"SELECT SpanName, SpanNeeds, ConverterAttributes FROM {store.database}.{ddl.SPANS_TABLE}"
        " ORDER BY Timestamp"
    ).result_rows
    needs = {name: (mask, attrs) for name, mask, attrs in got}
    assert [m for _, m, _ in got] == [0, 0, 0, ddl.NEEDS_TEXT, ddl.NEEDS_FOREIGN, ddl.NEEDS_EVENTS, 0]
    tool = next(attrs for name, _, attrs in got if attrs)
    assert set(tool) == {A.GEN_AI_TOOL_CALL_ARGUMENTS, A.GEN_AI_TOOL_CALL_RESULT}, needs
    assert all(not attrs for _, m, attrs in got if attrs is not tool)


def test_the_span_query_reads_no_attribute_map_or_events_after_migration_8():
    """What makes migration 8 pay: the per-row span query touches neither ``SpanAttributes`` nor ``Events``;
    the values only they hold come from the second query, and only for rows ``SpanNeeds`` marks."""
    from lightspan.converters import reader as R

    sql = " ".join(expr for _, expr in R.SPAN_SELECT_NEEDS)
    assert "SpanAttributes" not in sql and "Events" not in sql
    assert {a for a, _ in R.SPAN_SELECT} == {a for a, _ in R.SPAN_SELECT_NEEDS} - {"needs"} | set(
        R.NEEDS_ALIASES
    )
    assert set(R.NEEDS_ALIASES) <= {a for a, _ in R.NEEDS_SELECT}


@pytest.mark.parametrize("older_marked", [True, False])
def test_a_reexported_span_converts_from_its_newest_copy(tmp_path, older_marked):
    """A span exported twice (no merge yet) with different prompts, one copy marked by ``SpanNeeds``
    (content ClickHouse leaves to Python) and one not: the output is that of the newest copy alone, whichever
    it is (the second query's PREWHERE runs before FINAL, so only rows the FINAL span query marks are
    looked up)."""
    good = {A.GEN_AI_INPUT_MESSAGES: msgs(("user", "parsed at insert"))}
    odd = {
        A.GEN_AI_INPUT_MESSAGES: json.dumps(
            [{"role": "user", "content": [{"type": "text", "text": "by Python"}]}]
        )
    }
    first, second = (odd, good) if older_marked else (good, odd)

    def rollout(extra: dict[str, str], trace: str) -> Rollout:
        r = Rollout("dup", "t1", trace_id=trace)
        r.chat("q", "a", extra=extra, prompt_ids=[1, 2], response_ids=[3])
        r.reward(1.0)
        return r

    trace = "ab" * 16
    old, new = rollout(first, trace), rollout(second, trace)
    for a, b in zip(old.rows, new.rows, strict=True):  # the same spans: same ids and timestamps
        b["SpanId"], b["Timestamp"], b["ParentSpanId"] = a["SpanId"], a["Timestamp"], a["ParentSpanId"]
    client, database, dsn = _store_at(ddl.SCHEMA_VERSION)
    ref_client, ref_db, ref_dsn = _store_at(ddl.SCHEMA_VERSION)
    try:
        client.command(f"SYSTEM STOP MERGES {database}.{ddl.SPANS_TABLE}")
        insert_spans(client, database, old.rows)
        insert_spans(client, database, new.rows)
        assert _parts_with(client, database, "SpanNeeds") == (2, 2)
        insert_spans(ref_client, ref_db, new.rows)
        got, want = _outputs(dsn, tmp_path / "dup"), _outputs(ref_dsn, tmp_path / "ref")
        prompt = "by Python" if not older_marked else "parsed at insert"
        assert [m["content"] for m in got["rows-parquet"][0]["prompt"]] == [prompt]
        for key in want:
            assert got[key] == want[key], key
    finally:
        for c, db in ((client, database), (ref_client, ref_db)):
            c.command(f"DROP DATABASE IF EXISTS {db}")
            c.close()


def test_mostly_marked_chunks_switch_to_one_query_and_back_with_the_same_outputs(tmp_path):
    """A reader whose chunk was mostly marked rows (unmapped foreign spans) reads its next chunk in one query
    (the whole map of every row), and goes back to two queries after a plain chunk; chunk by chunk (one
    rollout each) the outputs equal those of a store without migration 8."""

    def oi(rid: str) -> Rollout:  # three of its four spans are foreign (OpenInference, unmapped)
        foreign = Rollout(rid, "t0")
        froot = foreign.span("agent", {A.OPENINFERENCE_SPAN_KIND: "AGENT", A.OI_AGENT_NAME: "oi"})
        foreign.span(
            "ChatCompletion",
            {
                A.OPENINFERENCE_SPAN_KIND: "LLM",
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.content": "2+3?",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "5",
            },
            parent=froot,
        )
        foreign.span("add", {A.OPENINFERENCE_SPAN_KIND: "TOOL", A.OI_TOOL_NAME: "add"}, parent=froot)
        foreign.reward(1.0, parent=froot)
        return foreign

    rollouts = [oi("oi"), _plain("p0", "t0", 1.0), *_content_variants(), oi("oi2"), _plain("p1", "t1", 0.5)]
    rows = [row for r in rollouts for row in r.rows]
    stores = {}
    for name, version in (("at8", ddl.SCHEMA_VERSION), ("at7", 7)):
        client, database, dsn = _store_at(version)
        insert_spans(client, database, rows)
        stores[name] = (client, database, dsn)
    try:
        client, database, dsn = stores["at8"]
        reader = SpanReader(client, database, ConvertConfig(dsn=dsn).selection)
        reader.fetch_spans(["oi"])
        assert reader._mostly_marked  # pyright: ignore[reportPrivateUsage]
        whole = reader.fetch_spans(["p0"])  # read in one query: "needs" counted all the same
        assert not reader._mostly_marked  # pyright: ignore[reportPrivateUsage]
        split = reader.fetch_spans(["p0"])
        a, b = whole.table.sort_by("sid"), split.table.sort_by("sid")
        for name in split.table.column_names:
            if name != "row":  # positions in each query's read order
                assert a.column(name).to_pylist() == b.column(name).to_pylist(), name
        got = {name: _outputs(dsn, tmp_path / name, chunk_rollouts=1) for name, (_, _, dsn) in stores.items()}
        assert got["at8"]["rows-parquet"]
        for key in got["at7"]:
            assert got["at8"][key] == got["at7"][key], key
    finally:
        for client, database, _ in stores.values():
            client.command(f"DROP DATABASE IF EXISTS {database}")
            client.close()
