"""Every pair-mining rule of METHOD.md section 6, on hand-built chains."""

import random

from tinythinker import stages
from tinythinker.data.schema import Option, Question
from tinythinker.infer import Chain
from tinythinker.train.mining import analyze_pairs, recall_pairs

Q = Question("q1", "Which one?", [Option("A", "ant"), Option("B", "bee"), Option("C", "cat")], "B")


def chain(recall, answer, analyses=None):
    return Chain(recall, analyses, f"So the answer is option {answer}." if answer else "???", answer)


def test_recall_chosen_and_rejected_are_distinct_and_overlap_removed():
    chains = [
        chain("r1.", "B"), chain("r1.", "B"), chain("r2.", "B"),  # r1 twice: counted once
        chain("r3.", "A"), chain("r4.", None), chain("r2.", "C"),  # r2 on both sides: dropped; None is wrong
    ]
    pairs, own_chosen, stats = recall_pairs(Q, chains, [], random.Random(0))
    assert own_chosen == ["r1."]
    assert stats.overlap_removed == 1
    # 1 chosen vs 2 rejected, no teacher recall to top up with: chosen resampled with replacement
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("r1.", "r3."), ("r1.", "r4.")]
    assert stats.chosen_resampled == 1 and stats.chosen_topped_up == 0
    assert all(p["prompt"] == stages.recall_input(Q) and p["id"] == "q1" for p in pairs)


def test_question_without_rejected_recall_gives_no_pairs():
    pairs, own_chosen, stats = recall_pairs(Q, [chain("r1", "B"), chain("r2", "B")], ["t1"], random.Random(0))
    assert pairs == [] and stats.no_rejected == 1
    assert own_chosen == ["r1.", "r2."]  # normalised: a final stop added


def test_more_chosen_than_rejected_resamples_rejected():
    chains = [chain("c1.", "B"), chain("c2.", "B"), chain("c3.", "B"), chain("w1.", "A")]
    pairs, _, stats = recall_pairs(Q, chains, ["t1."], random.Random(0))
    assert [p["chosen"] for p in pairs] == ["c1.", "c2.", "c3."]
    assert [p["rejected"] for p in pairs] == ["w1."] * 3
    assert stats.rejected_resampled == 2 and stats.chosen_topped_up == 0


def test_more_rejected_than_chosen_tops_up_from_the_teacher():
    chains = [chain("c1.", "B"), chain("w1.", "A"), chain("w2.", "C"), chain("w3.", None)]
    teacher = ["w1.", "t1", "t2.", "t3."]  # w1 is a rejected recall: never used as chosen
    pairs, _, stats = recall_pairs(Q, chains, teacher, random.Random(0))
    assert [p["chosen"] for p in pairs] == ["c1.", "t1.", "t2."]
    assert [p["rejected"] for p in pairs] == ["w1.", "w2.", "w3."]
    assert stats.chosen_topped_up == 2 and stats.chosen_resampled == 0


def test_all_wrong_and_no_teacher_gives_nothing():
    pairs, _, stats = recall_pairs(Q, [chain("w1", "A")], [], random.Random(0))
    assert pairs == [] and stats.no_chosen == 1


def analyses(a, b, c):
    return {"A": a, "B": b, "C": c}


def test_analyze_pairs_for_gold_and_wrongly_predicted_option():
    good = analyses("a is wrong", "b is right", "c is wrong")
    bad = analyses("a is right", "b is wrong", "c is wrong")
    chains = [chain("r.", "B", good), chain("r.", "A", bad)]
    pairs, stats = analyze_pairs(Q, "r.", chains, [], random.Random(0))
    assert [(p["prompt"], p["chosen"], p["rejected"]) for p in pairs] == [
        (stages.analyze_input(Q, "B", "r."), "b is right", "b is wrong"),
        (stages.analyze_input(Q, "A", "r."), "a is wrong", "a is right"),
    ]
    assert stats.pairs == 2


def test_analyze_skips_identical_texts_invalid_predictions_and_shared_sets():
    good = analyses("x", "b ok", "c")
    bad_same_a = analyses("x", "b bad", "c")  # predicts A, but A's text is the same on both sides
    shared = analyses("s", "s", "s")
    chains = [
        chain("r.", "B", good),
        chain("r.", "A", bad_same_a),
        chain("r.", None, analyses("n", "n", "n")),  # no valid prediction: dropped
        chain("r.", "B", shared), chain("r.", "C", shared),  # same set on both sides: dropped
    ]
    pairs, stats = analyze_pairs(Q, "r.", chains, [], random.Random(0))
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("b ok", "b bad")]
    assert stats.invalid_prediction == 1 and stats.overlap_removed == 1 and stats.identical_texts == 1


def test_analyze_without_correct_chain_uses_the_teacher_as_chosen():
    teacher = [analyses("A is incorrect.", "B is correct.", "C is incorrect.")]
    bad = analyses("A is correct.", "B is incorrect.", "C is incorrect.")
    pairs, stats = analyze_pairs(Q, "r.", [chain("r.", "A", bad)], teacher, random.Random(0))
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("B is correct.", "B is incorrect."), ("A is incorrect.", "A is correct.")]
    assert stats.chosen_topped_up == 1


def test_analyze_balancing_both_ways():
    goods = [analyses("a-", f"b+{i}", "c-") for i in range(3)]
    bad = analyses("a+", "b-", "c-")
    chains = [chain("r.", "B", g) for g in goods] + [chain("r.", "A", bad)]
    pairs, stats = analyze_pairs(Q, "r.", chains, [], random.Random(0))
    assert stats.rejected_resampled == 2 and len(pairs) == 6
    assert {p["rejected"] for p in pairs} == {"b-", "a+"}

    bads = [analyses(f"a+{i}", "b-", "c-") for i in range(3)]
    teacher = [analyses("a-t", "b+t", "c-t")]
    chains = [chain("r.", "B", goods[0])] + [chain("r.", "A", b) for b in bads]
    pairs, stats = analyze_pairs(Q, "r.", chains, teacher, random.Random(0))
    assert stats.chosen_topped_up == 1 and stats.chosen_resampled == 1
    assert [p["chosen"] for p in pairs if p["prompt"].endswith("For option B,")][:2] == ["b+0", "b+t"]


def test_no_rejected_chain_gives_no_analyze_pairs():
    pairs, stats = analyze_pairs(Q, "r.", [chain("r.", "B", analyses("a", "b", "c"))], [], random.Random(0))
    assert pairs == [] and stats.no_rejected == 1
