"""Bad input: exit code 2, one stderr line naming file, line and problem, nothing at --out."""

import json
import subprocess
import sys

import pytest


def cli(*args):
    return subprocess.run([sys.executable, "-m", "tinythinker.cli", *map(str, args)], capture_output=True, text=True)


def csqa_lines(shared_data, n=6):
    with (shared_data / "csqa" / "train_rand_split.jsonl").open() as handle:
        return [json.loads(next(handle)) for _ in range(n)]


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def run_prepare_expect_error(tmp_path, dataset, sources, *expected):
    out = tmp_path / "out"
    args = ["data", "prepare", "--dataset", dataset, "--out", out]
    for source in sources:
        args += ["--source", source]
    result = cli(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")], "temporary output left behind"
    return lines[0]


@pytest.fixture
def csqa_pair(shared_data, tmp_path):
    """A small CSQA train/dev pair in the official format; tests corrupt the train file."""
    rows = csqa_lines(shared_data, 12)
    dev = write_jsonl(tmp_path / "dev.jsonl", rows[8:])
    return rows[:8], dev


def test_malformed_json_line(csqa_pair, tmp_path):
    train, dev = csqa_pair
    lines = [json.dumps(r) for r in train]
    lines[2] = lines[2][:-5]
    path = write_jsonl(tmp_path / "train.jsonl", lines)
    run_prepare_expect_error(tmp_path, "csqa", [path, dev], f"{path}:3:", "malformed JSON")


def test_missing_field(csqa_pair, tmp_path):
    train, dev = csqa_pair
    del train[4]["answerKey"]
    path = write_jsonl(tmp_path / "train.jsonl", train)
    run_prepare_expect_error(tmp_path, "csqa", [path, dev], f"{path}:5:", "answerKey", "missing")


def test_answer_not_among_options(csqa_pair, tmp_path):
    train, dev = csqa_pair
    train[1]["answerKey"] = "F"
    path = write_jsonl(tmp_path / "train.jsonl", train)
    run_prepare_expect_error(tmp_path, "csqa", [path, dev], f"{path}:2:", "answerKey", "'F' is not among the option labels ABCDE")


def test_duplicate_ids_within_a_file(csqa_pair, tmp_path):
    train, dev = csqa_pair
    train[6]["id"] = train[3]["id"]
    path = write_jsonl(tmp_path / "train.jsonl", train)
    run_prepare_expect_error(tmp_path, "csqa", [path, dev], f"{path}:7:", "duplicate id", "line 4")


def test_duplicate_ids_across_files(csqa_pair, tmp_path):
    train, dev = csqa_pair
    dev_rows = [json.loads(line) for line in dev.read_text().splitlines()]
    train[2]["id"] = dev_rows[1]["id"]
    path = write_jsonl(tmp_path / "train.jsonl", train)
    run_prepare_expect_error(tmp_path, "csqa", [path, dev], f"{dev}:2:", "duplicate id", f"{path}:3")


def test_empty_file(csqa_pair, tmp_path):
    _, dev = csqa_pair
    path = tmp_path / "train.jsonl"
    path.write_text("\n")
    run_prepare_expect_error(tmp_path, "csqa", [path, dev], str(path), "empty")


def test_file_of_another_dataset(shared_data, csqa_pair, tmp_path):
    train, dev = csqa_pair
    csqa = write_jsonl(tmp_path / "train.jsonl", train)
    # OBQA has 4 options per question, CSQA 5
    run_prepare_expect_error(tmp_path, "obqa", [csqa, dev, dev], f"{csqa}:1:", "question.choices", "obqa has 4")
    sqa = shared_data / "strategyqa" / "strategyqa_train_part2_of2.json"
    run_prepare_expect_error(tmp_path, "csqa", [sqa, dev], f"{sqa}:1:", "found a JSON list")
    run_prepare_expect_error(tmp_path, "strategyqa", [csqa], f"{csqa}:1", "expected a JSON list")
    run_prepare_expect_error(tmp_path, "mcq", [csqa], f"{csqa}:1:", "looks like CSQA/OBQA")


def test_strategyqa_bad_answer_type(shared_data, tmp_path):
    rows = json.loads((shared_data / "strategyqa" / "strategyqa_train_part2_of2.json").read_text())[:20]
    rows[3]["answer"] = "yes"
    path = tmp_path / "sqa.json"
    path.write_text("[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n")  # element i on line i + 2
    run_prepare_expect_error(tmp_path, "strategyqa", [path], f"{path}:5:", "field 'answer'", "expected bool")


def test_wrong_number_of_sources(csqa_pair, tmp_path):
    _, dev = csqa_pair
    run_prepare_expect_error(tmp_path, "csqa", [dev], "takes 2 --source files")


def test_existing_foreign_output_folder_is_not_replaced(csqa_pair, tmp_path):
    train, dev = csqa_pair
    path = write_jsonl(tmp_path / "train.jsonl", train)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = cli("data", "prepare", "--dataset", "csqa", "--source", path, "--source", dev, "--out", out)
    assert result.returncode == 2 and "not a prepared data folder" in result.stderr
    assert (out / "notes.txt").read_text() == "keep me"


def test_offline_fetch_fails_with_one_line_naming_source(tmp_path, monkeypatch):
    from tinythinker.data import prepare as prep
    from tinythinker.errors import TinyThinkerError

    spec = prep.DatasetSpec("csqa", prep.DATASETS["csqa"].reader, ("t.jsonl",), "holdout", file_urls=("http://127.0.0.1:9/t.jsonl",))
    with pytest.raises(TinyThinkerError) as info:
        prep.fetch(spec, cache=tmp_path)
    message = str(info.value)
    assert "\n" not in message and "--source" in message and "127.0.0.1:9" in message
    assert not list(tmp_path.rglob("*.part"))
