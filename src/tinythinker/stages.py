"""The one place that renders stage inputs and targets and parses answers (METHOD.md section 3).

Every string a student sees is built here. Formats (``{options}`` is ``(A) text (B) text ...``):

=========  =====================================================================  ==========================
stage      input                                                                  target
=========  =====================================================================  ==========================
recall     ``{question}\\n{options}\\nRecall:``                                     ``{recall}``
analyze    ``{question}\\n{options}\\nRecall: {recall}\\nAnalyze: For option X,``    ``{explanation of X}``
summarize  ``{question}\\n{options}\\nRecall: {recall}\\nAnalyze: {analyses}\\nSummarize:``  ``So the answer is option {gold}.``
=========  =====================================================================  ==========================

``{analyses}`` is every ``For option X, {explanation}`` joined by single spaces. The ablation
variants drop the Recall part, the Analyze part, or both. Decoder-only students see the same
strings: prompt, then ``COMPLETION_SEPARATOR``, then the target.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

from .data.schema import Option, Question

RECALL, ANALYZE, SUMMARIZE = "recall", "analyze", "summarize"
STAGES = (RECALL, ANALYZE, SUMMARIZE)

# variant name -> (uses recall, uses analyze); names as in METHOD.md section 3.
VARIANTS: dict[str, tuple[bool, bool]] = {
    "summarize": (False, False),
    "recall_summarize": (True, False),
    "analyze_summarize": (False, True),
    "recall_analyze_summarize": (True, True),
}
FULL_VARIANT = "recall_analyze_summarize"
COT = "cot"  # baseline: standard CoT distillation, one target with the reasoning and the answer

COMPLETION_SEPARATOR = " "
ANSWER_PATTERN = re.compile(r"the answer is option ([A-Z])\.")


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return variant


def variant_stages(variant: str) -> tuple[str, ...]:
    """The stages a variant trains and runs, in pipeline order."""
    uses_recall, uses_analyze = VARIANTS[check_variant(variant)]
    return tuple(s for s, used in ((RECALL, uses_recall), (ANALYZE, uses_analyze), (SUMMARIZE, True)) if used)


def format_options(options: Sequence[Option]) -> str:
    return " ".join(f"({o.label}) {o.text}" for o in options)


def question_block(question: Question) -> str:
    return f"{question.question}\n{format_options(question.options)}"


def normalize_recall(recall: str) -> str:
    """Strip whitespace and end with a full stop (METHOD.md section 2 and 5)."""
    recall = " ".join(recall.split())
    if recall and not recall.endswith("."):
        recall += "."
    return recall


def normalize_explanation(explanation: str) -> str:
    return " ".join(explanation.split())


def analysis_sentence(label: str, explanation: str) -> str:
    return f"For option {label}, {normalize_explanation(explanation)}"


def join_analyses(analyses: Mapping[str, str], labels: Sequence[str]) -> str:
    """``For option A, ... For option B, ...`` in label order."""
    return " ".join(analysis_sentence(label, analyses[label]) for label in labels)


def _prefix(question: Question, recall: str | None) -> str:
    text = question_block(question)
    if recall is not None:
        text += f"\nRecall: {normalize_recall(recall)}"
    return text


def recall_input(question: Question) -> str:
    return f"{question_block(question)}\nRecall:"


def analyze_input(question: Question, label: str, recall: str | None = None) -> str:
    """Input for option ``label``'s analysis; ``recall`` is None in the analyze_summarize variant."""
    return f"{_prefix(question, recall)}\nAnalyze: For option {label},"


def summarize_input(question: Question, recall: str | None = None, analyses: Mapping[str, str] | None = None) -> str:
    """Summarize input; pass ``recall`` and/or ``analyses`` (label -> explanation) as the variant uses them."""
    text = _prefix(question, recall)
    if analyses is not None:
        text += f"\nAnalyze: {join_analyses(analyses, question.labels)}"
    return f"{text}\nSummarize:"


def summarize_target(label: str) -> str:
    return f"So the answer is option {label}."


def cot_input(question: Question) -> str:
    """Input of the standard CoT-distillation baseline (not a TinyThinker stage)."""
    return f"{question_block(question)}\nAnswer:"


def cot_target(question: Question, recall: str, analyses: Mapping[str, str], label: str) -> str:
    parts = [normalize_recall(recall)] if recall.strip() else []
    if analyses:
        parts.append(join_analyses(analyses, [l for l in question.labels if l in analyses]))
    parts.append(summarize_target(label))
    return " ".join(parts)


def parse_answer(text: str, labels: Sequence[str] | None = None) -> str | None:
    """The label in ``the answer is option X.``, or None when absent or not an option."""
    match = ANSWER_PATTERN.search(text)
    if match is None:
        return None
    label = match.group(1)
    if labels is not None and label not in labels:
        return None
    return label


def stage_rows(
    question: Question,
    recall: str,
    analyses: Mapping[str, str],
    variant: str = FULL_VARIANT,
) -> dict[str, list[tuple[str, str]]]:
    """Training rows (input, target) per stage for one rationale of one question.

    The summarize target always uses the gold label. A variant that uses the analyze stage
    needs an explanation for every option; a variant that uses recall needs a non-empty recall.
    """
    uses_recall, uses_analyze = VARIANTS[check_variant(variant)]
    rows: dict[str, list[tuple[str, str]]] = {stage: [] for stage in variant_stages(variant)}
    kept_recall = normalize_recall(recall) if uses_recall else None
    if uses_recall:
        if not kept_recall:
            raise ValueError(f"question {question.id}: variant {variant} needs a recall")
        rows[RECALL].append((recall_input(question), kept_recall))
    kept_analyses = None
    if uses_analyze:
        missing = [label for label in question.labels if not analyses.get(label, "").strip()]
        if missing:
            raise ValueError(f"question {question.id}: variant {variant} needs an analysis for option(s) {''.join(missing)}")
        kept_analyses = {label: normalize_explanation(analyses[label]) for label in question.labels}
        for label in question.labels:
            rows[ANALYZE].append((analyze_input(question, label, kept_recall), kept_analyses[label]))
    rows[SUMMARIZE].append((summarize_input(question, kept_recall, kept_analyses), summarize_target(question.answer)))
    return rows
