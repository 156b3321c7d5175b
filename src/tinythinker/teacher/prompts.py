"""Few-shot rationalization prompts for the teacher LLM (METHOD.md section 2).

A prompt is a chat: a system instruction, then one user/assistant pair per exemplar, then the
user turn for the question. The user turn shows the question, its options and the gold answer
as a hint, and ends with the lines the teacher must complete::

    Question: {question}
    Options: (A) text (B) text ...
    Explanations: {gold} is correct. Because
    {X} is incorrect. Because          (one line per other option, in label order)

The expected reply is one ``Key Information: ...`` line, then one ``X is correct/incorrect.
Because ...`` line per option (see ``teacher.parse``).

Exemplars are JSON data files (``exemplars/{csqa,obqa,strategyqa,generic}.json``)::

    {"name": str, "description": str,
     "exemplars": [{"question": str, "options": [str, ...], "answer": "B",
                    "key_information": str, "explanations": {"A": str, ...}}]}

``explanations[X]`` is the reason that follows ``Because``. Users pass their own file with
``--exemplars PATH``; a bundled set is chosen per question by its ``source`` otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..data.schema import LABELS, Question
from ..errors import InputError

SYSTEM_INSTRUCTION = (
    "You explain the answers of multiple-choice questions. You are given a question, its options "
    "and which option is correct. First write one line that starts with \"Key Information:\" and "
    "states, in one or two sentences, the general knowledge needed to answer the question, without "
    "naming an option letter. Then write one line per option, in the order given, that starts with "
    "\"X is correct. Because\" for the correct option and \"X is incorrect. Because\" for every other "
    "option (X is the option's letter), each followed by a short reason specific to that option. "
    "Write nothing else."
)

BUNDLED = ("csqa", "obqa", "strategyqa", "generic")
GENERIC = "generic"


@dataclass(frozen=True)
class Exemplar:
    question: str
    options: tuple[str, ...]
    answer: str
    key_information: str
    explanations: dict[str, str]

    @property
    def labels(self) -> list[str]:
        return list(LABELS[: len(self.options)])


def _parse_exemplars(data: Any, path: str) -> list[Exemplar]:
    if not isinstance(data, dict) or not isinstance(data.get("exemplars"), list) or not data["exemplars"]:
        raise InputError(path, "expected an object with a non-empty list 'exemplars'", field="exemplars")
    exemplars = []
    for index, item in enumerate(data["exemplars"]):
        where = f"exemplars[{index}]"

        def fail(name: str, message: str) -> InputError:
            return InputError(path, message, field=f"{where}.{name}")

        if not isinstance(item, dict):
            raise InputError(path, "must be an object", field=where)
        for name in ("question", "key_information"):
            if not isinstance(item.get(name), str) or not item[name].strip():
                raise fail(name, "must be a non-empty string")
        options = item.get("options")
        if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) and o.strip() for o in options):
            raise fail("options", "must be a list of at least two non-empty strings")
        labels = list(LABELS[: len(options)])
        if item.get("answer") not in labels:
            raise fail("answer", f"must be one of {''.join(labels)}")
        explanations = item.get("explanations")
        if not isinstance(explanations, dict):
            raise fail("explanations", "must map each option letter to its reason")
        for label in labels:
            if not isinstance(explanations.get(label), str) or not explanations[label].strip():
                raise fail(f"explanations.{label}", "missing or empty")
        extra = sorted(set(explanations) - set(labels))
        if extra:
            raise fail(f"explanations.{extra[0]}", "not an option letter of this exemplar")
        exemplars.append(
            Exemplar(item["question"].strip(), tuple(o.strip() for o in options), item["answer"],
                     item["key_information"].strip(), {k: explanations[k].strip() for k in labels})
        )
    return exemplars


def load_exemplars(name_or_path: str | Path) -> list[Exemplar]:
    """A bundled set by name (csqa, obqa, strategyqa, generic) or a user's JSON file."""
    if str(name_or_path) in BUNDLED:
        text = resources.files(__package__).joinpath("exemplars", f"{name_or_path}.json").read_text(encoding="utf-8")
        return _parse_exemplars(json.loads(text), f"<bundled exemplars {name_or_path}>")
    path = Path(name_or_path)
    if not path.is_file():
        raise InputError(path, f"exemplar file not found (bundled sets: {', '.join(BUNDLED)})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"malformed JSON ({exc.msg})", line=exc.lineno) from None
    return _parse_exemplars(data, str(path))


def exemplar_set_for(question: Question) -> str:
    """The bundled set matching a question's source; ``generic`` for anything else."""
    return question.source if question.source in BUNDLED else GENERIC


def hint_order(labels: list[str], answer: str) -> list[str]:
    """Gold first, then the other options in label order (the order of the hint and the reply)."""
    return [answer] + [label for label in labels if label != answer]


def user_turn(question: str, options: list[str] | tuple[str, ...], answer: str) -> str:
    labels = list(LABELS[: len(options)])
    rendered = " ".join(f"({label}) {text}" for label, text in zip(labels, options))
    lines = [f"Question: {question}", f"Options: {rendered}"]
    hint = [f"{label} is {'correct' if label == answer else 'incorrect'}. Because" for label in hint_order(labels, answer)]
    lines.append(f"Explanations: {hint[0]}")
    lines.extend(hint[1:])
    return "\n".join(lines)


def assistant_turn(exemplar: Exemplar) -> str:
    lines = [f"Key Information: {exemplar.key_information}"]
    for label in hint_order(exemplar.labels, exemplar.answer):
        verdict = "correct" if label == exemplar.answer else "incorrect"
        lines.append(f"{label} is {verdict}. Because {exemplar.explanations[label]}")
    return "\n".join(lines)


def build_messages(question: Question, exemplars: list[Exemplar]) -> list[dict[str, str]]:
    """The chat messages asking the teacher to rationalize ``question``'s gold answer."""
    messages = [{"role": "system", "content": SYSTEM_INSTRUCTION}]
    for exemplar in exemplars:
        messages.append({"role": "user", "content": user_turn(exemplar.question, exemplar.options, exemplar.answer)})
        messages.append({"role": "assistant", "content": assistant_turn(exemplar)})
    options = [option.text for option in question.options]
    messages.append({"role": "user", "content": user_turn(question.question, options, question.answer)})
    return messages
