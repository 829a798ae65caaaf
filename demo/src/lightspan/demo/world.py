"""The demo's toy world: a small built-in knowledge base, multi-hop questions over it, and their reward.

Each question is answered in two stages. A GAP plan (from a template per question type) looks facts up
with tools -- the first hop's entity is read off the first lookup and followed by a second lookup --
and the policy then reads the gathered facts and names the answer in one word. The answer is always in
the facts, next to distractors (the entity's other relations, the intermediate entity), so a policy that
reads the right relation of the right entity scores 1 and a guesser about 1/4 to 1/6: learnable by a
tiny model, with room for RL to show.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "KB",
    "QUESTION_TYPES",
    "Task",
    "build_kb",
    "facts_about",
    "follow",
    "make_tasks",
    "policy_messages",
    "reward",
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

# Relations as they read in the facts (the policy must match these words to the question).
LIVES_IN = "lives in"
WORKS_AS = "works as"
KNOWS = "knows"
IS_IN = "is in"


@dataclass(frozen=True)
class QuestionType:
    """One question template: how the GAP plan reaches the answer and which fact holds it."""

    name: str
    template: str  # the question, with {who}
    first_hop: str | None  # relation followed from the person to the second entity (None: one lookup)
    answer_relation: str  # relation, on the last entity looked up, whose object is the answer


QUESTION_TYPES: dict[str, QuestionType] = {
    "country": QuestionType("country", "country of {who} ?", LIVES_IN, IS_IN),
    "friend_job": QuestionType("friend_job", "job of friend of {who} ?", KNOWS, WORKS_AS),
    "friend_city": QuestionType("friend_city", "city of friend of {who} ?", KNOWS, LIVES_IN),
    "job": QuestionType("job", "job of {who} ?", None, WORKS_AS),
    "city": QuestionType("city", "city of {who} ?", None, LIVES_IN),
}


@dataclass(frozen=True)
class KB:
    """Subject -> relation -> object, for people and cities."""

    facts: dict[str, dict[str, str]]


def build_kb(seed: int = 0) -> KB:
    """The built-in knowledge base (deterministic for a seed)."""
    rng = random.Random(seed)
    cities = sorted(CITY_COUNTRY)
    facts: dict[str, dict[str, str]] = {}
    for person in PEOPLE:
        friend = rng.choice([p for p in PEOPLE if p != person])
        facts[person] = {LIVES_IN: rng.choice(cities), WORKS_AS: rng.choice(JOBS), KNOWS: friend}
    for city, country in CITY_COUNTRY.items():
        facts[city] = {IS_IN: country}
    return KB(facts)


def facts_about(kb: KB, entity: str) -> str:
    """The ``lookup`` tool's result: every fact about ``entity`` as short sentences."""
    entity = entity.strip().lower()
    if entity not in kb.facts:
        raise KeyError(f"no facts about {entity!r}")
    return " ".join(f"{entity} {rel} {obj} ." for rel, obj in kb.facts[entity].items())


def follow(facts: str, relation: str) -> str:
    """The ``hop`` tool: the object of ``relation`` in a lookup's facts (the plan's bridge entity)."""
    for sentence in facts.split(" ."):
        words = sentence.split()
        rel = relation.split()
        for i in range(len(words) - len(rel)):
            if words[i + 1 : i + 1 + len(rel)] == rel and i + 1 + len(rel) < len(words):
                return words[i + 1 + len(rel)]
    raise KeyError(f"no {relation!r} fact in {facts!r}")


@dataclass(frozen=True)
class Task:
    """One question: the rollout's task id groups its attempts (GRPO-style advantages)."""

    task_id: str
    qtype: str
    who: str
    question: str
    answer: str

    def plan_text(self) -> str:
        """The GAP plan (XML graph) that gathers this question's facts with the tools."""
        q = QUESTION_TYPES[self.qtype]
        if q.first_hop is None:
            return f'<graph><node id="s1">lookup("{self.who}")</node></graph>'
        return (
            "<graph>"
            f'<node id="s1">lookup("{self.who}")</node>'
            f'<node id="s2">hop({{s1}}, "{q.first_hop}")</node>'
            '<node id="s3">lookup({s2})</node>'
            "</graph>"
        )


def _answer(kb: KB, q: QuestionType, who: str) -> str:
    entity = who if q.first_hop is None else kb.facts[who][q.first_hop]
    return kb.facts[entity][q.answer_relation]


def make_tasks(kb: KB) -> list[Task]:
    """Every (question type, person) question, in a fixed order."""
    return [
        Task(f"{name}:{who}", name, who, q.template.format(who=who), _answer(kb, q, who))
        for name, q in QUESTION_TYPES.items()
        for who in PEOPLE
    ]


def split_tasks(kb: KB, *, held_out: float = 0.25, seed: int = 0) -> tuple[list[Task], list[Task]]:
    """A seeded train / held-out split of :func:`make_tasks` (held-out people are new per question type)."""
    if not 0 < held_out < 1:
        raise ValueError(f"held_out must be a fraction in (0, 1), got {held_out}")
    tasks = make_tasks(kb)
    random.Random(seed).shuffle(tasks)
    cut = max(1, int(round(len(tasks) * held_out)))
    return tasks[cut:], tasks[:cut]


def policy_messages(question: str, observations: list[str]) -> list[dict[str, str]]:
    """The policy's short, structured prompt: the gathered facts, then the question."""
    facts = " ".join(observations)
    return [{"role": "user", "content": f"facts: {facts}\nq: {question}"}]


def reward(answer: str | None, expected: str) -> float:
    """1.0 when the policy's first word is the expected entity, else 0.0."""
    words = (answer or "").strip().lower().replace(".", " ").split()
    return 1.0 if words and words[0] == expected else 0.0


def corpus(kb: KB) -> list[str]:
    """Strings the demo's tokenizer is trained on (every fact, question and answer word)."""
    texts = [facts_about(kb, e) for e in kb.facts]
    texts += [q.template.format(who=p) for q in QUESTION_TYPES.values() for p in PEOPLE]
    texts += ["facts: q: " + " ".join(PEOPLE + tuple(CITY_COUNTRY) + tuple(CITY_COUNTRY.values()) + JOBS)]
    return texts * 4
