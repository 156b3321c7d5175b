"""Small hand-made questions and rationales, turned into stage folders with tinythinker.stages.

(A module of its own, not conftest.py, so that test files can import it by a unique name.)"""

from __future__ import annotations

import random
from pathlib import Path

from tinythinker import stages
from tinythinker.data.schema import Option, Question
from tinythinker.io import write_json, write_jsonl

THINGS = {
    "apple": "red", "sky": "blue", "grass": "green", "snow": "white", "coal": "black", "banana": "yellow",
    "cherry": "red", "sea": "blue", "leaf": "green", "milk": "white", "crow": "black", "lemon": "yellow",
}
COLOURS = sorted(set(THINGS.values()))


def make_questions(names, num_options: int = 3, seed: int = 0, prefix: str = "q") -> list[Question]:
    rng = random.Random(seed)
    questions = []
    for index, name in enumerate(names):
        wrong = rng.sample([c for c in COLOURS if c != THINGS[name]], num_options - 1)
        colours = wrong[:]
        gold_at = rng.randrange(num_options)
        colours.insert(gold_at, THINGS[name])
        options = [Option(chr(65 + i), c) for i, c in enumerate(colours)]
        questions.append(Question(f"{prefix}{index}", f"What colour is the {name}?", options, chr(65 + gold_at), "test"))
    return questions


def rationale(question: Question) -> tuple[str, dict[str, str]]:
    name = question.question.split()[-1].rstrip("?")
    recall = f"The {name} is {THINGS[name]}"  # no final stop: stage_rows adds it
    analyses = {
        o.label: f"{o.text} is {'correct' if o.label == question.answer else 'incorrect'}. Because the {name} is {THINGS[name]}."
        for o in question.options
    }
    return recall, analyses


def write_stage_dir(folder: Path, questions, variant: str = stages.FULL_VARIANT, num_options: int = 3) -> Path:
    rows: dict[str, list[dict]] = {}
    for q in questions:
        recall, analyses = rationale(q)
        if variant == stages.COT:
            rows.setdefault(stages.COT, []).append(
                {"id": q.id, "input": stages.cot_input(q), "target": stages.cot_target(q, recall, analyses, q.answer)}
            )
            continue
        for stage, pairs in stages.stage_rows(q, recall, analyses, variant).items():
            rows.setdefault(stage, []).extend({"id": q.id, "input": i, "target": t} for i, t in pairs)
    for stage, stage_rows in rows.items():
        write_jsonl(folder / f"{stage}.jsonl", stage_rows)
    write_json(folder / "manifest.json", {"variant": variant, "counts": {s: len(r) for s, r in rows.items()}, "num_options": num_options})
    return folder


def tiny_config(root: Path, preset: str = "t5-tiny", dropout: float = 0.0, **extra) -> dict:
    """A phase-1 config mapping for a tiny scratch student (fast on 2 CPU cores)."""
    size = (
        {"d_model": 32, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2, "d_kv": 16, "dropout_rate": dropout}
        if preset.startswith("t5")
        else {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2, "attention_dropout": dropout}
    )
    config = {
        "stages": str(root / "stages"),
        "valid": str(root / "valid.jsonl"),
        "out": str(root / "run"),
        "student": {"name": preset, "init": "scratch", "vocab_size": 400, "overrides": size},
        "interval": 2,
        "max_steps": 30,
        "batch_size": 8,
        "lr": 1e-2,
        "warmup_ratio": 0.1,
        "eval_max_new_tokens": 24,
        "log_every": 1,
        "seed": 7,
        "cpu": True,
    }
    config.update(extra)
    return config
