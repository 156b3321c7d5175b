"""``tinythinker build``: questions + rationales -> stage training sets (METHOD.md section 3).

Writes, into ``--out``, one JSONL file per stage of the variant (``tinythinker.stages.variant_stages``),
rows ``{"id", "input", "target"}`` rendered only by ``tinythinker.stages``, plus ``manifest.json``.
Variant ``cot`` (the CoT-distillation baseline) writes ``cot.jsonl`` instead. Exact duplicate rows
(same input and target) are removed per stage, keeping the first. The summarize target uses the
label of the questions file: to train on teacher-voted labels, pass ``questions.relabeled.jsonl``
written by ``teach --relabel-by-vote`` as ``--data``.

Checks: every rationale id must be a question of ``--data``; a variant that uses Analyze needs an
analysis for every option, one that uses Recall a non-empty recall (error on the first offending
record, naming file, line and field). Nothing appears at ``--out`` unless everything succeeded.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from .. import __version__
from .. import stages
from ..data.schema import read_questions
from ..errors import InputError, TinyThinkerError
from ..io import iter_jsonl, sha256_file, staged_dir, write_json, write_jsonl
from .records import validate_record

VARIANT_CHOICES = (*stages.VARIANTS, stages.COT)


def resolve_questions(data: str | Path) -> Path:
    """``--data`` is a questions file, or a prepared folder whose ``train.jsonl`` is used."""
    path = Path(data)
    if path.is_dir():
        path = path / "train.jsonl"
    if not path.is_file():
        raise InputError(path, "questions file not found (pass a prepared folder or a questions .jsonl)")
    return path


def build(data: str | Path, rationales: str | Path, out: str | Path, variant: str = stages.FULL_VARIANT) -> dict[str, Any]:
    """Write the stage files of ``variant`` and ``manifest.json`` into ``out``; returns the manifest."""
    if variant not in VARIANT_CHOICES:
        raise TinyThinkerError(f"unknown --variant {variant!r}; choose one of {', '.join(VARIANT_CHOICES)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "manifest.json").is_file())):
        raise TinyThinkerError(f"{out}: exists and is not a stage dataset folder; choose another --out")
    questions_path = resolve_questions(data)
    questions = {q.id: q for q in read_questions(questions_path)}
    names = (stages.COT,) if variant == stages.COT else stages.variant_stages(variant)
    rows: dict[str, list[dict[str, str]]] = {name: [] for name in names}
    seen: dict[str, set[tuple[str, str]]] = {name: set() for name in names}
    duplicates = Counter()
    teachers = Counter()
    covered: set[str] = set()
    count = 0
    for line, obj in iter_jsonl(rationales):
        qid = obj.get("id")
        question = questions.get(qid) if isinstance(qid, str) else None
        if question is None and isinstance(qid, str):
            raise InputError(rationales, f"id {qid!r} is not a question of {questions_path}", line=line, field="id")
        record = validate_record(obj, rationales, line, question)
        if variant == stages.COT:
            produced = {stages.COT: [(stages.cot_input(question), stages.cot_target(question, record["recall"], record["analyze"], question.answer))]}
        else:
            try:
                produced = stages.stage_rows(question, record["recall"], record["analyze"], variant)
            except ValueError as exc:
                field = "analyze" if "analysis" in str(exc) else "recall"
                hint = " (recall-only rationales: use --variant recall_summarize)" if field == "analyze" and not record["analyze"] else ""
                raise InputError(rationales, f"{exc}{hint}", line=line, field=field) from None
        for stage, pairs in produced.items():
            for source, target in pairs:
                if (source, target) in seen[stage]:
                    duplicates[stage] += 1
                    continue
                seen[stage].add((source, target))
                rows[stage].append({"id": question.id, "input": source, "target": target})
        teachers[record["teacher"]] += 1
        covered.add(question.id)
        count += 1
    if count == 0:
        raise InputError(rationales, "no rationale records")
    option_counts = Counter(len(q.options) for q in questions.values())
    manifest = {
        "variant": variant,
        "stages": list(names),
        "counts": {stage: len(rows[stage]) for stage in names},
        "duplicates_removed": {stage: duplicates[stage] for stage in names},
        "num_options": max(option_counts),
        "option_counts": {str(k): v for k, v in sorted(option_counts.items())},
        "questions": len(questions),
        "questions_with_rationales": len(covered),
        "questions_without_rationales": len(questions) - len(covered),
        "rationales": count,
        "teachers": dict(teachers),
        "data": {"path": str(questions_path), "sha256": sha256_file(questions_path)},
        "rationales_file": {"path": str(rationales), "sha256": sha256_file(rationales)},
        "tinythinker_version": __version__,
    }
    with staged_dir(out) as tmp:
        for stage in names:
            write_jsonl(tmp / f"{stage}.jsonl", rows[stage])
        write_json(tmp / "manifest.json", manifest)
    return manifest
