"""The canonical question record, shared by every step of the pipeline.

One JSON object per line::

    {"id": str, "question": str, "options": [{"label": "A", "text": str}, ...],
     "answer": "A", "source": str, ...extra fields kept as they are...}

Labels are consecutive capital letters from A; ``answer`` is one of them.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import InputError
from ..io import iter_jsonl, write_jsonl

LABELS = string.ascii_uppercase
CORE_FIELDS = ("id", "question", "options", "answer", "source")


@dataclass(frozen=True)
class Option:
    label: str
    text: str


@dataclass
class Question:
    id: str
    question: str
    options: list[Option]
    answer: str
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return [option.label for option in self.options]

    def option_text(self, label: str) -> str:
        for option in self.options:
            if option.label == label:
                return option.text
        raise KeyError(label)

    def to_dict(self) -> dict[str, Any]:
        record = {
            "id": self.id,
            "question": self.question,
            "options": [{"label": o.label, "text": o.text} for o in self.options],
            "answer": self.answer,
            "source": self.source,
        }
        record.update(self.extra)
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any], path: str | Path | None = None, line: int | None = None) -> "Question":
        """Validate a canonical record; errors name the file, line and field."""

        def fail(field_name: str, message: str) -> InputError:
            return InputError(path, message, line=line, field=field_name)

        for name in ("id", "question", "options", "answer"):
            if name not in record:
                raise fail(name, "missing field")
        qid, text, answer = record["id"], record["question"], record["answer"]
        if not isinstance(qid, str) or not qid.strip():
            raise fail("id", "must be a non-empty string")
        if not isinstance(text, str) or not text.strip():
            raise fail("question", "must be a non-empty string")
        raw_options = record["options"]
        if not isinstance(raw_options, list) or len(raw_options) < 2:
            raise fail("options", "must be a list of at least two options")
        options = []
        for index, raw in enumerate(raw_options):
            if not isinstance(raw, dict) or "label" not in raw or "text" not in raw:
                raise fail(f"options[{index}]", "must be an object with 'label' and 'text'")
            if raw["label"] != LABELS[index]:
                raise fail(f"options[{index}].label", f"expected '{LABELS[index]}' (labels are consecutive from A), got {raw['label']!r}")
            if not isinstance(raw["text"], str) or not raw["text"].strip():
                raise fail(f"options[{index}].text", "must be a non-empty string")
            options.append(Option(raw["label"], raw["text"].strip()))
        labels = [o.label for o in options]
        if answer not in labels:
            raise fail("answer", f"{answer!r} is not among the option labels {''.join(labels)}")
        source = record.get("source", "")
        if not isinstance(source, str):
            raise fail("source", "must be a string")
        extra = {k: v for k, v in record.items() if k not in CORE_FIELDS}
        return cls(qid, text.strip(), options, answer, source, extra)


def check_unique_ids(questions: Iterable[tuple[Question, int]], path: str | Path) -> None:
    """Raise InputError at the first repeated id; takes (question, line) pairs."""
    seen: dict[str, int] = {}
    for question, line in questions:
        if question.id in seen:
            raise InputError(path, f"duplicate id {question.id!r} (first seen on line {seen[question.id]})", line=line, field="id")
        seen[question.id] = line


def read_questions(path: str | Path) -> list[Question]:
    """Read and validate a canonical question file (non-empty, unique ids)."""
    located = [(Question.from_dict(obj, path, number), number) for number, obj in iter_jsonl(path)]
    if not located:
        raise InputError(path, "file is empty: no questions")
    check_unique_ids(located, path)
    return [question for question, _ in located]


def write_questions(path: str | Path, questions: Iterable[Question]) -> int:
    return write_jsonl(path, (q.to_dict() for q in questions))
