"""Fixtures for the GAP planner tests: the shared in-memory span pipeline and a span-tree reader."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:  # tests.support is imported as a package from the repo root
    sys.path.insert(0, _REPO)

from lightspan.schemas import attributes as A  # noqa: E402
from tests.support.fixtures import instrumented, llm_server, server  # noqa: E402, F401 - shared fixtures
from tests.support.spans import memory_exporter  # noqa: E402


@pytest.fixture
def exporter():
    """A cleared in-memory exporter that receives every span the test makes."""
    from lightspan.instrumentation._settings import reset_settings

    reset_settings()
    yield memory_exporter()
    reset_settings()


def rebuild_graph(spans) -> dict:
    """Rebuild a plan's graph from its spans alone, as a converter reading storage would.

    Nodes and edges come from the ``gap.node`` spans (id, depends); levels from the ``gap.level`` span
    each node span sits under. Returns the same shape as ``lightspan.gap.graph``, nodes sorted by id.
    """
    by_id = {s.context.span_id: s for s in spans}
    nodes, levels = [], {}
    for span in spans:
        if span.attributes.get(A.GEN_AI_OPERATION_NAME) != A.OP_GAP_NODE:
            continue
        node_id = span.attributes[A.GAP_NODE_ID]
        depends = json.loads(span.attributes[A.GAP_NODE_DEPENDS])
        nodes.append(
            {"id": node_id, "description": span.attributes[A.GAP_NODE_DESCRIPTION], "depends": depends}
        )
        parent = by_id[span.parent.span_id]
        assert parent.attributes[A.GEN_AI_OPERATION_NAME] == A.OP_GAP_LEVEL
        levels.setdefault(parent.attributes[A.GAP_LEVEL], []).append(node_id)
    nodes.sort(key=lambda n: n["id"])
    edges = sorted([d, n["id"]] for n in nodes for d in n["depends"])
    return {"nodes": nodes, "edges": edges, "levels": [sorted(levels[i]) for i in sorted(levels)]}


def normalized(graph: dict) -> dict:
    """A ``lightspan.gap.graph`` value in :func:`rebuild_graph`'s order, to compare the two."""
    return {
        "nodes": sorted(graph["nodes"], key=lambda n: n["id"]),
        "edges": sorted(graph["edges"]),
        "levels": [sorted(level) for level in graph["levels"]],
    }
