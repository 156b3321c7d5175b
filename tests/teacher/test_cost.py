import json

import pytest

from tinythinker.errors import InputError
from tinythinker.teacher import cost
from tinythinker.teacher.cost import TokenCounter, load_prices, price_for


def test_approximation_without_local_encodings_and_no_download(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    import tiktoken.load

    def no_network(*args, **kwargs):
        raise AssertionError("tiktoken tried to download an encoding")

    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    counter = TokenCounter("gpt-4o")
    assert counter.method == "approximation:ceil(chars/4)" and not counter.exact
    assert counter.count("abcd" * 10) == 10 and counter.count("abcde") == 2
    messages = [{"role": "system", "content": "abcd"}, {"role": "user", "content": "abcdabcd"}]
    assert counter.count_messages(messages) == (4 + 1) + (4 + 2) + 3
    # a corrupt cached encoding is not trusted (tiktoken would re-download it)
    url, _ = cost._ENCODINGS["o200k_base"]
    cost._tiktoken_cache_file(url).write_bytes(b"corrupt")
    assert TokenCounter("gpt-4o").method.startswith("approximation")


def test_tiktoken_used_when_its_encoding_is_cached(tmp_path, monkeypatch):
    import hashlib

    import tiktoken

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    url = cost._ENCODINGS["cl100k_base"][0]
    content = b"a stand-in for the encoding file"
    monkeypatch.setitem(cost._ENCODINGS, "cl100k_base", (url, hashlib.sha256(content).hexdigest()))
    cost._tiktoken_cache_file(url).write_bytes(content)
    calls = []
    fake = type("Encoding", (), {"name": "cl100k_base", "encode": lambda self, text, **kw: text.split()})()
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: calls.append(name) or fake)
    counter = TokenCounter("gpt-4")  # a cl100k_base model
    assert counter.method == "tiktoken:cl100k_base" and counter.exact and calls == ["cl100k_base"]
    assert counter.count("three words here") == 3


def test_prices_builtin_prefix_and_user_override(tmp_path):
    table = load_prices()
    assert price_for("gpt-4o-mini-2024-07-18", table).model == "gpt-4o-mini"
    assert price_for("gpt-4o-2024-05-13", table).input == 5.0
    assert price_for("my-local-llama", table) is None
    path = tmp_path / "prices.yaml"
    path.write_text("my-local-llama: {input: 0.0, output: 0.0}\ngpt-4o: {input: 1, output: 2}\n")
    table = load_prices(path)
    assert price_for("my-local-llama", table).cost(1000, 1000) == 0.0
    assert price_for("gpt-4o", table).cost(1_000_000, 500_000) == pytest.approx(2.0)
    bad = tmp_path / "prices.json"
    bad.write_text(json.dumps({"m": {"input": "cheap", "output": 1}}))
    with pytest.raises(InputError, match="field 'm.input'"):
        load_prices(bad)
