"""The synthetic teacher: writes rationale replies from a synthetic world's facts (``--teacher synthetic``).

It answers the same chat requests as an LLM teacher, in the same reply format (``Key Information:``
then one ``X is correct/incorrect. Because ...`` line per option), through the same client, cache,
parsing, selection and report. The recall states every fact of the asked animal; each option's
line states the asked fact and compares it with the option::

    Key Information: The zorbel is a kind of bird. It lives in the marsh. ...
    B is correct. Because it lives in the marsh.
    A is incorrect. Because it lives in the marsh, not desert.

``error_rate`` makes that fraction of replies state one wrong fact (another value of a random
attribute). When the wrong fact is the asked one the reply contradicts the gold hint and the teach
step rejects and re-asks it; otherwise a wrong fact reaches the training data, as with a real teacher.
Replies are deterministic for a (question, request number) pair.
"""

from __future__ import annotations

import random
from collections import Counter

from ..data.schema import Question
from ..data.synthetic import World, read_world
from ..errors import InputError
from .client import CallableBackend, ChatRequest


def reply_text(world: World, question: Question, facts: dict[str, str]) -> str:
    """One teacher reply for ``question`` given the animal's (possibly wrong) ``facts``."""
    entity, attribute = question.extra["entity"], question.extra["attribute"]
    shown = World(world.config, {entity: facts}, world.values)
    fact = shown.fact(entity, attribute)
    lines = [f"Key Information: {shown.recall(entity)}"]
    for option in question.options:
        if option.text == facts[attribute]:
            lines.append(f"{option.label} is correct. Because {fact}.")
        else:
            lines.append(f"{option.label} is incorrect. Because {fact}, not {option.text}.")
    return "\n".join(lines)


class SyntheticTeacher:
    """Callable chat backend function over a world; counts requests per question for determinism."""

    def __init__(self, world: World, error_rate: float = 0.0, seed: int = 0):
        self.world = world
        self.error_rate = error_rate
        self.seed = seed
        self.calls: Counter[str] = Counter()

    def _facts(self, entity: str, rng: random.Random) -> dict[str, str]:
        facts = dict(self.world.facts[entity])
        if rng.random() < self.error_rate:
            attribute = rng.choice(list(facts))
            facts[attribute] = rng.choice([v for v in self.world.values[attribute] if v != facts[attribute]])
        return facts

    def __call__(self, request: ChatRequest):
        question: Question = request.question
        entity = question.extra.get("entity") if question is not None else None
        if entity not in self.world.facts or question.extra.get("attribute") not in self.world.values:
            raise InputError(None, f"question {getattr(question, 'id', '?')!r} is not about this synthetic world (entity/attribute fields)")
        texts = []
        for _ in range(request.n):
            call = self.calls[question.id]
            self.calls[question.id] += 1
            rng = random.Random(f"{self.seed}:{question.id}:{call}")
            texts.append(reply_text(self.world, question, self._facts(entity, rng)))
        usage = {"prompt_tokens": 0, "completion_tokens": sum(len(t.split()) for t in texts)}
        return texts, ["stop"] * len(texts), usage


def synthetic_backend(world_path: str | None, error_rate: float = 0.0, seed: int = 0) -> CallableBackend:
    if not world_path:
        raise InputError(None, "teacher synthetic needs --source PATH/world.json (written by `tinythinker data synth`)")
    return CallableBackend(SyntheticTeacher(read_world(world_path), error_rate, seed))
