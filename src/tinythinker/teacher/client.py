"""Asynchronous teacher client: pluggable chat backends behind limits and retries.

Features:
- ``OpenAIBackend``: any OpenAI-compatible chat-completions endpoint through the ``openai``
  package (``base_url``, API key read from the environment by the caller); the package's own
  retries are off, this module owns them.
- ``CallableBackend``: an in-process teacher, any function (sync or async) answering a
  ``ChatRequest`` with ``(texts, finish_reasons, usage)``; it goes through the same limits,
  retries, cache and parsing as a real endpoint.
- ``TeacherClient``: an asyncio concurrency limit, requests-per-minute and tokens-per-minute
  limits (``RateLimiter``), a per-request deadline, and retries with exponential backoff and
  jitter on 429, 408/409, 5xx, timeouts, dropped connections and malformed bodies; a server's
  Retry-After (or retry-after-ms) is honoured. Other HTTP errors (400, 401, 403, 404) stop the run.

Assumptions: a backend that returns fewer samples than the ``n`` asked for does not support
``n``; the caller asks for the rest one by one. The API key never appears in an error or log
message (``redact``).
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import json
import logging
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol

from ..errors import ConfigError, TinyThinkerError

log = logging.getLogger("tinythinker.teacher")

RETRYABLE_STATUS = {408, 409, 425, 429}
RPM_MARGIN = 0.01


@dataclass
class ChatRequest:
    """One chat-completions call; ``question`` is for in-process backends and never sent."""

    model: str
    messages: list[dict[str, str]]
    n: int = 1
    temperature: float = 0.8
    max_tokens: int = 256
    question: Any = None


@dataclass
class ChatResult:
    texts: list[str]
    finish_reasons: list[str | None]
    usage: dict[str, int]  # prompt_tokens, completion_tokens (the whole request)


class RetryableError(Exception):
    """A failure worth retrying; ``reason`` is a short tag for the report."""

    def __init__(self, reason: str, retry_after: float | None = None, detail: str = ""):
        super().__init__(f"{reason}{': ' + detail if detail else ''}")
        self.reason = reason
        self.retry_after = retry_after


class RequestFailed(TinyThinkerError):
    """A request that still failed after all retries (the run goes on without it)."""

    def __init__(self, reason: str):
        super().__init__(f"teacher request failed after retries ({reason})")
        self.reason = reason


class ChatBackend(Protocol):
    supports_n: bool

    async def complete(self, request: ChatRequest, timeout: float) -> ChatResult: ...

    async def aclose(self) -> None: ...


def redact(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date), else None."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAIBackend:
    """Chat completions on an OpenAI-compatible endpoint via the ``openai`` package."""

    supports_n = True

    def __init__(self, base_url: str | None, api_key: str):
        try:
            import openai
        except ImportError:
            raise TinyThinkerError("the openai package is needed for --teacher openai: pip install openai") from None
        from openai.types.chat import ChatCompletion

        self._openai = openai
        self._completion_type = ChatCompletion
        self._key = api_key
        kwargs: dict[str, Any] = {"api_key": api_key, "max_retries": 0}
        if base_url:
            kwargs["base_url"] = base_url
        self.client = openai.AsyncOpenAI(**kwargs)

    async def complete(self, request: ChatRequest, timeout: float) -> ChatResult:
        openai = self._openai
        params: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.n > 1:
            params["n"] = request.n
        try:
            # The generic post() sends the body as given; chat.completions.create() would first run
            # its TypedDict transform over every few-shot message (~10 ms of CPU per request with a
            # 17-message prompt), which caps throughput on small machines. Our messages are plain
            # role/content strings, which that transform leaves unchanged.
            response = await self.client.post("/chat/completions", cast_to=self._completion_type, body=params,
                                              options={"timeout": timeout})
        except openai.APITimeoutError:
            raise RetryableError("timeout") from None
        except openai.APIConnectionError as exc:
            raise RetryableError("connection", detail=redact(str(exc), self._key)) from None
        except openai.APIStatusError as exc:
            status = exc.status_code
            message = redact(str(getattr(exc, "message", exc)), self._key).splitlines()[0][:300]
            if status in RETRYABLE_STATUS or status >= 500:
                raise RetryableError(f"http_{status}", parse_retry_after(exc.response.headers), message) from None
            raise TinyThinkerError(f"teacher endpoint answered HTTP {status}: {message}") from None
        except (json.JSONDecodeError, openai.APIResponseValidationError, UnicodeDecodeError) as exc:
            raise RetryableError("malformed_response", detail=type(exc).__name__) from None
        choices = sorted(getattr(response, "choices", None) or [], key=lambda c: c.index)
        if not choices:
            raise RetryableError("malformed_response", detail="no choices")
        usage = getattr(response, "usage", None)
        usage_dict = {
            "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
            "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
        } if usage is not None else {}
        return ChatResult([c.message.content or "" for c in choices], [c.finish_reason for c in choices], usage_dict)

    async def aclose(self) -> None:
        await self.client.close()


ChatFunction = Callable[[ChatRequest], Any]


class CallableBackend:
    """An in-process teacher: ``fn(request) -> (texts, finish_reasons, usage)``, sync or async."""

    def __init__(self, fn: ChatFunction, supports_n: bool = True):
        self.fn = fn
        self.supports_n = supports_n

    async def complete(self, request: ChatRequest, timeout: float) -> ChatResult:
        answer = self.fn(request)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, ChatResult):
            return answer
        texts, finish_reasons, usage = answer
        return ChatResult(list(texts), list(finish_reasons), dict(usage or {}))

    async def aclose(self) -> None:
        close = getattr(self.fn, "aclose", None)
        if close is not None:
            await close()


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits over a sliding window.

    Requests are spaced at least ``window / rpm x 1.01`` apart, so no window of ``window`` seconds
    holds more than ``rpm`` request starts, and there are no bursts; the 1 % margin keeps network
    jitter (a request arriving a little late, the next one on time) from pushing a window over
    the limit at the server. Tokens are reserved at the
    start (prompt estimate + max_tokens x n) and corrected with the real usage afterwards
    (``settle``); a request starts only when the tokens of the last ``window`` seconds leave room.
    """

    def __init__(self, rpm: float | None = None, tpm: float | None = None, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep):
        self.rpm, self.tpm, self.window = rpm, tpm, window
        self.clock, self.sleep = clock, sleep
        self._next_start = float("-inf")
        self._tokens: deque[list[float]] = deque()  # [start time, tokens]
        self._lock = asyncio.Lock()

    def _token_slot(self, start: float, need: float) -> float:
        while self._tokens and self._tokens[0][0] <= start - self.window:
            self._tokens.popleft()
        used = sum(entry[1] for entry in self._tokens)
        for entry_start, tokens in list(self._tokens):
            if used + need <= self.tpm:
                break
            start = max(start, entry_start + self.window)
            used -= tokens
        return start

    async def acquire(self, tokens: float = 0) -> list[float] | None:
        """Wait for a slot; returns a handle for ``settle``."""
        if self.rpm is None and self.tpm is None:
            return None
        async with self._lock:
            now = self.clock()
            start = now
            if self.rpm is not None:
                start = max(start, self._next_start)
            if self.tpm is not None:
                if tokens > self.tpm:
                    raise ConfigError(f"one request may use {int(tokens)} tokens, more than the tokens-per-minute limit {int(self.tpm)}")
                start = self._token_slot(start, tokens)
            if self.rpm is not None:
                self._next_start = start + self.window / self.rpm * (1 + RPM_MARGIN)
            handle = [start, float(tokens)]
            if self.tpm is not None:
                self._tokens.append(handle)
        if start > now:
            await self.sleep(start - now)
        return handle

    def settle(self, handle: list[float] | None, actual_tokens: float) -> None:
        if handle is not None and actual_tokens > 0:
            handle[1] = float(actual_tokens)


@dataclass
class ClientSettings:
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    timeout: float = 60.0
    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0


@dataclass
class ClientStats:
    attempts: int = 0
    succeeded: int = 0
    failed: int = 0
    retries: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "succeeded": self.succeeded, "failed_after_retries": self.failed,
                "retries": sum(self.retries.values()), "retries_by_reason": dict(sorted(self.retries.items()))}


async def _deadline(coroutine: Awaitable[ChatResult], seconds: float) -> ChatResult:
    """Await with a total deadline (the HTTP timeouts alone bound each read, not the whole request)."""
    if hasattr(asyncio, "timeout"):  # Python 3.11+: no extra task per request
        async with asyncio.timeout(seconds):
            return await coroutine
    return await asyncio.wait_for(coroutine, seconds)


class TeacherClient:
    """Send ChatRequests through a backend with concurrency, rate limits and retries."""

    def __init__(self, backend: ChatBackend, settings: ClientSettings, count_prompt: Callable[[list[dict[str, str]]], int],
                 rng: random.Random | None = None, limiter: RateLimiter | None = None):
        self.backend = backend
        self.settings = settings
        self.count_prompt = count_prompt
        self.rng = rng or random.Random()
        self.limiter = limiter or RateLimiter(settings.rpm, settings.tpm)
        self.semaphore = asyncio.Semaphore(settings.concurrency)
        self.stats = ClientStats()

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter (half to full step); at least the server's Retry-After."""
        step = min(self.settings.backoff_max, self.settings.backoff_base * 2**attempt)
        delay = step * self.rng.uniform(0.5, 1.0)
        return max(delay, retry_after) if retry_after is not None else delay

    async def request(self, request: ChatRequest) -> ChatResult:
        tokens = self.count_prompt(request.messages) + request.max_tokens * request.n
        last = "unknown"
        for attempt in range(self.settings.max_retries + 1):
            retry_after = None
            async with self.semaphore:
                handle = await self.limiter.acquire(tokens)
                self.stats.attempts += 1
                try:
                    result = await _deadline(self.backend.complete(request, self.settings.timeout), self.settings.timeout)
                except RetryableError as exc:
                    last, retry_after = exc.reason, exc.retry_after
                    log.warning("request attempt %d failed: %s", attempt + 1, exc)
                except asyncio.TimeoutError:
                    last = "timeout"
                    log.warning("request attempt %d failed: timeout after %.1fs", attempt + 1, self.settings.timeout)
                else:
                    if len(result.texts) != len(result.finish_reasons) or not result.texts:
                        last = "malformed_response"
                    else:
                        usage = result.usage
                        self.limiter.settle(handle, usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0))
                        self.stats.succeeded += 1
                        return result
            if attempt < self.settings.max_retries:
                self.stats.retries[last] += 1
                await asyncio.sleep(self.backoff(attempt, retry_after))
        self.stats.failed += 1
        raise RequestFailed(last)

    async def aclose(self) -> None:
        await self.backend.aclose()
