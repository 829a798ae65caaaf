"""Reading converter output and the per-algorithm views."""

from __future__ import annotations

import pytest

from lightspan.training import data as D


def test_reads_parquet_file_dir_and_jsonl(mixed_rows, kit, tmp_path):
    pq = kit.write_rows(mixed_rows, tmp_path / "pq" / "calls.parquet")
    js = kit.write_rows(mixed_rows, tmp_path / "js" / "calls.jsonl")
    (tmp_path / "pq" / "manifest.json").write_text('{"rows": 16}')  # not call rows: ignored
    for source in (pq, pq.parent, js, js.parent):
        ds = D.load_dataset_source(str(source))
        assert len(ds) == 16
        assert ds[0]["prompt"][1]["content"] == "Which color is task 0?"
        assert ds[2]["prompt_token_ids"] and ds[0]["prompt_token_ids"] is None


def test_converter_output_root_reads_call_rows_only(mixed_rows, kit, tmp_path):
    kit.write_rows(mixed_rows, tmp_path / "rows-parquet" / "part-0-0.parquet")
    kit.write_rows(mixed_rows[:8], tmp_path / "lightningrl" / "part-0-0.parquet")  # a view of the same calls
    kit.write_rows(
        [{"prompt": r["prompt"], "completion": r["completion"]} for r in mixed_rows[:4]],
        tmp_path / "sft" / "part-0-0.jsonl",
    )
    assert len(D.load_dataset_source(str(tmp_path))) == 16


def test_bad_sources_name_the_problem(tmp_path, kit):
    with pytest.raises(FileNotFoundError, match="neither an existing file/directory nor a DSN"):
        D.load_dataset_source(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="no call-row files"):
        D.load_dataset_source(str(tmp_path))
    kit.write_rows([{"prompt": "x"}], tmp_path / "bad.jsonl")
    with pytest.raises(ValueError, match=r"lack column\(s\) \['completion'\]"):
        D.load_dataset_source(str(tmp_path / "bad.jsonl"))


def test_views(mixed_rows):
    import datasets

    ds = datasets.Dataset.from_list(mixed_rows)
    sft = D.sft_view(ds, 0.5)
    assert len(sft) == 8 and all(
        r["completion"][0]["content"] in ("red", "green", "blue", "gold") for r in sft
    )
    kto = D.kto_view(ds, "advantage", 0.5)
    assert sum(kto["label"]) == 8 and len(kto) == 16
    dpo = D.dpo_view(ds, 0.0)
    assert len(dpo) == 8  # 4 tasks x (2 best vs 2 worst)
    assert all(r["chosen"] != r["rejected"] for r in dpo)
    with pytest.raises(ValueError, match="sft_min_reward"):
        D.sft_view(ds, 2.0)
