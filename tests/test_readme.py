"""The README's commands and CI stay in sync."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_commands():
    text = (REPO / "README.md").read_text()
    first_screen = text.split("## Commands")[0]
    return re.findall(r"```bash\n(.+?)\n```", first_screen, flags=re.S)


def test_readme_first_screen_has_the_two_commands():
    main_job, tests = readme_commands()
    assert "pip install torch==2.13.0" in main_job and "tinythinker" in main_job.split("&&")[-1]
    assert tests.split("&&")[-1].strip() == "python -m pytest -q"


def test_ci_runs_the_readme_install_and_test_command():
    _, tests = readme_commands()
    ci = (REPO / ".ci" / "run").read_text()
    for step in tests.split("&&")[2:]:  # after creating and activating the venv
        assert f"\n{step.strip().replace('pip install', 'pip install -q')}\n" in ci or f"\n{step.strip()}\n" in ci, step
