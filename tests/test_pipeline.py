"""`tinythinker run`: every step from one config, skipped when complete, resumed after a kill."""

from __future__ import annotations

import json
import shutil
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tinythinker.config import load_config
from tinythinker.errors import ConfigError
from tinythinker.pipeline import RunConfig, resolve_config_path, run

TINY = {
    "name": "tiny",
    "data": {"kind": "synthetic", "synthetic": {"seed": 0, "entities": 6, "options": 3, "values_per_attribute": 4, "questions_per_fact": 1}},
    "teacher": {"teacher": "synthetic", "samples": 1},
    "student": {"name": "t5-tiny", "init": "scratch", "vocab_size": 400,
                "overrides": {"d_model": 32, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2, "d_kv": 16}},
    "phase1": {"steps": {"summarize": 4}, "eval_max_new_tokens": 24,
               "train": {"interval": 2, "max_steps": 10, "batch_size": 8, "lr": 1.0e-3, "eval_max_new_tokens": 24, "tensorboard": False, "cpu": True}},
    "phase2": {"reflect": {"iterations": 1, "recall_samples": 2, "analyze_samples": 2, "max_chosen_recalls": 1, "max_new_tokens": 24,
                           "batch_size": 4, "max_steps": 2, "block_steps": 2, "cpu": True}},
}


def write_config(tmp_path: Path, **changes) -> Path:
    config = json.loads(json.dumps(TINY))
    config["out"] = str(tmp_path / "run")
    config.update(changes)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def mtime(path: Path) -> float:
    return path.stat().st_mtime_ns


def test_report_then_skip_then_rerun_only_what_changed(tmp_path):
    path = write_config(tmp_path)
    report = run(load_config(RunConfig, path))
    out = tmp_path / "run"
    for name in ("report.md", "report.json", "report.png", "phase1/best/model.safetensors", "phase2/best/model.safetensors"):
        assert (out / name).is_file(), name
    test = report["test_accuracy"]
    assert set(test) >= {"answer_only", "cot", "phase1", "phase2"}
    assert test["answer_only"] == test["phase1"]["summarize"] and test["cot"] is None
    assert len(test["phase2"]) == 1 and all(0 <= v <= 100 for v in [test["answer_only"], *test["phase1"].values(), *test["phase2"]])
    assert set(report["wall_seconds"]) >= {"data", "teach", "train:summarize", "train:recall_analyze_summarize", "eval:summarize", "reflect"}
    assert json.loads((out / "report.json").read_text()) == report
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    stamps = {name: mtime(out / name) for name in ("data/train.jsonl", "teacher/rationales.jsonl", "phase1/best/model.safetensors", "phase2/summary.json")}
    again = run(load_config(RunConfig, path))
    assert again["test_accuracy"] == test and again["wall_seconds"] == report["wall_seconds"]  # every step skipped
    assert stamps == {name: mtime(out / name) for name in stamps}

    moved = tmp_path / "moved"  # a copied run folder resumes in its new place: nothing is re-run
    shutil.copytree(out, moved)
    elsewhere = run(load_config(RunConfig, path, [f"out={moved}"]))
    assert elsewhere["test_accuracy"] == test and elsewhere["wall_seconds"] == report["wall_seconds"]

    changed = run(load_config(RunConfig, path, ["phase2.reflect.lr=1.0e-4"]))
    assert mtime(out / "phase1/best/model.safetensors") == stamps["phase1/best/model.safetensors"]
    assert mtime(out / "phase2/summary.json") != stamps["phase2/summary.json"]
    assert changed["test_accuracy"]["phase1"] == test["phase1"]


def test_killed_run_resumes(tmp_path, kill_midway):
    path = write_config(tmp_path, phase2={"enabled": False}, phase1=dict(TINY["phase1"], train=dict(TINY["phase1"]["train"], max_steps=40)))
    command = [sys.executable, "-m", "tinythinker.cli", "run", str(path)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    checkpoint = tmp_path / "run" / "phase1" / "checkpoint" / "trainer_state.json"
    kill_midway(command, checkpoint.is_file, env)
    assert not (tmp_path / "run" / "report.json").exists()
    resumed = subprocess.run(command, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "data: complete, skipped" in resumed.stderr and "train:summarize: complete, skipped" in resumed.stderr
    assert "resumed from" in resumed.stdout + resumed.stderr
    metrics = json.loads((tmp_path / "run" / "phase1" / "metrics.json").read_text())
    assert metrics["steps"] == 40 and metrics["complete"]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["test_accuracy"]["phase2"] == [] and "reflect" not in report["wall_seconds"]


def test_bundled_configs_load():
    for name in ("default", "ablations", "ci"):
        config = load_config(RunConfig, resolve_config_path(name))
        assert config.phase1.variants[:2] == ["summarize", "recall_analyze_summarize"]
    assert load_config(RunConfig, resolve_config_path("ablations")).phase1.cot
    with pytest.raises(ConfigError, match="not a bundled config"):
        resolve_config_path("nonexistent")
    example = load_config(RunConfig, Path(__file__).resolve().parents[1] / "configs" / "run-csqa-t5-small.yaml")
    assert example.data.dataset == "csqa" and example.student.init == "pretrained" and example.phase1.train.interval == 100


def test_invalid_combinations_fail_fast(tmp_path):
    path = write_config(tmp_path)
    with pytest.raises(ConfigError, match="phase 2 starts from"):
        load_config(RunConfig, path, ["phase1.variants=summarize"])
    with pytest.raises(ConfigError, match="data.dataset"):
        load_config(RunConfig, path, ["data.kind=prepare"])
    with pytest.raises(ConfigError, match="unknown variant"):
        load_config(RunConfig, path, ["phase1.variants=summarize,recall_only", "phase2.enabled=false"])


def test_bundled_ci_config_end_to_end_through_the_cli(tmp_path):
    """The bundled `ci` configuration through `tinythinker run`: a complete report, and the method's effect.

    The ci config is the default's world, teacher, student and 6,000-step phase 1 (the analyze verdict
    is learned late in it; see docs/run.md). The margin asserted, 10 points on 200 test questions, is
    more than twice the spread of a difference of two chance-level accuracies (sd ~4.3 points); the
    default measured 40-50 points on this machine.
    """
    result = subprocess.run([sys.executable, "-m", "tinythinker.cli", "run", "ci", "--out", str(tmp_path / "ci")],
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "ci" / "report.json").read_text())
    test = report["test_accuracy"]
    assert isinstance(test["answer_only"], float) and isinstance(test["phase1"]["recall_analyze_summarize"], float)
    assert len(test["phase2"]) == 1 and all(isinstance(v, float) for v in test["phase2"])
    assert report["chance"] == 25.0 and report["n_test"] == 200
    assert {"data", "teach", "train:summarize", "train:recall_analyze_summarize", "reflect"} <= set(report["wall_seconds"])

    # the learning effect: answer-only can't know the held-out facts, the TinyThinker student recalls them
    assert test["answer_only"] < 25.0 + 10, test
    assert test["phase1"]["recall_analyze_summarize"] >= test["answer_only"] + 10, test
    assert len(report["checks"]) == 2 and all(check["passed"] for check in report["checks"]), report["checks"]  # + phase 2 >= phase 1

    teacher = json.loads((tmp_path / "ci" / "teacher" / "report.json").read_text())
    assert teacher["status"] == "complete" and teacher["questions_without_rationale"] == 0
    assert f"report: {tmp_path / 'ci' / 'report.md'}" in result.stdout


def test_run_takes_overrides_without_a_config_name(tmp_path):
    """`tinythinker run key=value` applies the overrides to the bundled default (here: a bad key, so nothing runs)."""
    result = subprocess.run([sys.executable, "-m", "tinythinker.cli", "run", "phase1.bogus=1", "--out", str(tmp_path / "r")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "default.yaml: phase1.bogus: unknown key" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
