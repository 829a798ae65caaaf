"""deploy/otel-collector: both configs are complete pipelines (every component a pipeline names is
defined, every defined one is used), batch/retry/queue are on, and the forwarding config points at the
lightspan collector. otelcol-contrib is not installable here (no PyPI package), so `otelcol validate`
does not run; these checks are structural."""

from __future__ import annotations

import re

import pytest
from deploy_test_helpers import DEPLOY, load_docs

CONFIGS = sorted((DEPLOY / "otel-collector").glob("*.yaml"))


@pytest.fixture(params=CONFIGS, ids=lambda p: p.name)
def config(request) -> dict:
    (doc,) = load_docs(request.param)
    return doc


def _check_wiring(cfg: dict) -> None:
    service = cfg["service"]
    for ext in service.get("extensions", []):
        assert ext in cfg.get("extensions", {}), f"extension {ext} not defined"
    used = {"receivers": set(), "processors": set(), "exporters": set()}
    for name, pipe in service["pipelines"].items():
        assert name.split("/")[0] in ("traces", "logs", "metrics")
        assert pipe["receivers"] and pipe["exporters"], name
        for section in used:
            for comp in pipe.get(section, []):
                assert comp in cfg.get(section, {}), f"{section[:-1]} {comp} used by {name} but not defined"
                used[section].add(comp)
    for section, names in used.items():
        assert set(cfg.get(section, {})) == names, (
            f"{section} defined but unused: {set(cfg[section]) - names}"
        )


def test_pipelines_are_wired(config):
    _check_wiring(config)


def test_wiring_check_can_fail(config):
    broken = {
        **config,
        "service": {
            **config["service"],
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["nope"]}},
        },
    }
    with pytest.raises((AssertionError, KeyError)):
        _check_wiring(broken)


def test_receives_otlp_on_standard_ports(config):
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")
    assert config["processors"]["memory_limiter"]["limit_percentage"] <= 90


def test_exporters_retry_and_queue_on_disk(config):
    (exporter,) = config["exporters"].values()
    assert exporter["retry_on_failure"]["enabled"] is True
    queue = exporter["sending_queue"]
    assert queue["enabled"] is True
    assert queue["storage"] in config["extensions"] and queue["storage"].startswith("file_storage")
    batching = "batch" in config["processors"] or "batch" in queue
    assert batching, "no batching: one INSERT/export per span"


def test_forwarding_targets_lightspan_with_the_token():
    (cfg,) = load_docs(DEPLOY / "otel-collector" / "forward-to-lightspan.yaml")
    exp = cfg["exporters"]["otlp/lightspan"]
    assert exp["endpoint"] == "${env:FORWARD_OTLP_ENDPOINT}"
    assert exp["headers"]["authorization"] == "Bearer ${env:LIGHTSPAN_AUTH_TOKEN}"
    assert exp["retry_on_failure"]["max_elapsed_time"] == "0s"


def test_env_references_are_collector_syntax(config):
    text = repr(config)
    refs = re.findall(r"\$\{([^}]*)\}", text)
    assert refs and all(r.startswith("env:") for r in refs), refs
