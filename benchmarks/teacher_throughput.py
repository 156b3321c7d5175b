"""Teacher client throughput and rate limiting against a local OpenAI-compatible server.

    .venv/bin/python benchmarks/teacher_throughput.py [--requests 800] [--latency 0.2] [--concurrency 32]

A chat-completions server with a fixed latency per request runs in a child process on 127.0.0.1
(so it does not share the client's interpreter lock). Measured:
1. the bare client (``TeacherClient`` + ``OpenAIBackend``, the real ``openai`` package);
2. the whole ``teach`` path (prompt building, SQLite cache with a commit per request, parsing);
both as requests/s and as a ratio to the concurrency bound ``concurrency / latency``
(32 / 0.2 s = 160 requests/s); the target is a ratio of at least 0.85.
3. a requests-per-minute limit: starts recorded by the server must never exceed the limit in any
   60 s window; a short run also checks every window of 1, 5 and 10 s against ``rpm x w / 60 + 1``,
   and a limiter configured with a 6 s window is checked over several windows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def serve(port_queue, latency: float, log_path: str) -> None:
    """Child process: answer every request after ``latency`` seconds with a valid rationale."""
    starts = open(log_path, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # as production servers do; avoids 40 ms delayed-ACK stalls

        def log_message(self, *args):
            pass

        def do_POST(self):
            arrived = time.time()
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            starts.write(f"{arrived}\n")
            time.sleep(latency)
            user = body["messages"][-1]["content"]
            labels = re.findall(r"\(([A-Z])\) ", user.split("\n")[1]) or ["A", "B"]
            gold = (re.search(r"Explanations: ([A-Z]) is correct", user) or re.match("(A)", "A")).group(1)
            texts = []
            for i in range(body.get("n", 1)):
                lines = [f"Key Information: fact {arrived:.6f}-{i} for this question."]
                lines += [f"{l} is {'correct' if l == gold else 'incorrect'}. Because reason {l}." for l in labels]
                texts.append("\n".join(lines))
            payload = json.dumps({
                "id": "x", "object": "chat.completion", "created": int(arrived), "model": body["model"],
                "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"} for i, t in enumerate(texts)],
                "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    ThreadingHTTPServer.request_queue_size = 256
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_port)
    server.serve_forever()


def start_server(latency: float, log_path: str):
    queue = multiprocessing.Queue()
    process = multiprocessing.Process(target=serve, args=(queue, latency, log_path), daemon=True)
    process.start()
    return process, f"http://127.0.0.1:{queue.get(timeout=30)}/v1"


def read_starts(log_path: str) -> list[float]:
    return sorted(float(line) for line in Path(log_path).read_text().split())


def max_in_window(starts: list[float], width: float) -> int:
    best, j = 0, 0
    for i, start in enumerate(starts):
        while starts[j] <= start - width:
            j += 1
        best = max(best, i - j + 1)
    return best


async def bare_client(url: str, requests: int, settings, rpm=None, window=60.0) -> float:
    from tinythinker.teacher.client import ChatRequest, OpenAIBackend, RateLimiter, TeacherClient

    client = TeacherClient(OpenAIBackend(url, "not-needed"), settings, lambda m: 100,
                           limiter=RateLimiter(rpm=rpm, window=window))
    messages = [{"role": "user", "content": "Question: q\nOptions: (A) a (B) b\nExplanations: A is correct. Because"}]
    await client.request(ChatRequest("bench", messages))  # warm-up: imports and the first connection
    start = time.perf_counter()
    await asyncio.gather(*(client.request(ChatRequest("bench", messages, max_tokens=64)) for _ in range(requests)))
    elapsed = time.perf_counter() - start
    await client.aclose()
    return elapsed


def questions_file(folder: Path, count: int) -> Path:
    path = folder / "questions.jsonl"
    with path.open("w") as handle:
        for i in range(count):
            options = [{"label": l, "text": f"option {l} {i}"} for l in "ABCDE"]
            handle.write(json.dumps({"id": f"q{i}", "question": f"Question {i}?", "options": options, "answer": "ABCDE"[i % 5], "source": "csqa"}) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rpm", type=int, default=600)
    parser.add_argument("--rpm-seconds", type=float, default=15.0)
    args = parser.parse_args()

    from tinythinker.teacher.client import ClientSettings
    from tinythinker.teacher.teach import TeachConfig, teach

    bound = args.concurrency / args.latency
    settings = ClientSettings(concurrency=args.concurrency, timeout=30, max_retries=2, backoff_base=0.05)
    print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}; server latency {args.latency}s, concurrency {args.concurrency}, "
          f"bound {bound:.0f} requests/s")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        log = str(tmp / "starts.log")
        process, url = start_server(args.latency, log)
        try:
            elapsed = asyncio.run(bare_client(url, args.requests, settings))
            rate = args.requests / elapsed
            print(f"{'bare client':<34} {args.requests:>5} requests in {elapsed:6.2f}s = {rate:6.1f} req/s   ratio {rate / bound:.3f}  (target >= 0.85)")

            data = questions_file(tmp, args.requests)
            config = TeachConfig(model="bench", base_url=url, api_key_env="TINYTHINKER_BENCH_UNSET", samples=1,
                                 concurrency=args.concurrency, max_retries=2, backoff_base=0.05)
            start = time.perf_counter()
            report = teach(data, tmp / "teach", config, progress=False)
            elapsed = time.perf_counter() - start
            assert report["status"] == "complete" and report["rationales_written"] == args.requests, report["status"]
            rate = args.requests / elapsed
            print(f"{'teach (cache, parse, report)':<34} {args.requests:>5} requests in {elapsed:6.2f}s = {rate:6.1f} req/s   ratio {rate / bound:.3f}  "
                  f"(includes start-up and writing outputs)")

            # requests-per-minute limit over the real 60 s window
            Path(log).write_text("")
            count = int(args.rpm * args.rpm_seconds / 60)
            elapsed = asyncio.run(bare_client(url, count, settings, rpm=args.rpm))
            starts = read_starts(log)[1:]  # without the warm-up request
            worst60 = max_in_window(starts, 60.0)
            print(f"rpm limit {args.rpm}: {count} requests in {elapsed:.2f}s = {60 * count / elapsed:.0f}/min; "
                  f"max starts in any 60 s window {worst60} (limit {args.rpm}) -> {'OK' if worst60 <= args.rpm else 'EXCEEDED'}")
            for width in (1.0, 5.0, 10.0):
                allowed = int(args.rpm * width / 60) + 1
                seen = max_in_window(starts, width)
                print(f"    any {width:>4.0f} s window: max {seen:>3} starts (at most {allowed}) -> {'OK' if seen <= allowed else 'EXCEEDED'}")

            # the same limiter with a 6 s window, over a run three windows long
            Path(log).write_text("")
            per_window, window = 100, 6.0
            elapsed = asyncio.run(bare_client(url, 3 * per_window, settings, rpm=per_window, window=window))
            starts = read_starts(log)[1:]
            worst = max_in_window(starts, window)
            print(f"limit {per_window} per {window:.0f} s window: {3 * per_window} requests in {elapsed:.2f}s; "
                  f"max starts in any {window:.0f} s window {worst} -> {'OK' if worst <= per_window else 'EXCEEDED'}")
        finally:
            process.terminate()
            process.join()


if __name__ == "__main__":
    main()
