"""The exact strings the student sees (METHOD.md section 3), pinned on real rows."""


import pytest

from tinythinker import stages
from tinythinker.data.loaders import read_arc_style, read_strategyqa
from tinythinker.data.schema import Option, Question


@pytest.fixture(scope="module")
def csqa_row(shared_data):
    (question, _), *_ = read_arc_style(shared_data / "csqa" / "train_rand_split.jsonl", "csqa", 5)
    return question


@pytest.fixture(scope="module")
def strategyqa_row(shared_data):
    (question, _), *_ = read_strategyqa(shared_data / "strategyqa" / "strategyqa_train_part1_of2.json")
    return question


CSQA_BLOCK = (
    "The sanctions against the school were a punishing blow, and they seemed to what the efforts the school had made to change?\n"
    "(A) ignore (B) enforce (C) authoritarian (D) yell at (E) avoid"
)
SQA_BLOCK = "Are more people today related to Genghis Khan than Julius Caesar?\n(A) yes (B) no"


def test_csqa_row_loads_as_expected(csqa_row):
    assert csqa_row.id == "075e483d21c29a511267ef62bedc0461"
    assert csqa_row.answer == "A"
    assert csqa_row.extra == {"question_concept": "punishing"}


def test_full_variant_strings_on_real_csqa_row(csqa_row):
    recall = "Sanctions are penalties that can undo or discount efforts"  # no final stop: one is added
    analyses = {label: f"{label} is {'correct' if label == 'A' else 'incorrect'}. Because reason {label}." for label in "ABCDE"}
    rows = stages.stage_rows(csqa_row, recall, analyses, "recall_analyze_summarize")
    assert rows["recall"] == [(f"{CSQA_BLOCK}\nRecall:", "Sanctions are penalties that can undo or discount efforts.")]
    assert rows["analyze"][0] == (
        f"{CSQA_BLOCK}\nRecall: Sanctions are penalties that can undo or discount efforts.\nAnalyze: For option A,",
        "A is correct. Because reason A.",
    )
    assert [target for _, target in rows["analyze"]] == [analyses[l] for l in "ABCDE"]
    assert rows["summarize"] == [
        (
            f"{CSQA_BLOCK}\nRecall: Sanctions are penalties that can undo or discount efforts.\n"
            "Analyze: For option A, A is correct. Because reason A. For option B, B is incorrect. Because reason B. "
            "For option C, C is incorrect. Because reason C. For option D, D is incorrect. Because reason D. "
            "For option E, E is incorrect. Because reason E.\nSummarize:",
            "So the answer is option A.",
        )
    ]


def test_ablation_variants_on_real_strategyqa_row(strategyqa_row):
    assert strategyqa_row.answer == "A"
    assert strategyqa_row.extra["facts"][0] == "Julius Caesar had three children."
    recall = "Julius Caesar had three children. Genghis Khan had sixteen children."
    analyses = {"A": "A is correct. Because more descendants.", "B": "B is incorrect. Because fewer."}

    answer_only = stages.stage_rows(strategyqa_row, recall, analyses, "summarize")
    assert answer_only == {"summarize": [(f"{SQA_BLOCK}\nSummarize:", "So the answer is option A.")]}

    recall_only = stages.stage_rows(strategyqa_row, recall, {}, "recall_summarize")
    assert recall_only["summarize"] == [(f"{SQA_BLOCK}\nRecall: {recall}\nSummarize:", "So the answer is option A.")]
    assert set(recall_only) == {"recall", "summarize"}

    no_recall = stages.stage_rows(strategyqa_row, "", analyses, "analyze_summarize")
    assert no_recall["analyze"] == [
        (f"{SQA_BLOCK}\nAnalyze: For option A,", "A is correct. Because more descendants."),
        (f"{SQA_BLOCK}\nAnalyze: For option B,", "B is incorrect. Because fewer."),
    ]
    assert no_recall["summarize"] == [
        (
            f"{SQA_BLOCK}\nAnalyze: For option A, A is correct. Because more descendants. "
            "For option B, B is incorrect. Because fewer.\nSummarize:",
            "So the answer is option A.",
        )
    ]


def test_cot_baseline_strings(strategyqa_row):
    analyses = {"A": "A is correct. Because x.", "B": "B is incorrect. Because y."}
    assert stages.cot_input(strategyqa_row) == f"{SQA_BLOCK}\nAnswer:"
    assert stages.cot_target(strategyqa_row, "Facts here", analyses, "A") == (
        "Facts here. For option A, A is correct. Because x. For option B, B is incorrect. Because y. So the answer is option A."
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("So the answer is option C.", "C"),
        ("blah the answer is option A. the answer is option B.", "A"),
        ("So the answer is option c.", None),
        ("So the answer is option C", None),
        ("So the answer is option F.", None),  # not an option of a 5-option question
        ("", None),
    ],
)
def test_parse_answer(text, expected):
    assert stages.parse_answer(text, list("ABCDE")) == expected


def test_variants_need_their_parts():
    question = Question("q1", "Q?", [Option("A", "x"), Option("B", "y")], "B")
    with pytest.raises(ValueError, match="needs a recall"):
        stages.stage_rows(question, " ", {"A": "a", "B": "b"}, "recall_analyze_summarize")
    with pytest.raises(ValueError, match="option\\(s\\) B"):
        stages.stage_rows(question, "r", {"A": "a"}, "analyze_summarize")
    with pytest.raises(ValueError, match="unknown variant"):
        stages.stage_rows(question, "r", {}, "recall_only")


def test_variant_stage_order():
    assert stages.variant_stages("recall_analyze_summarize") == ("recall", "analyze", "summarize")
    assert stages.variant_stages("analyze_summarize") == ("analyze", "summarize")
    assert stages.variant_stages("summarize") == ("summarize",)
