"""Migration 7 (LLM content parsed once at insert) changes no output: the same varied corpus converts to the
same rows and documents whether the parsed columns were computed at insert, computed on read for rows
stored before the migration, or computed by the query on a store that never got the migration (the
reader's pre-migration SQL)."""

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
from tests.converters.builder import BASE, Rollout, insert_spans, post_reward
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


@pytest.mark.parametrize("credit", ["identical", "discounted"])
def test_parsed_at_insert_on_read_and_by_the_query_give_the_same_outputs(tmp_path, credit):
    rows = _corpus()
    half = len(rows) // 2
    stores = {}
    # after: written with migration 7 (columns computed at insert); the "collector" mode writes the RL
    # columns itself, as the lightspan collector does
    client, database, dsn = _store_at(ddl.SCHEMA_VERSION)
    insert_spans(client, database, rows, "collector")
    stores["after"] = (client, database, dsn)
    # upgraded: half the rows stored before migration 7, half after (old parts compute the columns on read)
    client, database, dsn = _store_at(6)
    # no background merge may rewrite the old part (a merge computes and stores the new columns)
    client.command(f"SYSTEM STOP MERGES {database}.{ddl.SPANS_TABLE}")
    insert_spans(client, database, rows[:half])
    assert 7 in apply_schema(client, database=database)
    insert_spans(client, database, rows[half:])
    assert _parts_with(client, database, "LlmParsed")[0] < _parts_with(client, database, "LlmParsed")[1]
    stores["upgraded"] = (client, database, dsn)
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
        for name in ("upgraded", "before"):
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
