"""``tinythinker run``: the whole pipeline from one config, resumable step by step.

Steps, in order (each writes into its own folder under ``out``):

1. ``data``     questions: the synthetic benchmark, ``data prepare`` on a benchmark, or your own files -> ``data/``
2. ``teach``    teacher rationales for the training questions (any teacher or importer) -> ``teacher/``
3. ``build``    stage datasets for every variant trained -> ``stages/VARIANT/``
4. ``train``    phase 1 per variant: the main variant -> ``phase1/``, the others -> ``variants/VARIANT/``
5. ``eval``     test accuracy of every phase-1 model -> ``eval/VARIANT/``
6. ``reflect``  phase 2 (iterative DPO) from the main variant's best model -> ``phase2/``
7. ``report``   ``report.md``, ``report.json``, ``report.png``

A step whose outputs are complete for the same settings (its entry in ``steps.json`` records a hash
of its settings and of the steps it depends on) is skipped, so a re-run after an interruption
resumes; ``train``, ``teach`` and ``reflect`` also resume inside the step. Changing a setting re-runs
that step and every step after it that depends on it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import stages
from rich.console import Console

from .config import to_dict
from .data.synthetic import WorldConfig
from .errors import ConfigError, TinyThinkerError
from .io import write_json
from .student import StudentConfig
from .teacher.teach import TeachConfig
from .train.dpo import ReflectConfig
from .train.sft import SFTConfig

BUNDLED = Path(__file__).parent / "configs"
ANSWER_ONLY, MAIN = "summarize", stages.FULL_VARIANT
console = Console(stderr=True)


@dataclass
class DataConfig:
    """Where the questions come from.

    Fields:
        kind: ``synthetic`` (generated from ``synthetic``), ``prepare`` (``tinythinker data prepare``
            on ``dataset`` with ``sources``) or ``files`` (canonical ``train``/``valid``/``test`` JSONL).
        synthetic: the synthetic world's settings (kind synthetic).
        dataset: csqa, obqa, strategyqa or mcq (kind prepare).
        sources: the dataset's files or folder (kind prepare; empty: download into the cache).
        seed: seed of the splits (kind prepare).
        train / valid / test: canonical question files (kind files).
    """

    kind: str = "synthetic"
    synthetic: WorldConfig = field(default_factory=WorldConfig)
    dataset: str = ""
    sources: list[str] = field(default_factory=list)
    seed: int = 42
    train: str = ""
    valid: str = ""
    test: str = ""

    def validate(self) -> None:
        if self.kind not in ("synthetic", "prepare", "files"):
            raise ConfigError(f"data.kind: expected synthetic, prepare or files, got {self.kind!r}")
        if self.kind == "prepare" and not self.dataset:
            raise ConfigError("data.dataset: required with data.kind prepare")
        if self.kind == "files" and not (self.train and self.valid and self.test):
            raise ConfigError("data.train, data.valid and data.test: required with data.kind files")


@dataclass
class Phase1Config:
    """Phase 1 and its baselines.

    Fields:
        variants: the variants trained; ``summarize`` is the answer-only baseline and
            ``recall_analyze_summarize`` (the main model, required when phase 2 runs) is TinyThinker.
        cot: also train the standard CoT-distillation baseline.
        steps: per-variant ``max_steps`` overriding ``train.max_steps`` (e.g. ``{summarize: 300}``).
        train: the phase-1 trainer settings shared by all variants (``stages``, ``valid`` and ``out``
            are set by the pipeline).
        eval_batch_size / eval_max_new_tokens: test-set evaluation settings.
    """

    variants: list[str] = field(default_factory=lambda: [ANSWER_ONLY, MAIN])
    cot: bool = False
    steps: dict = field(default_factory=dict)
    train: SFTConfig = field(default_factory=lambda: SFTConfig(stages="<set by the pipeline>"))
    eval_batch_size: int = 256
    eval_max_new_tokens: int = 200

    def validate(self) -> None:
        for variant in self.variants:
            stages.check_variant(variant) if variant in stages.VARIANTS else _bad_variant(variant)
        unknown = [k for k in self.steps if k not in self.variants and not (k == stages.COT and self.cot)]
        if unknown:
            raise ConfigError(f"phase1.steps: {unknown[0]!r} is not a trained variant")


def _bad_variant(variant: str) -> None:
    raise ConfigError(f"phase1.variants: unknown variant {variant!r}; choose from {', '.join(stages.VARIANTS)}")


@dataclass
class Phase2Config:
    """Phase 2 (self-reflection).

    Fields:
        enabled: run phase 2 from the main variant's best phase-1 model.
        reflect: the phase-2 settings (``model``, ``data``, ``rationales`` and ``out`` are set by the pipeline).
    """

    enabled: bool = True
    reflect: ReflectConfig = field(default_factory=lambda: ReflectConfig(model="<set>", data="<set>"))


@dataclass
class RunConfig:
    """The whole pipeline (``tinythinker run``); see ``configs/`` for documented examples.

    Fields:
        name: shown in the report.
        description: one paragraph shown in the report.
        out: output folder (a re-run resumes there).
        seed: seeds every step (copied into the steps' own seeds).
        data / teacher / student / phase1 / phase2: the steps' settings.
        min_gain: the learning-effect check of the report: phase 1 must beat answer-only on test by
            at least this many points (0 disables the check).
    """

    name: str = "run"
    description: str = ""
    out: str = "runs/default"
    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeachConfig = field(default_factory=lambda: TeachConfig(teacher="synthetic", samples=1))
    student: StudentConfig = field(default_factory=StudentConfig)
    phase1: Phase1Config = field(default_factory=Phase1Config)
    phase2: Phase2Config = field(default_factory=Phase2Config)
    min_gain: float = 0.0

    def validate(self) -> None:
        if self.phase2.enabled and MAIN not in self.phase1.variants:
            raise ConfigError(f"phase1.variants: phase 2 starts from {MAIN}; add it or set phase2.enabled=false")
        if self.teacher.teacher == "synthetic" and self.data.kind != "synthetic" and not self.teacher.source:
            raise ConfigError("teacher: the synthetic teacher needs data.kind synthetic (or teacher.source = a world.json)")


def resolve_config_path(name: str | None) -> Path:
    """A config file path, or the name of a bundled config (``default``, ``ablations``, ``ci``)."""
    if name is None:
        return BUNDLED / "default.yaml"
    path = Path(name)
    if path.is_file():
        return path
    bundled = BUNDLED / f"{name}.yaml"
    if bundled.is_file():
        return bundled
    names = ", ".join(sorted(p.stem for p in BUNDLED.glob("*.yaml")))
    raise ConfigError(f"{name}: no such config file, and not a bundled config ({names})")


def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _settings(config: Any, *paths: str) -> dict[str, Any]:
    """A step config's settings without the paths inside the run folder (the keys already fix them)."""
    return to_dict(dataclasses.replace(config, **{name: "" for name in paths}))


class Steps:
    """``steps.json``: per step, the settings hash and wall seconds of its last complete run."""

    def __init__(self, out: Path):
        self.path = out / "steps.json"
        self.records: dict[str, dict[str, Any]] = json.loads(self.path.read_text()) if self.path.is_file() else {}
        # a step interrupted with other settings than now must not be resumed: remember what it ran with
        for name in [n for n in self.records if n.endswith(":started")]:
            self.records.setdefault(name[: -len(":started")], {"key": self.records.pop(name)["key"], "seconds": 0.0})

    def run(self, name: str, key: str, done_when: Path, work: Callable[[], Any], reset: Path | None = None) -> float:
        """Run ``work`` unless ``name`` completed with ``key`` and ``done_when`` exists; returns its seconds.

        ``reset``: a folder removed before running when the step's settings changed (an interrupted
        run with the same settings is resumed in place instead).
        """
        record = self.records.get(name)
        if record and record["key"] == key and done_when.exists():
            console.print(f"[dim]{name}: complete, skipped[/dim]")
            return record["seconds"]
        if record and record["key"] != key and reset is not None:
            shutil.rmtree(reset, ignore_errors=True)
        self.records.pop(name, None)
        self.records[f"{name}:started"] = {"key": key}
        write_json(self.path, self.records)
        console.rule(name)
        started = time.perf_counter()
        work()
        seconds = time.perf_counter() - started
        self.records.pop(f"{name}:started")
        self.records[name] = {"key": key, "seconds": round(seconds, 2)}
        write_json(self.path, self.records)
        return self.records[name]["seconds"]


def run(config: RunConfig) -> dict[str, Any]:
    """Run (or resume) every step; returns ``report.json``'s contents."""
    from .data.prepare import prepare
    from .data.schema import read_questions, write_questions
    from .data.synthetic import write_benchmark
    from .evaluate import evaluate
    from .report import percent, write_report
    from .teacher.build import build
    from .teacher.teach import teach
    from .train.dpo import reflect
    from .train.sft import train

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", to_dict(config))
    steps = Steps(out)
    wall: dict[str, float] = {}
    data_dir, teacher_dir = out / "data", out / "teacher"

    # 1. data
    data_key = _hash(to_dict(config.data))

    def make_data() -> None:
        if config.data.kind == "synthetic":
            write_benchmark(config.data.synthetic, data_dir)
        elif config.data.kind == "prepare":
            prepare(config.data.dataset, list(config.data.sources), data_dir, seed=config.data.seed)
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            for split in ("train", "valid", "test"):
                write_questions(data_dir / f"{split}.jsonl", read_questions(getattr(config.data, split)))

    wall["data"] = steps.run("data", data_key, data_dir / "test.jsonl", make_data, reset=data_dir)
    test_questions = read_questions(data_dir / "test.jsonl")
    options = max(len(q.options) for q in test_questions)

    # 2. teacher
    teach_config = dataclasses.replace(config.teacher)
    # hashed before the world's path is filled in, so a run folder can be moved or copied and resumed
    teach_key = _hash(data_key, to_dict(teach_config))
    if teach_config.teacher == "synthetic" and not teach_config.source:
        teach_config.source = str(data_dir / "world.json")

    def make_rationales() -> None:
        report = teach(data_dir / "train.jsonl", teacher_dir, teach_config)
        if report["status"] != "complete":
            raise TinyThinkerError(f"teach stopped ({report['status']}); see {teacher_dir}/report.json, then re-run")

    # no reset: the response cache keeps what was paid for; its keys tell settings apart
    wall["teach"] = steps.run("teach", teach_key, teacher_dir / "rationales.jsonl", make_rationales)
    rationales = teacher_dir / "rationales.jsonl"

    # 3-5. stage sets, phase 1 per variant, test evaluation
    variants = list(config.phase1.variants) + ([stages.COT] if config.phase1.cot else [])
    test_acc: dict[str, float] = {}
    valid_acc: dict[str, float] = {}
    train_keys: dict[str, str] = {}
    for variant in variants:
        stage_dir = out / "stages" / variant
        build_key = _hash(teach_key, variant)
        wall[f"build:{variant}"] = steps.run(f"build:{variant}", build_key, stage_dir / "manifest.json",
                                            lambda v=variant, d=stage_dir: build(data_dir, rationales, d, v), reset=stage_dir)
        run_dir = out / "phase1" if variant == MAIN else out / "variants" / variant
        sft = dataclasses.replace(
            config.phase1.train, stages=str(stage_dir), valid=str(data_dir / "valid.jsonl"), out=str(run_dir),
            student=config.student, variant=variant, seed=config.seed,
            max_steps=int(config.phase1.steps.get(variant, config.phase1.train.max_steps)),
        )
        train_key = train_keys[variant] = _hash(build_key, _settings(sft, "stages", "valid", "out"))
        wall[f"train:{variant}"] = steps.run(f"train:{variant}", train_key, run_dir / "metrics.json", lambda c=sft: train(c), reset=run_dir)
        valid_acc[variant] = json.loads((run_dir / "metrics.json").read_text())["best_accuracy"]
        eval_dir = out / "eval" / variant
        eval_key = _hash(train_key, config.phase1.eval_batch_size, config.phase1.eval_max_new_tokens)
        wall[f"eval:{variant}"] = steps.run(
            f"eval:{variant}", eval_key, eval_dir / "metrics.json",
            lambda r=run_dir, e=eval_dir, v=variant: evaluate(r / "best", data_dir / "test.jsonl", e, variant=v,
                                                               batch_size=config.phase1.eval_batch_size,
                                                               max_new_tokens=config.phase1.eval_max_new_tokens, seed=config.seed),
            reset=eval_dir,
        )
        test_acc[variant] = json.loads((eval_dir / "metrics.json").read_text())["accuracy"]

    # 6. phase 2
    phase2: dict[str, Any] | None = None
    if config.phase2.enabled:
        reflect_config = dataclasses.replace(
            config.phase2.reflect, model=str(out / "phase1" / "best"), data=str(data_dir), rationales=str(rationales),
            out=str(out / "phase2"), variant=MAIN, seed=config.seed,
        )
        key = _hash(train_keys[MAIN], _settings(reflect_config, "model", "data", "rationales", "out"))
        wall["reflect"] = steps.run("reflect", key, out / "phase2" / "summary.json", lambda: reflect(reflect_config), reset=out / "phase2")
        phase2 = json.loads((out / "phase2" / "summary.json").read_text())

    # 7. report
    report: dict[str, Any] = {
        "name": config.name,
        "description": config.description,
        "n_test": len(test_questions),
        "chance": round(100.0 / options, 2),
        "test_accuracy": {
            "answer_only": percent(test_acc.get(ANSWER_ONLY)),
            "cot": percent(test_acc.get(stages.COT)),
            "phase1": {v: percent(a) for v, a in test_acc.items() if v != stages.COT},
            "phase2": [percent(row["test_accuracy"]) for row in phase2["iterations"]] if phase2 else [],
        },
        "valid_accuracy": {
            "answer_only": percent(valid_acc.get(ANSWER_ONLY)),
            "cot": percent(valid_acc.get(stages.COT)),
            "phase1": {v: percent(a) for v, a in valid_acc.items() if v != stages.COT},
            "phase2": [percent(row["valid_accuracy"]) for row in phase2["iterations"]] if phase2 else [],
        },
        "phase2_best_iteration": None,
        "wall_seconds": {k: round(v, 1) for k, v in wall.items()},
        "models": {"phase1": str(out / "phase1" / "best"), "phase2": str(out / "phase2" / "best") if phase2 else None},
    }
    checks = []
    main_test = report["test_accuracy"]["phase1"].get(MAIN)
    if config.min_gain and main_test is not None and report["test_accuracy"]["answer_only"] is not None:
        gain = main_test - report["test_accuracy"]["answer_only"]
        checks.append({"check": f"phase 1 beats answer-only on test by {gain:.1f} points (needed {config.min_gain:g})", "passed": gain >= config.min_gain})
    if phase2:
        best_valid = max(row["valid_accuracy"] for row in phase2["iterations"])
        start_valid = phase2["start"]["valid_accuracy"]
        # the iteration whose model is kept (the first to reach the best), 0 when none beat phase 1
        improved = best_valid > start_valid
        report["phase2_best_iteration"] = 1 + [r["valid_accuracy"] for r in phase2["iterations"]].index(best_valid) if improved else 0
        checks.append({"check": f"phase 2's kept model ({100 * best_valid:.1f} %) is at least phase 1's best on validation ({100 * start_valid:.1f} %)",
                       "passed": best_valid >= start_valid})
    report["checks"] = checks
    write_report(report, out)
    return report
