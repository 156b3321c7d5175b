"""Importers on the real shared files (../shared/data): row counts and alignment spot checks."""

import json
import re

import pytest
from teacher_fixtures import SHARED_DATA
from typer.testing import CliRunner

from tinythinker.cli import app
from tinythinker.data.loaders import read_arc_style, read_strategyqa
from tinythinker.data.schema import write_questions
from tinythinker.errors import InputError
from tinythinker.io import read_jsonl
from tinythinker.teacher.importers import import_dss_palm, import_ecqa_freeflow, import_jsonl, import_strategyqa_facts
from tinythinker.teacher.teach import TeachConfig, finalize

runner = CliRunner()
DSS = SHARED_DATA / "rationales" / "dss_palm_cqa"
STRATEGYQA_PARTS = ("strategyqa_train_part1_of2.json", "strategyqa_train_part2_of2.json")


@pytest.fixture(scope="module")
def csqa():
    files = ("train_rand_split.jsonl", "dev_rand_split.jsonl")
    return [q for name in files for q, _ in read_arc_style(SHARED_DATA / "csqa" / name, dataset="csqa", num_options=5)]


@pytest.fixture(scope="module")
def strategyqa():
    return [q for name in STRATEGYQA_PARTS for q, _ in read_strategyqa(SHARED_DATA / "strategyqa" / name)]


def records_of(questions, result, name):
    records, labels, _ = finalize(questions, result.candidates, TeachConfig(teacher=f"import:{name}", source="-"), None, 0)
    return {r["id"]: r for r in records}, labels


def cut(completion):
    return completion.split("\n\nQ:")[0].split("So the answer is")[0].strip()


def test_dss_palm_alignment_counts_and_cut(csqa):
    result = import_dss_palm(csqa, DSS)
    assert result.stats["source_rows"] == 9741 + 1221 and result.stats["question_text_mismatch"] == 0
    records, _ = records_of(csqa, result, "dss-palm")
    train = [json.loads(line) for line in (DSS / "cqa_train.json").open()]
    test = [json.loads(line) for line in (DSS / "cqa_test.json").open()]
    # independent count: PaLM's single "(x)" is the official answerKey (choices are in label order)
    gold = {q.id: "ABCDE".index(q.answer) for q in csqa}
    agree = 0
    for rows, split, parts in ((train, "train", 10), (test, "test", 2)):
        completions = [c for i in range(parts) for c in json.loads((DSS / f"llm_{split}_CoT_{i}.json").read_text())]
        for row, completion in zip(rows, completions):
            letters = re.findall(r"\(([a-e])\)", completion.split("\n\nQ:")[0].partition("So the answer is")[2])
            agree += len(letters) == 1 and "abcde".index(letters[0]) == gold[row["id"]]
    assert len(records) == agree and 7000 < agree < 10962
    assert records["6b819727eb8a670df26a7ffad036c119"]["recall"] == (
        "The answer must be something that has to do with the above problem. "
        "Of the above choices, only math problem has to do with the above problem.")
    # position i of the concatenated CoT files belongs to row i of cqa_*.json
    for rows, split, index in ((train, "train", 1000), (train, "train", 9740), (test, "test", 1000)):
        completion = json.loads((DSS / f"llm_{split}_CoT_{index // 1000}.json").read_text())[index % 1000]
        qid = rows[index]["id"]
        if qid in records:
            assert records[qid]["recall"] == cut(completion)
    for record in records.values():
        assert record["analyze"] == {} and "\n\nQ:" not in record["recall"] and "So the answer is" not in record["recall"]
    assert "recall_summarize" in result.note


def test_ecqa_freeflow_joined_by_question_text(csqa):
    result = import_ecqa_freeflow(csqa, SHARED_DATA / "ecqa" / "flan_cot_ecqa_train.tsv")
    assert result.stats["source_rows"] == 7112 and result.stats["matched"] == 7112
    records, labels = records_of(csqa, result, "ecqa-freeflow")
    assert len(records) == 7112 and labels["samples_dropped_inconsistent_with_label"] == 0
    by_text = {q.question: q for q in csqa}
    killing = by_text["What might a person see at the scene of a brutal killing?"]
    assert killing.option_text(killing.answer) == "bloody mess"
    assert records[killing.id]["recall"] == ("Bloody mess is covered or stained with blood. "
                                             "A person might see a bloody mess at the scene of a brutal killing.")


def test_strategyqa_facts_from_the_two_parts(strategyqa):
    result = import_strategyqa_facts(strategyqa, SHARED_DATA / "strategyqa")
    assert result.stats == {"source_rows": 2290, "matched": 2290, "without_facts": 0}
    records, labels = records_of(strategyqa, result, "strategyqa-facts")
    assert len(records) == 2290 and labels["questions_where_vote_disagrees_with_gold"] == 0
    assert records["b8677742616fef051f00"]["recall"].startswith("Julius Caesar had three children. Genghis Khan had sixteen children.")
    last = json.loads((SHARED_DATA / "strategyqa" / STRATEGYQA_PARTS[1]).read_text())[-1]
    assert records[last["qid"]]["recall"] == " ".join(" ".join(f.split()) for f in last["facts"])


def test_jsonl_importer_validates_and_counts(tmp_path, questions):
    data = questions(2)
    from tinythinker.data.schema import read_questions

    qs = read_questions(data)
    good = {"id": "q000", "recall": "R", "analyze": {l: f"{l} is {'correct' if l == 'A' else 'incorrect'}. Because x." for l in "ABCDE"},
            "teacher": "elsewhere", "sample": 3}
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(dict(good, id="other-split")) + "\n")
    result = import_jsonl(qs, path)
    assert result.stats == {"source_rows": 2, "matched": 1, "not_in_questions": 1}
    assert result.candidates["q000"][0].stated == "A" and result.candidates["q000"][0].teacher == "elsewhere"
    path.write_text(json.dumps(good) + "\n" + json.dumps(dict(good, analyze={"Z": "Z is correct."})) + "\n")
    with pytest.raises(InputError, match=r"r.jsonl:2: field 'analyze.Z'"):
        import_jsonl(qs, path)


def test_import_through_the_cli_then_build(tmp_path, strategyqa):
    data = tmp_path / "train.jsonl"
    write_questions(data, strategyqa[:300])
    out = tmp_path / "teach"
    result = runner.invoke(app, ["teach", "--data", str(data), "--out", str(out), "--teacher", "import:strategyqa-facts",
                                 "--source", str(SHARED_DATA / "strategyqa")])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["rationales_written"] == 300 and report["import"]["source_rows"] == 2290
    assert report["usable_variants"] == ["summarize", "recall_summarize"] and "recall_summarize" in report["note"]
    records = read_jsonl(out / "rationales.jsonl")
    assert [r["id"] for r in records] == [q.id for q in strategyqa[:300]]
    assert all(r["teacher"] == "import:strategyqa-facts" and r["sample"] == 0 for r in records)
    result = runner.invoke(app, ["build", "--data", str(data), "--rationales", str(out / "rationales.jsonl"),
                                 "--out", str(tmp_path / "stages"), "--variant", "recall_summarize"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "stages" / "manifest.json").read_text())
    assert manifest["counts"] == {"recall": 300, "summarize": 300} and manifest["num_options"] == 2
