import sqlite3

from tinythinker.teacher.cache import ResponseCache, sample_key

MESSAGES = [{"role": "user", "content": "hi"}]
PARAMS = {"temperature": 0.8, "max_tokens": 256}


def test_key_depends_on_model_messages_params_and_sample():
    base = sample_key("m", MESSAGES, PARAMS, 0)
    assert base == sample_key("m", [dict(MESSAGES[0])], dict(PARAMS), 0)
    variants = [
        sample_key("m2", MESSAGES, PARAMS, 0),
        sample_key("m", [{"role": "user", "content": "hi!"}], PARAMS, 0),
        sample_key("m", MESSAGES, {"temperature": 0.7, "max_tokens": 256}, 0),
        sample_key("m", MESSAGES, {"temperature": 0.8, "max_tokens": 512}, 0),
        sample_key("m", MESSAGES, PARAMS, 1),
    ]
    assert len({base, *variants}) == 6


def test_samples_persist_in_wal_mode_with_usage(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path)
    assert cache.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    keys = [sample_key("m", MESSAGES, PARAMS, i) for i in range(3)]
    cache.put_request("m", {"prompt_tokens": 10, "completion_tokens": 7}, [(k, f"text {i}", "stop") for i, k in enumerate(keys)])
    # a second process sees the committed request while the writer is still open
    reader = ResponseCache(path, readonly=True)
    assert reader.get(keys[2]).text == "text 2" and reader.count_samples() == 3
    reader.close()
    cache.close()
    reopened = ResponseCache(path)
    assert reopened.get(keys[0]).finish_reason == "stop"
    assert reopened.get(sample_key("m", MESSAGES, PARAMS, 3)) is None
    assert reopened.usage_by_model() == {"m": {"requests": 1, "prompt_tokens": 10, "completion_tokens": 7}}
    reopened.close()


def test_a_failed_request_insert_leaves_nothing(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    try:
        cache.put_request("m", {"prompt_tokens": 1}, [("k1", "ok", "stop"), ("k2", None, "stop")])  # NOT NULL violated
    except sqlite3.IntegrityError:
        pass
    assert cache.get("k1") is None and cache.usage_by_model() == {}
    cache.close()
