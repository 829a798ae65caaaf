"""Off-policy rules users rely on: stale rows dropped or down-weighted and counted, rows without an advantage
counted (and a clear error when none has one), deprecated option names still mean what they meant."""

from __future__ import annotations

import pytest

from lightspan.training import TrainConfig, train
from lightspan.training.lightningrl import tokenize_rows


@pytest.fixture(scope="module")
def tok(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def _versioned(mixed_rows):
    return [dict(r, policy_version=v) for r, v in zip(mixed_rows, [5, 5, 4, 2] * 4, strict=True)]


def test_stale_rows_are_dropped_and_counted_in_the_run_summary(tiny_model, mixed_rows, kit, tmp_path):
    data = kit.write_rows(_versioned(mixed_rows), tmp_path / "calls.parquet")
    result = train(
        TrainConfig(
            model=tiny_model,
            data=str(data),
            output_dir=str(tmp_path / "out"),
            max_steps=1,
            per_device_train_batch_size=16,
            max_staleness=2,
            progress=False,
            save_steps=100,
        )
    )
    # newest version 5: version 2 is 3 behind (> 2) -> the 4 rows of version 2 are dropped, the others kept
    assert result.metrics["rows/dropped_stale"] == 4
    assert result.metrics["rows/rows"] == 16
    assert result.metrics["rl/completion_tokens"] == sum(
        len(r["completion_token_ids"] or [0, 0]) for r in mixed_rows if r["rollout_id"][-1] != "3"
    )


def test_downweighted_stale_rows_and_an_explicit_current_version(mixed_rows, tok):
    rows = _versioned(mixed_rows)
    samples, counts = tokenize_rows(rows, tok, 64, max_staleness=1, stale_rows="downweight")
    assert counts["downweighted_stale"] == 4 and counts["dropped_stale"] == 0 and len(samples) == 16
    assert sorted({s["weight"] for s in samples}) == [0.25, 1.0]  # 3 behind, bound 1: x0.5 per extra version
    _, counts = tokenize_rows(rows, tok, 64, max_staleness=1, current_policy_version=6)
    assert counts["dropped_stale"] == 8  # versions 4 and 2 are more than 1 behind version 6
    with pytest.raises(ValueError, match=r"no row is left to train on \(16 rows; dropped_stale 16\)"):
        tokenize_rows(rows, tok, 64, max_staleness=0, current_policy_version=9)
    unknown = [dict(r, policy_version=-1) for r in mixed_rows]
    samples, counts = tokenize_rows(unknown, tok, 64, max_staleness=0)
    assert counts["unknown_policy_version"] == 16 and len(samples) == 16  # unknown versions are kept, counted


def test_rows_without_advantage_are_counted_and_none_at_all_is_one_clear_error(
    tiny_model, mixed_rows, kit, tmp_path, tok
):
    from click.testing import CliRunner

    from lightspan.cli.main import cli

    some = [dict(r, advantage=None) if i % 4 == 1 else r for i, r in enumerate(mixed_rows)]
    samples, counts = tokenize_rows(some, tok, 64)
    assert counts["dropped_null_advantage"] == 4 and len(samples) == 12
    none = [dict(r, advantage=None) for r in mixed_rows]
    data = kit.write_rows(none, tmp_path / "rows" / "calls.parquet")
    res = CliRunner().invoke(
        cli,
        [
            "train",
            "--model",
            tiny_model,
            "--data",
            str(data),
            "--output",
            str(tmp_path / "o"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 1 and "Traceback" not in res.output
    last = res.output.strip().splitlines()[-1]
    assert "none of the 16 rows has an advantage" in last and "--algo sft" in last and "credit" in last


def test_deprecated_names_map_to_trl_names_with_a_warning(tiny_model, tmp_path):
    with pytest.warns(FutureWarning, match="use epsilon"):
        cfg = TrainConfig(model=tiny_model, data="x", clip_epsilon=0.1, clip_epsilon_high=0.3)
    assert (cfg.epsilon, cfg.epsilon_high) == (0.1, 0.3)
    with pytest.warns(FutureWarning, match="loss_type='bnpo'"):
        assert TrainConfig(model=tiny_model, data="x", loss_aggregation="token_mean").loss_type == "bnpo"
    with pytest.warns(FutureWarning):
        assert TrainConfig(model=tiny_model, data="x", loss_aggregation="sequence_mean").loss_type == "grpo"
    assert TrainConfig(model=tiny_model, data="x").beta == 0.0  # lightningrl: no KL unless asked
    assert TrainConfig(model=tiny_model, data="x", algo="dpo").beta == 0.1  # DPO/KTO: their temperature
    with pytest.raises(ValueError, match="loss_type must be one of"):
        TrainConfig(model=tiny_model, data="x", loss_type="ppo")
    with pytest.raises(ValueError, match="importance_sampling_mode must be one of"):
        TrainConfig(model=tiny_model, data="x", importance_sampling_mode="vllm")
