"""``tinythinker teach``: questions -> teacher rationales (``rationales.jsonl``) and ``report.json``.

Features:
- Chat teachers from a registry (``TEACHERS``): ``openai`` is any OpenAI-compatible endpoint; an
  in-process teacher is one more entry whose factory returns a ``client.CallableBackend``. Both go
  through the same cache, limits, retries, parsing, selection and report.
- Importers (``--teacher import:NAME --source PATH``, see ``teacher.importers``) produce the same
  outputs without an API.
- N samples per question (``samples``): one request with the API's ``n`` when ``use_n`` (falls back
  to one request per sample when the server returns fewer), otherwise N requests.
- Every response is cached at once (``cache.sqlite``, see ``teacher.cache``); a re-run, after a
  normal end, a failure or a ``kill -9``, asks only for what is missing.
- Rejected replies (``teacher.parse``) are re-asked for up to ``rounds`` more rounds, cut-off ones
  with doubled max_tokens. Sample slot i's k-th attempt has sample index i + k*N, so the cache
  keys of a resumed run are the same as those of an uninterrupted one.
- Up to N rationales per question are kept, in slot order, skipping any whose recall is within
  ``min_recall_distance`` edits (Levenshtein) of one already kept.
- Labels: by default the gold label is kept and replies contradicting it are rejected (and
  re-asked). ``relabel_by_vote`` (explicit) takes the majority answer of the well-formed replies
  instead and writes ``questions.relabeled.jsonl``; the report counts the questions where the vote
  disagrees with gold either way.
- ``max_cost`` (USD): before each request the worst case (prompt x safety + max_tokens x n) is
  reserved against the budget; spending counts all requests recorded in this output folder's cache
  (all runs) at the current prices. When the next request could exceed it, no new request is sent,
  the run ends with status ``stopped_max_cost``, and the cache is kept.
- ``estimate``: requests, input tokens, expected and maximum output tokens and dollars for what the
  cache does not already hold, without calling the API.

Outputs (``--out``): ``rationales.jsonl`` (only when the job is complete), ``report.json`` (status
"running" while running), ``cache.sqlite``, ``teach.log``. The API key is read from the environment
variable named by ``api_key_env`` and never written anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..data.schema import Question, read_questions, write_questions
from ..errors import ConfigError, InputError, TinyThinkerError
from ..io import write_json, write_jsonl
from .cache import ResponseCache, sample_key
from .client import (ChatBackend, ChatRequest, ClientSettings, OpenAIBackend, RequestFailed, TeacherClient,
                     redact)
from .cost import Price, TokenCounter, load_prices, price_for
from .importers import IMPORTERS
from .parse import CUT_OFF, REJECT_REASONS, parse_reply
from .prompts import assistant_turn, build_messages, exemplar_set_for, load_exemplars
from .records import Candidate, make_record

IMPORT_PREFIX = "import:"
RATIONALES, REPORT, CACHE, LOG, RELABELED = "rationales.jsonl", "report.json", "cache.sqlite", "teach.log", "questions.relabeled.jsonl"
log = logging.getLogger("tinythinker.teacher")


@dataclass
class TeachConfig:
    """Settings of ``tinythinker teach``; CLI options and ``--config`` YAML keys use these names."""

    teacher: str = "openai"  # a TEACHERS entry, or import:{dss-palm,ecqa-freeflow,strategyqa-facts,jsonl}
    model: str = ""  # model name sent to the endpoint (chat teachers)
    base_url: str | None = None  # OpenAI-compatible endpoint; None: api.openai.com
    api_key_env: str = "OPENAI_API_KEY"  # environment variable holding the key (local servers may need none)
    samples: int = 4  # N rationales wanted per question (reference: 8 CSQA, 4 OBQA/StrategyQA)
    temperature: float = 0.8
    max_tokens: int = 256  # per reply; doubled for each cut-off re-ask
    rounds: int = 2  # re-ask rounds for rejected replies (R)
    use_n: bool = True  # N samples in one request via the API's `n`
    concurrency: int = 8  # requests in flight at once
    rpm: float | None = None  # requests-per-minute limit
    tpm: float | None = None  # tokens-per-minute limit (prompt + max_tokens x n reserved per request)
    timeout: float = 60.0  # seconds per request attempt
    max_retries: int = 6  # retries per request on 429/5xx/timeouts/connection errors
    backoff_base: float = 1.0  # seconds; retry k waits base x 2^k x U(0.5, 1), at least Retry-After
    backoff_max: float = 60.0
    exemplars: str | None = None  # bundled set name or JSON file; None: by each question's source
    prices: str | None = None  # JSON/YAML price table overriding the built-in one (USD per 1M tokens)
    max_cost: float | None = None  # USD budget over everything this output folder's cache has spent
    relabel_by_vote: bool = False  # replace gold labels by the teacher's majority vote (off: keep gold)
    min_recall_distance: int = 10  # keep a recall only if its edit distance to every kept one is larger
    source: str | None = None  # importer input (file or folder); the world.json of teacher synthetic
    error_rate: float = 0.0  # teacher synthetic: fraction of replies stating one wrong fact
    seed: int = 0  # seeds the retry jitter

    def validate(self) -> None:
        if self.is_import:
            name = self.teacher[len(IMPORT_PREFIX):]
            if name not in IMPORTERS:
                raise ConfigError(f"teacher: unknown importer {name!r}; choose one of {', '.join(IMPORTERS)}")
            if not self.source:
                raise ConfigError(f"teacher {self.teacher} needs --source PATH")
        elif self.teacher not in TEACHERS:
            choices = ", ".join([*TEACHERS, *(IMPORT_PREFIX + n for n in IMPORTERS)])
            raise ConfigError(f"teacher: unknown teacher {self.teacher!r}; choose one of {choices}")
        elif TEACHERS[self.teacher].needs_model and not self.model:
            raise ConfigError(f"teacher {self.teacher} needs --model NAME")
        for name in ("samples", "max_tokens", "concurrency"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1")
        for name in ("rounds", "max_retries", "min_recall_distance"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must not be negative")
        for name in ("rpm", "tpm", "max_cost"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name}: must be positive")
        if self.timeout <= 0 or self.backoff_base < 0 or self.backoff_max < 0:
            raise ConfigError("timeout must be positive; backoff_base and backoff_max not negative")
        if not 0 <= self.error_rate <= 1:
            raise ConfigError("error_rate: must be between 0 and 1")
        if not 0 <= self.temperature <= 2:
            raise ConfigError("temperature: must be between 0 and 2")

    @property
    def is_import(self) -> bool:
        return self.teacher.startswith(IMPORT_PREFIX)

    @property
    def teacher_name(self) -> str:
        return self.teacher if self.is_import else f"{self.teacher}:{self.model}" if self.model else self.teacher


@dataclass(frozen=True)
class TeacherSpec:
    """A chat teacher: ``factory(config)`` returns its backend; ``remote`` ones cost money and need a key."""

    factory: Callable[[TeachConfig], ChatBackend]
    remote: bool = True
    needs_model: bool = True


def api_key(config: TeachConfig) -> str:
    key = os.environ.get(config.api_key_env, "")
    if key:
        return key
    if not config.base_url:
        raise ConfigError(f"set the API key in the environment variable {config.api_key_env} (or name another with --api-key-env)")
    return "not-needed"  # local OpenAI-compatible servers usually accept any key


def _openai_backend(config: TeachConfig) -> ChatBackend:
    return OpenAIBackend(config.base_url, api_key(config))


def _synthetic_backend(config: TeachConfig) -> ChatBackend:
    from .synthetic import synthetic_backend

    return synthetic_backend(config.source, config.error_rate, config.seed)


TEACHERS: dict[str, TeacherSpec] = {
    "openai": TeacherSpec(_openai_backend),
    "synthetic": TeacherSpec(_synthetic_backend, remote=False, needs_model=False),
}


def register_teacher(name: str, spec: TeacherSpec) -> None:
    """Add a chat teacher (e.g. an in-process one) to ``--teacher``'s choices."""
    TEACHERS[name] = spec


# ---------------------------------------------------------------- selection and labels


def levenshtein(a: str, b: str, limit: int | None = None) -> int:
    """Edit distance; with ``limit``, a banded computation that returns limit + 1 once it is exceeded."""
    if a == b:
        return 0
    if limit is None:
        limit = max(len(a), len(b))
    big = limit + 1
    if abs(len(a) - len(b)) > limit:
        return big
    previous = [j if j <= limit else big for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        lo, hi = max(1, i - limit), min(len(b), i + limit)
        current = [big] * (len(b) + 1)
        current[0] = i if i <= limit else big
        for j in range(lo, hi + 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] != b[j - 1]))
        if min(current[lo - 1:hi + 1]) > limit:
            return big
        previous = current
    return min(previous[len(b)], big)


def select_diverse(candidates: list[Candidate], limit: int | None, min_distance: int) -> tuple[list[Candidate], int]:
    """Keep candidates in order, skipping recalls within ``min_distance`` edits of a kept one."""
    kept: list[Candidate] = []
    skipped = 0
    for candidate in candidates:
        if limit is not None and len(kept) >= limit:
            break
        key = " ".join(candidate.recall.split())
        if any(levenshtein(key, " ".join(k.recall.split()), min_distance) <= min_distance and
               (min_distance > 0 or k.analyze == candidate.analyze) for k in kept):
            skipped += 1
            continue
        kept.append(candidate)
    return kept, skipped


def vote(answers: list[str]) -> str | None:
    """Majority answer; None on a tie or no answers."""
    counts = Counter(answers).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def finalize(questions: list[Question], candidates: dict[str, list[Candidate]], config: TeachConfig,
             limit: int | None, min_distance: int, votes: dict[str, list[str]] | None = None,
             ) -> tuple[list[dict], dict[str, Any], list[Question]]:
    """Apply the label policy and diversity selection; returns records, label stats, questions.

    ``votes``: every answer the teacher stated for a question (including replies rejected for
    contradicting the gold hint); by default the candidates' own stated answers.
    """
    records: list[dict] = []
    disagree, relabeled, inconsistent = [], [], 0
    out_questions = []
    for question in questions:
        pool = candidates.get(question.id, [])
        answers = votes.get(question.id, []) if votes is not None else [c.stated for c in pool if c.stated is not None]
        majority = vote(answers)
        label = question.answer
        if majority is not None and majority != question.answer:
            disagree.append(question.id)
            if config.relabel_by_vote:
                label = majority
                relabeled.append({"id": question.id, "gold": question.answer, "vote": majority})
        consistent = [c for c in pool if c.stated is None or c.stated == label]
        inconsistent += len(pool) - len(consistent)
        kept, _ = select_diverse(consistent, limit, min_distance)
        for sample, candidate in enumerate(kept):
            records.append(make_record(question.id, candidate.recall, candidate.analyze, candidate.teacher or config.teacher_name, sample))
        if label != question.answer:
            extra = dict(question.extra, original_answer=question.answer)
            question = Question(question.id, question.question, question.options, label, question.source, extra)
        out_questions.append(question)
    stats = {
        "relabel_by_vote": config.relabel_by_vote,
        "questions_where_vote_disagrees_with_gold": len(disagree),
        "disagreeing_ids": disagree[:100],
        "questions_relabeled": len(relabeled),
        "relabeled": relabeled[:100],
        "samples_dropped_inconsistent_with_label": inconsistent,
    }
    return records, stats, out_questions


# ---------------------------------------------------------------- chat teachers


class BudgetStop(Exception):
    """The next request could exceed --max-cost."""


class Budget:
    """Worst-case reservations against ``limit`` USD; ``spent`` is real usage at current prices."""

    def __init__(self, limit: float | None, price: Price | None, spent: float, safety: float):
        self.limit, self.price, self.spent, self.safety = limit, price, spent, safety
        self.reserved = 0.0
        self.spent_this_run = 0.0
        self.stopped = False

    def reserve(self, prompt_tokens: int, completion_tokens: int) -> float:
        if self.price is None:
            return 0.0
        worst = self.price.cost(prompt_tokens * self.safety, completion_tokens)
        if self.limit is not None and (self.stopped or self.spent + self.reserved + worst > self.limit):
            self.stopped = True
            raise BudgetStop()
        self.reserved += worst
        return worst

    def settle(self, reserved: float, usage: dict[str, int] | None, failed: bool = False) -> None:
        """Replace a reservation by the real cost; without reported usage the worst case counts."""
        self.reserved -= reserved
        if self.price is None or failed:
            return
        cost = self.price.cost(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)) if usage else reserved
        self.spent += cost
        self.spent_this_run += cost


@dataclass
class Slot:
    """One of the N sample slots of a question: its current attempt and max_tokens."""

    index: int
    max_tokens: int
    attempt: int = 0
    accepted: Candidate | None = None
    failed: bool = False


@dataclass
class RunStats:
    cache_hits: int = 0
    new_samples: int = 0
    rejections: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_missing: int = 0
    n_fallback: bool = False
    failed_questions: set = field(default_factory=set)
    unfinished_questions: set = field(default_factory=set)


class ChatTeacher:
    """Runs one chat teacher over the questions (see the module docstring)."""

    def __init__(self, config: TeachConfig, out: Path, cache: ResponseCache, client: TeacherClient,
                 counter: TokenCounter, budget: Budget, exemplars: Callable[[Question], list]):
        self.config, self.out, self.cache, self.client = config, out, cache, client
        self.counter, self.budget, self.exemplars = counter, budget, exemplars
        self.stats = RunStats()
        self.use_n = config.use_n and getattr(client.backend, "supports_n", False)
        self.stated: dict[str, list[str]] = {}

    def params(self, max_tokens: int) -> dict[str, Any]:
        return {"temperature": self.config.temperature, "max_tokens": max_tokens}

    def key(self, messages: list[dict[str, str]], slot: Slot) -> str:
        return sample_key(self.config.model, messages, self.params(slot.max_tokens), slot.index + slot.attempt * self.config.samples)

    def take(self, question: Question, slot: Slot, text: str, finish_reason: str | None) -> None:
        gold = None if self.config.relabel_by_vote else question.answer
        parsed = parse_reply(text, question.labels, gold=gold, finish_reason=finish_reason)
        if parsed.stated_answer is not None:
            self.stated.setdefault(question.id, []).append(parsed.stated_answer)
        if parsed.ok:
            slot.accepted = Candidate(parsed.recall, parsed.analyze, parsed.stated_answer)
            return
        self.stats.rejections[parsed.reason] += 1
        if parsed.reason == CUT_OFF:
            slot.max_tokens *= 2
        slot.attempt += 1

    async def fetch(self, question: Question, messages: list[dict[str, str]], group: list[Slot], prompt_tokens: int) -> None:
        """Ask for the samples of ``group`` (same max_tokens), storing each request's samples at once."""
        pending = list(group)
        while pending:
            n = len(pending) if self.use_n else 1
            batch, max_tokens = pending[:n], pending[0].max_tokens
            request = ChatRequest(self.config.model, messages, n=n, temperature=self.config.temperature,
                                  max_tokens=max_tokens, question=question)
            reserved = self.budget.reserve(prompt_tokens, max_tokens * n)
            try:
                result = await self.client.request(request)
            except RequestFailed:
                self.budget.settle(reserved, None, failed=True)
                for slot in batch:
                    slot.failed = True
                self.stats.failed_questions.add(question.id)
                pending = pending[n:]
                continue
            except TinyThinkerError as exc:
                self.budget.settle(reserved, None, failed=True)
                if n > 1 and "HTTP 400" in str(exc):  # the server rejects `n`: ask one by one
                    log.warning("n=%d rejected (%s); asking one sample per request from now on", n, exc)
                    self.use_n, self.stats.n_fallback = False, True
                    continue
                raise
            usage = result.usage or None
            self.budget.settle(reserved, usage)
            if usage is None:  # the server reported none: record the worst case instead
                self.stats.usage_missing += 1
                usage = {"prompt_tokens": round(prompt_tokens * self.budget.safety), "completion_tokens": max_tokens * n}
            self.stats.prompt_tokens += usage.get("prompt_tokens", 0)
            self.stats.completion_tokens += usage.get("completion_tokens", 0)
            answered = list(zip(batch, result.texts, result.finish_reasons))
            self.cache.put_request(self.config.model, usage,
                                   [(self.key(messages, slot), text, finish) for slot, text, finish in answered])
            self.stats.new_samples += len(answered)
            for slot, text, finish in answered:
                self.take(question, slot, text, finish)
            if len(answered) < len(batch) and self.use_n:
                log.warning("asked n=%d, got %d samples; asking one sample per request from now on", n, len(answered))
                self.use_n, self.stats.n_fallback = False, True
            pending = pending[len(answered):]

    async def run_question(self, question: Question) -> list[Candidate]:
        messages = build_messages(question, self.exemplars(question))
        prompt_tokens = self.counter.count_messages(messages)
        slots = [Slot(i, self.config.max_tokens) for i in range(self.config.samples)]
        for _ in range(self.config.rounds + 1):
            open_slots = [s for s in slots if s.accepted is None and not s.failed and s.attempt <= self.config.rounds]
            if not open_slots:
                break
            missing: dict[int, list[Slot]] = {}
            for slot in open_slots:
                cached = self.cache.get(self.key(messages, slot))
                if cached is not None:
                    self.stats.cache_hits += 1
                    self.take(question, slot, cached.text, cached.finish_reason)
                else:
                    missing.setdefault(slot.max_tokens, []).append(slot)
            if self.budget.stopped and missing:
                self.stats.unfinished_questions.add(question.id)
                return []
            # every group finishes (and stores what it bought) before an error ends the question
            outcomes = await asyncio.gather(*(self.fetch(question, messages, group, prompt_tokens) for group in missing.values()),
                                            return_exceptions=True)
            errors = [o for o in outcomes if isinstance(o, BaseException)]
            for error in errors:
                if not isinstance(error, BudgetStop):
                    raise error
            if errors:
                self.stats.unfinished_questions.add(question.id)
                return []
        return [slot.accepted for slot in slots if slot.accepted is not None]


def _exemplar_chooser(config: TeachConfig) -> Callable[[Question], list]:
    loaded: dict[str, list] = {}

    def choose(question: Question) -> list:
        name = config.exemplars or exemplar_set_for(question)
        if name not in loaded:
            loaded[name] = load_exemplars(name)
        return loaded[name]

    return choose


def _cached_spend(cache: ResponseCache, table: dict, fallback: Price | None) -> float:
    total = 0.0
    for model, usage in cache.usage_by_model().items():
        price = price_for(model, table) or fallback
        if price is not None:
            total += price.cost(usage["prompt_tokens"], usage["completion_tokens"])
    return total


def _price(config: TeachConfig) -> tuple[dict, Price | None]:
    table = load_prices(config.prices)
    if not TEACHERS[config.teacher].remote:
        return table, Price("in-process", 0.0, 0.0)
    return table, price_for(config.model, table)


def estimate(data: str | Path, out: str | Path, config: TeachConfig) -> dict[str, Any]:
    """What the first round would send for samples not yet cached, without calling the API."""
    if config.is_import:
        raise ConfigError("--estimate applies to chat teachers (importers call no API)")
    questions = read_questions(data)
    counter = TokenCounter(config.model)
    table, price = _price(config)
    choose = _exemplar_chooser(config)
    cache_path = Path(out) / CACHE
    cache = ResponseCache(cache_path, readonly=True) if cache_path.is_file() else None
    requests = input_tokens = expected_output = max_output = cached = 0
    try:
        for question in questions:
            exemplars = choose(question)
            messages = build_messages(question, exemplars)
            params = {"temperature": config.temperature, "max_tokens": config.max_tokens}
            missing = 0
            for index in range(config.samples):
                if cache is not None and cache.get(sample_key(config.model, messages, params, index)) is not None:
                    cached += 1
                else:
                    missing += 1
            if not missing:
                continue
            calls = 1 if config.use_n else missing
            requests += calls
            input_tokens += calls * counter.count_messages(messages)
            per_line = sum(counter.count(assistant_turn(e)) / (1 + len(e.options)) for e in exemplars) / len(exemplars)
            expected_output += missing * min(config.max_tokens, round(per_line * (1 + len(question.options))))
            max_output += missing * config.max_tokens
    finally:
        if cache is not None:
            cache.close()
    return {
        "teacher": config.teacher_name,
        "questions": len(questions),
        "samples_per_question": config.samples,
        "samples_already_cached": cached,
        "requests": requests,
        "input_tokens": input_tokens,
        "expected_output_tokens": expected_output,
        "max_output_tokens": max_output,
        "token_counter": counter.method,
        "price": asdict(price) if price else None,
        "expected_cost_usd": round(price.cost(input_tokens, expected_output), 4) if price else None,
        "max_cost_usd": round(price.cost(input_tokens, max_output), 4) if price else None,
        "note": "first round only; re-asked replies (up to --rounds more) cost extra; expected output from the exemplars' reply length",
    }


async def _run_chat(questions: list[Question], config: TeachConfig, out: Path, cache: ResponseCache,
                    backend_factory: Callable[[], ChatBackend], progress: bool,
                    ) -> tuple[dict, dict[str, list[Candidate]], dict[str, list[str]]]:
    counter = TokenCounter(config.model)
    table, price = _price(config)
    if config.max_cost is not None and price is None:
        raise ConfigError(f"--max-cost needs a price for model {config.model!r}: add it to a --prices file")
    safety = 1.1 if counter.exact else 1.5
    budget = Budget(config.max_cost, price, _cached_spend(cache, table, price), safety)
    spent_before = budget.spent
    settings = ClientSettings(config.concurrency, config.rpm, config.tpm, config.timeout, config.max_retries,
                              config.backoff_base, config.backoff_max)
    backend = backend_factory()
    client = TeacherClient(backend, settings, counter.count_messages, rng=random.Random(config.seed))
    teacher = ChatTeacher(config, out, cache, client, counter, budget, _exemplar_chooser(config))
    candidates: dict[str, list[Candidate]] = {}
    from rich.progress import Progress

    try:
        with Progress(disable=not (progress and sys.stderr.isatty()), transient=True) as bar:
            task = bar.add_task("teacher", total=len(questions))

            active = asyncio.Semaphore(4 * config.concurrency)  # questions in progress: bounds prompts held in memory

            async def one(question: Question) -> None:
                async with active:
                    candidates[question.id] = await teacher.run_question(question)
                bar.advance(task)

            await asyncio.gather(*(one(q) for q in questions))
    finally:
        await client.aclose()
    stats = teacher.stats
    report = {
        "requests": client.stats.to_dict(),
        "samples": {"from_cache": stats.cache_hits, "new": stats.new_samples},
        "cache_hits": stats.cache_hits,
        "rejections": {reason: stats.rejections[reason] for reason in REJECT_REASONS if stats.rejections[reason]},
        "rejected_total": sum(stats.rejections.values()),
        "n_fallback_to_single_requests": stats.n_fallback,
        "tokens": {"prompt": stats.prompt_tokens, "completion": stats.completion_tokens,
                   "requests_without_usage": stats.usage_missing, "counter_for_estimates": counter.method},
        "cost_usd": {"this_run": round(budget.spent_this_run, 6), "before_this_run": round(spent_before, 6),
                     "total_in_cache": round(budget.spent, 6), "max_cost": config.max_cost,
                     "price": asdict(price) if price else None},
        "failed_questions": sorted(stats.failed_questions),
        "unfinished_questions": len(stats.unfinished_questions),
    }
    if budget.stopped:
        report["status"] = "stopped_max_cost"
    elif stats.failed_questions:
        report["status"] = "incomplete_requests_failed"
    else:
        report["status"] = "complete"
    return report, candidates, teacher.stated


# ---------------------------------------------------------------- entry point


def teach(data: str | Path, out: str | Path, config: TeachConfig, progress: bool = True,
          backend_factory: Callable[[], ChatBackend] | None = None) -> dict[str, Any]:
    """Run a teacher over the questions in ``data``; writes ``out/rationales.jsonl`` and ``out/report.json``."""
    config.validate()
    out = Path(out)
    questions = read_questions(data)
    if out.exists() and not out.is_dir():
        raise InputError(out, "--out must be a folder")
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    write_json(out / REPORT, {"status": "running", "teacher": config.teacher_name, "started": started})
    handler = logging.FileHandler(out / LOG, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    propagate, log.propagate = log.propagate, False  # retries go to teach.log, not the console
    secret = os.environ.get(config.api_key_env) if not config.is_import else None
    try:
        report = _teach(questions, data, out, config, progress, backend_factory)
    except TinyThinkerError as exc:
        write_json(out / REPORT, {"status": "failed", "teacher": config.teacher_name, "error": redact(str(exc), secret)})
        raise
    finally:
        log.removeHandler(handler)
        log.propagate = propagate
        handler.close()
    report["elapsed_s"] = round(time.time() - started, 2)
    write_json(out / REPORT, report)
    return report


def _teach(questions: list[Question], data: str | Path, out: Path, config: TeachConfig, progress: bool,
           backend_factory: Callable[[], ChatBackend] | None) -> dict[str, Any]:
    base: dict[str, Any] = {"status": "complete", "teacher": config.teacher_name, "data": str(data),
                            "questions": len(questions), "tinythinker_version": __version__}
    if config.is_import:
        result = IMPORTERS[config.teacher[len(IMPORT_PREFIX):]](questions, config.source)
        candidates = result.candidates
        for pool in candidates.values():
            for candidate in pool:
                candidate.teacher = candidate.teacher or config.teacher_name
        base.update({"source": str(config.source), "import": result.stats, "note": result.note})
        records, labels, relabeled_questions = finalize(questions, candidates, config, None, 0)
    else:
        public = {k: v for k, v in asdict(config).items() if k not in ("source",)}
        base.update({"config": public})
        cache = ResponseCache(out / CACHE)
        try:
            factory = backend_factory or (lambda: TEACHERS[config.teacher].factory(config))
            run, candidates, votes = asyncio.run(_run_chat(questions, config, out, cache, factory, progress))
        finally:
            cache.close()
        base.update(run)
        records, labels, relabeled_questions = finalize(questions, candidates, config, config.samples,
                                                        config.min_recall_distance, votes)
    kept_ids = {r["id"] for r in records}
    without = [q.id for q in questions if q.id not in kept_ids]
    base.update({
        "labels": labels,
        "rationales_written": len(records) if base["status"] == "complete" else 0,
        "questions_with_rationale": len(kept_ids),
        "questions_without_rationale": len(without),
        "questions_without_rationale_ids": without[:100],
        "usable_variants": _usable_variants(records),
    })
    if base["status"] == "complete":
        write_jsonl(out / RATIONALES, records)
        if config.relabel_by_vote:
            write_questions(out / RELABELED, relabeled_questions)
    else:
        (out / RATIONALES).unlink(missing_ok=True)
    return base


def _usable_variants(records: list[dict]) -> list[str]:
    if not records:
        return []
    with_analyses = all(r["analyze"] for r in records)
    with_recall = all(r["recall"].strip() for r in records)
    variants = ["summarize"]
    if with_recall:
        variants.append("recall_summarize")
    if with_analyses:
        variants.append("analyze_summarize")
    if with_recall and with_analyses:
        variants.append("recall_analyze_summarize")
    return variants
