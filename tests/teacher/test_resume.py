"""A teach process killed with SIGKILL half-way, then re-run: nothing lost, nothing asked twice."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from chat_server import ChatServer, parse_prompt
from teacher_fixtures import KEY_ENV

from tinythinker.io import read_jsonl

QUESTIONS, SAMPLES = 40, 2


def committed(cache):
    """Question texts whose samples are committed in the cache (read-only, beside the writer)."""
    if not cache.exists():
        return 0, set()
    conn = sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=5)
    try:
        rows = conn.execute("SELECT text FROM samples").fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return 0, set()
    finally:
        conn.close()
    return len(rows), {text.split("'")[1] for (text,) in rows}


def test_sigkill_then_resume(tmp_path, questions, api_key):
    data = questions(QUESTIONS)
    out = tmp_path / "out"
    cache = out / "cache.sqlite"
    env = dict(os.environ)
    with ChatServer(latency=0.1) as server:
        command = [sys.executable, "-m", "tinythinker.cli", "teach", "--data", str(data), "--out", str(out),
                   "--model", "test-model", "--base-url", server.url, "--api-key-env", KEY_ENV,
                   "--samples", str(SAMPLES), "--concurrency", "2"]
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while committed(cache)[0] < 10:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL
        sent_before = len(server.requests)
        stored, done = committed(cache)
        assert 10 <= stored < QUESTIONS * SAMPLES and stored % SAMPLES == 0  # whole requests only
        assert json.loads((out / "report.json").read_text())["status"] == "running"
        assert not (out / "rationales.jsonl").exists()

        finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert finished.returncode == 0, finished.stderr
        resumed = server.requests[sent_before:]
    # the second run asked exactly for the questions without a committed answer
    asked_again = [parse_prompt(r["body"])[0] for r in resumed]
    assert len(asked_again) == QUESTIONS - stored // SAMPLES
    assert len(set(asked_again)) == len(asked_again) and not set(asked_again) & done
    records = read_jsonl(out / "rationales.jsonl")
    assert [(r["id"], r["sample"]) for r in records] == [(f"q{i:03d}", s) for i in range(QUESTIONS) for s in range(SAMPLES)]
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "complete"
    assert report["samples"] == {"from_cache": stored, "new": QUESTIONS * SAMPLES - stored}
    assert committed(cache)[0] == QUESTIONS * SAMPLES
