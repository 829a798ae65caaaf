"""A small stand-in for ``kustomize build``, covering only what deploy/kubernetes uses.

Used by the tests when no kustomize/kubectl binary is available (PyPI has no kustomize), and checked
against ``kubectl kustomize`` wherever that exists, so the two cannot silently disagree. Supports:
resources (files and directories), namespace, labels (metadata only), images, and patches given as a
file of strategic-merge documents or an inline JSON6902 list with a target.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
}


def build(folder: Path) -> list[dict[str, Any]]:
    """The resources ``kustomize build folder`` would emit (order not guaranteed)."""
    kz = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(kz) - {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
    if unknown:
        raise NotImplementedError(f"{folder}: kustomize_lite does not support {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for entry in kz.get("resources", []):
        path = folder / entry
        if path.is_dir():
            docs.extend(build(path))
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for patch in kz.get("patches", []):
        if "path" in patch:
            for doc in yaml.safe_load_all((folder / patch["path"]).read_text()):
                if doc:
                    target = _find(docs, doc["kind"], doc["metadata"]["name"])
                    _strategic_merge(target, doc)
        else:
            ops = yaml.safe_load(patch["patch"])
            target = _find(docs, patch["target"]["kind"], patch["target"]["name"])
            for op in ops:
                _json6902(target, op)
    for group in kz.get("labels", []):
        if group.get("includeSelectors") or group.get("includeTemplates"):
            raise NotImplementedError("labels with includeSelectors/includeTemplates")
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(group["pairs"])
    for image in kz.get("images", []):
        for doc in docs:
            for container in _containers(doc):
                _set_image(container, image)
    if "namespace" in kz:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = kz["namespace"]
    return docs


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise KeyError(f"patch target {kind}/{name} not found")


def _strategic_merge(base: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _strategic_merge(base[key], value)
        elif (
            isinstance(value, list)
            and isinstance(base.get(key), list)
            and _named(value)
            and _named(base[key])
        ):
            by_name = {item["name"]: item for item in base[key]}
            for item in value:
                if item["name"] in by_name:
                    _strategic_merge(by_name[item["name"]], item)
                else:
                    base[key].append(copy.deepcopy(item))
        else:
            base[key] = copy.deepcopy(value)


def _named(items: list[Any]) -> bool:
    return all(isinstance(i, dict) and "name" in i for i in items)


def _json6902(doc: dict[str, Any], op: dict[str, Any]) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
    parent: Any = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    if op["op"] in ("add", "replace"):
        if isinstance(parent, list):
            if last == "-":
                parent.append(op["value"])
            elif op["op"] == "add":
                parent.insert(int(last), op["value"])
            else:
                parent[int(last)] = op["value"]
        else:
            if op["op"] == "replace" and last not in parent:
                raise KeyError(f"replace of missing path {op['path']}")
            parent[last] = op["value"]
    elif op["op"] == "remove":
        del parent[int(last) if isinstance(parent, list) else last]
    else:
        raise NotImplementedError(f"JSON6902 op {op['op']}")


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec") or {}
    pods = [
        spec,
        (spec.get("template") or {}).get("spec") or {},
        ((((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")) or {},
    ]
    return [c for pod in pods for c in (pod.get("containers") or []) + (pod.get("initContainers") or [])]


def _set_image(container: dict[str, Any], image: dict[str, str]) -> None:
    ref = container.get("image", "")
    name, _, tag = ref.partition(":") if "@" not in ref else (ref.split("@")[0], "", "")
    if name != image["name"]:
        return
    new_name = image.get("newName", name)
    new_tag = image.get("newTag", tag)
    container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name
