"""A stand-in for llama.cpp's ``llama-server``, for tests of ``harness local-llm`` commands.

Tests install this file as the cached ``llama-server`` binary (with a shebang) in a temporary
``HARNESS_LLM_CACHE``, so ``harness local-llm start`` runs as a user types it and starts this
instead of a real model. It takes the real server's command line, binds ``127.0.0.1:PORT``
and answers ``/health``, ``/v1/chat/completions`` and ``/v1/messages`` (plain or streamed)
with ``"<alias> heard: <last user text>"``. Each request's path and JSON body is appended, one
JSON line each, to the file named by ``FAKE_LLAMA_LOG`` when it is set. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_LOCK = threading.Lock()


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return " ".join(
            str(part.get("text", "")) for part in content or [] if isinstance(part, dict)
        )
    return ""


def _sse(events: list[tuple[str | None, Any]]) -> bytes:
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
    return "".join(out).encode()


def _openai(body: dict[str, Any], alias: str) -> tuple[str, bytes]:
    text = f"{alias} heard: {_last_user_text(body.get('messages') or [])}"
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    base = {"id": "chatcmpl-fake", "created": 1700000000, "model": alias}
    if not body.get("stream"):
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
        }
        answer = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        return "application/json", json.dumps(answer).encode()
    chunk = {**base, "object": "chat.completion.chunk"}
    delta = {"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}
    end = {"index": 0, "delta": {}, "finish_reason": "stop"}
    return "text/event-stream", _sse(
        [
            (None, {**chunk, "choices": [delta]}),
            (None, {**chunk, "choices": [end], "usage": usage}),
            (None, "[DONE]"),
        ]
    )


def _anthropic(body: dict[str, Any], alias: str) -> tuple[str, bytes]:
    text = f"{alias} heard: {_last_user_text(body.get('messages') or [])}"
    message = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": alias,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }
    if not body.get("stream"):
        return "application/json", json.dumps(message).encode()
    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": 10, "output_tokens": 0}
    return "text/event-stream", _sse(
        [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 5},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    )


def serve(port: int, alias: str) -> None:
    """Answer on ``127.0.0.1:port`` until the process is stopped."""
    log = os.environ.get("FAKE_LLAMA_LOG")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, kind: str, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._reply(200, "application/json", b'{"status":"ok"}')
            else:
                self._reply(404, "application/json", b'{"error":"not found"}')

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw or b"{}")
            if log:
                with _LOCK, open(log, "a", encoding="utf-8") as out:
                    out.write(json.dumps({"path": self.path, "body": body}) + "\n")
            if self.path == "/v1/chat/completions":
                self._reply(200, *_openai(body, alias))
            elif self.path == "/v1/messages":
                self._reply(200, *_anthropic(body, alias))
            else:
                self._reply(404, "application/json", b'{"error":"not found"}')

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.serve_forever()


def main(argv: list[str]) -> int:
    """Parse the real server's arguments (ignoring those that do not matter here) and serve."""
    parser = argparse.ArgumentParser(prog="llama-server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--alias", default="model")
    parser.add_argument("--host", default="127.0.0.1")
    args, _ = parser.parse_known_args(argv)
    if args.host != "127.0.0.1":
        parser.error("the stand-in binds 127.0.0.1 only")
    serve(args.port, args.alias)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
