"""A loopback LLM-shaped HTTP server on 127.0.0.1, started and stopped by each test using it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

_WAIT = 5.0  # seconds a gated stream waits for the client before giving up


def _last_user_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else content[0]["text"]


def _openai_chunks(text: str) -> list[dict[str, Any]]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    words = text.split(" ")
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"content": w + " "}, "finish_reason": None}]}
        for w in words
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return chunks


def _anthropic_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
               "content": [], "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": 5, "output_tokens": 1}}  # fmt: skip
    events = [("message_start", {"type": "message_start", "message": message})]
    block = {"type": "text", "text": ""}
    start = {"type": "content_block_start", "index": 0, "content_block": block}
    events.append(("content_block_start", start))
    for word in text.split(" "):
        delta = {"type": "text_delta", "text": word + " "}
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": delta}))  # fmt: skip
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                     "usage": {"output_tokens": 7}}))  # fmt: skip
    events.append(("message_stop", {"type": "message_stop"}))
    return events


class LLMServer:
    """State shared with the handler: request log, a gate for streams, a stop flag."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.gate = threading.Event()
        self.stopped = threading.Event()
        self.base_url = ""


class _Handler(BaseHTTPRequestHandler):
    server_state: LLMServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet tests
        pass

    def _send_json(self, payload: Any, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Set-Cookie", "session=abc123; Path=/")
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()

    def _event(self, text: str) -> None:
        self.wfile.write(text.encode())
        self.wfile.flush()

    def do_GET(self) -> None:
        state = self.server_state
        state.requests.append(("GET", self.path, dict(self.headers)))
        self._start_stream()
        try:
            if self.path.startswith("/stream/gated"):
                self._event("data: first\n\n")
                state.gate.wait(_WAIT)
                self._event("data: second\n\n")
            elif self.path.startswith("/stream/endless"):
                for i in range(2000):  # "endless" for the client, bounded for the test
                    if state.stopped.is_set():
                        break
                    self._event(f"data: tick {i}\n\n")
                    time.sleep(0.005)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self) -> None:
        state = self.server_state
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        state.requests.append(("POST", self.path, dict(self.headers)))
        text = f"echo: {_last_user_text(body)}"
        if self.path.endswith("/chat/completions"):
            if not body.get("stream"):
                self._send_json({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
                })  # fmt: skip
                return
            self._start_stream()
            for chunk in _openai_chunks(text):
                self._event(f"data: {json.dumps(chunk)}\n\n")
            self._event("data: [DONE]\n\n")
        elif self.path.endswith("/v1/messages"):
            events = _anthropic_events(text)
            if not body.get("stream"):
                message = dict(events[0][1]["message"])
                message.update(content=[{"type": "text", "text": text}], stop_reason="end_turn")
                self._send_json(message)
                return
            self._start_stream()
            for name, data in events:
                self._event(f"event: {name}\ndata: {json.dumps(data)}\n\n")
        else:
            self._send_json({"error": "not found"}, status=404)


@contextmanager
def serve_llm() -> Iterator[LLMServer]:
    """An OpenAI/Anthropic-shaped server on 127.0.0.1 (random port); a test may stop it early."""
    state = LLMServer()
    handler = type("Handler", (_Handler,), {"server_state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        state.stopped.set()
        state.gate.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    """The loopback LLM server, stopped after the test."""
    with serve_llm() as state:
        yield state
