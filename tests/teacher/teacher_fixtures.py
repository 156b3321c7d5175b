"""Constants and builders shared by the teacher tests (a uniquely named module: test folders share `conftest`)."""

from __future__ import annotations

import json
from pathlib import Path

FAKE_KEY = "sk-tinythinker-FAKE-7f3a9c2e-do-not-log"
KEY_ENV = "TINYTHINKER_TEST_API_KEY"
REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


def make_questions(path: Path, count: int, num_options: int = 5, source: str = "csqa") -> Path:
    labels = "ABCDE"[:num_options]
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            record = {
                "id": f"q{i:03d}",
                "question": f"Where would you most likely find object number {i}?",
                "options": [{"label": l, "text": f"place {l.lower()} {i}"} for l in labels],
                "answer": labels[i % num_options],
                "source": source,
            }
            handle.write(json.dumps(record) + "\n")
    return path
