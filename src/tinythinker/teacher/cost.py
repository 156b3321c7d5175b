"""Token counting and prices, for ``--estimate`` and ``--max-cost``.

Token counting:
- tiktoken, when the encoding of the model (``o200k_base`` for unknown models) is already in
  tiktoken's local cache (``TIKTOKEN_CACHE_DIR``, ``DATA_GYM_CACHE_DIR`` or the system temp
  folder's ``data-gym-cache``) with the right checksum. We check the file ourselves first,
  because tiktoken would otherwise try to download it.
- otherwise an approximation: ``ceil(characters / 4)`` tokens per text (about four characters
  per token for English text with OpenAI tokenizers).
Chat messages add 4 tokens each plus 3 for the reply's priming, as OpenAI documents for its
chat models. ``TokenCounter.method`` says which counter was used; reports print it.

Prices are US dollars per million tokens, ``{"model": {"input": x, "output": y}}``. The built-in
table holds a few public list prices (check your provider's current prices); a JSON or YAML file
passed with ``--prices`` overrides and extends it. A model is priced by exact name, else by the
longest table entry it starts with; local models have no price (their cost is reported unknown).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
TOKENS_PER_REPLY = 3

# name -> (url tiktoken downloads it from, sha256 tiktoken expects)
_ENCODINGS = {
    "o200k_base": ("https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
                   "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    "cl100k_base": ("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
                    "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
}

DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o-2024-05-13": {"input": 5.00, "output": 15.00},
    "gpt-4o": {"input": 2.50, "output": 10.00},
    "gpt-4o-mini": {"input": 0.15, "output": 0.60},
    "gpt-4.1": {"input": 2.00, "output": 8.00},
    "gpt-4.1-mini": {"input": 0.40, "output": 1.60},
    "gpt-4.1-nano": {"input": 0.10, "output": 0.40},
    "gpt-4-turbo": {"input": 10.00, "output": 30.00},
    "gpt-3.5-turbo": {"input": 0.50, "output": 1.50},
}


def _tiktoken_cache_file(url: str) -> Path | None:
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        folder = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        folder = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        folder = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not folder:
        return None
    return Path(folder) / hashlib.sha1(url.encode()).hexdigest()


def local_encoding(model: str) -> Any | None:
    """The model's tiktoken encoding when it is available offline, else None (never downloads)."""
    try:
        import tiktoken
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return None
    try:
        name = encoding_name_for_model(model)
    except KeyError:
        name = "o200k_base"
    if name not in _ENCODINGS:
        return None
    url, expected = _ENCODINGS[name]
    path = _tiktoken_cache_file(url)
    if path is None or not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != expected:
        return None
    try:
        return tiktoken.get_encoding(name)
    except Exception:  # a broken install must not stop a run: fall back to the approximation
        return None


class TokenCounter:
    """Counts tokens of texts and chat prompts; ``method`` names the counter used."""

    def __init__(self, model: str, use_tiktoken: bool = True):
        self.encoding = local_encoding(model) if use_tiktoken else None
        self.method = f"tiktoken:{self.encoding.name}" if self.encoding is not None else f"approximation:ceil(chars/{CHARS_PER_TOKEN})"

    @property
    def exact(self) -> bool:
        return self.encoding is not None

    def count(self, text: str) -> int:
        if self.encoding is not None:
            return len(self.encoding.encode(text, disallowed_special=()))
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def count_messages(self, messages: list[dict[str, str]]) -> int:
        return sum(TOKENS_PER_MESSAGE + self.count(m["content"]) for m in messages) + TOKENS_PER_REPLY


@dataclass(frozen=True)
class Price:
    model: str  # the table entry used
    input: float  # USD per million prompt tokens
    output: float  # USD per million completion tokens

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


def load_prices(path: str | Path | None = None) -> dict[str, dict[str, float]]:
    """The built-in price table, overridden by a user's JSON/YAML file."""
    table = {name: dict(p) for name, p in DEFAULT_PRICES.items()}
    if path is None:
        return table
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "price file not found")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(path, f"cannot parse the price table ({exc})".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise InputError(path, "expected a mapping {model: {input: USD per 1M tokens, output: USD per 1M tokens}}")
    for model, entry in data.items():
        if not isinstance(entry, dict):
            raise InputError(path, "expected {input: number, output: number}", field=str(model))
        for side in ("input", "output"):
            value = entry.get(side)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InputError(path, "must be a non-negative number (USD per million tokens)", field=f"{model}.{side}")
        table[str(model)] = {"input": float(entry["input"]), "output": float(entry["output"])}
    return table


def price_for(model: str, table: dict[str, dict[str, float]]) -> Price | None:
    """Exact entry, else the longest entry the model name starts with, else None."""
    if model in table:
        name = model
    else:
        prefixes = [name for name in table if model.startswith(name)]
        if not prefixes:
            return None
        name = max(prefixes, key=len)
    return Price(name, table[name]["input"], table[name]["output"])
