"""Importers: existing rationale datasets acting as teachers, without an API.

Each importer takes the questions being taught and a ``--source`` path and returns, per question
id, candidate rationales (``records.Candidate``) with the answer each one supports when the
source states one, plus counts for the report. ``teach`` then applies the same label policy and
writes the same ``rationales.jsonl`` as for an LLM teacher.

- ``dss-palm``: the PaLM-540B chain-of-thought rationales of "Distilling Step-by-Step" for
  CommonsenseQA: a folder with ``cqa_{train,test}.json`` (JSON Lines of questions) and
  ``llm_{train,test}_CoT_{i}.json`` (JSON lists of raw completions, aligned by position across
  the files in order of i). A completion is cut at the first "\\n\\nQ:"; the text before "So the
  answer is" becomes the Recall and the single "(x)" after it is PaLM's answer; completions that
  state no single answer ("either (a) or (e)") are skipped. No per-option analyses: these feed
  the ``recall_summarize`` variant.
- ``ecqa-freeflow``: FLAN's ECQA file (``question\\nOptions:\\n- ...`` TAB answer TAB free-flow
  explanation, no header), joined to the questions by question text (and option set when a
  text repeats); the explanation becomes the Recall.
- ``strategyqa-facts``: StrategyQA's JSON list(s) (a file, several files, or a folder holding the
  official file or its two shared parts); the human facts joined by spaces become the Recall.
- ``jsonl``: canonical rationale records (``teacher.records``) from anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..data.loaders import iter_json_array
from ..data.schema import Question
from ..errors import InputError
from ..io import iter_jsonl
from .records import Candidate, stated_answer, validate_record

DSS_CUT = "\n\nQ:"
DSS_ANSWER = "So the answer is"


@dataclass
class ImportResult:
    candidates: dict[str, list[Candidate]]
    stats: dict = field(default_factory=dict)
    note: str = ""


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _label_of_text(question: Question, text: str) -> str | None:
    wanted = _norm(text)
    matches = [o.label for o in question.options if _norm(o.text) == wanted]
    return matches[0] if len(matches) == 1 else None


def split_dss_completion(completion: str) -> tuple[str, int | None]:
    """(rationale before "So the answer is", index of the single stated choice or None)."""
    text = completion.split(DSS_CUT, 1)[0]
    head, found, tail = text.partition(DSS_ANSWER)
    letters = re.findall(r"\(([a-z])\)", tail) if found else []
    return head.strip(), ("abcdefghijklmnopqrstuvwxyz".index(letters[0]) if len(letters) == 1 else None)


def _dss_split_files(folder: Path, split: str) -> tuple[Path, list[Path]] | None:
    questions_file = folder / f"cqa_{split}.json"
    parts = sorted(folder.glob(f"llm_{split}_CoT_*.json"), key=lambda p: int(re.search(r"_(\d+)\.json$", p.name).group(1)))
    if not questions_file.is_file() and not parts:
        return None
    if not questions_file.is_file():
        raise InputError(questions_file, "file not found (needed to align the llm_*_CoT files by position)")
    if not parts:
        raise InputError(folder, f"no llm_{split}_CoT_*.json files beside cqa_{split}.json")
    return questions_file, parts


def import_dss_palm(questions: list[Question], source: str | Path) -> ImportResult:
    folder = Path(source)
    if not folder.is_dir():
        raise InputError(folder, "expected the dss_palm_cqa folder (cqa_train.json, llm_train_CoT_*.json, ...)")
    by_id = {q.id: q for q in questions}
    candidates: dict[str, list[Candidate]] = {}
    stats = {"source_rows": 0, "matched": 0, "no_single_answer": 0, "empty_rationale": 0, "question_text_mismatch": 0}
    found_any = False
    for split in ("train", "test"):
        files = _dss_split_files(folder, split)
        if files is None:
            continue
        found_any = True
        questions_file, parts = files
        rows = [(line, obj) for line, obj in iter_jsonl(questions_file)]
        completions: list[str] = []
        for part in parts:
            for line, item in iter_json_array(part):
                if not isinstance(item, str):
                    raise InputError(part, "expected a list of completion strings", line=line)
                completions.append(item)
        if len(completions) != len(rows):
            raise InputError(folder, f"{len(completions)} llm_{split}_CoT completions for {len(rows)} rows of {questions_file.name}: they do not align")
        stats["source_rows"] += len(rows)
        for (line, row), completion in zip(rows, completions):
            for name in ("id", "question", "choices"):
                if name not in row:
                    raise InputError(questions_file, "missing field", line=line, field=name)
            question = by_id.get(row["id"])
            if question is None:
                continue
            if _norm(row["question"]) != _norm(question.question):
                stats["question_text_mismatch"] += 1
                continue
            rationale, choice = split_dss_completion(completion)
            if not rationale:
                stats["empty_rationale"] += 1
                continue
            stated = None
            if choice is not None and choice < len(row["choices"]):
                same_order = [_norm(c) for c in row["choices"]] == [_norm(o.text) for o in question.options]
                stated = question.labels[choice] if same_order else _label_of_text(question, row["choices"][choice])
            if stated is None:  # "either (a) or (e)": supports no single answer, so no label
                stats["no_single_answer"] += 1
                continue
            stats["matched"] += 1
            candidates.setdefault(question.id, []).append(Candidate(rationale, {}, stated))
    if not found_any:
        raise InputError(folder, "no cqa_train.json / cqa_test.json with llm_*_CoT_*.json files in this folder")
    note = "dss-palm rationales are Recall only (no per-option analyses): build them with --variant recall_summarize (or summarize)"
    return ImportResult(candidates, stats, note)


def import_ecqa_freeflow(questions: list[Question], source: str | Path) -> ImportResult:
    path = Path(source)
    if not path.is_file():
        raise InputError(path, "file not found (expected FLAN's ecqa_train.tsv)")
    index: dict[str, list[Question]] = {}
    for question in questions:
        index.setdefault(_norm(question.question), []).append(question)
    candidates: dict[str, list[Candidate]] = {}
    stats = {"source_rows": 0, "matched": 0, "answer_not_an_option": 0, "ambiguous_question_text": 0}
    with path.open(encoding="utf-8") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            cells = raw.rstrip("\n").split("\t")
            if len(cells) != 3:
                raise InputError(path, f"expected 3 tab-separated columns (question, answer, explanation), got {len(cells)}", line=line)
            prompt, answer, explanation = cells
            stem, found, options_text = prompt.partition("\\nOptions:\\n- ")
            if not found:
                raise InputError(path, "expected 'question\\nOptions:\\n- option ...'", line=line, field="question")
            stats["source_rows"] += 1
            options = {_norm(o) for o in options_text.split("\\n- ")}
            matches = index.get(_norm(stem), [])
            if len(matches) > 1:
                matches = [q for q in matches if {_norm(o.text) for o in q.options} == options]
                if len(matches) != 1:
                    stats["ambiguous_question_text"] += 1
                    continue
            if not matches:
                continue
            question = matches[0]
            stated = _label_of_text(question, answer)
            if stated is None:
                stats["answer_not_an_option"] += 1
            recall = " ".join(explanation.replace("\\n", " ").split())
            if not recall:
                continue
            stats["matched"] += 1
            candidates.setdefault(question.id, []).append(Candidate(recall, {}, stated))
    note = "ecqa-freeflow explanations are Recall only: build them with --variant recall_summarize (or summarize)"
    return ImportResult(candidates, stats, note)


STRATEGYQA_FILES = (("strategyqa_train.json",), ("strategyqa_train_part1_of2.json", "strategyqa_train_part2_of2.json"))


def import_strategyqa_facts(questions: list[Question], source: str | Path) -> ImportResult:
    source = Path(source)
    if source.is_dir():
        for names in STRATEGYQA_FILES:
            if all((source / n).is_file() for n in names):
                paths = [source / n for n in names]
                break
        else:
            raise InputError(source, "folder holds neither strategyqa_train.json nor its two parts")
    else:
        paths = [source]
    by_id = {q.id: q for q in questions}
    candidates: dict[str, list[Candidate]] = {}
    stats = {"source_rows": 0, "matched": 0, "without_facts": 0}
    for path in paths:
        for line, row in iter_json_array(path):
            if not isinstance(row, dict) or not isinstance(row.get("qid"), str):
                raise InputError(path, "expected objects with a string qid", line=line, field="qid")
            stats["source_rows"] += 1
            question = by_id.get(row["qid"])
            if question is None:
                continue
            facts = row.get("facts")
            if not isinstance(facts, list) or not all(isinstance(f, str) for f in facts):
                raise InputError(path, "expected a list of strings", line=line, field="facts")
            recall = " ".join(" ".join(f.split()) for f in facts if f.strip())
            if not recall:
                stats["without_facts"] += 1
                continue
            stated = None
            if isinstance(row.get("answer"), bool):
                stated = _label_of_text(question, "yes" if row["answer"] else "no")
            stats["matched"] += 1
            candidates.setdefault(question.id, []).append(Candidate(recall, {}, stated))
    note = "strategyqa-facts are Recall only: build them with --variant recall_summarize (or summarize)"
    return ImportResult(candidates, stats, note)


def import_jsonl(questions: list[Question], source: str | Path) -> ImportResult:
    path = Path(source)
    by_id = {q.id: q for q in questions}
    candidates: dict[str, list[Candidate]] = {}
    stats = {"source_rows": 0, "matched": 0, "not_in_questions": 0}
    any_without_analyses = False
    for line, obj in iter_jsonl(path):
        stats["source_rows"] += 1
        question = by_id.get(obj.get("id")) if isinstance(obj.get("id"), str) else None
        record = validate_record(obj, path, line, question)
        if question is None:
            stats["not_in_questions"] += 1
            continue
        if record["analyze"]:
            missing = [label for label in question.labels if label not in record["analyze"]]
            if missing:
                raise InputError(path, f"no analysis for option(s) {''.join(missing)} (give all or none)", line=line, field="analyze")
        else:
            any_without_analyses = True
        stats["matched"] += 1
        candidates.setdefault(question.id, []).append(
            Candidate(record["recall"], record["analyze"], stated_answer(record["analyze"]), record["teacher"])
        )
    note = "some records have no analyses: build those with --variant recall_summarize" if any_without_analyses else ""
    return ImportResult(candidates, stats, note)


IMPORTERS: dict[str, Callable[[list[Question], str | Path], ImportResult]] = {
    "dss-palm": import_dss_palm,
    "ecqa-freeflow": import_ecqa_freeflow,
    "strategyqa-facts": import_strategyqa_facts,
    "jsonl": import_jsonl,
}
