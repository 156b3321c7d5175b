"""The synthetic benchmark: deterministic, held-out facts reachable only through rationales."""

import pytest

from tinythinker.data.schema import read_questions
from tinythinker.data.synthetic import ATTRIBUTE_VALUES, WorldConfig, generate, read_world, write_benchmark
from tinythinker.errors import ConfigError


def test_same_seed_same_benchmark_other_seed_differs(tmp_path):
    write_benchmark(WorldConfig(seed=3, entities=12), tmp_path / "a")
    write_benchmark(WorldConfig(seed=3, entities=12), tmp_path / "b")
    write_benchmark(WorldConfig(seed=4, entities=12), tmp_path / "c")
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl", "world.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "world.json").read_bytes() != (tmp_path / "c" / "world.json").read_bytes()
    assert read_world(tmp_path / "a" / "world.json").facts == generate(WorldConfig(seed=3, entities=12))[0].facts


def test_held_out_facts_are_never_asked_in_training_but_are_in_recalls():
    config = WorldConfig(seed=1, entities=30, train_attributes=3, questions_per_fact=2, options=4)
    world, splits = generate(config)
    asked = {(q.extra["entity"], q.extra["attribute"]) for q in splits["train"]}
    assert len(splits["train"]) == 30 * 3 * 2
    assert len(splits["valid"]) + len(splits["test"]) == 30 * 2
    for question in splits["valid"] + splits["test"]:
        entity, attribute = question.extra["entity"], question.extra["attribute"]
        assert (entity, attribute) not in asked
        assert entity in {e for e, _ in asked}, "every test animal is met in training"
        gold = question.option_text(question.answer)
        assert world.facts[entity][attribute] == gold
        assert world.fact(entity, attribute, subject="")[1:] in world.recall(entity)
    for question in splits["train"] + splits["valid"] + splits["test"]:
        texts = [o.text for o in question.options]
        assert len(texts) == 4 == len(set(texts))
        assert set(texts) <= set(ATTRIBUTE_VALUES[question.extra["attribute"]])


def test_common_sense_rules_hold():
    world, _ = generate(WorldConfig(seed=2, entities=200, values_per_attribute=8))
    fish = [f for f in world.facts.values() if f["kind"] == "fish"]
    insects = [f for f in world.facts.values() if f["kind"] == "insect"]
    assert fish and insects
    assert all(f["home"] in ("river", "lake") for f in fish)
    assert all(f["size"] in ("tiny", "small") for f in insects)


def test_recall_wording():
    world, _ = generate(WorldConfig(seed=0, entities=2, attributes=["kind", "home", "colour"], train_attributes=2))
    entity = next(iter(world.facts))
    f = world.facts[entity]
    assert world.recall(entity) == (
        f"The {entity} is a kind of {f['kind']}. It lives in the {f['home']}. It is {f['colour']} in colour."
    )


@pytest.mark.parametrize(
    "changes, message",
    [({"options": 7, "values_per_attribute": 6}, "options"), ({"train_attributes": 5}, "train_attributes"), ({"attributes": ["smell"]}, "smell")],
)
def test_invalid_settings_fail_fast(changes, message):
    with pytest.raises(ConfigError, match=message):
        generate(WorldConfig(**changes))


def test_cli_writes_canonical_files(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "tinythinker.cli", "data", "synth", "--out", str(tmp_path / "s"), "entities=8", "seed=5"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert len(read_questions(tmp_path / "s" / "train.jsonl")) == 8 * 3 * 2


def test_no_word_is_a_value_of_two_attributes():
    # an option's text must match at most one fact of a recall, or the analyze stage can't tell them apart
    words = [value for values in ATTRIBUTE_VALUES.values() for value in values]
    assert len(words) == len(set(words))
