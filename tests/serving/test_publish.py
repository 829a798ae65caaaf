"""``lightspan publish`` against ``lightspan serve``, the policy-version record, and versions on converted rows.

The same flow against real vLLM (LoRA load, full-weight reload) is in tests/vllm/.
"""

from __future__ import annotations

import json

import httpx
import openai
import pyarrow as pa
import pytest

from lightspan.converters.policy import PolicyTimeline, version_from_name, versioned_name
from lightspan.training.publish import PublishError, detect_server, publish_checkpoint
from tests.serving.policy_support import converted_versions, fresh_store, store_spans, traced_rollout


@pytest.fixture()
def fresh_server(tiny_models):
    from lightspan.serving import PolicyServer

    srv = PolicyServer(tiny_models[0], served_model_name="policy", device="cpu").start()
    yield srv
    srv.stop()


@pytest.fixture()
def store():
    client, database, dsn = fresh_store()
    yield client, database, dsn
    client.command(f"DROP DATABASE IF EXISTS {database}")
    client.close()


def test_timeline_name_first_then_latest_publish_before_the_call():
    tl = PolicyTimeline.from_records([("policy", 2, 200), ("policy", 1, 100), ("other", 7, 50)])
    assert versioned_name("policy", 3) == "policy@v3" and version_from_name("policy@v3") == 3
    assert version_from_name("policy") is None and version_from_name("a@vx") is None
    cases = [
        ("policy", 99),
        ("policy", 100),
        ("policy", 150),
        ("policy", 250),
        ("policy@v9", 0),
        ("nope", 500),
    ]
    assert [tl.version_at(m, t) for m, t in cases] == [-1, 1, 1, 2, 9, -1]
    column = tl.column(pa.array([m for m, _ in cases]), pa.array([t for _, t in cases], type=pa.int64()))
    assert column.to_pylist() == [-1, 1, 1, 2, 9, -1]  # the fast path agrees with the per-call rule
    assert PolicyTimeline().column(pa.array(["p@v4", "p"]), pa.array([1, 2])).to_pylist() == [4, -1]


def test_detect_server_kind(fresh_server):
    info = detect_server(fresh_server.base_url)  # a trailing /v1 is accepted
    assert (info.kind, info.base_model, info.root_url) == ("lightspan", "policy", fresh_server.base_url[:-3])
    with pytest.raises(PublishError, match="cannot reach"):
        detect_server("http://127.0.0.1:9")


def test_publish_reloads_probes_records_and_rows_carry_the_version(
    fresh_server, tiny_models, store, tmp_path
):
    """Calls before the publish have no known version; calls after it carry version 1, on both convert paths."""
    from lightspan.instrumentation import instrument
    from tests.support.spans import memory_exporter, memory_provider

    memory_provider()
    instrument()
    memory_exporter()  # cleared
    client, database, dsn = store
    oa = openai.OpenAI(base_url=fresh_server.base_url, api_key="x", max_retries=0)
    traced_rollout(oa, "policy", "before")
    result = publish_checkpoint(tiny_models[1], fresh_server.base_url, dsn=dsn)
    assert (result.version, result.name, result.mechanism, result.recorded) == (
        1,
        "policy",
        "lightspan-reload",
        True,
    )
    assert fresh_server.model_path == tiny_models[1]
    assert result.probe.max_abs_diff < 1e-4 and result.probe.tokens > 0
    traced_rollout(oa, "policy", "after")
    rows = client.query(
        f"SELECT Version, Name, Checkpoint, Mechanism, Server, BaseModel FROM {database}.lightspan_policy_versions"
    ).result_rows
    assert rows == [(1, "policy", tiny_models[1], "lightspan-reload", result.server, "policy")]
    assert store_spans(client, database) >= 4
    assert converted_versions(dsn, tmp_path / "fast") == {"before": [-1], "after": [1]}
    assert converted_versions(dsn, tmp_path / "rebuild", "rows-jsonl") == {"before": [-1], "after": [1]}
    # The next publish takes the next number from the store.
    assert publish_checkpoint(tiny_models[0], fresh_server.base_url, dsn=dsn).version == 2


def test_a_server_still_on_the_old_weights_fails_the_probe_and_nothing_is_recorded(
    fresh_server, tiny_models, store, monkeypatch
):
    """A reload that answers OK but keeps the old weights (as vLLM's stale prefix cache did) is caught."""
    client, database, dsn = store
    monkeypatch.setattr(fresh_server, "reload", lambda path: fresh_server.model_path)
    with pytest.raises(PublishError, match="does not answer with"):
        publish_checkpoint(tiny_models[1], fresh_server.base_url, dsn=dsn)
    assert client.query(f"SELECT count() FROM {database}.lightspan_policy_versions").result_rows == [(0,)]


def test_bad_checkpoints_and_mechanisms_are_refused_with_the_fix(fresh_server, tiny_models, tmp_path):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "x"}))
    with pytest.raises(PublishError, match="merge-lora"):
        publish_checkpoint(tmp_path / "adapter", fresh_server.base_url)
    with pytest.raises(PublishError, match="neither a model"):
        publish_checkpoint(tmp_path, fresh_server.base_url)
    with pytest.raises(PublishError, match="needs a vllm server"):
        publish_checkpoint(tiny_models[1], fresh_server.base_url, mechanism="vllm-reload")
    assert fresh_server.model_path == tiny_models[0]  # nothing was loaded


def test_cli_publish_prints_the_version_and_errors_in_one_line(fresh_server, tiny_models, tmp_path):
    from click.testing import CliRunner

    from lightspan.cli.main import cli

    ok = CliRunner().invoke(cli, ["publish", tiny_models[1], "--server", fresh_server.base_url, "--json"])
    assert ok.exit_code == 0, ok.output
    out = json.loads(ok.stdout.strip().splitlines()[-1])
    assert out["version"] == 1 and out["mechanism"] == "lightspan-reload" and out["recorded"] is False
    bad = CliRunner().invoke(cli, ["publish", str(tmp_path), "--server", fresh_server.base_url])
    assert bad.exit_code == 1 and "neither a model" in bad.output
    assert httpx.get(fresh_server.base_url.replace("/v1", "/health")).json()["checkpoint"] == tiny_models[1]


def _rows_from_rollouts(server, dsn: str, client, database: str, out) -> str:
    """Training rows the real way: traced rollouts on ``server`` -> store -> converters -> Parquet."""
    from lightspan.converters import ConvertConfig, convert
    from lightspan.instrumentation import instrument
    from tests.support.spans import memory_exporter, memory_provider

    memory_provider()
    instrument()
    memory_exporter()  # cleared
    oa = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    for i in range(2):
        traced_rollout(oa, "policy", f"train-{i}", seed=i)
    store_spans(client, database)
    convert(ConvertConfig(dsn=dsn, output_dir=str(out), formats=("rows-parquet",)))
    return str(out / "rows-parquet")


def test_train_publish_to_reloads_the_server_probe_verified_and_records_the_version(
    fresh_server, tiny_models, store, tmp_path
):
    """``lightspan train --publish-to``: the final model serves, its version is recorded, later calls carry it."""
    from click.testing import CliRunner

    from lightspan.cli.main import cli

    client, database, dsn = store
    data = _rows_from_rollouts(fresh_server, dsn, client, database, tmp_path / "conv")
    args = ["train", "--model", tiny_models[0], "--data", data, "--max-steps", "1", "--cpu", "--no-progress"]
    res = CliRunner().invoke(
        cli,
        [
            *args,
            "--output",
            str(tmp_path / "run"),
            "--publish-to",
            fresh_server.base_url,
            "--publish-dsn",
            dsn,
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{") :])
    pub = out["published"]
    assert (pub["version"], pub["name"], pub["mechanism"]) == (1, "policy", "lightspan-reload")
    assert pub["checkpoint"] == out["model_path"] and pub["probe"]["max_abs_diff"] < 1e-4
    assert fresh_server.model_path == out["model_path"]
    recorded = client.query(
        f"SELECT Version, Checkpoint FROM {database}.lightspan_policy_versions"
    ).result_rows
    assert recorded == [(1, out["model_path"])]
    oa = openai.OpenAI(base_url=fresh_server.base_url, api_key="x", max_retries=0)
    traced_rollout(oa, "policy", "after-train")
    store_spans(client, database)
    versions = converted_versions(dsn, tmp_path / "after")
    assert versions["after-train"] == [1] and versions["train-0"] == [-1]

    # A server that is gone (named by $LIGHTSPAN_PUBLISH_TO): the model is saved, the run fails in one
    # line naming the server.
    bad = CliRunner().invoke(
        cli, [*args, "--output", str(tmp_path / "run2")], env={"LIGHTSPAN_PUBLISH_TO": "http://127.0.0.1:9"}
    )
    assert bad.exit_code == 1 and "publishing to http://127.0.0.1:9 failed: cannot reach" in bad.output
    assert (tmp_path / "run2" / "final" / "config.json").is_file()
    usage = CliRunner().invoke(cli, [*args, "--publish-to", "127.0.0.1:8000"])
    assert usage.exit_code == 2 and "publish_to must be a policy server URL" in usage.output
