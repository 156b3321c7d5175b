"""Phase-1 trainer: tiny scratch students train, reload with plain Auto classes, run data parallel and resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from stage_fixtures import THINGS, make_questions, tiny_config, write_stage_dir
from safetensors.torch import load_file
from typer.testing import CliRunner

from tinythinker.cli import app
from tinythinker.config import load_config
from tinythinker.data.schema import read_questions, write_questions
from tinythinker.errors import ConfigError
from tinythinker.infer import ChainDecoding, Engine
from tinythinker.train.sft import SFTConfig, train

REPO = Path(__file__).resolve().parents[2]


def write_config(root: Path, name: str = "config.yaml", **kwargs) -> Path:
    path = root / name
    path.write_text(yaml.safe_dump(tiny_config(root, **kwargs)), encoding="utf-8")
    return path


def log_records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def train_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "tinythinker.cli", "train", "--config", str(config)]


def cli_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p)
    env.pop("RANK", None)
    return env


@pytest.mark.parametrize(
    ("preset", "auto_class"), [("t5-tiny", "AutoModelForSeq2SeqLM"), ("llama-tiny", "AutoModelForCausalLM")]
)
def test_tiny_student_trains_cycles_and_reloads_with_auto_classes(colour_set, preset, auto_class):
    """Three cycles through the CLI; losses fall; last/ reloads with plain transformers and repeats the eval."""
    import transformers

    config = write_config(colour_set, preset=preset)
    result = CliRunner().invoke(app, ["train", "--config", str(config), "max_steps=30"])
    assert result.exit_code == 0, result.output
    run = colour_set / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["complete"] and metrics["steps"] == 30 and metrics["cycle_steps"] == 10
    assert [e["step"] for e in metrics["evals"]] == [10, 20, 30]
    assert all(e["eval_n"] == 6 for e in metrics["evals"])

    # the round-robin schedule: interval 2, analyze 2 x 3 options, then summarize
    records = [r for r in log_records(run) if "stage" in r]
    stages = [r["stage"] for r in records]
    assert stages[:10] == ["recall"] * 2 + ["analyze"] * 6 + ["summarize"] * 2
    assert stages[10:20] == stages[:10] == stages[20:30]
    for stage in ("recall", "analyze", "summarize"):
        losses = [r["loss"] for r in records if r["stage"] == stage]
        assert losses[-1] < 0.8 * losses[0], (stage, losses)

    tokenizer = transformers.AutoTokenizer.from_pretrained(run / "last")
    model = getattr(transformers, auto_class).from_pretrained(run / "last")
    assert (run / "best" / "model.safetensors").is_file() and (run / "last" / "tinythinker_student.json").is_file()
    logged = [json.loads(line) for line in (run / "logs" / "eval" / "step-0000030.jsonl").read_text().splitlines()]
    engine = Engine(model, tokenizer, batch_size=5)
    again = engine.predict(read_questions(colour_set / "valid.jsonl"), decoding=ChainDecoding.greedy(24))
    assert [p.to_dict() for p in again] == logged


def test_answer_only_baseline_learns_the_answer_format(tmp_path):
    """The `summarize` variant: after a few cycles every greedy answer parses (loss on targets works)."""
    questions = make_questions(list(THINGS), seed=1)
    write_stage_dir(tmp_path / "stages", questions, "summarize")
    write_questions(tmp_path / "valid.jsonl", questions[:6])
    metrics = train(load_config(SFTConfig, write_config(tmp_path, preset="llama-tiny", interval=10, max_steps=40)))
    assert metrics["schedule"] == [["summarize", 10]]
    last = [json.loads(line) for line in (tmp_path / "run" / "logs" / "eval" / "step-0000040.jsonl").read_text().splitlines()]
    assert all(p["prediction"] is not None for p in last), last
    assert all(p["chains"][0]["recall"] is None and p["chains"][0]["analyses"] is None for p in last)
    assert log_records(tmp_path / "run")[-2]["loss"] < 1.0


def test_cot_baseline_trains_on_its_single_stage(tmp_path):
    questions = make_questions(list(THINGS), seed=1)
    write_stage_dir(tmp_path / "stages", questions, "cot")
    write_questions(tmp_path / "valid.jsonl", questions[:3])
    metrics = train(load_config(SFTConfig, write_config(tmp_path, interval=3, max_steps=6, eval_max_new_tokens=8)))
    assert metrics["variant"] == "cot" and metrics["schedule"] == [["cot", 3]]
    assert [e["step"] for e in metrics["evals"]] == [3, 6]
    meta = json.loads((tmp_path / "run" / "best" / "tinythinker_student.json").read_text())
    assert meta["variant"] == "cot"


def test_two_process_data_parallel_matches_one_process(colour_set):
    """torchrun with 2 gloo processes (batch 2 each, 2 accumulation steps) gives the single-process run (batch 8)."""
    single = train(load_config(SFTConfig, write_config(colour_set, "single.yaml", out=str(colour_set / "single"), max_steps=20)))
    config = write_config(colour_set, "dp.yaml", out=str(colour_set / "dp"), max_steps=20, batch_size=2, grad_accum=2)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
               "-m", "tinythinker.cli", "train", "--config", str(config)]  # fmt: skip
    done = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    parallel = json.loads((colour_set / "dp" / "metrics.json").read_text())
    assert parallel["processes"] == 2 and single["processes"] == 1
    one = [r for r in log_records(colour_set / "single") if "loss" in r]
    two = [r for r in log_records(colour_set / "dp") if "loss" in r]
    assert len(one) == len(two) == 20
    for a, b in zip(one, two):
        assert a["stage"] == b["stage"] and a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    assert max_difference(weights(colour_set / "single" / "last"), weights(colour_set / "dp" / "last")) < 1e-4
    assert [e["eval_accuracy"] for e in parallel["evals"]] == [e["eval_accuracy"] for e in single["evals"]]


def test_killed_run_resumes_to_the_uninterrupted_result(colour_set, kill_midway):
    """SIGKILL mid-way through cycle 2, rerun: same weights, same log as a run never interrupted.

    Dropout is on, so the restored random state matters.
    """
    reference = write_config(colour_set, "reference.yaml", out=str(colour_set / "reference"), dropout=0.1)
    uninterrupted = subprocess.run(train_command(reference), env=cli_env(), capture_output=True, text=True, timeout=240)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    killed = write_config(colour_set, "killed.yaml", out=str(colour_set / "killed"), dropout=0.1)
    log = colour_set / "killed" / "logs" / "metrics.jsonl"
    command = train_command(killed)

    def logged_step() -> int:
        lines = log.read_text().splitlines() if log.is_file() else []
        return max((json.loads(line).get("step", 0) for line in lines if line.endswith("}")), default=0)

    # once step 13 is logged, the checkpoint of cycle 1 (step 10) is written and cycle 2 is under way
    kill_midway(command, lambda: logged_step() >= 13, cli_env(), timeout=180)
    last_step = logged_step()
    assert 13 <= last_step < 30 and not (colour_set / "killed" / "metrics.json").exists()
    state = json.loads((colour_set / "killed" / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] in (10, 20)  # 20 only if the kill landed after cycle 2's checkpoint on a very slow machine

    resumed = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout + resumed.stderr
    # same process settings as the uninterrupted run, so the results are bitwise equal
    assert max_difference(weights(colour_set / "reference" / "last"), weights(colour_set / "killed" / "last")) == 0
    assert log_records(colour_set / "killed") == log_records(colour_set / "reference")  # nothing lost, nothing twice
    a = json.loads((colour_set / "reference" / "metrics.json").read_text())
    b = json.loads((colour_set / "killed" / "metrics.json").read_text())
    assert a["evals"] == b["evals"] and a["best_step"] == b["best_step"]


def test_resume_refuses_a_different_config(colour_set):
    train(load_config(SFTConfig, write_config(colour_set, max_steps=2, valid="")))
    with pytest.raises(ConfigError, match="another config"):
        train(load_config(SFTConfig, write_config(colour_set, max_steps=2, valid="", lr=0.5)))


def test_fp16_is_refused_for_t5(colour_set):
    with pytest.raises(ConfigError, match="fp16 is refused for T5"):
        load_config(SFTConfig, write_config(colour_set, precision="fp16"))
    result = CliRunner().invoke(app, ["train", "--config", str(write_config(colour_set)), "precision=fp16"])
    assert result.exit_code == 2 and "fp16 is refused for T5" in result.output


def test_config_mismatch_with_the_stage_folder_fails_fast(colour_set):
    with pytest.raises(ConfigError, match="built for variant 'recall_analyze_summarize'"):
        train(load_config(SFTConfig, write_config(colour_set, variant="recall_summarize")))
    assert not (colour_set / "run").exists()


def test_example_config_loads_and_documents_every_key():
    import dataclasses

    path = REPO / "configs" / "phase1-csqa-t5-small.yaml"
    config = load_config(SFTConfig, path)
    assert config.student.name == "google-t5/t5-small" and config.student.init == "pretrained"
    assert (config.interval, config.batch_size, config.lr, config.seed) == (100, 64, 5e-4, 42)
    raw = yaml.safe_load(path.read_text())
    assert set(raw) == {f.name for f in dataclasses.fields(SFTConfig)}
    assert set(raw["student"]) == {f.name for f in dataclasses.fields(type(config.student))}
    documented = {line.split(":")[0].strip() for line in path.read_text().splitlines() if "#" in line and ":" in line.split("#")[0]}
    assert documented >= set(raw) | set(raw["student"])


def test_pretrained_bart_from_a_local_folder_trains(colour_set):
    """`init: pretrained` with a local save_pretrained folder, here a tiny BART (another seq2seq family)."""
    from transformers import BartConfig, BartForConditionalGeneration

    from tinythinker.student import save_student, train_tokenizer

    tokenizer = train_tokenizer([r for r in (colour_set / "stages" / "analyze.jsonl").read_text().splitlines()], vocab_size=300)
    ids = dict(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
               decoder_start_token_id=tokenizer.eos_token_id, forced_eos_token_id=None)  # fmt: skip
    config = BartConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256, **ids)  # fmt: skip
    save_student(BartForConditionalGeneration(config), tokenizer, colour_set / "bart")
    student = {"name": str(colour_set / "bart"), "init": "pretrained"}
    metrics = train(load_config(SFTConfig, write_config(colour_set, max_steps=10, student=student, eval_limit=2, eval_max_new_tokens=6)))
    assert metrics["steps"] == 10 and metrics["evals"][-1]["eval_n"] == 2
    losses = [r["loss"] for r in log_records(colour_set / "run") if r.get("stage") == "analyze"]
    assert losses[-1] < losses[0]
    assert (colour_set / "run" / "best" / "model.safetensors").is_file()


def test_bf16_autocast_runs_and_precisions_can_change_within_one_process(colour_set):
    for precision in ("bf16", "fp32"):
        out = colour_set / f"run-{precision}"
        metrics = train(load_config(SFTConfig, write_config(colour_set, f"{precision}.yaml", out=str(out), max_steps=3, valid="", precision=precision)))
        assert metrics["steps"] == 3 and all(r["loss"] == r["loss"] for r in log_records(out) if "loss" in r)  # no NaN


def test_eval_every_evaluates_every_n_cycles_and_at_the_end(colour_set):
    config = load_config(SFTConfig, write_config(colour_set, eval_every=2, max_steps=50, tensorboard=False))
    metrics = train(config)
    cycle = metrics["cycle_steps"]
    assert [e["step"] for e in metrics["evals"]] == [s for s in range(2 * cycle, 51, 2 * cycle)] + ([50] if 50 % (2 * cycle) else [])
