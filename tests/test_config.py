"""Dataclass configs from YAML plus key=value overrides."""

from dataclasses import dataclass, field
from typing import Optional

import pytest

from tinythinker.config import load_config, parse_overrides
from tinythinker.errors import ConfigError


@dataclass
class Optim:
    lr: float = 1e-3
    warmup: int = 10


@dataclass
class Run:
    name: str = "x"
    steps: int = 5
    bf16: bool = False
    variants: list[str] = field(default_factory=lambda: ["summarize"])
    limit: Optional[int] = None
    optim: Optim = field(default_factory=Optim)

    def validate(self):
        if self.steps <= 0:
            raise ConfigError("steps: must be positive")


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: a\nsteps: 7\noptim:\n  lr: 5.0e-4\n")
    config = load_config(Run, path, ["optim.warmup=3", "bf16=true", "variants=summarize,recall_summarize", "limit=null"])
    assert config == Run(name="a", steps=7, bf16=True, variants=["summarize", "recall_summarize"], limit=None, optim=Optim(5e-4, 3))


def test_defaults_without_file():
    assert load_config(Run) == Run()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["stepz=3"], "stepz: unknown key"),
        (["optim.beta=3"], "optim.beta: unknown key"),
        (["steps=abc"], "steps: expected an integer"),
        (["steps=1.5"], "steps: expected an integer"),
        (["bf16=maybe"], "bf16: expected true or false"),
        (["steps=0"], "steps: must be positive"),
        (["steps"], "expected key=value"),
    ],
)
def test_errors_are_one_clear_line(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config(Run, None, overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: [1, 2\n")
    with pytest.raises(ConfigError, match=f"{path}:"):
        load_config(Run, path)
    path.write_text("nme: a\n")
    with pytest.raises(ConfigError, match=f"{path}: nme: unknown key"):
        load_config(Run, path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(Run, tmp_path / "missing.yaml")


def test_parse_overrides_nests_dotted_keys():
    assert parse_overrides(["a.b=1", "a.c=x", "d=2.5"]) == {"a": {"b": 1, "c": "x"}, "d": 2.5}


@dataclass
class Inner:
    path: str = "<set>"
    size: int = 3

    def validate(self):
        if not self.path:
            raise ConfigError("path: required")


@dataclass
class Outer:
    inner: Inner = field(default_factory=lambda: Inner(path="given-by-outer"))


def test_partial_section_keeps_the_sections_defaults():
    assert load_config(Outer, None, ["inner.size=5"]).inner == Inner(path="given-by-outer", size=5)


def test_base_file_is_loaded_first_and_overlaid(tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\nsteps: 9\nbf16: true\noptim: {lr: 0.5, warmup: 7}\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\nname: child\noptim: {warmup: 2}\n")
    config = load_config(Run, tmp_path / "child.yaml", ["steps=3"])
    assert (config.name, config.steps, config.bf16, config.optim.lr, config.optim.warmup) == ("child", 3, True, 0.5, 2)


def test_bad_base_fails_with_the_file_named(tmp_path):
    (tmp_path / "a.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"a\.yaml: field 'base': 'missing\.yaml' is not a config file"):
        load_config(Run, tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("base: c.yaml\n")
    (tmp_path / "c.yaml").write_text("base: b.yaml\n")
    with pytest.raises(ConfigError, match="includes itself"):
        load_config(Run, tmp_path / "b.yaml")
