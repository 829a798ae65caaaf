"""The Lightning trajectory JSON Schema accepts the seed's example and names what is wrong otherwise."""

from __future__ import annotations

import copy

import pytest

from lightspan.schemas import TrajectoryValidationError, validate_trajectory

SEED_EXAMPLE = {
    "trace_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
    "agent_name": "SQLAgent",
    "task_type": "text-to-sql",
    "created_at": "2025-11-01T10:30:00Z",
    "final_reward": 0.85,
    "spans": [
        {
            "span_id": "span-001",
            "parent_span_id": None,
            "span_type": "llm_call",
            "start_time": "2025-11-01T10:30:00.100Z",
            "end_time": "2025-11-01T10:30:02.350Z",
            "input": {"prompt": "Convert to SQL: Find all customers who made purchases over $1000 in 2024."},
            "output": {"response": "SELECT customer_id, name FROM customers WHERE purchase_amount > 1000;"},
            "metadata": {"model": "llama-3.2-3b-instruct", "tokens_used": 87, "latency_ms": 2250},
        },
        {
            "span_id": "span-002",
            "parent_span_id": "span-001",
            "span_type": "tool_call",
            "start_time": "2025-11-01T10:30:02.400Z",
            "end_time": "2025-11-01T10:30:02.650Z",
            "input": {
                "tool_name": "execute_sql",
                "parameters": {"query": "SELECT 1", "database": "sales_db"},
            },
            "output": {"result": [{"customer_id": 123, "name": "Alice"}], "error": None},
            "metadata": {"latency_ms": 250},
        },
    ],
}


def test_seed_example_is_valid():
    validate_trajectory(SEED_EXAMPLE)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("final_reward"), "'final_reward' is a required property"),
        (lambda d: d["spans"][0].update(span_type="thought"), "spans/0/span_type"),
        (lambda d: d["spans"][1]["metadata"].update(latency_ms=-1), "spans/1/metadata/latency_ms"),
        (lambda d: d.update(created_at="yesterday"), "created_at"),
    ],
)
def test_invalid_documents_name_the_path(mutate, message):
    doc = copy.deepcopy(SEED_EXAMPLE)
    mutate(doc)
    with pytest.raises(TrajectoryValidationError, match=message):
        validate_trajectory(doc)
