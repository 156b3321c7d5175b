"""The canonical rationale record and its validation.

One JSON object per line::

    {"id": str, "recall": str, "analyze": {"A": str, ...}, "teacher": str, "sample": int}

``analyze`` may be empty (recall-only rationales); otherwise its keys are option labels of the
question and each value is the explanation that follows "For option X," in the stage strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.schema import Question
from ..errors import InputError


@dataclass
class Candidate:
    """A usable rationale for one question, before selection; ``stated`` is the answer it supports."""

    recall: str
    analyze: dict[str, str] = field(default_factory=dict)
    stated: str | None = None
    teacher: str = ""


def make_record(qid: str, recall: str, analyze: dict[str, str], teacher: str, sample: int) -> dict[str, Any]:
    return {"id": qid, "recall": recall, "analyze": dict(analyze), "teacher": teacher, "sample": sample}


def validate_record(obj: dict[str, Any], path: str | Path, line: int, question: Question | None = None) -> dict[str, Any]:
    """Check one record (and its labels against ``question`` when given); return it normalized."""

    def fail(field: str, message: str) -> InputError:
        return InputError(path, message, line=line, field=field)

    qid = obj.get("id")
    if not isinstance(qid, str) or not qid.strip():
        raise fail("id", "must be a non-empty string")
    recall = obj.get("recall", "")
    if not isinstance(recall, str):
        raise fail("recall", "must be a string")
    analyze = obj.get("analyze", {})
    if analyze is None:
        analyze = {}
    if not isinstance(analyze, dict):
        raise fail("analyze", "must be an object mapping option labels to explanations")
    for label, text in analyze.items():
        if not isinstance(text, str) or not text.strip():
            raise fail(f"analyze.{label}", "must be a non-empty string")
        if question is not None and label not in question.labels:
            raise fail(f"analyze.{label}", f"not an option of question {qid!r} (options {''.join(question.labels)})")
    if not recall.strip() and not analyze:
        raise fail("recall", "empty recall and no analyses: nothing to learn from")
    teacher = obj.get("teacher", "")
    if not isinstance(teacher, str):
        raise fail("teacher", "must be a string")
    sample = obj.get("sample", 0)
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 0:
        raise fail("sample", "must be a non-negative integer")
    return make_record(qid, recall, analyze, teacher, sample)


def stated_answer(analyze: dict[str, str]) -> str | None:
    """The single option an analysis set calls correct ("X is correct. ..."), else None."""
    correct = [label for label, text in analyze.items() if text.lstrip().lower().startswith(f"{label.lower()} is correct")]
    return correct[0] if len(correct) == 1 else None
