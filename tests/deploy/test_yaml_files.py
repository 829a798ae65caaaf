"""Every YAML file under deploy/ parses, and every Kubernetes document names itself."""

from __future__ import annotations

import pytest
import yaml
from deploy_test_helpers import DEPLOY, load_docs, read_env_file

YAML_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def test_there_is_something_to_check():
    names = {p.relative_to(DEPLOY).as_posix() for p in YAML_FILES}
    for expected in (
        "compose/docker-compose.yml",
        "kubernetes/base/kustomization.yaml",
        "kubernetes/overlays/dev/kustomization.yaml",
        "kubernetes/overlays/prod/kustomization.yaml",
        "otel-collector/forward-to-lightspan.yaml",
        "otel-collector/clickhouse-exporter.yaml",
    ):
        assert expected in names


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_yaml_parses(path):
    text = path.read_text()
    assert "\t" not in text, f"{path}: tab characters (YAML indents with spaces)"
    docs = load_docs(path)
    assert docs, f"{path}: no YAML document"
    if "kubernetes" in path.parts and path.name != "kustomization.yaml":
        for doc in docs:
            assert {"apiVersion", "kind", "metadata"} <= set(doc), f"{path}: not a Kubernetes object: {doc}"
            assert doc["metadata"].get("name"), f"{path}: {doc['kind']} without metadata.name"


def test_duplicate_keys_are_caught():
    # yaml.safe_load keeps the last of two equal keys; make sure none of our files relies on that.
    class Strict(yaml.SafeLoader):
        pass

    def no_dupes(loader, node, deep=False):
        loader.flatten_mapping(node)  # resolve `<<: *anchor` merges first (compose uses them)
        keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
        dupes = {k for k in keys if keys.count(k) > 1}
        if dupes:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {dupes}", node.start_mark)
        return loader.construct_mapping(node, deep)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, no_dupes)
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.load("a: 1\na: 2\n", Loader=Strict)
    for path in YAML_FILES:
        list(yaml.load_all(path.read_text(), Loader=Strict))


def test_env_example_is_key_value():
    env = read_env_file(DEPLOY / "compose" / ".env.example")
    assert env["CLICKHOUSE_PASSWORD"], "the example must show every secret the stack needs"
    assert "LIGHTSPAN_AUTH_TOKEN" in env
