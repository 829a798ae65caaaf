"""deploy/kubernetes: overlays build, built-in kinds validate against the Kubernetes JSON schemas
(kubernetes-validate bundles them), the Altinity CRs are checked structurally, and the pieces agree
with each other (names, ports, secrets, cluster name) and with lightspan (env var names, CLI)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest
from deploy_test_helpers import DEPLOY, KUSTOMIZE_DIRS, by_kind, kubectl, kustomize_lite

from lightspan.schemas import env

CRD_KINDS = {"ClickHouseInstallation", "ClickHouseKeeperInstallation"}
K8S_VERSIONS = ["1.29.0", "1.37.0"]  # the oldest we claim, and the newest the validator bundles
ENV_NAMES = {v for k, v in vars(env).items() if k.isupper() and isinstance(v, str)}


def _render_cluster_name() -> str:
    spec = importlib.util.spec_from_file_location("deploy_render", DEPLOY / "clickhouse" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CLUSTER


@pytest.mark.skipif(
    kubectl() is None, reason="no kubectl here: the tests use tests/deploy/_kustomize_lite.py alone"
)
@pytest.mark.parametrize("folder", KUSTOMIZE_DIRS)
def test_lite_builder_matches_kubectl_kustomize(folder):
    """The fallback builder used where no kustomize exists gives exactly what kustomize gives."""
    import yaml

    out = subprocess.run(
        [kubectl(), "kustomize", str(DEPLOY / "kubernetes" / folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    ref = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}
    mine = {
        (d["kind"], d["metadata"]["name"]): d for d in kustomize_lite.build(DEPLOY / "kubernetes" / folder)
    }
    assert mine == ref


def test_lite_builder_rejects_what_it_does_not_know(tmp_path: Path):
    (tmp_path / "kustomization.yaml").write_text("namePrefix: x-\nresources: []\n")
    with pytest.raises(NotImplementedError, match="namePrefix"):
        kustomize_lite.build(tmp_path)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_builtin_kinds_validate_against_kubernetes_schemas(built, version):
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (lightspan[dev])")
    folder, docs = built
    checked = 0
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as exc:
            pytest.fail(
                f"{folder}: {doc['kind']}/{doc['metadata']['name']} invalid for {version}: {exc.message}"
            )
        checked += 1
    assert checked >= 11  # base has no Namespace; overlays add one


def test_validator_catches_a_broken_deployment():
    kv = pytest.importorskip("kubernetes_validate")
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "two", "selector": {}, "template": {"spec": {"containers": []}}},
    }
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, "1.37.0", strict=True)


def test_every_kind_is_expected(built):
    folder, docs = built
    kinds = sorted({d["kind"] for d in docs})
    expected = {
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
        "PersistentVolumeClaim",
        *CRD_KINDS,
    }
    if folder != "base":
        expected.add("Namespace")
    assert set(kinds) == expected


def test_namespace_set_on_every_namespaced_object(built):
    folder, docs = built
    if folder == "base":
        assert all("namespace" not in d["metadata"] for d in docs), "the base must stay namespace-free"
        return
    ns = by_kind(docs, "Namespace")
    assert len(ns) == 1
    (name,) = ns
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == name, f"{doc['kind']}/{doc['metadata']['name']}"


def _pod_specs(docs):
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def test_pods_run_as_non_root_with_pinned_images(built):
    _, docs = built
    for name, pod in _pod_specs(docs):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod.get("automountServiceAccountToken") is False, name
        for c in pod["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], name
            image = c["image"]
            assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest"), (
                f"{name}: unpinned {image}"
            )
            assert "memory" in c["resources"]["limits"], f"{name}: no memory limit"


def test_references_resolve(built):
    """Every ConfigMap/Secret key, volume claim, service account and probe port that a pod names exists."""
    _, docs = built
    configmaps, secrets = by_kind(docs, "ConfigMap"), by_kind(docs, "Secret")
    pvcs, accounts = by_kind(docs, "PersistentVolumeClaim"), by_kind(docs, "ServiceAccount")
    for name, pod in _pod_specs(docs):
        assert pod["serviceAccountName"] in accounts, name
        for vol in pod.get("volumes", []):
            if "persistentVolumeClaim" in vol:
                assert vol["persistentVolumeClaim"]["claimName"] in pvcs, name
        for c in pod["containers"]:
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            assert mounts <= {v["name"] for v in pod.get("volumes", [])}, name
            for src in c.get("envFrom", []):
                assert src["configMapRef"]["name"] in configmaps, name
            for var in c.get("env", []):
                ref = var.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    s = ref["secretKeyRef"]
                    assert s["key"] in secrets[s["name"]]["stringData"], f"{name}: {s}"
                if "configMapKeyRef" in ref:
                    m = ref["configMapKeyRef"]
                    assert m["key"] in configmaps[m["name"]]["data"], f"{name}: {m}"
            ports = {p["name"] for p in c.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if probe in c:
                    assert c[probe]["httpGet"]["port"] in ports, f"{name}: {probe}"


def test_lightspan_env_names_exist(built):
    """Every LIGHTSPAN_* variable the manifests set is one lightspan reads (schemas/env.py)."""
    _, docs = built
    names = set()
    for doc in by_kind(docs, "ConfigMap").values():
        names |= set(doc["data"])
    for _, pod in _pod_specs(docs):
        for c in pod["containers"]:
            names |= {v["name"] for v in c.get("env", [])}
    unknown = {n for n in names if n.startswith(("LIGHTSPAN_", "OTEL_"))} - ENV_NAMES
    assert not unknown, f"not in lightspan.schemas.env: {sorted(unknown)}"


def test_collector_service_probes_and_scaling(built):
    folder, docs = built
    dep = by_kind(docs, "Deployment")["lightspan-collector"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["collector"]
    assert {p["containerPort"]: p["name"] for p in c["ports"]} == {4317: "otlp-grpc", 4318: "otlp-http"}
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    svc = by_kind(docs, "Service")["lightspan-collector"]
    assert {p["port"]: p["targetPort"] for p in svc["spec"]["ports"]} == {
        4317: "otlp-grpc",
        4318: "otlp-http",
    }
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    pdb = by_kind(docs, "PodDisruptionBudget")["lightspan-collector"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    hpa = by_kind(docs, "HorizontalPodAutoscaler")["lightspan-collector"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "lightspan-collector",
    }
    assert 1 <= hpa["minReplicas"] <= dep["spec"]["replicas"] <= hpa["maxReplicas"]
    if hpa["minReplicas"] == 1:
        assert "maxUnavailable" in pdb["spec"], "minAvailable with one replica would block node drains"
    spool = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "spool")
    if folder == "overlays/prod":
        assert "ephemeral" in spool and "emptyDir" not in spool, "prod keeps the spool on a real volume"
    else:
        assert spool["emptyDir"]["sizeLimit"]


def test_schema_job_applies_the_cluster_schema(built):
    _, docs = built
    job = by_kind(docs, "Job")["lightspan-schema"]
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["schema", "apply"]
    config = by_kind(docs, "ConfigMap")[c["envFrom"][0]["configMapRef"]["name"]]["data"]
    assert config[env.LIGHTSPAN_CLICKHOUSE_CLUSTER] == _render_cluster_name()
    chi = by_kind(docs, "ClickHouseInstallation")
    (chi_name,) = chi
    host = re.match(r"https?://[^@/]*@?([^:/]+):8123/(\w+)$", config[env.LIGHTSPAN_CLICKHOUSE_DSN])
    assert host and host.group(1) == f"clickhouse-{chi_name}", "DSN must name the operator's Service"
    assert host.group(2) == "lightspan"
    assert job["spec"]["backoffLimit"] >= 5, "the Job must outlast the ClickHouse cluster's start-up"


def test_trainer_job_requests_gpus_and_waits(built):
    _, docs = built
    job = by_kind(docs, "Job")["lightspan-train"]
    assert job["spec"]["suspend"] is True, "applying the manifests must not start a training run"
    pod = job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert int(c["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert c["resources"]["requests"]["nvidia.com/gpu"] == c["resources"]["limits"]["nvidia.com/gpu"]
    args = c["args"]
    assert args[0] == "train" and args[args.index("--algo") + 1] == "lightningrl"
    for flag in ("--model", "--data", "--output"):
        assert flag in args
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    assert any(v.get("emptyDir", {}).get("medium") == "Memory" for v in pod["volumes"]), "no /dev/shm"


# ---- the Altinity custom resources, checked structurally (no CRD schema is bundled on PyPI) ----------


def _check_templates(spec: dict, kind: str) -> None:
    pods = {t["name"]: t for t in spec["templates"]["podTemplates"]}
    vcts = {t["name"]: t for t in spec["templates"]["volumeClaimTemplates"]}
    defaults = spec["defaults"]["templates"]
    assert defaults["podTemplate"] in pods, kind
    assert defaults["dataVolumeClaimTemplate"] in vcts, kind
    for t in pods.values():
        for c in t["spec"]["containers"]:
            assert re.fullmatch(r"clickhouse/clickhouse-(server|keeper):\d+\.\d+(\.\d+)*", c["image"]), c[
                "image"
            ]
            assert "memory" in c["resources"]["limits"]
        assert t["spec"]["securityContext"]["runAsNonRoot"] is True
        for dist in t.get("podDistribution", []):
            assert dist["type"] and dist["scope"] == kind
    for t in vcts.values():
        assert re.fullmatch(r"\d+(Gi|Ti)", t["spec"]["resources"]["requests"]["storage"])


def test_clickhouse_keeper_installation(built):
    folder, docs = built
    (chk,) = by_kind(docs, "ClickHouseKeeperInstallation").values()
    assert chk["apiVersion"] == "clickhouse-keeper.altinity.com/v1"
    spec = chk["spec"]
    (cluster,) = spec["configuration"]["clusters"]
    replicas = cluster["layout"]["replicasCount"]
    assert replicas % 2 == 1, "Keeper needs an odd number of replicas for a quorum"
    assert replicas == (1 if folder == "overlays/dev" else 3)
    _check_templates(spec, "ClickHouseKeeperInstallation")


def test_clickhouse_installation(built):
    folder, docs = built
    (chi,) = by_kind(docs, "ClickHouseInstallation").values()
    (chk,) = by_kind(docs, "ClickHouseKeeperInstallation").values()
    assert chi["apiVersion"] == "clickhouse.altinity.com/v1"
    spec = chi["spec"]
    conf = spec["configuration"]
    (cluster,) = conf["clusters"]
    assert cluster["name"] == _render_cluster_name() == "lightspan"
    layout = cluster["layout"]
    want = {"base": (1, 2), "overlays/dev": (1, 1), "overlays/prod": (2, 2)}[folder]
    assert (layout["shardsCount"], layout["replicasCount"]) == want
    assert conf["zookeeper"]["nodes"] == [{"host": f"keeper-{chk['metadata']['name']}", "port": 2181}]
    secret_ref = conf["users"]["lightspan/k8s_secret_password"]
    secret_name, key = secret_ref.split("/")
    assert key in by_kind(docs, "Secret")[secret_name]["stringData"]
    _check_templates(spec, "ClickHouseInstallation")


def test_structural_check_catches_a_bad_cr():
    spec = {
        "defaults": {"templates": {"podTemplate": "missing", "dataVolumeClaimTemplate": "d"}},
        "templates": {"podTemplates": [], "volumeClaimTemplates": []},
    }
    with pytest.raises(AssertionError):
        _check_templates(spec, "ClickHouseInstallation")
