import json

import pytest
from typer.testing import CliRunner

from tinythinker import stages
from tinythinker.cli import app
from tinythinker.data.schema import read_questions
from tinythinker.errors import InputError, TinyThinkerError
from tinythinker.io import read_jsonl
from tinythinker.teacher.build import build

runner = CliRunner()


def rationale(qid, labels="ABCDE", recall="Key fact here", sample=0):
    return {"id": qid, "recall": recall, "analyze": {l: f"{l} is {'correct' if l == 'A' else 'incorrect'}. Because {qid}-{l}." for l in labels},
            "teacher": "test", "sample": sample}


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_full_variant_rows_match_the_stage_module_and_duplicates_go(tmp_path, questions):
    data = questions(3)
    rows = [rationale("q000"), rationale("q000"), rationale("q000", recall="Another fact", sample=1), rationale("q001")]
    rationales = write(tmp_path / "r.jsonl", rows)
    manifest = build(data, rationales, tmp_path / "stages")
    out = tmp_path / "stages"
    assert sorted(p.name for p in out.iterdir()) == ["analyze.jsonl", "manifest.json", "recall.jsonl", "summarize.jsonl"]
    # the duplicated record adds nothing; the second recall of q000 repeats its recall-stage input with a new target
    assert manifest["counts"] == {"recall": 3, "analyze": 15, "summarize": 3}
    assert manifest["duplicates_removed"] == {"recall": 1, "analyze": 5, "summarize": 1}
    assert manifest["num_options"] == 5 and manifest["questions_without_rationales"] == 1 and manifest["rationales"] == 4
    question = read_questions(data)[0]
    recall_rows = read_jsonl(out / "recall.jsonl")
    assert recall_rows[0] == {"id": "q000", "input": stages.recall_input(question), "target": "Key fact here."}
    analyze_rows = read_jsonl(out / "analyze.jsonl")
    assert analyze_rows[1]["input"] == stages.analyze_input(question, "B", "Key fact here")
    assert analyze_rows[1]["target"] == "B is incorrect. Because q000-B."
    summarize = read_jsonl(out / "summarize.jsonl")[0]
    assert summarize["input"] == stages.summarize_input(question, "Key fact here", rows[0]["analyze"])
    assert summarize["target"] == stages.summarize_target(question.answer)
    # the manifest counts match the files
    assert all(len(read_jsonl(out / f"{s}.jsonl")) == n for s, n in manifest["counts"].items())


def test_cot_and_ablation_variants_write_only_their_files(tmp_path, questions):
    data = questions(2)
    rationales = write(tmp_path / "r.jsonl", [rationale("q000"), rationale("q001")])
    build(data, rationales, tmp_path / "cot", "cot")
    assert sorted(p.name for p in (tmp_path / "cot").iterdir()) == ["cot.jsonl", "manifest.json"]
    question = read_questions(data)[0]
    row = read_jsonl(tmp_path / "cot" / "cot.jsonl")[0]
    assert row["input"] == stages.cot_input(question)
    assert row["target"] == stages.cot_target(question, "Key fact here", rationale("q000")["analyze"], question.answer)
    manifest = build(data, rationales, tmp_path / "as", "analyze_summarize")
    assert manifest["stages"] == ["analyze", "summarize"] and "Recall:" not in read_jsonl(tmp_path / "as" / "summarize.jsonl")[0]["input"]


def test_recall_only_rationales_need_a_recall_variant(tmp_path, questions):
    data = questions(2)
    rationales = write(tmp_path / "r.jsonl", [{"id": "q000", "recall": "Only a fact", "analyze": {}, "teacher": "t", "sample": 0}])
    result = runner.invoke(app, ["build", "--data", str(data), "--rationales", str(rationales), "--out", str(tmp_path / "full")])
    assert result.exit_code == 2
    assert f"{rationales}:1: field 'analyze'" in result.output and "--variant recall_summarize" in result.output
    assert not (tmp_path / "full").exists()
    result = runner.invoke(app, ["build", "--data", str(data), "--rationales", str(rationales), "--out", str(tmp_path / "rs"),
                                 "--variant", "recall_summarize"])
    assert result.exit_code == 0 and "recall 1, summarize 1" in result.output


def test_located_errors_and_a_foreign_out_folder(tmp_path, questions):
    data = questions(2)
    unknown = write(tmp_path / "u.jsonl", [rationale("q000"), rationale("zzz")])
    with pytest.raises(InputError, match=r"u.jsonl:2: field 'id': id 'zzz' is not a question"):
        build(data, unknown, tmp_path / "o")
    bad_label = write(tmp_path / "b.jsonl", [rationale("q000", labels="ABCDEF")])
    with pytest.raises(InputError, match=r"b.jsonl:1: field 'analyze.F'"):
        build(data, bad_label, tmp_path / "o")
    assert not (tmp_path / "o").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(TinyThinkerError, match="not a stage dataset folder"):
        build(data, write(tmp_path / "g.jsonl", [rationale("q000")]), foreign)
    assert (foreign / "keep.txt").read_text() == "mine"
    # a prepared folder works as --data (its train.jsonl)
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "train.jsonl").write_text(data.read_text())
    assert build(prepared, write(tmp_path / "g2.jsonl", [rationale("q001")]), tmp_path / "ok")["counts"]["recall"] == 1
