"""Phase-2 preference pairs from the student's own chains (METHOD.md section 6).

Recall pairs, per question, from chains sampled with the recall at T = 0.7 (rest greedy):
- chosen: distinct recalls whose chain ended at the gold answer; rejected: distinct recalls whose
  chain ended at a wrong answer (an unparsed answer is wrong); a recall in both sets leaves both;
- no rejected recall -> no pairs for the question;
- balance: more chosen -> rejected resampled with replacement; more rejected -> chosen topped up
  with the teacher's recalls (and resampled with replacement if still short).

Analyze pairs, per chosen recall, from chains whose analyses were sampled for that fixed recall:
- only chains whose prediction is a valid option count; chosen chains end at gold, rejected at a
  wrong option; an analysis set found on both sides is dropped from both;
- no rejected chain -> no pairs; no chosen chain -> the teacher's analyses are the chosen side;
- balance as for recall pairs (top-ups come from the teacher's analyses);
- each (chosen, rejected) chain pair gives a pair for the gold option and one for the option the
  rejected chain predicted; a pair whose two texts are equal is skipped (it teaches nothing).

Pure functions: the chains come from ``tinythinker.infer`` and the teacher's texts from the
rationale records; ``rng`` makes the resampling reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

from .. import stages
from ..data.schema import Question


class ChainLike(Protocol):
    recall: str | None
    analyses: dict[str, str] | None
    answer: str | None


@dataclass
class MiningStats:
    """Counts per rule, summed over questions (for the mining report)."""

    questions: int = 0
    chains: int = 0
    pairs: int = 0
    no_rejected: int = 0  # questions (or recall groups) skipped: nothing to reject
    no_chosen: int = 0  # skipped: no chosen side even after top-up
    overlap_removed: int = 0  # texts (or analysis sets) found on both sides
    rejected_resampled: int = 0  # rejected items added by resampling with replacement
    chosen_topped_up: int = 0  # chosen items taken from the teacher
    chosen_resampled: int = 0  # chosen items added by resampling after the top-up
    invalid_prediction: int = 0  # analyze chains dropped: no valid option predicted
    identical_texts: int = 0  # analyze pairs skipped: chosen text == rejected text

    def add(self, other: "MiningStats") -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)

    def to_dict(self) -> dict[str, int]:
        return dict(vars(self))


def _distinct(items):
    return list(dict.fromkeys(items))


def balance(chosen: list, rejected: list, teacher: Sequence, rng: random.Random, stats: MiningStats) -> tuple[list, list]:
    """Equal-length chosen/rejected lists by the rules above (order: own items first)."""
    chosen, rejected = list(chosen), list(rejected)
    if len(chosen) > len(rejected):
        extra = [rng.choice(rejected) for _ in range(len(chosen) - len(rejected))]
        stats.rejected_resampled += len(extra)
        rejected += extra
    elif len(rejected) > len(chosen):
        candidates = [t for t in _distinct(teacher) if t not in chosen and t not in rejected]
        top_up = candidates[: len(rejected) - len(chosen)]
        stats.chosen_topped_up += len(top_up)
        chosen += top_up
        if chosen and len(chosen) < len(rejected):
            extra = [rng.choice(chosen) for _ in range(len(rejected) - len(chosen))]
            stats.chosen_resampled += len(extra)
            chosen += extra
    return chosen, rejected


def split_by_outcome(question: Question, chains: Sequence[ChainLike], key) -> tuple[list, list, int]:
    """Distinct keys of chains that ended at gold / elsewhere, with the overlap removed from both."""
    good = _distinct(key(c) for c in chains if c.answer == question.answer)
    bad = _distinct(key(c) for c in chains if c.answer != question.answer)
    both = set(good) & set(bad)
    return [k for k in good if k not in both], [k for k in bad if k not in both], len(both)


def recall_pairs(
    question: Question, chains: Sequence[ChainLike], teacher_recalls: Sequence[str], rng: random.Random
) -> tuple[list[dict[str, str]], list[str], MiningStats]:
    """(pairs, chosen recalls before top-up, stats) for one question."""
    stats = MiningStats(questions=1, chains=len(chains))
    chosen, rejected, overlap = split_by_outcome(question, chains, lambda c: stages.normalize_recall(c.recall or ""))
    stats.overlap_removed += overlap
    own_chosen = list(chosen)
    if not rejected:
        stats.no_rejected += 1
        return [], own_chosen, stats
    teacher = [stages.normalize_recall(t) for t in teacher_recalls if t.strip()]
    chosen, rejected = balance(chosen, rejected, teacher, rng, stats)
    if not chosen:
        stats.no_chosen += 1
        return [], own_chosen, stats
    prompt = stages.recall_input(question)
    pairs = [{"id": question.id, "prompt": prompt, "chosen": c, "rejected": r} for c, r in zip(chosen, rejected)]
    stats.pairs = len(pairs)
    return pairs, own_chosen, stats


def analyze_pairs(
    question: Question,
    recall: str,
    chains: Sequence[ChainLike],
    teacher_analyses: Sequence[Mapping[str, str]],
    rng: random.Random,
) -> tuple[list[dict[str, str]], MiningStats]:
    """Pairs for one question and one (chosen) recall, from chains sampled for that recall."""
    stats = MiningStats(chains=len(chains))
    labels = question.labels
    valid = [c for c in chains if c.answer in labels and c.analyses]
    stats.invalid_prediction += len(chains) - len(valid)

    def key(chain: ChainLike) -> tuple[tuple[str, str], ...]:
        return tuple((label, chain.analyses.get(label, "")) for label in labels)

    chosen_sets, rejected_sets, overlap = split_by_outcome(question, valid, key)
    stats.overlap_removed += overlap
    if not rejected_sets:
        stats.no_rejected += 1
        return [], stats
    predicted = {key(c): c.answer for c in valid}
    teacher_sets = [tuple((label, a.get(label, "")) for label in labels) for a in teacher_analyses if all(a.get(l, "").strip() for l in labels)]
    chosen_sets, rejected_sets = balance(chosen_sets, rejected_sets, teacher_sets, rng, stats)
    if not chosen_sets:
        stats.no_chosen += 1
        return [], stats
    pairs = []
    for good, bad in zip(chosen_sets, rejected_sets):
        good_map, bad_map = dict(good), dict(bad)
        for label in _distinct([question.answer, predicted[bad]]):
            if good_map[label] == bad_map[label]:
                stats.identical_texts += 1
                continue
            prompt = stages.analyze_input(question, label, recall)
            pairs.append({"id": question.id, "prompt": prompt, "chosen": good_map[label], "rejected": bad_map[label]})
    stats.pairs = len(pairs)
    return pairs, stats
