"""The job end to end on converter-shaped files: every algorithm, checkpoints, resume, LoRA, the CLI."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml

from lightspan.training import TrainConfig, train
from lightspan.training.metrics import read_metrics


def _config(tiny_model, data, out, **kw):
    base: dict[str, Any] = dict(
        model=tiny_model,
        data=str(data),
        output_dir=str(out),
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        save_steps=2,
        progress=False,
        max_length=128,
    )
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize(
    ("algo", "fmt"), [("lightningrl", "parquet"), ("sft", "jsonl"), ("kto", "parquet"), ("dpo", "jsonl")]
)
def test_each_algorithm_trains_and_saves_a_loadable_model(algo, fmt, tiny_model, mixed_rows, kit, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = kit.write_rows(mixed_rows, tmp_path / "data" / f"calls.{fmt}")
    result = train(_config(tiny_model, data.parent, tmp_path / "out", algo=algo))
    assert result.steps == 2 and result.num_rows == 16
    steps = [r for r in read_metrics(result.metrics_path) if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(math.isfinite(r["loss"]) and r["algo"] == algo for r in steps)
    assert "tokens_per_s" in steps[-1]
    if algo == "lightningrl":
        assert {"rl/clip_ratio", "rl/advantage_mean", "rl/reward_mean"} <= set(steps[-1])
    assert result.checkpoints[-1].endswith("checkpoint-2")
    model = AutoModelForCausalLM.from_pretrained(result.model_path)
    tok = AutoTokenizer.from_pretrained(result.model_path)
    ids = tok.apply_chat_template(
        kit.task_prompt(0), add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]


def test_checkpoint_resume_continues_the_step_count(tiny_model, mixed_rows, kit, tmp_path):
    data = kit.write_rows(mixed_rows, tmp_path / "calls.parquet")
    first = train(_config(tiny_model, data, tmp_path / "out", max_steps=2, save_steps=1))
    assert [p.rsplit("-", 1)[1] for p in first.checkpoints] == ["1", "2"]
    second = train(
        _config(tiny_model, data, tmp_path / "out", max_steps=4, save_steps=1, resume_from_checkpoint=True)
    )
    assert second.steps == 4
    resumed = [r["step"] for r in read_metrics(second.metrics_path) if "loss" in r]
    assert resumed == [1, 2, 3, 4]  # steps 1-2 from the first run, 3-4 after resuming at checkpoint-2
    with pytest.raises(FileNotFoundError, match="not a checkpoint directory"):
        train(_config(tiny_model, data, tmp_path / "out2", resume_from_checkpoint=str(tmp_path / "nope")))


def test_lora_adapter_saves_and_loads(tiny_model, mixed_rows, kit, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    data = kit.write_rows(mixed_rows, tmp_path / "calls.parquet")
    result = train(
        _config(tiny_model, data, tmp_path / "out", lora=True, lora_r=4, lora_alpha=8, learning_rate=5e-2)
    )
    assert result.adapter_path and result.model_path.endswith("merged")
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    with_adapter = PeftModel.from_pretrained(base, result.adapter_path).eval()
    merged = AutoModelForCausalLM.from_pretrained(result.model_path).eval()
    x = torch.tensor([[3, 40, 41, 42, 4]])
    with torch.no_grad():
        a, m = with_adapter(x).logits, merged(x).logits
        b = AutoModelForCausalLM.from_pretrained(tiny_model)(x).logits
    assert torch.allclose(a, m, atol=1e-4)  # the merged model is the adapter applied
    assert not torch.allclose(a, b, atol=1e-4)  # and the adapter learned something


def test_cli_trains_from_yaml_with_flag_overrides(tiny_model, mixed_rows, kit, tmp_path):
    from click.testing import CliRunner

    from lightspan.cli.main import cli

    data = kit.write_rows(mixed_rows, tmp_path / "data" / "calls.parquet")
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "model": tiny_model,
                "data": str(data.parent),
                "max_steps": 5,
                "per_device_train_batch_size": 4,
                "save_steps": 10,
                "max_length": 64,
            }
        )
    )
    runner = CliRunner()
    res = runner.invoke(
        cli,
        ["train", "--config", str(cfg), "--max-steps", "1", "--output", str(tmp_path / "o"), "--no-progress"],
    )
    assert res.exit_code == 0, res.output
    assert '"steps": 1' in res.output
    assert (tmp_path / "o" / "final" / "model.safetensors").is_file()
    bad = runner.invoke(cli, ["train", "--model", tiny_model, "--data", str(data), "--batch-size", "0"])
    assert bad.exit_code == 2 and "per_device_train_batch_size must be a positive integer" in bad.output
    missing = runner.invoke(
        cli,
        [
            "train",
            "--model",
            tiny_model,
            "--data",
            str(tmp_path / "none"),
            "--output",
            str(tmp_path / "o2"),
            "--no-progress",
        ],
    )
    assert missing.exit_code == 1 and "neither an existing file/directory nor a DSN" in missing.output


def test_cli_bad_inputs_give_one_line(tiny_model, mixed_rows, kit, tmp_path):
    """A 0-row Parquet file and a missing model path each end in the CLI's own one-line error."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from click.testing import CliRunner

    from lightspan.cli.main import cli

    empty = tmp_path / "empty" / "calls.parquet"
    empty.parent.mkdir()
    schema = pa.Table.from_pylist(mixed_rows[:1]).schema
    pq.write_table(schema.empty_table(), empty)
    runner = CliRunner()
    res = runner.invoke(
        cli,
        [
            "train",
            "--model",
            tiny_model,
            "--data",
            str(empty),
            "--output",
            str(tmp_path / "o"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 1 and "holds no rows" in res.output and "Traceback" not in res.output
    data = kit.write_rows(mixed_rows, tmp_path / "rows" / "calls.parquet")
    missing = str(tmp_path / "no-such-model")
    res = runner.invoke(
        cli,
        ["train", "--model", missing, "--data", str(data), "--output", str(tmp_path / "o2"), "--no-progress"],
    )
    assert res.exit_code == 1 and "does not exist" in res.output and "repo id" not in res.output.lower()


def test_warmup_ratio_warms_up_with_the_default_constant_schedule(tiny_model, mixed_rows, kit, tmp_path):
    """transformers' ``constant`` schedule ignores warmup; a requested warmup must still happen."""
    data = kit.write_rows(mixed_rows, tmp_path / "data" / "calls.parquet")
    cfg = _config(tiny_model, data, tmp_path / "out", max_steps=4, save_steps=10, warmup_ratio=0.5)
    assert cfg.lr_scheduler_type == "constant"
    result = train(cfg)
    lrs = [r["learning_rate"] for r in read_metrics(result.metrics_path) if "loss" in r]
    assert lrs[0] < lrs[-1] == pytest.approx(1e-3)  # ramps up to the peak, then holds it


def test_a_fresh_run_in_the_same_directory_sets_the_old_metrics_aside(tiny_model, mixed_rows, kit, tmp_path):
    """Without --resume, metrics.jsonl holds this run only; the earlier run's file is kept beside it."""
    data = kit.write_rows(mixed_rows, tmp_path / "data" / "calls.parquet")
    first = train(_config(tiny_model, data, tmp_path / "out", max_steps=2, save_steps=10))
    second = train(_config(tiny_model, data, tmp_path / "out", max_steps=3, save_steps=10))
    assert [r["step"] for r in read_metrics(second.metrics_path) if "loss" in r] == [1, 2, 3]
    earlier = read_metrics(f"{first.metrics_path}.1")
    assert [r["step"] for r in earlier if "loss" in r] == [1, 2]
