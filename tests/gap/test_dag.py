"""DAG construction (Kahn levels), validation errors, critical path and the graph's JSON form."""

from __future__ import annotations

import pytest

from lightspan.instrumentation.gap import GAPPlanner, Graph, Task, TaskStatus, build_dag


def ids(dag: dict[int, list[Task]]) -> dict[int, list[str]]:
    return {level: [t.id for t in tasks] for level, tasks in dag.items()}


def test_user_guide_example() -> None:
    tasks = [Task(id="task_1", dependencies=set()), Task(id="task_2", dependencies={"task_1"})]
    dag = GAPPlanner().build_dag(tasks)
    assert ids(dag) == {0: ["task_1"], 1: ["task_2"]}
    assert [t.level for t in tasks] == [0, 1]


def test_single_node() -> None:
    assert ids(build_dag([Task(id="only")])) == {0: ["only"]}


def test_fully_parallel() -> None:
    assert ids(build_dag([Task(id=f"t{i}") for i in range(5)])) == {0: ["t0", "t1", "t2", "t3", "t4"]}


def test_fully_sequential() -> None:
    tasks = [Task(id="t0")] + [Task(id=f"t{i}", dependencies={f"t{i - 1}"}) for i in range(1, 4)]
    assert ids(build_dag(tasks[::-1])) == {0: ["t0"], 1: ["t1"], 2: ["t2"], 3: ["t3"]}


def test_diamond_and_uneven_depths() -> None:
    tasks = [
        Task(id="a"),
        Task(id="b", dependencies={"a"}),
        Task(id="c", dependencies={"a"}),
        Task(id="d", dependencies={"b", "c"}),
        Task(id="e", dependencies={"a", "d"}),
        Task(id="f"),
    ]
    assert ids(build_dag(tasks)) == {0: ["a", "f"], 1: ["b", "c"], 2: ["d"], 3: ["e"]}


def test_cycle_error_names_the_cycle() -> None:
    tasks = [Task(id="task_1", dependencies={"task_2"}), Task(id="task_2", dependencies={"task_1"})]
    with pytest.raises(ValueError, match="Circular dependencies") as info:
        GAPPlanner().build_dag(tasks)
    assert "task_1 -> task_2 -> task_1" in str(info.value)


def test_cycle_behind_a_chain_lists_the_loop_and_the_blocked() -> None:
    tasks = [
        Task(id="root"),
        Task(id="x", dependencies={"y"}),
        Task(id="y", dependencies={"z"}),
        Task(id="z", dependencies={"x", "root"}),
        Task(id="w", dependencies={"x"}),
    ]
    with pytest.raises(ValueError) as info:
        build_dag(tasks)
    msg = str(info.value)
    assert "x -> y -> z -> x" in msg and "cannot run: x, y, z, w" in msg


def test_self_dependency() -> None:
    with pytest.raises(ValueError, match="task t1 depends on itself"):
        build_dag([Task(id="t1", dependencies={"t1"})])


def test_unknown_dependency_names_both_ids() -> None:
    with pytest.raises(ValueError, match=r"Unknown dependency ids: b depends on nope"):
        build_dag([Task(id="a"), Task(id="b", dependencies={"nope", "a"})])


def test_duplicate_ids() -> None:
    with pytest.raises(ValueError, match="Duplicate task ids: a"):
        build_dag([Task(id="a"), Task(id="a")])


def test_task_validation() -> None:
    with pytest.raises(ValueError, match="status must be one of"):
        Task(id="a", status="done")
    with pytest.raises(ValueError, match="non-empty string"):
        Task(id="")
    task = Task(id="task_1", description="Fetch user data", dependencies=["x"], status="pending")
    assert task.dependencies == {"x"} and task.status == "pending" and task.status is TaskStatus.PENDING


def test_critical_path_and_the_guides_speedup_example() -> None:
    graph = Graph.from_tasks([Task(id="t1"), Task(id="t2"), Task(id="t3", dependencies={"t1", "t2"})])
    length, path = graph.critical_path({"t1": 200.0, "t2": 150.0, "t3": 100.0})
    assert (length, path) == (300.0, ["t1", "t3"])
    assert 450.0 / length == 1.5  # the guide's worked example


def test_critical_path_prefers_the_slow_branch_over_the_deep_one() -> None:
    graph = Graph.from_tasks(
        [Task(id="a"), Task(id="b", dependencies={"a"}), Task(id="c", dependencies={"b"}), Task(id="slow")]
    )
    assert graph.critical_path({"a": 1, "b": 1, "c": 1, "slow": 10}) == (10.0, ["slow"])


def test_graph_json_round_trip() -> None:
    graph = Graph.from_tasks(
        [Task(id="s1", description='search("a")'), Task(id="s2", description="x", dependencies={"s1"})]
    )
    data = graph.to_dict()
    assert data == {
        "nodes": [
            {"id": "s1", "description": 'search("a")', "depends": []},
            {"id": "s2", "description": "x", "depends": ["s1"]},
        ],
        "edges": [["s1", "s2"]],
        "levels": [["s1"], ["s2"]],
    }
    assert Graph.from_json(graph.to_json()).to_dict() == data
    with pytest.raises(ValueError, match="not a GAP graph"):
        Graph.from_dict({"edges": []})
