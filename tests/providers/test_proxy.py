"""config.proxy: live requests go through the configured HTTP proxy."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from harness import LLMConfig, create_llm_instance

ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "via proxy"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    """A one-shot HTTP proxy on 127.0.0.1 that answers every request itself."""
    request_lines: list[str] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            request_lines.append(lines[0])
            length = next(
                int(line.split(":", 1)[1])
                for line in lines
                if line.lower().startswith("content-length")
            )
            while len(body) < length:
                body += conn.recv(65536)
            payload = json.dumps(ANSWER).encode()
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n".encode()
                + payload
            )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", request_lines
    server.close()
    thread.join(timeout=10)


async def test_live_requests_go_through_the_configured_proxy(proxy: tuple[str, list[str]]) -> None:
    url, request_lines = proxy
    config = LLMConfig(
        model="gpt-4o-mini",
        api_key="sk-test-key",
        base_url="http://api.example.test/v1",
        proxy=url,
        stream=False,
        max_retries=0,
    )
    reply = await create_llm_instance(config).aask("hi")
    assert reply == "via proxy"
    # A proxied plain-HTTP request names the absolute URL; the target host is never resolved here.
    assert request_lines == ["POST http://api.example.test/v1/chat/completions HTTP/1.1"]
