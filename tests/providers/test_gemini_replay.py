"""Gemini through harness's own record/replay transport: a recording of real wire bytes
(JSON, SSE, a gzipped JSON-array stream) replays to the same answer without a key, and the
``x-goog-api-key`` never reaches the cassette."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from harness import LLMConfig, MissingAPIKeyError, create_llm_instance
from harness.replay import ReplayTransport
from tests.wirecorpus import CorpusTransport

KEY = "AIzaSyD-gemini-test-key-0123456789abc"


def gemini(transport: Any, model: str, stream_format: str, **config: Any) -> Any:
    settings: dict[str, Any] = {"api_type": "gemini", "model": model, "max_retries": 0, **config}
    return create_llm_instance(
        LLMConfig(**settings), transport=transport, environ={}, stream_format=stream_format
    )


@pytest.mark.parametrize(
    ("corpus", "model", "stream_format", "stream", "text"),
    [
        (
            "gemini/pydantic-ai__test_google_model.yaml",
            "gemini-2.5-flash",
            "sse",
            False,
            "Hello! How can I help you today?",
        ),
        (
            "gemini/pydantic-ai__test_google_model_stream.yaml",
            "gemini-2.0-flash-exp",
            "sse",
            True,
            "The capital of France is Paris.\n",
        ),
        ("gemini/llm-gemini__test_prompt.yaml", "gemini-flash-latest", "json", True, "Scoop"),
    ],
)
async def test_gemini_records_and_replays_through_a_cassette(
    tmp_path: Path, corpus: str, model: str, stream_format: str, stream: bool, text: str
) -> None:
    cassette = tmp_path / "gemini.yaml"
    recorder = ReplayTransport(cassette, "record", upstream=CorpusTransport.from_file(corpus))
    recorded = await gemini(recorder, model, stream_format, api_key=KEY).aask(
        "Hello", stream=stream
    )
    await recorder.aclose()
    assert KEY not in cassette.read_text(encoding="utf-8")

    player = ReplayTransport(cassette, "replay")
    replayed = await gemini(player, model, stream_format).aask("Hello", stream=stream)  # no key
    await player.aclose()
    assert recorded == replayed == text
    assert replayed.usage == recorded.usage is not None
    assert replayed.finish_reason == recorded.finish_reason == "STOP"
    assert replayed.reasoning_content == recorded.reasoning_content


async def test_gemini_embeddings_record_and_replay(tmp_path: Path) -> None:
    def upstream(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"embeddings": [{"values": [0.5]}, {"values": [0.25]}]})

    cassette = tmp_path / "embed.yaml"
    recorder = ReplayTransport(cassette, "record", upstream=httpx2.MockTransport(upstream))
    recorded = await gemini(recorder, "gemini-embedding-001", "sse", api_key=KEY).aembed(["a", "b"])
    await recorder.aclose()
    assert KEY not in cassette.read_text(encoding="utf-8")
    player = ReplayTransport(cassette, "replay")
    replayed = await gemini(player, "gemini-embedding-001", "sse").aembed(["a", "b"])
    await player.aclose()
    assert replayed.vectors == recorded.vectors == [[0.5], [0.25]]


async def test_gemini_recording_without_a_key_sends_nothing(tmp_path: Path) -> None:
    cassette = tmp_path / "c.yaml"
    upstream = CorpusTransport.from_file("gemini/pydantic-ai__test_google_model.yaml")
    recorder = ReplayTransport(cassette, "record", upstream=upstream)
    with pytest.raises(MissingAPIKeyError, match="GEMINI_API_KEY"):
        await gemini(recorder, "gemini-2.5-flash", "sse").aask("Hello", stream=False)
    await recorder.aclose()
    assert upstream.requests == []
    assert not cassette.exists()
