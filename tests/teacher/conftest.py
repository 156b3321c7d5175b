"""Fixtures of the teacher tests: question files and a distinctive fake API key."""

from __future__ import annotations

import pytest
from teacher_fixtures import FAKE_KEY, KEY_ENV, make_questions


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    return FAKE_KEY


@pytest.fixture
def questions(tmp_path):
    return lambda count=6, num_options=5, source="csqa": make_questions(tmp_path / "questions.jsonl", count, num_options, source)
