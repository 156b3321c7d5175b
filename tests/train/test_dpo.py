"""Phase 2: the iterative DPO loop on a tiny phase-1 student, and its kill-and-resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from stage_fixtures import THINGS, make_questions, rationale, tiny_config, write_stage_dir

from tinythinker.config import load_config
from tinythinker.data.schema import write_questions
from tinythinker.errors import ConfigError
from tinythinker.io import write_jsonl
from tinythinker.train.dpo import ReflectConfig, block_schedule, reflect
from tinythinker.train.sft import SFTConfig, train

REPO = Path(__file__).resolve().parents[2]


def make_phase1(root: Path, preset: str) -> Path:
    """A prepared data folder, teacher rationales and a briefly trained tiny phase-1 student."""
    torch.set_num_threads(1)
    train_questions = make_questions(list(THINGS), seed=1)
    write_stage_dir(root / "stages", train_questions)
    data = root / "data"
    write_questions(data / "train.jsonl", train_questions)
    write_questions(data / "valid.jsonl", make_questions(list(THINGS)[:6], seed=2, prefix="v"))
    write_questions(data / "test.jsonl", make_questions(list(THINGS)[6:], seed=3, prefix="t"))
    write_jsonl(root / "rationales.jsonl", [
        {"id": q.id, "recall": rationale(q)[0], "analyze": rationale(q)[1], "teacher": "test", "sample": 0} for q in train_questions
    ])
    config = tiny_config(root, preset=preset, valid=str(data / "valid.jsonl"), max_steps=24, tensorboard=False)
    train(load_config(SFTConfig, None, [f"{k}={json.dumps(v)}" for k, v in config.items()]))
    return root


@pytest.fixture(scope="module")
def phase1(tmp_path_factory) -> Path:
    return make_phase1(tmp_path_factory.mktemp("phase1"), "t5-tiny")


def reflect_config(root: Path, out: str, **extra) -> dict:
    config = {
        "model": str(root / "run" / "best"), "data": str(root / "data"), "rationales": str(root / "rationales.jsonl"),
        "out": str(root / out), "iterations": 2, "recall_samples": 4, "analyze_samples": 3, "max_chosen_recalls": 1,
        "max_new_tokens": 24, "batch_size": 4, "lr": 1e-3, "max_steps": 6, "block_steps": 3, "seed": 5, "cpu": True,
    }
    config.update(extra)
    return config


def run_reflect(root: Path, out: str, **extra) -> dict:
    config = reflect_config(root, out, **extra)
    return reflect(load_config(ReflectConfig, None, [f"{k}={json.dumps(v)}" for k, v in config.items()]))


def test_loop_mines_trains_and_never_keeps_a_worse_model(phase1):
    summary = run_reflect(phase1, "p2")
    out = phase1 / "p2"
    assert [row["iteration"] for row in summary["iterations"]] == [1, 2]
    previous = summary["start"]["valid_accuracy"]
    for row in summary["iterations"]:
        assert row["valid_accuracy"] >= previous  # each iteration starts from the previous best
        previous = row["valid_accuracy"]
        folder = out / f"iter-{row['iteration']}"
        mining = json.loads((folder / "mining.json").read_text())
        assert mining["questions"] == 12 and mining["chains_sampled"] >= 12 * 4
        recall_pairs = [json.loads(line) for line in (folder / "pairs_recall.jsonl").read_text().splitlines()]
        analyze_pairs = [json.loads(line) for line in (folder / "pairs_analyze.jsonl").read_text().splitlines()]
        assert row["pairs"].get("recall", 0) == len(recall_pairs) == mining["recall"]["pairs"]
        assert recall_pairs or analyze_pairs, "a tiny student makes mistakes: there is something to prefer"
        assert all(p["prompt"].endswith("\nRecall:") and p["chosen"] != p["rejected"] for p in recall_pairs)
        assert all("\nAnalyze: For option " in p["prompt"] for p in analyze_pairs)
        assert (folder / "best" / "model.safetensors").is_file()
        assert len(json.loads((folder / "reference_logps.json").read_text()).get("recall", [])) == len(recall_pairs)
    assert summary["best_valid_accuracy"] == summary["iterations"][-1]["valid_accuracy"]
    assert (out / "best" / "model.safetensors").is_file()
    assert json.loads((out / "summary.json").read_text()) == summary
    # DPO moved the weights (lr 1e-3): iteration 1 trained from phase 1's best
    log = [json.loads(line) for line in (out / "iter-1" / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert sum("loss" in r for r in log) == 6 and sum("eval_accuracy" in r for r in log) == 2


def test_loop_runs_with_a_causal_student(tmp_path):
    root = make_phase1(tmp_path, "llama-tiny")
    summary = run_reflect(root, "p2", iterations=1)
    row = summary["iterations"][0]
    assert row["valid_accuracy"] >= summary["start"]["valid_accuracy"] and row["steps"] == 6
    log = [json.loads(line) for line in (root / "p2" / "iter-1" / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["loss"] == r["loss"] for r in log if "loss" in r)  # no NaN


def test_dpo_on_recall_only_mines_no_analyze_pairs(phase1):
    summary = run_reflect(phase1, "p2-recall", dpo_on="recall", iterations=1)
    assert summary["dpo_on"] == "recall"
    assert (phase1 / "p2-recall" / "iter-1" / "pairs_analyze.jsonl").read_text() == ""


def test_invalid_combinations_fail_fast(phase1):
    with pytest.raises(ConfigError, match="dpo_on: analyze needs"):
        run_reflect(phase1, "bad", dpo_on="analyze", variant="recall_summarize")
    with pytest.raises(ConfigError, match="dpo_on"):
        run_reflect(phase1, "bad", dpo_on="summarize")


def test_block_schedule_is_proportional():
    assert block_schedule({"recall": 30, "analyze": 90}, 20) == [("recall", 5), ("analyze", 15)]
    assert block_schedule({"recall": 0, "analyze": 9}, 20) == [("analyze", 20)]
    assert block_schedule({"recall": 1, "analyze": 999}, 10) == [("recall", 1), ("analyze", 10)]


def test_kill_and_resume_matches_an_uninterrupted_run(phase1, kill_midway):
    config = reflect_config(phase1, "p2-killed", max_steps=9, block_steps=3)
    path = phase1 / "reflect.yaml"
    path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "tinythinker.cli", "reflect", "--config", str(path)]
    kill_midway(command, (phase1 / "p2-killed" / "iter-2" / "checkpoint" / "trainer_state.json").is_file, env)
    assert not (phase1 / "p2-killed" / "summary.json").exists()
    resumed = subprocess.run(command, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr

    reference = run_reflect(phase1, "p2-straight", max_steps=9, block_steps=3)
    summary = json.loads((phase1 / "p2-killed" / "summary.json").read_text())
    for a, b in zip(summary["iterations"], reference["iterations"]):
        assert (a["valid_accuracy"], a["test_accuracy"], a["pairs"], a["best_step"]) == (
            b["valid_accuracy"], b["test_accuracy"], b["pairs"], b["best_step"])
    for k in (1, 2):
        for name in ("pairs_recall.jsonl", "pairs_analyze.jsonl"):
            assert (phase1 / "p2-killed" / f"iter-{k}" / name).read_bytes() == (phase1 / "p2-straight" / f"iter-{k}" / name).read_bytes()
        losses = [[r["loss"] for r in map(json.loads, (phase1 / run / f"iter-{k}" / "logs" / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
                  for run in ("p2-killed", "p2-straight")]
        assert len(losses[0]) == 9 and losses[0] == pytest.approx(losses[1], abs=1e-5)
    a, b = load_file(str(phase1 / "p2-killed" / "best" / "model.safetensors")), load_file(str(phase1 / "p2-straight" / "best" / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_resume_false_starts_afresh(phase1):
    out = phase1 / "p2-fresh"
    out.mkdir()
    (out / "start.json").write_text(json.dumps({"model": "old", "valid_accuracy": 7.0, "test_accuracy": 7.0}))
    summary = run_reflect(phase1, "p2-fresh", iterations=1, resume=False)
    assert summary["start"]["model"] == str(phase1 / "run" / "best") and summary["start"]["valid_accuracy"] <= 1.0
