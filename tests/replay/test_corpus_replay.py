"""Every wire-corpus cassette replays: through the real SDKs where one exists, else raw clients."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

from harness.replay import ReplayTransport, load_interactions
from harness.replay.bodies import split_events
from tests.replay.sdk_runner import Outcome, replay_with_sdk

CORPUS = Path(__file__).parent.parent / "wire_corpus"
ALL_FILES = sorted(CORPUS.glob("*/*.yaml"))


def _text(expected: str) -> Any:
    return lambda o: o.text == expected


# Expected facts from tests/wire_corpus/INDEX.md, one entry per recorded interaction.
SDK_EXPECTED: dict[str, list[Any]] = {
    "openai/pydantic-ai__test_max_completion_tokens[gpt-4o-mini].yaml": [
        _text("Hello! How can I assist you today?")
    ],
    "openai/pydantic-ai__test_max_completion_tokens[o3-mini].yaml": [
        _text("Hello there! How can I help you today?")
    ],
    "openai/pydantic-ai__test_openai_web_search_tool_model_not_supported.yaml": [
        lambda o: (
            isinstance(o.error, openai.BadRequestError)
            and "Web search options not supported with this model." in str(o.error)
        )
    ],
    "openai/openllmetry__test_chat_tools.yaml": [
        lambda o: (
            o.tool_calls == [("get_current_weather", '{"location":"San Francisco"}')]
            and o.finish_reason == "tool_calls"
        )
    ],
    "openai/openllmetry__test_chat_tools_streaming.yaml": [
        lambda o: (
            o.tool_calls == [("get_current_weather", '{"location":"San Francisco"}')]
            and o.chunks == 8
        )
    ],
    "openai/pydantic-ai__test_run_stream_sync_streams_real_model.yaml": [
        lambda o: o.tool_calls == [("get_capital", '{"country":"UK"}')] and o.chunks == 8,
        lambda o: o.text == "The capital of the UK is London." and o.chunks == 11,
    ],
    "openai_compatible/pydantic-ai__test_deepseek_model_thinking_stream.yaml": [
        lambda o: (
            o.text == "Hello there! 😊 How can I help you today?"
            and len(o.reasoning) == 882
            and o.chunks == 211
        )
    ],
    "openai_compatible/pydantic-ai__test_zai_model_simple.yaml": [_text("2 + 2 is 4.")],
    "openai_compatible/openllmetry__test_chat_streaming_legacy.yaml": [
        lambda o: (
            len(o.text) == 277
            and o.text.startswith("A joke about OpenTelemetry!\n\nWhy did the OpenTelemetry Span")
            and o.chunks == 74
        )
    ],
    "openai_compatible/openllmetry__test_mistralai_streaming_chat_with_events_with_content.yaml": [
        _text(
            "Why did OpenTelemetry bring a map to the party?\n\nBecause it wanted to trace all "
            "the connections!\n\n(This joke is for those who appreciate a dash of tech humor "
            "in their day.)"
        )
    ],
    "openai_compatible/pydantic-ai__test_openrouter_stream_error.yaml": [
        lambda o: isinstance(o.error, openai.APIError) and "Token limit reached" in str(o.error)
    ],
    "openai_compatible/pydantic-ai__test_openrouter_errors_raised.yaml": [
        lambda o: isinstance(o.error, openai.RateLimitError)
    ]
    * 3,
    "anthropic/pydantic-ai__test_anthropic_model_instructions.yaml": [
        _text("The capital of France is Paris.")
    ],
    "anthropic/pydantic-ai__test_anthropic_tool_with_thinking.yaml": [
        lambda o: o.tool_calls == [("get_user_country", "{}")] and len(o.reasoning) == 376,
        lambda o: (
            len(o.text) == 604
            and o.text.startswith("Based on the information that you're from Mexico")
        ),
    ],
    "anthropic/pydantic-ai__test_anthropic_explicit_effort_xhigh_unsupported_model_errors.yaml": [
        lambda o: (
            isinstance(o.error, anthropic.BadRequestError)
            and "does not support effort level 'xhigh'" in str(o.error)
        )
    ],
    "anthropic/llm-anthropic__test_stream_events_text.yaml": [_text("Hello")],
    "anthropic/llm-anthropic__test_stream_events_thinking.yaml": [
        lambda o: (
            o.text
            == "1. **Pouch** - references their iconic bill pouch\n"
            '2. **Pelé** - playful take on "pelican"'
            and len(o.reasoning) == 289
        )
    ],
    "anthropic/openllmetry__test_anthropic_tools_streaming_legacy.yaml": [
        lambda o: (
            len(o.text) == 175
            and [name for name, _ in o.tool_calls] == ["get_weather", "get_time"]
            and json.loads(o.tool_calls[0][1])
            == {"location": "San Francisco, CA", "unit": "celsius"}
            and o.finish_reason == "tool_use"
        )
    ],
    "azure/pydantic-ai__test_azure_provider_call.yaml": [
        _text("The capital of France is **Paris**.")
    ],
    "azure/openllmetry__test_chat_reasoning.yaml": [
        _text("3"),
        *[lambda o: isinstance(o.error, openai.NotFoundError)] * 3,
    ],
}


@pytest.mark.parametrize("name", sorted(SDK_EXPECTED))
async def test_corpus_cassette_replays_through_the_real_sdk(name: str) -> None:
    outcomes: list[Outcome] = await replay_with_sdk(CORPUS / name)
    checks = SDK_EXPECTED[name]
    assert len(outcomes) == len(checks)
    for i, (outcome, check) in enumerate(zip(outcomes, checks, strict=True)):
        assert check(outcome), (i, outcome)


def _request_args(interaction: Any) -> dict[str, Any]:
    request = interaction.request
    headers = [(k, v) for k, v in request.headers if k == "content-type"]
    return {
        "method": request.method,
        "url": request.uri,
        "content": request.body,
        "headers": headers,
    }


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
async def test_every_corpus_file_replays_through_httpx_and_httpx2(path: Path) -> None:
    interactions = load_interactions(path)
    transport = ReplayTransport(path)
    with httpx2.Client(transport=transport) as sync_client:
        for interaction in interactions[: (len(interactions) + 1) // 2]:
            response = sync_client.request(**_request_args(interaction))
            assert response.status_code == interaction.response.status
            assert response.content == interaction.response.body
    async with httpx.AsyncClient(transport=transport) as async_client:
        for interaction in interactions[(len(interactions) + 1) // 2 :]:
            response = await async_client.request(**_request_args(interaction))
            assert response.status_code == interaction.response.status
            assert response.content == interaction.response.body
    assert transport.unplayed() == []


async def _raw_chunks(path: Path) -> list[bytes]:
    interaction = load_interactions(path)[0]
    async with httpx2.AsyncClient(transport=ReplayTransport(path)) as client:
        request = client.build_request(**_request_args(interaction))
        response = await client.send(request, stream=True)
        chunks = [chunk async for chunk in response.aiter_raw()]
        await response.aclose()
    assert b"".join(chunks) == interaction.response.body
    return chunks


async def test_sse_replay_yields_event_by_event() -> None:
    chunks = await _raw_chunks(CORPUS / "openai/openllmetry__test_chat_tools_streaming.yaml")
    assert len(chunks) == 9  # 8 data events + [DONE]
    assert all(chunk.startswith(b"data: ") and chunk.endswith(b"\n\n") for chunk in chunks)


async def test_gemini_crlf_sse_replay_keeps_its_separators() -> None:
    chunks = await _raw_chunks(CORPUS / "gemini/pydantic-ai__test_google_model_stream.yaml")
    assert len(chunks) == 3
    assert all(chunk.endswith(b"\r\n\r\n") for chunk in chunks)


async def test_ndjson_replay_yields_line_by_line() -> None:
    path = CORPUS / "ollama/openllmetry__test_ollama_streaming_chat_legacy.yaml"
    chunks = await _raw_chunks(path)
    assert len(chunks) == 50
    text = "".join(json.loads(chunk)["message"]["content"] for chunk in chunks)
    assert text.startswith("Why did the OpenTelemetry agent go to therapy?")


@pytest.mark.parametrize(
    ("name", "frames"),
    [
        ("bedrock/openllmetry__test_anthropic_3_completion_streaming.yaml", 23),
        ("bedrock/pydantic-ai__test_bedrock_model_thinking_part_stream.yaml", 25),
    ],
)
async def test_aws_event_stream_replay_yields_frame_by_frame(name: str, frames: int) -> None:
    chunks = await _raw_chunks(CORPUS / name)
    assert len(chunks) == frames
    for chunk in chunks:
        assert int.from_bytes(chunk[:4], "big") == len(chunk)  # each chunk is one whole frame
        assert b":event-type" in chunk


def test_split_events_keeps_a_body_without_boundaries_whole() -> None:
    headers = [("content-type", "application/json")]
    assert split_events(headers, b'{"a":\n\n1}') == [b'{"a":\n\n1}']
