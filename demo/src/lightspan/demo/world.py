"""The demo's toy world: a small knowledge base, four one-relation tools over it, and questions whose
minimal GAP plans have known shapes (chains and parallel branches).

Tools: ``city(person)``, ``job(person)``, ``friend(person)``, ``country(city)``, each one remote-looking
lookup (a fixed latency, like a search API). Question types and their minimal plans:

==============  ===================================  =====  ======
type            question                             calls  levels
==============  ===================================  =====  ======
job             ``job of alice ?``                   1      1
country         ``country of alice ?``               2      2      city -> country
friend_job      ``job of friend of alice ?``         2      2      friend -> job
cities          ``cities of alice and bob ?``        2      1      two parallel lookups
jobs            ``jobs of alice and bob ?``          2      1
countries       ``countries of alice and bob ?``     4      2      two parallel chains
==============  ===================================  =====  ======

The answer is the asked relation's value(s), space-separated in question order (exact match).

The policy sees the question delexicalized: its entities are bound to inputs ``{q1}``, ``{q2}`` before
planning (``countries of {q1} and {q2} ?`` with ``q1=alice``), so a tiny model learns the graph --
which tools, which dependencies, what runs in parallel -- rather than the spelling of 40 names. Plans are
GAP XML graphs: ``<graph><node id="s1">city({q1})</node><node id="s2">country({s1})</node></graph>``,
and the answer cites node results (``{s2}``), which the agent fills in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "KB",
    "QUESTION_TYPES",
    "TOOL_NAMES",
    "Node",
    "Task",
    "build_kb",
    "exact_match",
    "lookup",
    "make_tasks",
    "render_plan",
    "split_tasks",
]

PEOPLE = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "kim",
    "leo",
    "mia",
    "nina",
    "oscar",
    "peggy",
    "quinn",
    "rita",
    "sam",
    "tina",
    "uma",
    "vic",
    "wendy",
    "yuri",
    "zoe",
    "abel",
    "bea",
    "cleo",
    "dan",
    "eve",
    "finn",
    "gus",
    "hana",
    "ian",
    "jack",
    "kate",
    "liam",
    "max",
    "ned",
    "olga",
)
CITY_COUNTRY = {
    "paris": "france",
    "lyon": "france",
    "rome": "italy",
    "milan": "italy",
    "berlin": "germany",
    "munich": "germany",
    "madrid": "spain",
    "porto": "portugal",
    "vienna": "austria",
    "oslo": "norway",
}
JOBS = ("baker", "doctor", "pilot", "farmer", "singer", "tailor", "nurse", "judge")
#: The tools a plan may call; each takes one entity and returns one entity.
TOOL_NAMES = ("city", "job", "friend", "country")
#: Every entity word (people, cities, countries, jobs).
ENTITIES = PEOPLE + tuple(CITY_COUNTRY) + tuple(dict.fromkeys(CITY_COUNTRY.values())) + JOBS


@dataclass(frozen=True)
class KB:
    """person -> {city, job, friend}; city -> {country}."""

    facts: dict[str, dict[str, str]]


def build_kb(seed: int = 0) -> KB:
    """The built-in knowledge base (deterministic for a seed)."""
    rng = random.Random(seed)
    cities = sorted(CITY_COUNTRY)
    facts: dict[str, dict[str, str]] = {}
    for person in PEOPLE:
        friend = rng.choice([p for p in PEOPLE if p != person])
        facts[person] = {"city": rng.choice(cities), "job": rng.choice(JOBS), "friend": friend}
    for city, country in CITY_COUNTRY.items():
        facts[city] = {"country": country}
    return KB(facts)


def lookup(kb: KB, relation: str, entity: object) -> str:
    """What tool ``relation`` returns for ``entity``; ``KeyError`` naming both when there is no such fact."""
    key = str(entity).strip().lower()
    value = kb.facts.get(key, {}).get(relation)
    if value is None:
        raise KeyError(f"no {relation} fact about {key!r}")
    return value


@dataclass(frozen=True)
class Node:
    """One node of a plan: ``tool(arg)`` where ``arg`` is an entity or ``{id}`` of an earlier node."""

    id: str
    tool: str
    arg: str
    depends: tuple[str, ...] = ()  # explicit ``depends`` (beyond the placeholder in ``arg``)

    def text(self) -> str:
        return f"{self.tool}({self.arg})"


def render_plan(nodes: list[Node]) -> str:
    """The plan in the GAP XML graph format (``depends`` written only where a node has extra edges)."""
    parts = []
    for n in nodes:
        dep = f' depends="{",".join(n.depends)}"' if n.depends else ""
        parts.append(f'<node id="{n.id}"{dep}>{n.text()}</node>')
    return "<graph>" + "".join(parts) + "</graph>"


@dataclass(frozen=True)
class QuestionType:
    name: str
    template: str  # with {a} and, for pair questions, {b}
    pair: bool
    chain: tuple[str, ...]  # tools applied in order from each person: ("city", "country")


QUESTION_TYPES: dict[str, QuestionType] = {
    "job": QuestionType("job", "job of {a} ?", False, ("job",)),
    "country": QuestionType("country", "country of {a} ?", False, ("city", "country")),
    "friend_job": QuestionType("friend_job", "job of friend of {a} ?", False, ("friend", "job")),
    "cities": QuestionType("cities", "cities of {a} and {b} ?", True, ("city",)),
    "jobs": QuestionType("jobs", "jobs of {a} and {b} ?", True, ("job",)),
    "countries": QuestionType("countries", "countries of {a} and {b} ?", True, ("city", "country")),
}


@dataclass(frozen=True)
class Task:
    """One question: the rollout's task id groups its attempts (GRPO-style advantages)."""

    task_id: str
    qtype: str
    people: tuple[str, ...]
    question: str
    answer: str

    @property
    def inputs(self) -> dict[str, str]:
        """The question's entities as the plan's inputs ``q1``, ``q2``."""
        return {f"q{i}": p for i, p in enumerate(self.people, 1)}

    @property
    def plan_question(self) -> str:
        """The question with its entities replaced by ``{q1}``, ``{q2}`` (what the policy sees)."""
        return QUESTION_TYPES[self.qtype].template.format(a="{q1}", b="{q2}")

    def answer_refs(self) -> str:
        """The answer as citations of the minimal plan's nodes (``{s3} {s4}``)."""
        nodes = self.minimal_plan()
        return " ".join("{" + n.id + "}" for n in nodes[-len(self.people) :])

    def minimal_plan(self) -> list[Node]:
        """The plan with the fewest tool calls and levels: one chain per person, chains in parallel
        (level by level: every person's first hop, then every person's second hop)."""
        chain = QUESTION_TYPES[self.qtype].chain
        nodes: list[Node] = []
        prev: list[str] = list(self.inputs)
        for tool in chain:
            ids = []
            for arg in prev:
                node_id = f"s{len(nodes) + 1}"
                nodes.append(Node(node_id, tool, "{" + arg + "}"))
                ids.append(node_id)
            prev = ids
        return nodes

    @property
    def min_calls(self) -> int:
        return len(self.people) * len(QUESTION_TYPES[self.qtype].chain)

    @property
    def min_levels(self) -> int:
        return len(QUESTION_TYPES[self.qtype].chain)

    def needed_calls(self, kb: KB) -> set[tuple[str, str]]:
        """The (tool, resolved argument) calls any sufficient plan makes: the minimal plan's."""
        out: set[tuple[str, str]] = set()
        for person in self.people:
            entity = person
            for tool in QUESTION_TYPES[self.qtype].chain:
                out.add((tool, entity))
                entity = lookup(kb, tool, entity)
        return out


def _answer(kb: KB, q: QuestionType, people: tuple[str, ...]) -> str:
    out = []
    for entity in people:
        for tool in q.chain:
            entity = lookup(kb, tool, entity)
        out.append(entity)
    return " ".join(out)


def make_tasks(kb: KB, seed: int = 0) -> list[Task]:
    """Every question type for every person (pair questions pair each person with a seeded other)."""
    rng = random.Random(seed + 7)
    tasks = []
    for name, q in QUESTION_TYPES.items():
        for a in PEOPLE:
            people = (a, rng.choice([p for p in PEOPLE if p != a])) if q.pair else (a,)
            fill = {"a": people[0], "b": people[-1]}
            tasks.append(
                Task(
                    f"{name}:{'+'.join(people)}",
                    name,
                    people,
                    q.template.format(**fill),
                    _answer(kb, q, people),
                )
            )
    return tasks


def split_tasks(kb: KB, *, held_out: float = 0.25, seed: int = 0) -> tuple[list[Task], list[Task]]:
    """A seeded train / held-out split of :func:`make_tasks`."""
    if not 0 < held_out < 1:
        raise ValueError(f"held_out must be a fraction in (0, 1), got {held_out}")
    tasks = make_tasks(kb, seed)
    random.Random(seed).shuffle(tasks)
    cut = max(1, int(round(len(tasks) * held_out)))
    return tasks[cut:], tasks[:cut]


def exact_match(answer: str | None, expected: str) -> bool:
    """The answer's words (lower case, punctuation dropped) are exactly the expected words."""
    words = (answer or "").lower().replace(".", " ").replace(",", " ").split()
    return words == expected.split()


def corpus(kb: KB, texts: list[str]) -> list[str]:
    """Strings the demo's tokenizer is trained on: every entity, question, plan and prompt word."""
    words = " ".join(ENTITIES + TOOL_NAMES + ("user", "assistant", "plan:", "obs:", "react:", "answer"))
    return [words] * 8 + texts
