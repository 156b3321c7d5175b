"""`teach` end to end: the real openai client against a scripted local server, via the API and the CLI."""

import json
import re

import pytest
from chat_server import ChatServer, Reply, Status, parse_prompt, rationale, rationalize
from teacher_fixtures import FAKE_KEY, KEY_ENV
from typer.testing import CliRunner

from tinythinker.cli import app
from tinythinker.errors import ConfigError, TinyThinkerError
from tinythinker.io import read_jsonl
from tinythinker.teacher.client import CallableBackend
from tinythinker.teacher.teach import TEACHERS, TeachConfig, TeacherSpec, register_teacher, teach

runner = CliRunner()


def config(server, **kw):
    base = dict(model="test-model", base_url=server.url, api_key_env=KEY_ENV, samples=2, concurrency=4,
                backoff_base=0.01, backoff_max=0.05, max_retries=3)
    base.update(kw)
    return TeachConfig(**base)


def question_number(body):
    return int(re.search(r"object number (\d+)", parse_prompt(body)[0]).group(1))


def test_complete_run_then_rerun_uses_only_the_cache(tmp_path, questions, api_key):
    data = questions(6)
    out = tmp_path / "out"
    with ChatServer() as server:
        report = teach(data, out, config(server), progress=False)
        assert len(server.requests) == 6 and all(r["body"]["n"] == 2 for r in server.requests)
        first = (out / "rationales.jsonl").read_bytes()
        again = teach(data, out, config(server), progress=False)
        assert len(server.requests) == 6  # nothing asked twice
    records = read_jsonl(out / "rationales.jsonl")
    assert [(r["id"], r["sample"]) for r in records] == [(f"q{i:03d}", s) for i in range(6) for s in (0, 1)]
    assert all(set(r["analyze"]) == set("ABCDE") and r["teacher"] == "openai:test-model" for r in records)
    gold = {q["id"]: q["answer"] for q in read_jsonl(data)}
    assert all(r["analyze"][gold[r["id"]]].startswith(f"{gold[r['id']]} is correct. Because") for r in records)
    assert report["status"] == "complete" and report["rationales_written"] == 12
    assert report["samples"] == {"from_cache": 0, "new": 12} and report["requests"]["succeeded"] == 6
    assert report["cost_usd"]["price"] is None and report["tokens"]["prompt"] > 0  # a model without a price
    assert again["samples"] == {"from_cache": 12, "new": 0} and again["cache_hits"] == 12
    assert (out / "rationales.jsonl").read_bytes() == first
    assert json.loads((out / "report.json").read_text())["status"] == "complete"
    result = runner.invoke(app, ["build", "--data", str(data), "--rationales", str(out / "rationales.jsonl"),
                                 "--out", str(tmp_path / "stages")])
    assert result.exit_code == 0 and "recall 12, analyze 60, summarize 12" in result.output


def test_repeated_requests_without_n_and_fallback_when_n_is_ignored(tmp_path, questions, api_key):
    data = questions(3)
    with ChatServer() as server:
        teach(data, tmp_path / "a", config(server, use_n=False, samples=3), progress=False)
        assert len(server.requests) == 9 and all("n" not in r["body"] for r in server.requests)
    one_only = lambda body, number: Reply([rationale(body, f"r{number}")])  # a server that ignores n
    with ChatServer(one_only) as server:
        report = teach(data, tmp_path / "b", config(server, samples=3), progress=False)
        # first request asks n=3 and gets 1; from then on one sample per request
        assert server.requests[0]["body"]["n"] == 3 and len(server.requests) == 9
    assert report["n_fallback_to_single_requests"] and report["rationales_written"] == 9


def test_rejected_replies_are_re_asked_and_reported(tmp_path, questions, api_key):
    data = questions(5)
    asked = {}

    def script(body, number):
        q = question_number(body)
        attempt = asked[q] = asked.get(q, 0) + 1
        _, _, gold = parse_prompt(body)
        wrong = "A" if gold != "A" else "B"
        good = Reply([rationale(body, f"q{q}a{attempt}")])
        if q == 0 and attempt == 1:
            return Reply([rationale(body, "cut")[:60]], ["length"])
        if q == 1 and attempt == 1:
            return Reply([rationale(body, "x", skip=wrong)])
        if q == 2 and attempt == 1:
            return Reply([rationale(body, "x", also_correct=wrong)])
        if q == 3:
            return Reply([rationale(body, f"w{attempt}", correct=wrong)])  # always contradicts the gold hint
        return good

    with ChatServer(script) as server:
        report = teach(data, tmp_path / "out", config(server, samples=1, rounds=2), progress=False)
    bodies = {}
    for r in server.requests:
        bodies.setdefault(question_number(r["body"]), []).append(r["body"])
    assert [b["max_tokens"] for b in bodies[0]] == [256, 512]  # cut off: re-asked with doubled max_tokens
    assert len(bodies[1]) == 2 and len(bodies[2]) == 2 and len(bodies[4]) == 1
    assert len(bodies[3]) == 3  # first ask + 2 rounds
    assert report["rejections"] == {"cut_off": 1, "missing_option": 1, "several_options_correct": 1, "contradicts_gold": 3}
    assert report["questions_without_rationale"] == 1 and report["questions_without_rationale_ids"] == ["q003"]
    assert report["labels"]["questions_where_vote_disagrees_with_gold"] == 1
    assert [r["id"] for r in read_jsonl(tmp_path / "out" / "rationales.jsonl")] == ["q000", "q001", "q002", "q004"]


def test_similar_recalls_are_not_kept_twice(tmp_path, questions, api_key):
    same = lambda body, number: Reply([rationale(body, "same") + ("!" * i) for i in range(body.get("n", 1))])
    with ChatServer(same) as server:
        report = teach(questions(2), tmp_path / "out", config(server, samples=4), progress=False)
    assert report["rationales_written"] == 2  # four samples whose recalls differ by < 10 edits: one kept


def test_labels_kept_by_default_and_replaced_only_with_the_flag(tmp_path, questions, api_key):
    data = questions(4)

    def always_b(body, number):
        return Reply([rationale(body, f"{number}s{i}", correct="B") for i in range(body.get("n", 1))])

    with ChatServer(always_b) as server:
        kept = teach(data, tmp_path / "keep", config(server, rounds=0), progress=False)
        voted = teach(data, tmp_path / "vote", config(server, rounds=0, relabel_by_vote=True), progress=False)
    # gold answers are A, B, C, D: three questions disagree with the teacher's vote
    assert kept["labels"]["questions_where_vote_disagrees_with_gold"] == 3 and kept["labels"]["questions_relabeled"] == 0
    assert [r["id"] for r in read_jsonl(tmp_path / "keep" / "rationales.jsonl")] == ["q001", "q001"]
    assert not (tmp_path / "keep" / "questions.relabeled.jsonl").exists()
    assert voted["labels"]["questions_relabeled"] == 3 and voted["rationales_written"] == 8
    relabeled = read_jsonl(tmp_path / "vote" / "questions.relabeled.jsonl")
    assert [q["answer"] for q in relabeled] == ["B"] * 4
    assert [q.get("original_answer") for q in relabeled] == ["A", None, "C", "D"]


def test_max_cost_stops_cleanly_and_a_bigger_budget_finishes(tmp_path, questions, api_key):
    data = questions(8)
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"test-model": {"input": 100.0, "output": 100.0}}))  # USD per 1M tokens
    out = tmp_path / "out"
    with ChatServer() as server:
        args = ["teach", "--data", str(data), "--out", str(out), "--model", "test-model", "--base-url", server.url,
                "--api-key-env", KEY_ENV, "--samples", "2", "--concurrency", "1", "--prices", str(prices),
                "backoff_base=0.01"]
        result = runner.invoke(app, [*args, "--max-cost", "0.6"])
        assert result.exit_code == 1 and "stopped (stopped_max_cost)" in result.output
        report = json.loads((out / "report.json").read_text())
        sent = len(server.requests)
        assert report["status"] == "stopped_max_cost" and 0 < sent < 8
        # real usage as reported by the server (stored in the cache) never exceeds the budget
        assert 0 < report["cost_usd"]["total_in_cache"] <= 0.6
        assert report["samples"]["new"] == 2 * sent
        assert not (out / "rationales.jsonl").exists()
        result = runner.invoke(app, [*args, "--max-cost", "5"])
        assert result.exit_code == 0, result.output
        assert len(server.requests) == 8  # the first run's answers were reused, none bought twice
    report = json.loads((out / "report.json").read_text())
    assert report["samples"] == {"from_cache": 2 * sent, "new": 2 * (8 - sent)}
    assert report["cost_usd"]["total_in_cache"] <= 5 and len(read_jsonl(out / "rationales.jsonl")) == 16


def test_estimate_calls_nothing(tmp_path, questions, api_key, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "no-encodings"))
    data = questions(5)
    out = tmp_path / "out"
    with ChatServer() as server:
        args = ["teach", "--data", str(data), "--out", str(out), "--model", "gpt-4o-mini", "--base-url", server.url,
                "--api-key-env", KEY_ENV, "--samples", "3", "--estimate"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        estimate = json.loads(result.output)
        assert len(server.requests) == 0 and not out.exists()
        assert estimate["requests"] == 5 and estimate["input_tokens"] > 5 * 1000
        assert estimate["max_output_tokens"] == 5 * 3 * 256 and 0 < estimate["expected_output_tokens"] < estimate["max_output_tokens"]
        assert estimate["token_counter"] == "approximation:ceil(chars/4)"
        assert 0 < estimate["expected_cost_usd"] < estimate["max_cost_usd"]
        teach(data, out, config(server, model="gpt-4o-mini", samples=3), progress=False)
        after = json.loads(runner.invoke(app, args).output)
        assert after["requests"] == 0 and after["samples_already_cached"] == 15
        assert len(server.requests) == 5


def test_api_key_never_written(tmp_path, questions, api_key):
    out = tmp_path / "out"

    def flaky(body, number):  # errors are logged: their text must not carry the key either
        if number % 3 == 0:
            return Status(503, message=f"overloaded for key {FAKE_KEY}")
        return rationalize(body, number)

    with ChatServer(flaky) as server:
        teach(questions(4), out, config(server), progress=False)
    with ChatServer(lambda body, number: Status(401, message=f"Incorrect API key provided: {FAKE_KEY}")) as server:
        result = runner.invoke(app, ["teach", "--data", str(tmp_path / "questions.jsonl"), "--out", str(tmp_path / "denied"),
                                     "--model", "m2", "--base-url", server.url, "--api-key-env", KEY_ENV])
    assert result.exit_code == 2 and "HTTP 401" in result.output and FAKE_KEY not in result.output
    files = [p for folder in (out, tmp_path / "denied") for p in folder.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"rationales.jsonl", "report.json", "cache.sqlite", "teach.log"}
    assert "503" in (out / "teach.log").read_text()
    for path in files:
        assert FAKE_KEY.encode() not in path.read_bytes(), path


def test_in_process_teacher_goes_through_the_same_path(tmp_path, questions):
    calls = []

    def answer(request):
        calls.append(request.question.id)
        body = {"messages": request.messages}
        return [rationale(body, f"{request.question.id}-{len(calls)}-{i}") for i in range(request.n)], ["stop"] * request.n, {}

    register_teacher("scripted-test", TeacherSpec(lambda cfg: CallableBackend(answer), remote=False, needs_model=False))
    try:
        settings = TeachConfig(teacher="scripted-test", samples=2)
        report = teach(questions(3), tmp_path / "out", settings, progress=False)
        again = teach(questions(3), tmp_path / "out", settings, progress=False)
    finally:
        TEACHERS.pop("scripted-test")
    assert calls == ["q000", "q001", "q002"] and report["rationales_written"] == 6
    assert again["samples"]["from_cache"] == 6 and report["cost_usd"]["this_run"] == 0
    assert read_jsonl(tmp_path / "out" / "rationales.jsonl")[0]["teacher"] == "scripted-test"


def test_bad_input_is_one_line_exit_2(tmp_path, questions):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q", "options": [{"label": "A", "text": "x"}], "answer": "A"}\n')
    result = runner.invoke(app, ["teach", "--data", str(bad), "--out", str(tmp_path / "o"), "--model", "m", "--base-url", "http://127.0.0.1:9/v1"])
    assert result.exit_code == 2 and f"{bad}:1: field 'options'" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["teach", "--data", str(questions(2)), "--out", str(tmp_path / "o"), "--teacher", "nope"])
    assert result.exit_code == 2 and "unknown teacher 'nope'" in result.output
    with pytest.raises(ConfigError, match="needs --source"):
        TeachConfig(teacher="import:jsonl").validate()
    with pytest.raises(TinyThinkerError, match="set the API key"):
        teach(questions(2), tmp_path / "o2", TeachConfig(model="gpt-4o", api_key_env="TT_SURELY_UNSET_VAR"), progress=False)


def test_config_file_then_overrides_then_options(tmp_path, questions):
    settings = tmp_path / "teach.yaml"
    settings.write_text("model: gpt-4o-mini\nsamples: 3\ntemperature: 0.5\nbase_url: http://127.0.0.1:9/v1\n")
    args = ["teach", "--data", str(questions(2)), "--out", str(tmp_path / "o"), "--config", str(settings), "--estimate"]
    estimate = json.loads(runner.invoke(app, args).output)
    assert estimate["samples_per_question"] == 3 and estimate["requests"] == 2
    estimate = json.loads(runner.invoke(app, [*args, "--samples", "2", "use_n=false"]).output)
    assert estimate["samples_per_question"] == 2 and estimate["requests"] == 4
    result = runner.invoke(app, [*args, "temperature=9"])
    assert result.exit_code == 2 and "temperature" in result.output
