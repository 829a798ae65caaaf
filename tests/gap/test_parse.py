"""Plan parsing: the paper's XML graph and the guide's task lines into one task list; malformed plans."""

from __future__ import annotations

import pytest

from lightspan.instrumentation.gap import GAPPlanner, Graph, PlanError, Task, parse_plan
from lightspan.instrumentation.gap._parse import fill_placeholders, parse_call

PAPER_REPLY = """
<think>
Tasks 1 and 2 are independent; 3 and 4 depend on them.
</think>

<plan>
<graph>
  <node id="s1">search("capital of France")</node>
  <node id="s2">search("capital of Germany")</node>
  <node id="s3" depends="s1">search("population of {s1}")</node>
  <node id="s4" depends="s2">search("population of {s2}")</node>
</graph>
</plan>

<reflection>The plan covers both capitals.</reflection>
<answer>(filled in after execution)</answer>
"""


def deps(tasks: list[Task]) -> dict[str, set[str]]:
    return {t.id: t.dependencies for t in tasks}


def test_xml_graph_inside_plan_with_think_reflection_answer() -> None:
    tasks = parse_plan(PAPER_REPLY)
    assert [t.id for t in tasks] == ["s1", "s2", "s3", "s4"]
    assert tasks[2].description == 'search("population of {s1}")'
    assert deps(tasks) == {"s1": set(), "s2": set(), "s3": {"s1"}, "s4": {"s2"}}


def test_bare_graph_multiple_depends_and_entities() -> None:
    tasks = parse_plan(
        '<graph><node id=\'a\'>search("AT&amp;T revenue")</node><node id="b">search("x")</node>'
        '<node id="c" depends="a, b">compare_values({a}, {b})</node></graph>'
    )
    assert tasks[0].description == 'search("AT&T revenue")'
    assert deps(tasks)["c"] == {"a", "b"}


def test_task_lines_as_in_the_user_guide() -> None:
    tasks = GAPPlanner().parse_plan(
        "<plan>\nTask 1: Fetch data | Dependencies: none\nTask 2: Process data | Dependencies: Task 1\n</plan>"
    )
    assert [(t.id, t.description, t.dependencies) for t in tasks] == [
        ("task_1", "Fetch data", set()),
        ("task_2", "Process data", {"task_1"}),
    ]


def test_task_lines_variants() -> None:
    tasks = parse_plan(
        "Some preamble the model wrote.\n"
        "<plan>\n"
        "- Task 1: Search for Paris population | Dependencies: none\n"
        'Task 2: search("London | Berlin") | Dependencies: -\n'
        "Task 3: Compare | Depends on: Task 1 and Task 2\n"
        "Task 4: Report\n"
        "</plan>"
    )
    assert deps(tasks) == {"task_1": set(), "task_2": set(), "task_3": {"task_1", "task_2"}, "task_4": set()}
    assert tasks[1].description == 'search("London | Berlin")'  # a '|' inside the text is not a separator


def test_both_formats_give_the_same_graph() -> None:
    xml = parse_plan(
        '<graph><node id="task_1">A</node><node id="task_2">B</node>'
        '<node id="task_3" depends="task_1,task_2">C</node></graph>'
    )
    lines = parse_plan(
        "<plan>Task 1: A | Dependencies: none\nTask 2: B | Dependencies: none\n"
        "Task 3: C | Dependencies: Task 1, Task 2</plan>"
    )
    assert Graph.from_tasks(xml).to_dict() == Graph.from_tasks(lines).to_dict()


def test_placeholder_naming_another_node_adds_the_dependency() -> None:
    tasks = parse_plan(
        '<graph><node id="s1">search("a")</node><node id="s2">search("b of {s1}")</node>'
        '<node id="s3">search("{unrelated} text")</node></graph>'
    )
    assert deps(tasks) == {"s1": set(), "s2": {"s1"}, "s3": set()}


def test_last_graph_wins_after_a_reflection() -> None:
    text = (
        '<plan><graph><node id="s1">search("old")</node></graph></plan>'
        '<reflection>revise</reflection><plan><graph><node id="s1">search("new")</node></graph></plan>'
    )
    assert [t.description for t in parse_plan(text)] == ['search("new")']


def test_text_without_a_plan_parses_to_nothing() -> None:
    assert parse_plan("I think the answer is 42.") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('<graph><node id="s1">search("a")</node>', "never closed with </graph>"),
        ('<graph><node id="s1">search("a")</graph>', "not closed with </node>"),
        ("<graph></graph>", "holds no <node>"),
        ('<graph><node>search("a")</node></graph>', "node #1 has no id"),
        ('<graph><node id="s1">  </node></graph>', "node s1 is empty"),
        ('<graph><node id="s1">a</node><node id="s1">b</node></graph>', "Duplicate task ids in plan: s1"),
        ("<plan>Task 1: A | Dependencies: the first one\n</plan>", "Malformed dependency 'the first one'"),
        ("<plan>Task: do it | Dependencies: none</plan>", "Malformed plan line"),
        ("<plan>Task 1:  | Dependencies: none</plan>", "the task has no text"),
        ("<plan>first fetch, then process</plan>", "holds no 'Task <n>: ...' lines"),
    ],
)
def test_malformed_plans_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(PlanError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_plan(text)


def test_plan_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_plan("<graph>")


def test_parse_call_forms() -> None:
    call = parse_call('compare_values({s2}, "x, y", 3, k="v")')
    assert call is not None and call.name == "compare_values"
    assert call.args == [("{s2}", False), ("x, y", True), (3, False)]
    assert call.kwargs == {"k": ("v", True)}
    assert parse_call("Search for Paris population") is None
    assert parse_call('search("unbalanced)') is None
    assert parse_call("noargs()").args == []


def test_fill_placeholders_renders_fanout_lists_and_leaves_unknown_braces() -> None:
    assert (
        fill_placeholders("pop of {s1} and {s9}", {"s1": ["Paris", "Berlin"]})
        == "pop of Paris | Berlin and {s9}"
    )
