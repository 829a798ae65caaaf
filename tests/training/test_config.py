"""TrainConfig: defaults, validation messages that name the fix, YAML with overrides."""

from __future__ import annotations

import pytest

from lightspan.training import TrainConfig


def test_defaults_resolve_for_cpu(tmp_path):
    cfg = TrainConfig(model="m", data=str(tmp_path))
    assert cfg.algo == "lightningrl"
    assert cfg.resolved_use_cpu() is True  # no CUDA on the test machine
    assert cfg.resolved_bf16() is False
    assert cfg.resolved_gradient_checkpointing() is False
    assert cfg.resolved_metrics_file().endswith("metrics.jsonl")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algo": "ppo"}, r"algo must be one of \['lightningrl', 'sft', 'kto', 'dpo'\]"),
        ({"model": None}, "model is required"),
        ({"data": None}, "data is required"),
        ({"per_device_train_batch_size": 0}, "per_device_train_batch_size must be a positive integer"),
        ({"clip_epsilon": 1.5}, r"clip_epsilon must be in \(0, 1\)"),
        ({"algo": "kto", "per_device_train_batch_size": 1}, "Set per_device_train_batch_size=2"),
        ({"max_steps": 0}, "max_steps must be -1"),
        ({"kto_label_from": "vibes"}, "kto_label_from must be one of"),
    ],
)
def test_bad_values_say_what_to_fix(kwargs, message):
    base = {"model": "m", "data": "d"}
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{**base, **kwargs})


def test_from_yaml_with_overrides(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("algo: sft\nmodel: ./m\ndata: ./d\nlearning_rate: 0.0002\nlora: true\nmax_steps: 10\n")
    cfg = TrainConfig.from_yaml(path, max_steps=3, output_dir=None)
    assert (cfg.algo, cfg.learning_rate, cfg.lora, cfg.max_steps) == ("sft", 2e-4, True, 3)
    path.write_text("model: m\ndata: d\nlearnig_rate: 1\n")
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) \['learnig_rate'\]"):
        TrainConfig.from_yaml(path)
