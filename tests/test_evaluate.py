"""`tinythinker eval`: metrics.json and predictions.jsonl agree with each other and with the engine."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from tinythinker.cli import app
from tinythinker.data.schema import Option, Question, read_questions, write_questions
from tinythinker.evaluate import evaluate
from tinythinker.infer import ChainDecoding, Engine
from tinythinker.io import write_json
from tinythinker.student import build_scratch, load_student

QUESTIONS = [
    Question("q1", "What colour is the sky?", [Option("A", "red"), Option("B", "blue"), Option("C", "green")], "B"),
    Question("q2", "What colour is grass?", [Option("A", "green"), Option("B", "pink")], "A"),
    Question("q3", "Is snow cold?", [Option("A", "yes"), Option("B", "no")], "A"),
]


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    """A tiny untrained scratch T5; zero logits for special tokens make its outputs non-empty."""
    folder = tmp_path_factory.mktemp("student") / "model"
    texts = [q.question for q in QUESTIONS] + ["So the answer is option A. So the answer is option B."] * 5
    student = build_scratch("t5-tiny", texts, vocab_size=300, overrides={"d_model": 32, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2, "d_kv": 16}, seed=1)
    with torch.no_grad():
        student.model.get_output_embeddings().weight[student.tokenizer.all_special_ids] = 0.0
    student.save(folder)
    return folder


def read_predictions(out):
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def test_eval_command_writes_consistent_metrics_and_predictions(tmp_path, student_dir):
    data = tmp_path / "test.jsonl"
    write_questions(data, QUESTIONS)
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["eval", "--model", str(student_dir), "--data", str(data), "--out", str(out),
                                      "--samples", "3", "--variant", "recall_summarize", "--max-new-tokens", "8"])  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    predictions = read_predictions(out)
    assert metrics["n"] == 3 == len(predictions) and metrics["variant"] == "recall_summarize" and metrics["samples"] == 3
    assert [p["id"] for p in predictions] == ["q1", "q2", "q3"]
    assert metrics["accuracy"] == pytest.approx(sum(p["correct"] for p in predictions) / 3)
    assert metrics["ties"] == sum(p["tie"] for p in predictions)
    for p in predictions:
        assert len(p["chains"]) == 3 and all(c["recall"] is not None and c["analyses"] is None for c in p["chains"])
        assert sum(p["votes"].values()) == sum(c["answer"] is not None for c in p["chains"])
        assert p["correct"] == (p["prediction"] == p["gold"])
    # the same as driving the engine directly with the same seed
    student = load_student(student_dir)
    direct = Engine(student.model, student.tokenizer).predict(
        read_questions(data), "recall_summarize", 3, ChainDecoding.self_consistency(max_new_tokens=8), seed=42
    )
    assert [d.to_dict() for d in direct] == predictions


def test_eval_uses_the_trained_variant_and_greedy_by_default(tmp_path, student_dir):
    write_json(student_dir / "tinythinker_student.json", {"variant": "summarize", "num_options": 3})
    data = tmp_path / "test.jsonl"
    write_questions(data, QUESTIONS)
    try:
        metrics = evaluate(student_dir, data, tmp_path / "eval", max_new_tokens=8, limit=2)
    finally:
        (student_dir / "tinythinker_student.json").unlink()
    assert metrics["variant"] == "summarize" and metrics["samples"] == 1 and metrics["n"] == 2
    predictions = read_predictions(tmp_path / "eval")
    assert [p["id"] for p in predictions] == ["q1", "q2"]
    assert all(len(p["chains"]) == 1 and p["chains"][0]["recall"] is None for p in predictions)
    assert all(p["chains"][0]["answer"] == p["prediction"] for p in predictions)
    assert metrics["unparsed"] == sum(p["prediction"] is None for p in predictions)


def test_eval_errors_are_one_line(tmp_path, student_dir):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"id": "1", "question": "q", "options": [{"label": "A", "text": "a"}], "answer": "A"}\n')
    result = CliRunner().invoke(app, ["eval", "--model", str(student_dir), "--data", str(data), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "bad.jsonl:1: field 'options'" in result.output
    result = CliRunner().invoke(app, ["eval", "--model", str(student_dir), "--data", str(data), "--out", str(tmp_path / "o"), "--variant", "nope"])
    assert result.exit_code == 2 and "variant: unknown 'nope'" in result.output
    assert not (tmp_path / "o").exists()
