"""`tinythinker data prepare` on the real benchmark files: the paper's split counts, reproducibility."""

import json
import subprocess
import sys

import pytest

from tinythinker.data.prepare import prepare
from tinythinker.data.schema import read_questions

EXPECTED = {
    "csqa": {"train": 8520, "valid": 1221, "test": 1221},
    "obqa": {"train": 4957, "valid": 500, "test": 500},
    "strategyqa": {"train": 1832, "valid": 229, "test": 229},
}


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinythinker.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("dataset", sorted(EXPECTED))
def test_paper_split_counts(dataset, shared_data, tmp_path):
    out = tmp_path / dataset
    result = cli("data", "prepare", "--dataset", dataset, "--source", shared_data / dataset, "--out", out)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == EXPECTED[dataset]
    assert manifest["seed"] == 42
    for source in manifest["sources"]:
        assert len(source["sha256"]) == 64
    splits = {name: read_questions(out / f"{name}.jsonl") for name in ("train", "valid", "test")}
    assert {name: len(qs) for name, qs in splits.items()} == EXPECTED[dataset]
    ids = [q.id for qs in splits.values() for q in qs]
    assert len(ids) == len(set(ids)), "splits overlap"


def test_csqa_test_split_is_official_dev_and_valid_comes_from_train(shared_data, tmp_path):
    prepare("csqa", [str(shared_data / "csqa")], tmp_path / "out")
    test_ids = [q.id for q in read_questions(tmp_path / "out" / "test.jsonl")]
    dev_ids = [json.loads(line)["id"] for line in (shared_data / "csqa" / "dev_rand_split.jsonl").open()]
    assert test_ids == dev_ids
    train_ids = {json.loads(line)["id"] for line in (shared_data / "csqa" / "train_rand_split.jsonl").open()}
    assert {q.id for q in read_questions(tmp_path / "out" / "valid.jsonl")} <= train_ids


def test_strategyqa_keeps_facts_and_maps_yes_no(shared_data, tmp_path):
    prepare("strategyqa", [str(shared_data / "strategyqa" / f"strategyqa_train_part{i}_of2.json") for i in (1, 2)], tmp_path / "o")
    questions = [q for name in ("train", "valid", "test") for q in read_questions(tmp_path / "o" / f"{name}.jsonl")]
    by_id = {q.id: q for q in questions}
    first = by_id["b8677742616fef051f00"]
    assert [(o.label, o.text) for o in first.options] == [("A", "yes"), ("B", "no")]
    assert first.answer == "A" and first.extra["facts"][1] == "Genghis Khan had sixteen children."
    assert sum(q.answer == "A" for q in questions) == 1071  # answer == true in the official file


def test_same_seed_is_byte_identical_and_other_seed_differs(shared_data, tmp_path):
    for name, seed in (("a", 42), ("b", 42), ("c", 7)):
        prepare("strategyqa", [str(shared_data / "strategyqa")], tmp_path / name, seed=seed)
    for split in ("train.jsonl", "valid.jsonl", "test.jsonl", "manifest.json"):
        assert (tmp_path / "a" / split).read_bytes() == (tmp_path / "b" / split).read_bytes()
    assert (tmp_path / "a" / "train.jsonl").read_bytes() != (tmp_path / "c" / "train.jsonl").read_bytes()
    prepare("csqa", [str(shared_data / "csqa")], tmp_path / "d", seed=42)
    prepare("csqa", [str(shared_data / "csqa")], tmp_path / "e", seed=43)
    assert (tmp_path / "d" / "valid.jsonl").read_bytes() != (tmp_path / "e" / "valid.jsonl").read_bytes()


def test_rerun_replaces_previous_output(shared_data, tmp_path):
    out = tmp_path / "o"
    prepare("obqa", [str(shared_data / "obqa")], out)
    prepare("obqa", [str(shared_data / "obqa")], out)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "test.jsonl", "train.jsonl", "valid.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]  # no temporary folders left behind
