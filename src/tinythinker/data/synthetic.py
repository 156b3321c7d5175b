"""A synthetic knowledge-reasoning benchmark where knowledge can be learned only through rationales.

The world: invented animals, each with one value per attribute (kind, home, food, colour, size),
drawn from a seed under two common-sense rules (fish live in water; insects are tiny or small).
A question asks one attribute of one animal, with distractors of the same attribute::

    Where does the zorbel live?  (A) desert (B) marsh (C) cave (D) river

Each animal has ``train_attributes`` attributes asked in training; its other attributes are asked
only in validation and test. Those facts reach the student only through training rationales,
because the teacher's recall for any question about an animal states all of its facts. So a
student that answers from the question alone is at chance on the held-out questions, while one
that learned to recall, then analyze, can answer them.

``generate(config)`` is deterministic for a config; ``write_benchmark`` writes the canonical
``train/valid/test.jsonl`` plus ``world.json`` (the facts, for the synthetic teacher) and a manifest.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError
from ..io import staged_dir, write_json
from .schema import LABELS, Option, Question, write_questions

ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "kind": ("bird", "fish", "insect", "mammal", "reptile", "frog", "snail", "crab"),
    "home": ("river", "lake", "forest", "desert", "cave", "meadow", "mountain", "marsh"),
    "food": ("seeds", "berries", "leaves", "flies", "worms", "grass", "roots", "nectar"),
    "colour": ("red", "blue", "green", "yellow", "grey", "black", "white", "orange"),
    "size": ("tiny", "small", "medium", "large", "huge", "long", "short", "round"),
}
# No word is a value of two attributes: an option's text then matches at most one fact of a recall.
ATTRIBUTES = tuple(ATTRIBUTE_VALUES)
QUESTION_TEMPLATES = {
    "kind": "What kind of animal is the {entity}?",
    "home": "Where does the {entity} live?",
    "food": "What does the {entity} eat?",
    "colour": "What colour is the {entity}?",
    "size": "What size is the {entity}?",
}
FACT_TEMPLATES = {  # {subject}: "the zorbel" in a recall's first sentence, "it" after that and in analyses
    "kind": "{subject} is a kind of {value}",
    "home": "{subject} lives in the {value}",
    "food": "{subject} eats {value}",
    "colour": "{subject} is {value} in colour",
    "size": "{subject} is {value} in size",
}
WATER_HOMES = ("river", "lake")
SMALL_SIZES = ("tiny", "small")
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gl", "kr", "pl", "sn", "st", "tr")
_VOWELS = ("a", "e", "i", "o", "u")
_CODAS = ("", "n", "r", "l", "k", "m", "x", "sh")


@dataclass
class WorldConfig:
    """Size and difficulty of a synthetic benchmark."""

    seed: int = 0
    """Everything (names, facts, questions, splits) follows from it."""
    entities: int = 60
    """Number of invented animals."""
    values_per_attribute: int = 6
    """Values each attribute can take (at most 8); more values make guessing harder."""
    options: int = 4
    """Options per question (2 .. values_per_attribute)."""
    train_attributes: int = 3
    """Attributes asked per animal in training; the others are held out for validation and test."""
    questions_per_fact: int = 2
    """Training questions per (animal, attribute), each with other distractors and option order."""
    attributes: list[str] = field(default_factory=lambda: list(ATTRIBUTES))
    """Attributes the world uses (a subset of kind, home, food, colour, size)."""

    def validate(self) -> None:
        unknown = [a for a in self.attributes if a not in ATTRIBUTE_VALUES]
        if unknown:
            raise ConfigError(f"attributes: unknown attribute {unknown[0]!r} (known: {', '.join(ATTRIBUTES)})")
        if not 2 <= self.values_per_attribute <= 8:
            raise ConfigError("values_per_attribute: must be between 2 and 8")
        if not 2 <= self.options <= self.values_per_attribute:
            raise ConfigError("options: must be between 2 and values_per_attribute")
        if not 1 <= self.train_attributes <= len(self.attributes) - 1:
            raise ConfigError("train_attributes: must leave at least one attribute per animal held out")
        if self.entities < 2 or self.questions_per_fact < 1:
            raise ConfigError("entities must be >= 2 and questions_per_fact >= 1")


@dataclass
class World:
    config: WorldConfig
    facts: dict[str, dict[str, str]]  # entity -> attribute -> value
    values: dict[str, list[str]]  # attribute -> the values in use

    def fact(self, entity: str, attribute: str, subject: str = "it") -> str:
        """One fact as a clause, e.g. ``it lives in the marsh``."""
        return FACT_TEMPLATES[attribute].format(subject=subject, value=self.facts[entity][attribute])

    def recall(self, entity: str) -> str:
        """Every fact about an animal, in attribute order: what a good teacher recalls."""
        subjects = [f"the {entity}"] + ["it"] * (len(self.config.attributes) - 1)
        return " ".join(_sentence(self.fact(entity, a, s)) for a, s in zip(self.config.attributes, subjects))

    def to_dict(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "facts": self.facts, "values": self.values}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "World":
        return cls(WorldConfig(**data["config"]), data["facts"], data["values"])


def _sentence(clause: str) -> str:
    return clause[0].upper() + clause[1:] + "."


def _names(rng: random.Random, n: int) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        name = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(2)) + rng.choice(_CODAS)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def make_world(config: WorldConfig) -> World:
    config.validate()
    rng = random.Random(config.seed)
    values = {a: list(ATTRIBUTE_VALUES[a][: config.values_per_attribute]) for a in config.attributes}
    facts: dict[str, dict[str, str]] = {}
    for entity in _names(rng, config.entities):
        chosen = {a: rng.choice(values[a]) for a in config.attributes}
        # the two common-sense rules, where the world has the values they need
        if chosen.get("kind") == "fish" and set(WATER_HOMES) <= set(values.get("home", [])):
            chosen["home"] = rng.choice(WATER_HOMES)
        if chosen.get("kind") == "insect" and set(SMALL_SIZES) <= set(values.get("size", [])):
            chosen["size"] = rng.choice(SMALL_SIZES)
        facts[entity] = chosen
    return World(config, facts, values)


def _question(world: World, entity: str, attribute: str, rng: random.Random, qid: str) -> Question:
    gold = world.facts[entity][attribute]
    distractors = rng.sample([v for v in world.values[attribute] if v != gold], world.config.options - 1)
    texts = distractors + [gold]
    rng.shuffle(texts)
    options = [Option(LABELS[i], t) for i, t in enumerate(texts)]
    answer = LABELS[texts.index(gold)]
    text = QUESTION_TEMPLATES[attribute].format(entity=entity)
    return Question(qid, text, options, answer, "synthetic", {"entity": entity, "attribute": attribute})


def generate(config: WorldConfig) -> tuple[World, dict[str, list[Question]]]:
    """The world and its train / valid / test questions."""
    world = make_world(config)
    rng = random.Random(config.seed + 1)
    splits: dict[str, list[Question]] = {"train": [], "valid": [], "test": []}
    for number, entity in enumerate(world.facts):
        order = list(config.attributes)
        rng.shuffle(order)
        for attribute in order[: config.train_attributes]:
            for k in range(config.questions_per_fact):
                splits["train"].append(_question(world, entity, attribute, rng, f"{entity}-{attribute}-{k}"))
        held_out = order[config.train_attributes :]
        # alternate which held-out attribute goes to valid and which to test, animal by animal
        for index, attribute in enumerate(held_out):
            split = "valid" if (index + number) % 2 == 0 else "test"
            splits[split].append(_question(world, entity, attribute, rng, f"{entity}-{attribute}"))
    for questions in splits.values():
        rng.shuffle(questions)
    return world, splits


def write_benchmark(config: WorldConfig, out: str | Path) -> dict[str, Any]:
    """Write ``train/valid/test.jsonl``, ``world.json`` and ``manifest.json`` into ``out``."""
    world, splits = generate(config)
    manifest = {"dataset": "synthetic", "seed": config.seed, "counts": {k: len(v) for k, v in splits.items()}, "world": asdict(config)}
    with staged_dir(out) as tmp:
        for name, questions in splits.items():
            write_questions(tmp / f"{name}.jsonl", questions)
        write_json(tmp / "world.json", world.to_dict())
        write_json(tmp / "manifest.json", manifest)
    return manifest


def read_world(path: str | Path) -> World:
    import json

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found (written by `tinythinker data synth` as world.json)")
    try:
        return World.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a synthetic world file ({exc})") from None
