"""A real OpenAI-compatible chat-completions server on 127.0.0.1 with scripted replies.

``ChatServer(script)`` serves ``POST /v1/chat/completions`` from a thread (ThreadingHTTPServer,
ephemeral port). ``script(body, number)`` returns an action for the request numbered ``number``
(0-based, in arrival order): ``Reply``, ``Status``, ``Hang``, ``Drop`` or ``Malformed``. Every
request is recorded (body, headers, arrival time). ``rationalize`` answers like a well-behaved
teacher: it reads the question and the gold hint from the last user turn and writes one valid
rationale per requested sample, each with a distinct recall.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Reply:
    texts: list[str]
    finish_reasons: list[str] | None = None
    usage: dict[str, int] | None = None


@dataclass
class Status:
    code: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "scripted error"


@dataclass
class Hang:
    seconds: float


@dataclass
class Drop:
    pass


@dataclass
class Malformed:
    pass


def parse_prompt(body: dict[str, Any]) -> tuple[str, list[str], str]:
    """(question, option labels, gold) from the last user turn of a teacher prompt."""
    user = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    question = re.search(r"^Question: (.*)$", user, re.M).group(1)
    options_line = re.search(r"^Options: (.*)$", user, re.M).group(1)
    labels = re.findall(r"\(([A-Z])\) ", options_line)
    gold = re.search(r"Explanations: ([A-Z]) is correct", user).group(1)
    return question, labels, gold


def rationale(body: dict[str, Any], tag: str, correct: str | None = None, skip: str | None = None,
              also_correct: str | None = None) -> str:
    """A well-formed reply whose recall contains ``tag``; options can be skipped or miscalled."""
    question, labels, gold = parse_prompt(body)
    correct = correct or gold
    digest = hashlib.sha256(f"{question}|{tag}".encode()).hexdigest()[:24]
    lines = [f"Key Information: the question '{question}' needs fact {digest} ({tag})"]
    for label in [correct] + [l for l in labels if l != correct]:
        if label == skip:
            continue
        verdict = "correct" if label in (correct, also_correct) else "incorrect"
        lines.append(f"{label} is {verdict}. Because reason {label} for {digest[:8]}.")
    return "\n".join(lines)


def usage_for(body: dict[str, Any], texts: list[str]) -> dict[str, int]:
    prompt = sum(len(m["content"]) for m in body["messages"]) // 4
    completion = sum(len(t) // 4 + 1 for t in texts)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def rationalize(body: dict[str, Any], number: int) -> Reply:
    n = body.get("n", 1)
    return Reply([rationale(body, f"r{number}s{i}") for i in range(n)])


class ChatServer:
    def __init__(self, script: Callable[[dict[str, Any], int], Any] = rationalize, latency: float = 0.0):
        self.script = script
        self.latency = latency
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with server._lock:
                    number = len(server.requests)
                    server.requests.append({"body": body, "headers": {k.lower(): v for k, v in self.headers.items()}, "time": time.monotonic(), "path": self.path})
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer(body, number)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, body, number):
                if server.latency:
                    time.sleep(server.latency)
                action = server.script(body, number)
                if isinstance(action, Hang):
                    time.sleep(action.seconds)
                    action = rationalize(body, number)
                if isinstance(action, Drop):
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if isinstance(action, Malformed):
                    return self._send(200, b'{"id": "x", "object": "chat.completion", "choices": [{"index": 0, ')
                if isinstance(action, Status):
                    payload = json.dumps({"error": {"message": action.message, "type": "scripted", "code": action.code}}).encode()
                    return self._send(action.code, payload, action.headers)
                finish = action.finish_reasons or ["stop"] * len(action.texts)
                payload = {
                    "id": f"chatcmpl-{number}", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
                    "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": f}
                                for i, (text, f) in enumerate(zip(action.texts, finish))],
                    "usage": action.usage or usage_for(body, action.texts),
                }
                self._send(200, json.dumps(payload).encode())

            def _send(self, code: int, payload: bytes, headers: dict[str, str] | None = None):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def __enter__(self) -> "ChatServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
