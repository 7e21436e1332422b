"""Provider-shaped answers and a provider factory shared by the hardening tests.

Bodies follow the wire formats (OpenAI Chat Completions, Anthropic Messages, Azure OpenAI,
Gemini generateContent);
every helper is plain data, so a test states exactly which bytes the provider reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2

from harness import LLMConfig, create_llm_instance
from harness.providers.base import BaseLLM

PROVIDERS = ["openai", "anthropic", "azure", "gemini"]
MODES = ["aask", "aask_stream", "astream"]
STREAM_MODES = ["aask_stream", "astream"]


class Waits:
    """An injected retry ``sleep``: records each wait, never sleeps."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def settings(provider: str, **config: Any) -> dict[str, Any]:
    """LLMConfig fields for ``provider`` (a key, a base URL, a model), then ``config``."""
    base: dict[str, Any] = {"api_key": "sk-test-key", "model": "m-test", "max_retries": 0}
    if provider == "openai":
        base.update(api_type="openai", base_url="http://llm.test/v1")
    elif provider == "anthropic":
        base.update(api_type="anthropic", base_url="http://llm.test")
    elif provider == "gemini":
        base.update(api_type="gemini", base_url="http://llm.test")
    else:
        base.update(api_type="azure", base_url="http://llm.test", api_version="2024-10-21")
    base.update(config)
    return base


def make_llm(
    provider: str, transport: Any, *, waits: Waits | None = None, **config: Any
) -> BaseLLM:
    """A provider over ``transport`` whose retry waits go to ``waits``."""
    return create_llm_instance(
        LLMConfig(**settings(provider, **config)), transport=transport, sleep=waits or Waits()
    )


async def ask(llm: BaseLLM, mode: str) -> str:
    """One question by ``aask`` (non-stream or stream) or ``astream``; the answer's text."""
    if mode == "astream":
        return "".join([chunk.text async for chunk in llm.astream("hello")])
    return str(await llm.aask("hello", stream=(mode == "aask_stream")))


# -- OpenAI Chat Completions (and Azure) --------------------------------------------------------


def openai_chunk(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m-test",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def openai_events(text: str, *, finish: bool = True, done: bool = True) -> list[str]:
    """The SSE events of an answer in words; ``finish``/``done`` keep its end markers."""
    events = [json.dumps(openai_chunk(word)) for word in _words(text)]
    if finish:
        events.append(json.dumps(openai_chunk(finish="stop")))
    if done:
        events.append("[DONE]")
    return [f"data: {data}\n\n" for data in events]


def openai_json(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m-test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


# -- Anthropic Messages ---------------------------------------------------------------------------


def anthropic_events(text: str, *, stop: bool = True) -> list[str]:
    """The SSE events of an answer in words; ``stop`` keeps its ``message_stop``."""
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m-test",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": message}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    for word in _words(text):
        delta = {"type": "text_delta", "text": word}
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        )
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 2},
            },
        )
    )
    if stop:
        events.append(("message_stop", {"type": "message_stop"}))
    return [f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events]


def anthropic_json(text: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m-test",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 2},
    }


# -- Gemini generateContent ------------------------------------------------------------------------


def gemini_json(text: str, finish: str | None = "STOP") -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}}
    if finish:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
        "modelVersion": "m-test",
    }


def gemini_events(text: str, *, finish: bool = True) -> list[str]:
    """The SSE events (``alt=sse``) of an answer in words; ``finish`` keeps the last
    chunk's finishReason, the wire format's end of an answer."""
    words = _words(text)
    events = []
    for i, word in enumerate(words):
        last = i == len(words) - 1
        events.append(gemini_json(word, "STOP" if last and finish else None))
    return [f"data: {json.dumps(data)}\r\n\r\n" for data in events]


# -- answering ------------------------------------------------------------------------------------


def stream_events(provider: str, text: str, **ends: bool) -> list[str]:
    """``text`` as ``provider``'s SSE events (see openai_events / anthropic_events)."""
    if provider == "anthropic":
        return anthropic_events(text, stop=ends.get("stop", True))
    if provider == "gemini":
        return gemini_events(text, finish=ends.get("finish", True))
    return openai_events(text, finish=ends.get("finish", True), done=ends.get("done", True))


def good_answer(provider: str, request: httpx2.Request, text: str) -> httpx2.Response:
    """What ``provider`` answers to ``request``: a JSON message, or an SSE stream."""
    streamed = request.url.path.endswith(":streamGenerateContent")
    if streamed or json.loads(request.content).get("stream"):
        body = "".join(stream_events(provider, text)).encode()
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    if provider == "gemini":
        return httpx2.Response(200, json=gemini_json(text))
    payload = anthropic_json(text) if provider == "anthropic" else openai_json(text)
    return httpx2.Response(200, json=payload)


class Upstream:
    """A MockTransport handler: the provider's good answer, or a scripted one; logs requests."""

    def __init__(
        self,
        provider: str,
        text: str = "all good",
        answer: Callable[[httpx2.Request], httpx2.Response] | None = None,
    ) -> None:
        self.provider = provider
        self.text = text
        self.answer = answer
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if self.answer is not None:
            return self.answer(request)
        return good_answer(self.provider, request, self.text)

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self)


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]
