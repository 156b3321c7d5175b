"""Evaluation of a trained student: accuracy of the three-stage pipeline on a question file.

``evaluate(model, data, out)`` writes ``out/metrics.json`` (``accuracy``, ``n``, ``correct``,
``unparsed``, ``ties``, settings) and ``out/predictions.jsonl`` (one record per question with every
intermediate text, the parsed answer, the votes and correctness). Accuracy is measured by
generating and parsing, never by loss. The variant defaults to the one the student was trained on
(``tinythinker_student.json`` in its folder), else the full three-stage variant.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from . import stages
from .data.schema import read_questions
from .errors import ConfigError
from .infer import ChainDecoding, Engine, default_device, summary_metrics
from .io import write_json, write_jsonl
from .student import STUDENT_META, load_student


def trained_variant(model_dir: str | Path) -> str | None:
    """The variant recorded by the trainer next to a saved student, if any."""
    meta = Path(model_dir) / STUDENT_META
    if meta.is_file():
        return json.loads(meta.read_text(encoding="utf-8")).get("variant")
    return None


def evaluate(
    model: str | Path,
    data: str | Path,
    out: str | Path,
    samples: int = 1,
    variant: str | None = None,
    batch_size: int = 64,
    max_new_tokens: int = 200,
    temperature: float = 0.7,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 42,
    limit: int = 0,
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Answer every question of ``data`` with the student in ``model``; returns the metrics.

    ``samples`` > 1: self-consistency (recall and analyze sampled with ``temperature`` /
    ``top_k`` / ``top_p``, summarize greedy) and a majority vote.
    """
    if samples < 1:
        raise ConfigError("samples: must be at least 1")
    variant = variant or trained_variant(model) or stages.FULL_VARIANT
    if variant != stages.COT and variant not in stages.VARIANTS:
        raise ConfigError(f"variant: unknown {variant!r}; choose one of {', '.join([*stages.VARIANTS, stages.COT])}")
    questions = read_questions(data)
    if limit:
        questions = questions[:limit]
    student = load_student(model, trust_remote_code=trust_remote_code)
    device = default_device()
    engine = Engine(student.model.to(device), student.tokenizer, batch_size=batch_size, device=device)
    if samples == 1:
        decoding = ChainDecoding.greedy(max_new_tokens)
    else:
        decoding = ChainDecoding.self_consistency(temperature, top_k, top_p, max_new_tokens)
    started = time.perf_counter()
    predictions = []
    chunk = max(1, batch_size * 4 // samples)
    with Progress(TextColumn("eval"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True) as progress:
        task = progress.add_task("eval", total=len(questions))
        for start in range(0, len(questions), chunk):
            part = questions[start : start + chunk]
            # one seed per chunk, so results do not depend on how far a sampler ran before
            predictions += engine.predict(part, variant, samples, decoding, seed=seed + start)
            progress.update(task, advance=len(part))
    seconds = time.perf_counter() - started
    metrics = {
        **summary_metrics(predictions),
        "variant": variant,
        "samples": samples,
        "model": str(model),
        "data": str(data),
        "seed": seed,
        "decoding": {"temperature": temperature, "top_k": top_k, "top_p": top_p, "max_new_tokens": max_new_tokens} if samples > 1 else {"greedy": True, "max_new_tokens": max_new_tokens},
        "seconds": seconds,
        "questions_per_s": len(questions) / seconds if seconds else None,
    }
    out = Path(out)
    write_jsonl(out / "predictions.jsonl", (p.to_dict() for p in predictions))
    write_json(out / "metrics.json", metrics)
    return metrics
