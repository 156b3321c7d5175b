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


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from more threads, and OpenMP threads spin badly on shared cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_and_kill(command: list[str], ready, env: dict | None = None, timeout: float = 300.0) -> None:
    """Start ``command``, SIGKILL it as soon as ``ready()`` is true; fail if it ended before that."""
    import signal
    import subprocess
    import time

    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while process.poll() is None and time.time() < deadline and not ready():
        time.sleep(0.005)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"


@pytest.fixture
def kill_midway():
    """``kill_midway(command, ready, env)``: run a command and SIGKILL it once ``ready()`` holds."""
    return run_and_kill
