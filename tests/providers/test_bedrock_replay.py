"""Bedrock and Ollama through harness's own record/replay transport: a recording of real
wire bytes (AWS event-stream frames, NDJSON) replays to the same answer, keeps no secret on
disk, and a recording transport without credentials sends nothing."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from harness import LLMConfig, MissingAPIKeyError, create_llm_instance
from harness.replay import ReplayTransport
from tests.wirecorpus import CorpusTransport

FIXED = datetime(2024, 6, 11, 0, 34, 41, tzinfo=timezone.utc)
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FQoGZXIvYXdzEXAMPLETOKENvalue1234567890"


def bedrock(transport: Any, model: str, **config: Any) -> Any:
    settings: dict[str, Any] = {
        "api_type": "bedrock",
        "model": model,
        "region_name": "us-east-1",
        "max_retries": 0,
        **config,
    }
    return create_llm_instance(
        LLMConfig(**settings), transport=transport, clock=lambda: FIXED, environ={}
    )


@pytest.mark.parametrize(
    ("corpus", "model", "stream", "text"),
    [
        (
            "bedrock/pydantic-ai__test_bedrock_model_thinking_part_stream.yaml",
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            True,
            "Hello! It's nice to meet you. How can I help you today?",
        ),
        (
            "bedrock/openllmetry__test_anthropic_3_completion_streaming.yaml",
            "anthropic.claude-3-sonnet-20240229-v1:0",
            True,
            "Why did the distributed tracing span cross the road? To get to the other service!",
        ),
        (
            "bedrock/pydantic-ai__test_bedrock_model.yaml",
            "us.amazon.nova-micro-v1:0",
            False,
            "Hello! How can I assist you today? Whether you have questions, need information, "
            "or just want to chat, I'm here to help.",
        ),
    ],
)
async def test_bedrock_records_and_replays_through_a_cassette(
    tmp_path: Path, corpus: str, model: str, stream: bool, text: str
) -> None:
    cassette = tmp_path / "bedrock.yaml"
    secrets = {"access_key": "AKIAIOSFODNN7EXAMPLE", "secret_key": SECRET_KEY}
    recorder = ReplayTransport(cassette, "record", upstream=CorpusTransport.from_file(corpus))
    recorded = await bedrock(recorder, model, session_token=SESSION_TOKEN, **secrets).aask(
        "Hello", stream=stream
    )
    await recorder.aclose()
    on_disk = cassette.read_text(encoding="utf-8")
    assert SECRET_KEY not in on_disk
    assert SESSION_TOKEN not in on_disk
    assert "Signature=" not in on_disk  # the SigV4 Authorization header is masked

    player = ReplayTransport(cassette, "replay")
    replayed = await bedrock(player, model).aask("Hello", stream=stream)  # no credentials
    await player.aclose()
    assert recorded == replayed == text
    assert replayed.usage == recorded.usage
    assert replayed.finish_reason == recorded.finish_reason == "end_turn"
    assert replayed.response.metrics == recorded.response.metrics != {}


async def test_bedrock_recording_without_credentials_sends_nothing(tmp_path: Path) -> None:
    cassette = tmp_path / "c.yaml"
    upstream = CorpusTransport.from_file("bedrock/pydantic-ai__test_bedrock_model.yaml")
    recorder = ReplayTransport(cassette, "record", upstream=upstream)
    with pytest.raises(MissingAPIKeyError, match="no AWS credentials"):
        await bedrock(recorder, "us.amazon.nova-micro-v1:0").aask("Hello", stream=False)
    await recorder.aclose()
    assert upstream.requests == []
    assert not cassette.exists()


async def test_ollama_stream_records_and_replays_through_a_cassette(tmp_path: Path) -> None:
    cassette = tmp_path / "ollama.yaml"
    corpus = "ollama/openllmetry__test_ollama_streaming_chat_legacy.yaml"
    config = LLMConfig(api_type="ollama", model="llama3", max_retries=0)
    recorder = ReplayTransport(cassette, "record", upstream=CorpusTransport.from_file(corpus))
    recorded = await create_llm_instance(config, transport=recorder).aask("Tell me a joke")
    await recorder.aclose()
    player = ReplayTransport(cassette, "replay")
    replayed = await create_llm_instance(config, transport=player).aask("Tell me a joke")
    await player.aclose()
    assert recorded == replayed
    assert replayed.startswith("Why did the OpenTelemetry agent go to therapy?")
    assert replayed.usage == recorded.usage
    assert replayed.usage is not None and replayed.usage.prompt_tokens == 17
