"""Shared fixtures: where the real benchmark files are, and a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TINYTHINKER_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark files (../shared/data); the suite needs them."""
    assert SHARED_DATA.is_dir(), f"benchmark files expected at {SHARED_DATA} (set TINYTHINKER_SHARED_DATA)"
    return SHARED_DATA
