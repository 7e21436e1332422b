"""The live tier: record against the real local model, stop it, replay exactly.

Marked ``live``: deselected unless ``--run-live`` (or ``HARNESS_RUN_LIVE=1``). Each test starts
its own llama-server (``local_llm`` fixture, tests/live/conftest.py). Requests are
deterministic: temperature 0.0 and a seed, on a server started with ``--no-cache-prompt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from harness import APITimeoutError, LLMConfig, ModelsConfig, create_llm_instance
from harness.providers import BaseLLM, StreamChunk
from harness.replay import ReplayTransport, load_interactions, use_cassette
from tests.live.conftest import MODEL, MODELS_YAML, LocalLLM, answers

pytestmark = pytest.mark.live

PROMPT = "Name three colors."
SEED = 7
MAX_TOKENS = 48
OPENAI_MODEL = "local-smollm2"
ANTHROPIC_MODEL = "local-smollm2-anthropic"
FINISH_REASONS = {OPENAI_MODEL: {"stop", "length"}, ANTHROPIC_MODEL: {"end_turn", "max_tokens"}}


def _config(url: str, name: str, **overrides: Any) -> LLMConfig:
    """The models-file entry ``name`` pointed at ``url``, made explicitly deterministic."""
    config = ModelsConfig.from_yaml_file(MODELS_YAML, environ={"HARNESS_LOCAL_LLM_URL": url}).get(
        name
    )
    settings: dict[str, Any] = {"temperature": 0.0, "max_token": MAX_TOKENS}
    if config.api_type != "anthropic":  # the Messages API has no seed (a set seed is refused)
        settings["seed"] = SEED
    settings.update(overrides)
    return config.model_copy(update=settings)


def _chunk_facts(chunk: StreamChunk) -> tuple[Any, ...]:
    return (chunk.text, chunk.reasoning, chunk.usage, chunk.finish_reason, chunk.model)


@dataclass
class HarnessCalls:
    """What one run of the scenario returned (live or replayed)."""

    text: str
    usage: Any
    finish_reason: str | None
    stream_chunks: list[tuple[Any, ...]]  # empty for the non-stream scenario


async def _harness_scenario(llm: BaseLLM, stream: bool) -> HarnessCalls:
    reply = await llm.aask(PROMPT, stream=stream)
    chunks = [_chunk_facts(c) async for c in llm.astream(PROMPT)] if stream else []
    return HarnessCalls(str(reply), reply.usage, reply.finish_reason, chunks)


def test_live_server_runs_deterministically(local_llm: LocalLLM) -> None:
    assert local_llm.url.startswith("http://127.0.0.1:")
    assert local_llm.answers()
    assert "--no-cache-prompt" in local_llm.command
    assert "--host 127.0.0.1" in local_llm.command


@pytest.mark.parametrize("stream", [False, True], ids=["nonstream", "stream"])
@pytest.mark.parametrize("name", [OPENAI_MODEL, ANTHROPIC_MODEL], ids=["openai", "anthropic"])
async def test_harness_provider_record_then_replay_without_server(
    local_llm: LocalLLM, tmp_path: Path, name: str, stream: bool
) -> None:
    config = _config(local_llm.url, name)
    cassette = tmp_path / "harness.yaml"

    async with ReplayTransport(cassette, mode="record") as recorder:
        live = await _harness_scenario(create_llm_instance(config, transport=recorder), stream)

    # the live answers are real: text, counted tokens, a real stop reason
    assert live.text.strip()
    assert live.usage is not None and not live.usage.estimated
    assert live.usage.prompt_tokens > 0 and live.usage.completion_tokens > 0
    assert live.usage.completion_tokens <= MAX_TOKENS
    assert live.finish_reason in FINISH_REASONS[name]
    if stream:
        texts = [facts[0] for facts in live.stream_chunks]
        assert len([t for t in texts if t]) > 1, texts  # really streamed, piece by piece
        # deterministic: the second streamed request answered exactly like the first
        assert "".join(texts) == live.text
        assert [f[2] for f in live.stream_chunks if f[2] is not None][-1] == live.usage
    assert len(load_interactions(cassette)) == (2 if stream else 1)

    local_llm.stop()
    assert not answers(local_llm.url), "the server must be gone before replaying"

    async with ReplayTransport(cassette, mode="replay") as player:
        replayed = await _harness_scenario(create_llm_instance(config, transport=player), stream)
        player.assert_all_played()

    assert replayed == live
    assert replayed.text == live.text
    assert replayed.usage == live.usage
    assert replayed.stream_chunks == live.stream_chunks


def _dump(obj: Any) -> Any:
    return obj.model_dump(mode="json") if obj is not None else None


async def _openai_sdk_scenario(url: str) -> dict[str, Any]:
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="local", max_retries=0, timeout=60)
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "temperature": 0.0,
        "seed": SEED,
        "max_tokens": MAX_TOKENS,
    }
    try:
        completion = await client.chat.completions.create(**request)
        stream = await client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    finally:
        await client.close()
    return {
        "text": completion.choices[0].message.content,
        "usage": _dump(completion.usage),
        "finish_reason": completion.choices[0].finish_reason,
        "stream_texts": [c.choices[0].delta.content if c.choices else None for c in chunks],
        "stream_usage": [_dump(c.usage) for c in chunks],
        "stream_finish": [c.choices[0].finish_reason if c.choices else None for c in chunks],
        "raw": [_dump(completion), *(_dump(c) for c in chunks)],
    }


async def _anthropic_sdk_scenario(url: str) -> dict[str, Any]:
    client = anthropic.AsyncAnthropic(base_url=url, api_key="local", max_retries=0, timeout=60)
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": MAX_TOKENS,
        # this SDK version has no sampling parameters; the server still reads them
        "extra_body": {"temperature": 0.0, "seed": SEED},
    }
    try:
        message = await client.messages.create(**request)
        stream = await client.messages.create(**request, stream=True)
        events = [event async for event in stream]
    finally:
        await client.close()
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    return {
        "text": "".join(b.text for b in message.content if b.type == "text"),
        "usage": _dump(message.usage),
        "finish_reason": message.stop_reason,
        "stream_texts": [d.text for d in deltas if d.type == "text_delta"],
        "stream_usage": [_dump(e.usage) for e in events if e.type == "message_delta"],
        "stream_finish": [e.delta.stop_reason for e in events if e.type == "message_delta"],
        "raw": [_dump(message), *(_dump(e) for e in events)],
    }


SDK_SCENARIOS = {"openai": _openai_sdk_scenario, "anthropic": _anthropic_sdk_scenario}


@pytest.mark.parametrize("sdk", sorted(SDK_SCENARIOS))
async def test_plain_sdk_under_use_cassette_record_then_replay_without_server(
    local_llm: LocalLLM, tmp_path: Path, sdk: str
) -> None:
    scenario = SDK_SCENARIOS[sdk]
    cassette = tmp_path / f"{sdk}-sdk.yaml"

    with use_cassette(cassette, mode="record"):
        live = await scenario(local_llm.url)

    assert live["text"].strip()
    assert live["usage"] is not None
    assert live["finish_reason"] in {"stop", "length", "end_turn", "max_tokens"}
    pieces = [t for t in live["stream_texts"] if t]
    assert len(pieces) > 1
    assert "".join(pieces) == live["text"]  # deterministic: stream == non-stream
    assert [u for u in live["stream_usage"] if u], "the stream must report usage"
    assert [f for f in live["stream_finish"] if f] == [live["finish_reason"]]
    assert len(load_interactions(cassette)) == 2

    local_llm.stop()
    assert not answers(local_llm.url), "the server must be gone before replaying"

    with use_cassette(cassette, mode="replay") as player:
        replayed = await scenario(local_llm.url)
        player.assert_all_played()

    for key in ("text", "usage", "finish_reason", "stream_texts", "stream_usage", "raw"):
        assert replayed[key] == live[key], key
    assert replayed == live


class CountingTransport(httpx2.AsyncBaseTransport):
    """The real network transport, counting the requests that reach it."""

    def __init__(self) -> None:
        self.inner = httpx2.AsyncHTTPTransport()
        self.requests = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.requests += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize(
    ("name", "where", "stream"),
    [
        (OPENAI_MODEL, "config", False),
        (OPENAI_MODEL, "call", True),
        (ANTHROPIC_MODEL, "config", False),
        (ANTHROPIC_MODEL, "call", True),
    ],
    ids=[
        "openai-config-timeout",
        "openai-call-timeout-stream",
        "anthropic-config-timeout",
        "anthropic-call-timeout-stream",
    ],
)
async def test_too_short_timeout_retries_then_raises_and_next_call_succeeds(
    local_llm: LocalLLM, name: str, where: str, stream: bool
) -> None:
    max_retries = 2
    waits: list[float] = []

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)

    normal = _config(local_llm.url, name, max_retries=max_retries, retry_min_wait=0.5)
    short = normal.model_copy(update={"timeout": 0.001}) if where == "config" else normal
    call_timeout = 0.001 if where == "call" else 0

    transport = CountingTransport()
    try:
        llm = create_llm_instance(short, transport=transport, sleep=record_sleep)
        with pytest.raises(APITimeoutError):
            await llm.aask(PROMPT, stream=stream, timeout=call_timeout)
        assert transport.requests == max_retries + 1
        assert len(waits) == max_retries
        assert waits == [0.5, 1.0]  # retry_min_wait, doubled; none really slept

        # the server is fine: a normal call right after succeeds, first time, no waits
        transport.requests = 0
        waits.clear()
        llm = create_llm_instance(normal, transport=transport, sleep=record_sleep)
        reply = await llm.aask(PROMPT, stream=stream)
    finally:
        await transport.aclose()
    assert reply.strip()
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    assert reply.finish_reason in FINISH_REASONS[name]
    assert transport.requests == 1
    assert waits == []
