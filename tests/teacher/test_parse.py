import pytest

from tinythinker.teacher.parse import parse_reply

LABELS = ["A", "B", "C"]
GOOD = """Key Information: Fish need water to breathe
B is correct. Because fish live in rivers.
A is incorrect. Because trees have no water.
C is incorrect. Because the sky is air."""


def test_valid_reply():
    parsed = parse_reply(GOOD, LABELS, gold="B")
    assert parsed.ok and parsed.stated_answer == "B"
    assert parsed.recall == "Fish need water to breathe."
    assert parsed.analyze == {
        "A": "A is incorrect. Because trees have no water.",
        "B": "B is correct. Because fish live in rivers.",
        "C": "C is incorrect. Because the sky is air.",
    }


def test_markdown_bullets_and_continuation_lines():
    reply = "**Key Information:** Fish need water.\n\n- **B is correct.** Because fish\n  live in rivers.\n- (A) is incorrect: because no.\n- C is incorrect. Because air."
    parsed = parse_reply(reply, LABELS, gold="B")
    assert parsed.ok, parsed.reason
    assert parsed.analyze["B"] == "B is correct. Because fish live in rivers."
    assert parsed.analyze["A"] == "A is incorrect. Because no."


@pytest.mark.parametrize(
    "reply, finish, reason",
    [
        (GOOD, "length", "cut_off"),
        (GOOD, "content_filter", "stopped_abnormally"),
        ("   ", "stop", "empty_reply"),
        (GOOD.split("\n", 1)[1], "stop", "missing_key_information"),
        (GOOD.rsplit("\n", 1)[0], "stop", "missing_option"),
        (GOOD + "\nD is incorrect. Because no D.", "stop", "unknown_option"),
        (GOOD + "\nC is incorrect. Because again.", "stop", "repeated_option"),
        (GOOD.replace("Because the sky is air.", "Because"), "stop", "empty_explanation"),
        (GOOD.replace("B is correct", "B is incorrect"), "stop", "no_option_correct"),
        (GOOD.replace("A is incorrect", "A is correct"), "stop", "several_options_correct"),
    ],
)
def test_rejections(reply, finish, reason):
    assert parse_reply(reply, LABELS, gold="B", finish_reason=finish).reason == reason


def test_contradicting_the_gold_hint_is_rejected_unless_voting():
    reply = GOOD.replace("B is correct", "B is incorrect").replace("A is incorrect", "A is correct")
    rejected = parse_reply(reply, LABELS, gold="B")
    assert rejected.reason == "contradicts_gold" and rejected.stated_answer == "A"
    voting = parse_reply(reply, LABELS, gold=None)
    assert voting.ok and voting.stated_answer == "A"
