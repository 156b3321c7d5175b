"""Fixtures of the trainer tests (helpers live in stage_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from stage_fixtures import THINGS, make_questions, write_stage_dir

from tinythinker.data.schema import write_questions


@pytest.fixture
def colour_set(tmp_path) -> Path:
    """tmp_path with stages/ (full variant, 12 questions) and valid.jsonl (6 of the same things, other option orders)."""
    train = make_questions(list(THINGS), seed=1)
    write_stage_dir(tmp_path / "stages", train)
    write_questions(tmp_path / "valid.jsonl", make_questions(list(THINGS)[:6], seed=2, prefix="v"))
    return tmp_path


