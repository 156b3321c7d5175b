"""SQLite response cache: every teacher sample is stored the moment it arrives.

One file in the output folder (``cache.sqlite``), WAL journal, one transaction per API request
(the request's usage row and all of its samples together), so a process killed at any moment
(``kill -9`` included) leaves only whole requests behind and a re-run asks only for what is missing.
``synchronous=NORMAL``: a committed request survives the process being killed (the WAL write is
in the operating system's hands at commit); only a power loss or OS crash can drop the last few
commits, which a re-run then asks for again. (FULL would fsync per request, stalling the event loop.)

A sample's key is the SHA-256 of the model, the messages, the sampling parameters and the
sample index (``sample_key``); the ``n`` of the request that produced it is not part of the key,
so samples fetched with ``n`` and with repeated requests are interchangeable. No API key,
header or URL is ever stored.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS samples (
    key TEXT PRIMARY KEY,
    request_id INTEGER NOT NULL REFERENCES requests(id),
    text TEXT NOT NULL,
    finish_reason TEXT
);
"""


def sample_key(model: str, messages: list[dict[str, str]], params: dict[str, Any], sample: int) -> str:
    """Hash of what determines one sample: model, messages, sampling parameters, sample index."""
    payload = json.dumps({"model": model, "messages": messages, "params": params, "sample": sample},
                         sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedSample:
    text: str
    finish_reason: str | None


class ResponseCache:
    """Get and put teacher samples; safe against kills, shared by concurrent readers."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        if readonly:
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(SCHEMA)
            self.conn.commit()

    def get(self, key: str) -> CachedSample | None:
        row = self.conn.execute("SELECT text, finish_reason FROM samples WHERE key = ?", (key,)).fetchone()
        return CachedSample(row[0], row[1]) if row else None

    def put_request(self, model: str, usage: dict[str, int], samples: list[tuple[str, str, str | None]]) -> None:
        """Store one API request's usage and its samples ``(key, text, finish_reason)`` atomically."""
        with self.conn:
            cursor = self.conn.execute(
                "INSERT INTO requests (model, prompt_tokens, completion_tokens, samples, created) VALUES (?, ?, ?, ?, ?)",
                (model, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)), len(samples), time.time()),
            )
            self.conn.executemany(
                "INSERT INTO samples (key, request_id, text, finish_reason) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
                [(key, cursor.lastrowid, text, finish) for key, text, finish in samples],
            )

    def usage_by_model(self) -> dict[str, dict[str, int]]:
        """Requests and tokens recorded in this cache (all runs), per model."""
        rows = self.conn.execute(
            "SELECT model, COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) FROM requests GROUP BY model"
        ).fetchall()
        return {model: {"requests": n, "prompt_tokens": p, "completion_tokens": c} for model, n, p, c in rows}

    def count_samples(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]

    def close(self) -> None:
        self.conn.close()
