"""Readers from the official benchmark formats into canonical questions.

Each reader validates as it goes and raises InputError naming the file, line and field.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterator

from ..errors import InputError
from ..io import iter_jsonl
from .schema import LABELS, Question

YES_NO = [{"label": "A", "text": "yes"}, {"label": "B", "text": "no"}]


def _require(record: dict[str, Any], name: str, kind: type | tuple[type, ...], path: Path, line: int, hint: str = "") -> Any:
    if name not in record:
        raise InputError(path, f"missing field{hint}", line=line, field=name)
    value = record[name]
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InputError(path, f"expected {expected}, got {type(value).__name__}", line=line, field=name)
    return value


def read_arc_style(path: str | Path, dataset: str, num_options: int) -> list[tuple[Question, int]]:
    """CommonsenseQA / OpenBookQA JSONL: ``{"id", "question": {"stem", "choices"}, "answerKey"}``."""
    path = Path(path)
    located = []
    for line, record in iter_jsonl(path):
        if not isinstance(record.get("question"), dict) or "stem" not in record["question"]:
            raise InputError(
                path,
                f"does not match --dataset {dataset}: expected an object with question.stem and question.choices",
                line=line,
                field="question",
            )
        qid = _require(record, "id", str, path, line)
        body = record["question"]
        stem = body["stem"]
        if not isinstance(stem, str) or not stem.strip():
            raise InputError(path, "must be a non-empty string", line=line, field="question.stem")
        choices = body.get("choices")
        if not isinstance(choices, list):
            raise InputError(path, "missing or not a list", line=line, field="question.choices")
        if len(choices) != num_options:
            raise InputError(
                path,
                f"{len(choices)} choices, but --dataset {dataset} has {num_options}: is this the right dataset?",
                line=line,
                field="question.choices",
            )
        options = []
        for index, choice in enumerate(choices):
            if not isinstance(choice, dict) or "label" not in choice or "text" not in choice:
                raise InputError(path, "must have 'label' and 'text'", line=line, field=f"question.choices[{index}]")
            options.append({"label": choice["label"], "text": choice["text"]})
        options.sort(key=lambda o: str(o["label"]))
        answer = _require(record, "answerKey", str, path, line)
        extra = {k: v for k, v in body.items() if k not in ("stem", "choices")}
        canonical = {"id": qid, "question": stem, "options": options, "answer": answer, "source": dataset, **extra}
        located.append((_canonical(canonical, path, line, answer_field="answerKey"), line))
    return located


def _canonical(record: dict[str, Any], path: Path, line: int, answer_field: str = "answer") -> Question:
    """Validate through the canonical schema, naming the original answer field on a bad label."""
    try:
        return Question.from_dict(record, path, line)
    except InputError as exc:
        if exc.field == "answer" and answer_field != "answer":
            raise InputError(path, exc.message, line=line, field=answer_field) from None
        raise


def iter_json_array(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (line where the element starts, element) for a JSON file holding one list."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()

    counted = [0, 1]  # (position, line at that position): lines are counted forward only once

    def line_of(pos: int) -> int:
        start, line = counted
        line += text.count("\n", start, pos) if pos >= start else -text.count("\n", pos, start)
        counted[:] = [pos, line]
        return line

    def skip_ws(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    pos = skip_ws(0)
    if pos >= len(text):
        raise InputError(path, "file is empty")
    if text[pos] != "[":
        raise InputError(path, "expected a JSON list of questions", line=line_of(pos))
    pos = skip_ws(pos + 1)
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        try:
            element, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"malformed JSON ({exc.msg})", line=exc.lineno) from None
        yield line_of(pos), element
        pos = skip_ws(end)
        if pos < len(text) and text[pos] == ",":
            pos = skip_ws(pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            if skip_ws(pos + 1) != len(text):
                raise InputError(path, "unexpected data after the list", line=line_of(skip_ws(pos + 1)))
            return
        raise InputError(path, "malformed JSON (expected ',' or ']')", line=line_of(pos))


def read_strategyqa(path: str | Path) -> list[tuple[Question, int]]:
    """StrategyQA JSON list: ``{"qid", "question", "answer": bool, "facts", ...}`` -> options (A) yes (B) no."""
    path = Path(path)
    located = []
    for line, record in iter_json_array(path):
        if not isinstance(record, dict) or "qid" not in record:
            raise InputError(path, "does not match --dataset strategyqa: expected objects with qid, question, answer", line=line, field="qid")
        qid = _require(record, "qid", str, path, line)
        question = _require(record, "question", str, path, line)
        answer = _require(record, "answer", bool, path, line, hint=" (true/false)")
        extra = {k: v for k, v in record.items() if k not in ("qid", "question", "answer")}
        canonical = {"id": qid, "question": question, "options": YES_NO, "answer": "A" if answer else "B", "source": "strategyqa", **extra}
        located.append((_canonical(canonical, path, line), line))
    return located


def read_canonical(path: str | Path) -> list[tuple[Question, int]]:
    """Canonical JSONL (the schema of ``data.schema``); a missing ``source`` becomes the file's stem."""
    path = Path(path)
    located = []
    for line, record in iter_jsonl(path):
        if "options" not in record and isinstance(record.get("question"), dict):
            raise InputError(path, "does not match --dataset mcq: this looks like CSQA/OBQA JSONL (use --dataset csqa or obqa)", line=line, field="question")
        record.setdefault("source", path.stem)
        located.append((Question.from_dict(record, path, line), line))
    return located


def read_csv(path: str | Path) -> list[tuple[Question, int]]:
    """CSV with a header ``id,question,A,B,...,answer``; empty trailing option cells are allowed."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        for name in ("id", "question", "answer"):
            if name not in header:
                raise InputError(path, "missing column in the header", line=1, field=name)
        option_columns = [c for c in header if len(c) == 1 and c in LABELS]
        expected = list(LABELS[: len(option_columns)])
        if option_columns != expected or len(option_columns) < 2:
            raise InputError(path, f"option columns must be A, B, ... in order (found {option_columns})", line=1, field="header")
        located = []
        for row in reader:
            line = reader.line_num
            if None in row:
                raise InputError(path, "more cells than header columns", line=line)
            options = [{"label": c, "text": (row[c] or "").strip()} for c in option_columns if (row[c] or "").strip()]
            record = {
                "id": (row["id"] or "").strip(),
                "question": row["question"] or "",
                "options": options,
                "answer": (row["answer"] or "").strip(),
                "source": path.stem,
            }
            located.append((Question.from_dict(record, path, line), line))
    return located


def read_mcq(path: str | Path) -> list[tuple[Question, int]]:
    """A user's own questions: canonical ``.jsonl`` or ``.csv``."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return read_csv(path)
    return read_canonical(path)
