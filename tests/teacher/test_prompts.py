import json

import pytest

from tinythinker.data.schema import Option, Question
from tinythinker.errors import InputError
from tinythinker.teacher.parse import parse_reply
from tinythinker.teacher.prompts import (BUNDLED, SYSTEM_INSTRUCTION, assistant_turn, build_messages, exemplar_set_for,
                                         load_exemplars)


def test_bundled_sets_have_the_reference_sizes():
    sizes = {name: len(load_exemplars(name)) for name in BUNDLED}
    assert sizes["csqa"] == 8 and sizes["obqa"] == 7 and sizes["strategyqa"] == 8 and sizes["generic"] >= 3
    assert all(len(e.options) == 5 for e in load_exemplars("csqa"))
    assert all(len(e.options) == 4 for e in load_exemplars("obqa"))
    assert all(e.options == ("yes", "no") for e in load_exemplars("strategyqa"))


@pytest.mark.parametrize("name", BUNDLED)
def test_every_exemplar_reply_parses_as_a_valid_rationale(name):
    for exemplar in load_exemplars(name):
        parsed = parse_reply(assistant_turn(exemplar), exemplar.labels, gold=exemplar.answer)
        assert parsed.ok, (name, exemplar.question, parsed.reason)
        assert parsed.stated_answer == exemplar.answer
        assert parsed.analyze[exemplar.answer].startswith(f"{exemplar.answer} is correct. Because ")


def test_messages_end_with_the_gold_hint_in_order():
    question = Question("x", "Where do fish live?", [Option("A", "tree"), Option("B", "river"), Option("C", "sky")], "B", "mine")
    exemplars = load_exemplars("generic")
    messages = build_messages(question, exemplars)
    assert messages[0] == {"role": "system", "content": SYSTEM_INSTRUCTION}
    assert [m["role"] for m in messages[1:-1]] == ["user", "assistant"] * len(exemplars)
    assert messages[-1]["role"] == "user"
    assert messages[-1]["content"] == (
        "Question: Where do fish live?\nOptions: (A) tree (B) river (C) sky\n"
        "Explanations: B is correct. Because\nA is incorrect. Because\nC is incorrect. Because"
    )
    assert exemplar_set_for(question) == "generic"
    assert exemplar_set_for(Question("y", "q", question.options, "A", "obqa")) == "obqa"


def test_user_exemplar_file_and_located_errors(tmp_path):
    good = {"exemplars": [{"question": "Q?", "options": ["a", "b"], "answer": "B", "key_information": "K.",
                           "explanations": {"A": "no.", "B": "yes."}}]}
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(good))
    assert load_exemplars(path)[0].answer == "B"
    bad = json.loads(json.dumps(good))
    del bad["exemplars"][0]["explanations"]["A"]
    path.write_text(json.dumps(bad))
    with pytest.raises(InputError) as info:
        load_exemplars(path)
    assert str(path) in str(info.value) and "exemplars[0].explanations.A" in str(info.value)
    path.write_text("{not json")
    with pytest.raises(InputError, match=":1: malformed JSON"):
        load_exemplars(path)
    with pytest.raises(InputError, match="not found"):
        load_exemplars(tmp_path / "missing.json")
