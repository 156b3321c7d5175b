"""TeacherClient + OpenAIBackend through the real openai package against a local server."""

import asyncio
import random
import time

import pytest
from chat_server import ChatServer, Drop, Hang, Malformed, Status, rationalize
from teacher_fixtures import FAKE_KEY

from tinythinker.errors import TinyThinkerError
from tinythinker.teacher.client import (CallableBackend, ChatRequest, ClientSettings, OpenAIBackend, RateLimiter,
                                        RequestFailed, TeacherClient, parse_retry_after)

PROMPT = [{"role": "system", "content": "s"},
          {"role": "user", "content": "Question: Q?\nOptions: (A) a (B) b\nExplanations: A is correct. Because\nB is incorrect. Because"}]


def settings(**kw):
    base = dict(concurrency=4, timeout=5.0, max_retries=3, backoff_base=0.01, backoff_max=0.05)
    base.update(kw)
    return ClientSettings(**base)


def run(server, requests, **kw):
    """Send requests concurrently; returns (results or exceptions, client stats)."""

    async def main():
        client = TeacherClient(OpenAIBackend(server.url, FAKE_KEY), settings(**kw), lambda m: 10, rng=random.Random(0))
        try:
            return await asyncio.gather(*(client.request(r) for r in requests), return_exceptions=True), client.stats
        finally:
            await client.aclose()

    return asyncio.run(main())


def req(n=1, max_tokens=64):
    return ChatRequest("test-model", PROMPT, n=n, temperature=0.8, max_tokens=max_tokens)


def scripted(*first_actions):
    """First requests get the given actions, later ones a normal reply."""
    return lambda body, number: first_actions[number] if number < len(first_actions) else rationalize(body, number)


def test_normal_reply_and_request_fields():
    with ChatServer() as server:
        (result,), stats = run(server, [req()])
    assert len(result.texts) == 1 and result.finish_reasons == ["stop"]
    assert result.texts[0].startswith("Key Information:") and result.usage["prompt_tokens"] > 0
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == f"Bearer {FAKE_KEY}"
    assert sent["body"]["model"] == "test-model" and sent["body"]["max_tokens"] == 64
    assert sent["body"]["temperature"] == 0.8 and "n" not in sent["body"]
    assert stats.to_dict()["retries"] == 0


def test_n_samples_in_one_request():
    with ChatServer() as server:
        (result,), _ = run(server, [req(n=3)])
    assert len(server.requests) == 1 and server.requests[0]["body"]["n"] == 3
    assert len(result.texts) == 3 and len(set(result.texts)) == 3


def test_429_honours_retry_after():
    with ChatServer(scripted(Status(429, {"Retry-After": "0.4"}))) as server:
        (result,), stats = run(server, [req()])
    assert len(result.texts) == 1 and len(server.requests) == 2
    gap = server.requests[1]["time"] - server.requests[0]["time"]
    assert gap >= 0.39  # the backoff alone would wait at most 0.01 s
    assert stats.to_dict()["retries_by_reason"] == {"http_429": 1}


def test_500_and_503_are_retried():
    with ChatServer(scripted(Status(500), Status(503))) as server:
        (result,), stats = run(server, [req()])
    assert len(result.texts) == 1 and len(server.requests) == 3
    assert stats.to_dict()["retries_by_reason"] == {"http_500": 1, "http_503": 1}


def test_hang_past_the_timeout_is_retried():
    with ChatServer(scripted(Hang(3.0))) as server:
        start = time.monotonic()
        (result,), stats = run(server, [req()], timeout=0.5)
        elapsed = time.monotonic() - start
    assert len(result.texts) == 1 and len(server.requests) == 2
    assert stats.to_dict()["retries_by_reason"] == {"timeout": 1}
    assert elapsed < 2.5


def test_dropped_connection_and_malformed_body_are_retried():
    with ChatServer(scripted(Drop(), Malformed())) as server:
        (result,), stats = run(server, [req()])
    assert len(result.texts) == 1 and len(server.requests) == 3
    assert stats.to_dict()["retries_by_reason"] == {"connection": 1, "malformed_response": 1}


def test_retries_exhausted_and_exponential_backoff():
    with ChatServer(lambda body, number: Status(503)) as server:
        (error,), stats = run(server, [req()], max_retries=2)
    assert isinstance(error, RequestFailed) and error.reason == "http_503"
    assert len(server.requests) == 3 and stats.failed == 1
    client = TeacherClient(CallableBackend(lambda r: None), settings(backoff_base=1.0, backoff_max=5.0), lambda m: 0,
                           rng=random.Random(1))
    delays = [client.backoff(k, None) for k in range(5)]
    for k, delay in enumerate(delays):
        step = min(5.0, 2**k)
        assert step / 2 <= delay <= step
    assert client.backoff(0, 7.5) == 7.5


def test_client_errors_stop_and_never_show_the_key():
    echo = Status(401, message=f"Incorrect API key provided: {FAKE_KEY}")
    with ChatServer(lambda body, number: echo) as server:
        (error,), _ = run(server, [req()])
    assert isinstance(error, TinyThinkerError) and not isinstance(error, RequestFailed)
    assert "HTTP 401" in str(error) and FAKE_KEY not in str(error)
    assert len(server.requests) == 1


def test_concurrency_limit_holds_at_the_server():
    with ChatServer(latency=0.1) as server:
        results, _ = run(server, [req() for _ in range(8)], concurrency=2)
    assert all(len(r.texts) == 1 for r in results)
    assert server.max_in_flight == 2


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({}) is None


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.starts = []

    def clock(self):
        return self.now

    async def sleep(self, seconds):
        self.now += seconds


def test_rate_limiter_spaces_requests_and_bounds_every_window():
    async def main():
        fake = FakeClock()
        limiter = RateLimiter(rpm=60, clock=fake.clock, sleep=fake.sleep)
        starts = []
        for _ in range(130):
            handle = await limiter.acquire(1)
            starts.append(handle[0])
        return starts

    starts = asyncio.run(main())
    assert starts[:3] == pytest.approx([0.0, 1.01, 2.02])
    for i, start in enumerate(starts):  # no 60 s window holds more than 60 starts
        assert sum(1 for s in starts[i:] if s < start + 60) <= 60


def test_token_limit_waits_for_the_window_and_settles_real_usage():
    async def main():
        fake = FakeClock()
        limiter = RateLimiter(tpm=1000, clock=fake.clock, sleep=fake.sleep)
        first = await limiter.acquire(400)
        second = await limiter.acquire(400)
        third = await limiter.acquire(400)  # 1200 > 1000: waits until the first leaves the window
        limiter.settle(third, 100)
        fourth = await limiter.acquire(400)  # 400 + 100 + 400 fits after the window moved
        return first[0], second[0], third[0], fourth[0]

    assert asyncio.run(main()) == (0.0, 0.0, 60.0, 60.0)
    with pytest.raises(TinyThinkerError, match="tokens-per-minute"):
        asyncio.run(RateLimiter(tpm=10).acquire(11))


def test_in_process_backends_sync_and_async():
    def sync_teacher(request):
        return [f"text {i}" for i in range(request.n)], ["stop"] * request.n, {"prompt_tokens": 1, "completion_tokens": 2}

    async def async_teacher(request):
        await asyncio.sleep(0)
        return sync_teacher(request)

    async def main(fn):
        client = TeacherClient(CallableBackend(fn), settings(), lambda m: 1)
        return await client.request(req(n=2))

    for fn in (sync_teacher, async_teacher):
        result = asyncio.run(main(fn))
        assert result.texts == ["text 0", "text 1"] and result.usage["completion_tokens"] == 2
