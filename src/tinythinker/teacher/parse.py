"""Parse and validate a teacher reply into a Recall and one Analyze line per option.

Expected reply (see ``teacher.prompts``)::

    Key Information: <recall>
    B is correct. Because <reason>
    A is incorrect. Because <reason>
    ...

Tolerated: markdown bullets and bold (``- **A is correct.** Because``), option letters in
parentheses, blank lines, and reasons continued on the next line. The recall gets a final "."
when missing; each analysis is the teacher's line for that option verbatim (whitespace collapsed),
e.g. ``A is incorrect. Because ...``.

A reply is rejected, with one of ``REJECT_REASONS``, when it was cut off (finish_reason
"length"), stopped for another reason than "stop", has no Key Information, misses an option,
names an unknown or repeated option, leaves a reason empty, calls no option or several options
correct, or calls an option correct that is not the gold hint (when a gold label is given).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..stages import normalize_recall

CUT_OFF = "cut_off"
REJECT_REASONS = (
    CUT_OFF,
    "stopped_abnormally",
    "empty_reply",
    "missing_key_information",
    "missing_option",
    "unknown_option",
    "repeated_option",
    "empty_explanation",
    "no_option_correct",
    "several_options_correct",
    "contradicts_gold",
)

_DECORATION = re.compile(r"^(?:[-*\u2022>]+|\d+[.)])\s*")
_KEY_INFO = re.compile(r"^key\s+information\s*[:\-\u2013]\s*(.*)$", re.IGNORECASE)
_OPTION = re.compile(r"^(?:[Oo]ption\s+)?\(?([A-Z])\)?\s+(?i:is\s+(correct|incorrect))\b\s*[.:,;]?\s*(.*)$")
_BECAUSE = re.compile(r"^because\b[\s,:]*", re.IGNORECASE)


@dataclass
class ParsedReply:
    """A parsed reply: ``reason`` is None when it is usable."""

    reason: str | None
    recall: str = ""
    analyze: dict[str, str] = field(default_factory=dict)
    stated_answer: str | None = None  # the option the teacher called correct, when exactly one

    @property
    def ok(self) -> bool:
        return self.reason is None


def _clean(line: str) -> str:
    line = line.strip().replace("**", "").replace("__", "")
    return _DECORATION.sub("", line).strip()


def parse_reply(text: str, labels: list[str], gold: str | None = None, finish_reason: str | None = "stop") -> ParsedReply:
    """Parse ``text``; ``gold`` None skips the check against the hint (label vote mode)."""
    if finish_reason == "length":
        return ParsedReply(CUT_OFF)
    if finish_reason not in (None, "stop"):
        return ParsedReply("stopped_abnormally")
    if not text or not text.strip():
        return ParsedReply("empty_reply")
    recall_parts: list[str] | None = None
    options: dict[str, list[str]] = {}
    verdicts: dict[str, bool] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = _clean(raw)
        if not line:
            continue
        key_info = _KEY_INFO.match(line)
        option = _OPTION.match(line)
        if key_info and recall_parts is None:
            recall_parts = [key_info.group(1).strip()]
            current = recall_parts
        elif option:
            label = option.group(1)
            if label not in labels:
                return ParsedReply("unknown_option")
            if label in options:
                return ParsedReply("repeated_option")
            verdict = option.group(2).lower()
            reason = _BECAUSE.sub("", option.group(3)).strip()
            options[label] = [f"{label} is {verdict}. Because", reason] if reason else [f"{label} is {verdict}. Because"]
            verdicts[label] = verdict == "correct"
            current = options[label]
        elif current is not None:
            current.append(line)
    recall = normalize_recall(" ".join(recall_parts)) if recall_parts else ""
    if not recall:
        return ParsedReply("missing_key_information")
    if any(label not in options for label in labels):
        return ParsedReply("missing_option")
    if any(len(parts) < 2 or not " ".join(parts[1:]).strip() for parts in options.values()):
        return ParsedReply("empty_explanation")
    correct = [label for label in labels if verdicts[label]]
    if not correct:
        return ParsedReply("no_option_correct")
    if len(correct) > 1:
        return ParsedReply("several_options_correct")
    analyze = {label: " ".join(" ".join(options[label]).split()) for label in labels}
    if gold is not None and correct[0] != gold:
        return ParsedReply("contradicts_gold", recall, analyze, correct[0])
    return ParsedReply(None, recall, analyze, correct[0])
