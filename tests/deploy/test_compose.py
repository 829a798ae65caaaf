"""deploy/compose: the file validates against the Compose Specification JSON Schema (the copy that
check-jsonschema vendors, with its license) after compose-style interpolation of .env.example, and the
services are wired the way the README says (healthchecks, start order, profiles, GPU reservation)."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from deploy_test_helpers import DEPLOY, REPO, interpolate, load_docs, read_env_file

from lightspan.schemas import env

COMPOSE_DIR = DEPLOY / "compose"


@pytest.fixture(scope="module")
def compose() -> dict:
    (doc,) = load_docs(COMPOSE_DIR / "docker-compose.yml")
    return interpolate(doc, read_env_file(COMPOSE_DIR / ".env.example"))


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    pytest.importorskip(
        "check_jsonschema", reason="pip install check-jsonschema (lightspan[dev]) for the schema"
    )
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    assert (vendor / "licenses" / "LICENSE.compose-spec").is_file()
    return json.loads((vendor / "compose-spec.json").read_text())


def _errors(schema: dict, doc: dict) -> list[str]:
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_compose_file_matches_the_compose_spec(compose, compose_schema):
    assert _errors(compose_schema, compose) == []


def test_schema_check_can_fail(compose, compose_schema):
    broken = json.loads(json.dumps(compose))
    broken["services"]["collector"]["depends_on"]["clickhouse"]["condition"] = "service_happy"
    broken["services"]["clickhouse"]["healthcheck"]["retries"] = "many"
    assert len(_errors(compose_schema, broken)) >= 2


def test_missing_secret_is_an_error():
    (doc,) = load_docs(COMPOSE_DIR / "docker-compose.yml")
    values = read_env_file(COMPOSE_DIR / ".env.example")
    del values["CLICKHOUSE_PASSWORD"]
    with pytest.raises(KeyError, match="CLICKHOUSE_PASSWORD"):
        interpolate(doc, values)


def test_clickhouse_is_the_official_image_with_volume_and_healthcheck(compose):
    ch = compose["services"]["clickhouse"]
    repo, tag = ch["image"].split(":")
    assert repo == "clickhouse/clickhouse-server" and tag and tag != "latest"
    assert any(v.endswith(":/var/lib/clickhouse") for v in ch["volumes"])
    assert "/ping" in " ".join(ch["healthcheck"]["test"])
    assert all(p.startswith("127.0.0.1:") for p in ch["ports"]), (
        "ClickHouse must not be published on all interfaces"
    )


def test_start_order_schema_then_collector(compose):
    services = compose["services"]
    assert services["schema"]["command"] == ["schema", "apply"]
    assert services["schema"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    col = services["collector"]
    assert col["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    assert col["depends_on"]["schema"]["condition"] == "service_completed_successfully"
    assert col["command"] == ["collector"]
    assert {p.split(":")[-1] for p in col["ports"]} == {"4317", "4318"}
    assert any(v.endswith(":/var/lib/lightspan/spool") for v in col["volumes"])
    assert col["environment"][env.LIGHTSPAN_SPOOL_DIR] == "/var/lib/lightspan/spool"
    assert "/readyz" in " ".join(col["healthcheck"]["test"])
    dsn = col["environment"][env.LIGHTSPAN_CLICKHOUSE_DSN]
    assert dsn == "http://lightspan@clickhouse:8123/lightspan"
    assert col["environment"][env.LIGHTSPAN_CLICKHOUSE_PASSWORD] == "change-me-clickhouse"


def test_default_up_starts_only_the_core(compose):
    core = {n for n, s in compose["services"].items() if not s.get("profiles")}
    assert core == {"clickhouse", "schema", "collector"}


def test_otel_collector_profile_forwards_to_lightspan(compose):
    otel = compose["services"]["otel-collector"]
    assert otel["profiles"] == ["otel"]
    repo, tag = otel["image"].split(":")
    assert repo == "otel/opentelemetry-collector-contrib" and tag != "latest"
    mounted = [v.split(":")[0] for v in otel["volumes"] if v.startswith(".")]
    for src in mounted:
        assert (COMPOSE_DIR / src).resolve().is_file(), src
    assert otel["environment"]["FORWARD_OTLP_ENDPOINT"] == "collector:4317"
    assert otel["depends_on"]["collector"]["condition"] == "service_healthy"


def test_trainer_profile_reserves_a_gpu(compose):
    trainer = compose["services"]["trainer"]
    assert trainer["profiles"] == ["train"]
    (device,) = trainer["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert int(device["count"]) >= 1


def test_builds_point_at_existing_dockerfiles(compose):
    for name, svc in compose["services"].items():
        if "build" in svc:
            context = (COMPOSE_DIR / svc["build"]["context"]).resolve()
            assert context == REPO, name
            assert (context / svc["build"]["dockerfile"]).is_file(), name


def test_named_volumes_are_declared(compose):
    used = {
        v.split(":")[0]
        for s in compose["services"].values()
        for v in s.get("volumes", [])
        if not v.startswith((".", "/", "$"))
    }
    assert used <= set(compose["volumes"])


def test_env_names_exist(compose):
    names = {k for s in compose["services"].values() for k in s.get("environment", {})}
    lightspan_names = {n for n in names if n.startswith("LIGHTSPAN_")}
    known = {v for k, v in vars(env).items() if k.isupper() and isinstance(v, str)}
    assert lightspan_names <= known, sorted(lightspan_names - known)
