"""A user's own questions: canonical JSONL and CSV, with one, two or three files."""

import json

import pytest

from tinythinker.data.prepare import prepare
from tinythinker.data.schema import Question, read_questions
from tinythinker.errors import InputError, TinyThinkerError


def make_questions(n, prefix="q"):
    return [
        {
            "id": f"{prefix}{i}",
            "question": f"Question number {i}?",
            "options": [{"label": "A", "text": f"a{i}"}, {"label": "B", "text": f"b{i}"}, {"label": "C", "text": f"c{i}"}],
            "answer": "ABC"[i % 3],
            "source": "mine",
            "topic": f"t{i % 4}",
        }
        for i in range(n)
    ]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_canonical_single_file_is_split_80_10_10_and_extra_fields_kept(tmp_path):
    source = write_jsonl(tmp_path / "mine.jsonl", make_questions(50))
    manifest = prepare("mcq", [source], tmp_path / "out")
    assert manifest["counts"] == {"train": 40, "valid": 5, "test": 5}
    train = read_questions(tmp_path / "out" / "train.jsonl")
    assert all(q.extra["topic"].startswith("t") and q.source == "mine" for q in train)
    assert Question.from_dict(train[0].to_dict()) == train[0]


def test_three_files_are_train_valid_test_as_given(tmp_path):
    sources = [write_jsonl(tmp_path / f"{name}.jsonl", make_questions(n, name)) for name, n in (("tr", 7), ("va", 3), ("te", 4))]
    manifest = prepare("mcq", sources, tmp_path / "out")
    assert manifest["counts"] == {"train": 7, "valid": 3, "test": 4}
    assert [q.id for q in read_questions(tmp_path / "out" / "test.jsonl")] == [f"te{i}" for i in range(4)]


def test_two_files_hold_out_a_tenth_of_train_for_validation(tmp_path):
    sources = [write_jsonl(tmp_path / "tr.jsonl", make_questions(30, "tr")), write_jsonl(tmp_path / "te.jsonl", make_questions(5, "te"))]
    manifest = prepare("mcq", sources, tmp_path / "out")
    assert manifest["counts"] == {"train": 27, "valid": 3, "test": 5}


def test_csv_with_varying_option_counts(tmp_path):
    path = tmp_path / "own.csv"
    filler = "".join(f"f{i},Filler {i}?,a,b,c,,A\n" for i in range(8))
    path.write_text(f'id,question,A,B,C,D,answer\nx1,"Where, exactly?",here,there,,,B\nx2,Why?,a,b,c,d,D\n{filler}')
    manifest = prepare("mcq", [str(path)], tmp_path / "out")
    questions = [q for s in ("train", "valid", "test") for q in read_questions(tmp_path / "out" / f"{s}.jsonl")]
    by_id = {q.id: q for q in questions}
    assert manifest["counts"] == {"train": 8, "valid": 1, "test": 1}
    assert by_id["x1"].question == "Where, exactly?" and by_id["x1"].labels == ["A", "B"] and by_id["x1"].answer == "B"
    assert by_id["x2"].labels == list("ABCD") and by_id["x2"].source == "own"


@pytest.mark.parametrize(
    "content, expected",
    [
        ("id,question,A,B\nx,q,a,b\n", "field 'answer': missing column"),
        ("id,question,A,B,answer\nx,q,a,b,C\n", ":2: field 'answer': 'C' is not among"),
        ("id,question,A,C,answer\nx,q,a,b,A\n", ":1: field 'header'"),
        ("id,question,A,B,answer\nx,q,a,b,A\nx,q2,a,b,B\n", ":3: field 'id': duplicate id"),
        ("id,question,A,B,answer\nx,,a,b,A\n", ":2: field 'question'"),
    ],
)
def test_csv_errors_name_line_and_field(tmp_path, content, expected):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError) as info:
        prepare("mcq", [str(path)], tmp_path / "out")
    assert str(info.value).startswith(str(path)) and expected in str(info.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda r: r.pop("options"), "field 'options': missing field"),
        (lambda r: r.update(options=[{"label": "A", "text": "x"}, {"label": "C", "text": "y"}]), "options[1].label"),
        (lambda r: r.update(id=""), "field 'id'"),
        (lambda r: r.update(answer="Z"), "'Z' is not among the option labels ABC"),
    ],
)
def test_canonical_errors(tmp_path, mutate, expected):
    rows = make_questions(4)
    mutate(rows[2])
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(InputError, match=None) as info:
        read_questions(path)
    assert f"{path}:3: " in str(info.value) and expected in str(info.value)


def test_too_few_questions_for_three_splits(tmp_path):
    source = write_jsonl(tmp_path / "mine.jsonl", make_questions(5))
    with pytest.raises(TinyThinkerError, match="valid split would be empty"):
        prepare("mcq", [source], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_dataset_and_mcq_without_source(tmp_path):
    with pytest.raises(TinyThinkerError, match="unknown --dataset"):
        prepare("arc", [], tmp_path / "o")
    with pytest.raises(TinyThinkerError, match="--source"):
        prepare("mcq", [], tmp_path / "o")
