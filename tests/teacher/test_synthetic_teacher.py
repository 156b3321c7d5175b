"""The synthetic teacher goes through the real teach path: cache, parsing, rejections, report, build."""

import json

from tinythinker.data.schema import read_questions
from tinythinker.data.synthetic import WorldConfig, read_world, write_benchmark
from tinythinker.io import read_jsonl
from tinythinker.teacher.build import build
from tinythinker.teacher.teach import TeachConfig, teach


def test_synthetic_teacher_rationales_state_the_world(tmp_path):
    write_benchmark(WorldConfig(seed=1, entities=6), tmp_path / "data")
    world = read_world(tmp_path / "data" / "world.json")
    config = TeachConfig(teacher="synthetic", source=str(tmp_path / "data" / "world.json"), samples=1)
    report = teach(tmp_path / "data" / "train.jsonl", tmp_path / "t", config, progress=False)
    assert report["status"] == "complete" and report["questions_without_rationale"] == 0
    questions = {q.id: q for q in read_questions(tmp_path / "data" / "train.jsonl")}
    records = read_jsonl(tmp_path / "t" / "rationales.jsonl")
    assert sorted(r["id"] for r in records) == sorted(questions)
    for record in records:
        question = questions[record["id"]]
        entity, attribute = question.extra["entity"], question.extra["attribute"]
        assert record["recall"] == world.recall(entity)
        fact = world.fact(entity, attribute)
        assert record["analyze"][question.answer] == f"{question.answer} is correct. Because {fact}."
        wrong = next(o for o in question.options if o.label != question.answer)
        assert record["analyze"][wrong.label] == f"{wrong.label} is incorrect. Because {fact}, not {wrong.text}."
    manifest = build(tmp_path / "data", tmp_path / "t" / "rationales.jsonl", tmp_path / "s", "recall_analyze_summarize")
    assert manifest["counts"]["analyze"] == 4 * len(records)
    # a re-run is answered from the cache
    again = teach(tmp_path / "data" / "train.jsonl", tmp_path / "t", config, progress=False)
    assert again["requests"]["attempts"] == 0


def test_error_rate_gives_rejections_and_wrong_facts(tmp_path):
    write_benchmark(WorldConfig(seed=2, entities=12), tmp_path / "data")
    world = read_world(tmp_path / "data" / "world.json")
    config = TeachConfig(teacher="synthetic", source=str(tmp_path / "data" / "world.json"), samples=2, error_rate=0.5, rounds=4)
    report = teach(tmp_path / "data" / "train.jsonl", tmp_path / "t", config, progress=False)
    assert report["rejections"].get("contradicts_gold", 0) > 0  # a wrong asked fact calls a distractor correct
    questions = {q.id: q for q in read_questions(tmp_path / "data" / "train.jsonl")}
    records = read_jsonl(tmp_path / "t" / "rationales.jsonl")
    wrong = [r for r in records if r["recall"] != world.recall(questions[r["id"]].extra["entity"])]
    assert wrong, "some kept rationales carry a wrong fact about another attribute"
    for record in records:  # every kept rationale still agrees with the gold answer
        question = questions[record["id"]]
        assert record["analyze"][question.answer].startswith(f"{question.answer} is correct.")
    assert json.loads((tmp_path / "t" / "report.json").read_text())["status"] == "complete"
