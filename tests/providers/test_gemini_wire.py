"""GeminiLLM against real recorded Gemini API traffic (``tests/wire_corpus/gemini``).

Every file is replayed, stream and not, with the facts of ``tests/wire_corpus/INDEX.md``
(text, reasoning, usage, finish reason, error type); the request harness sends is checked
too: URL (no key in it), the ``x-goog-api-key`` header, and the body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from harness import (
    AuthenticationError,
    BadRequestError,
    LLMConfig,
    NotFoundError,
    create_llm_instance,
)
from harness.costs import Usage
from harness.providers.base import StreamChunk, ToolCall
from harness.providers.gemini import GeminiLLM
from tests.wirecorpus import CORPUS, CorpusTransport, Recorded, load

KEY = "gemini-test-key-0123456789"

SIMPLE = "gemini/pydantic-ai__test_google_model.yaml"
SSE_STREAM = "gemini/pydantic-ai__test_google_model_stream.yaml"
ARRAY_THOUGHTS = "gemini/llm-gemini__test_prompt.yaml"
ARRAY_TOOLS = "gemini/llm-gemini__test_tools_with_gemini_3_thought_signatures.yaml"
AUTH_400 = "gemini/mirascope__test_authentication_error__google_gemini_2_5_flash.yaml"
NOT_FOUND_STREAM = "gemini/mirascope__test_model_not_found_stream__google_gemini_2_5_flash.yaml"

# The thoughtSignature Gemini 3 put on its multiply call (and wants back in the next turn).
SIGNATURE = load(ARRAY_TOOLS)[1].request_body["contents"][1]["parts"][1]["thoughtSignature"]

ALL_FILES = {SIMPLE, SSE_STREAM, ARRAY_THOUGHTS, ARRAY_TOOLS, AUTH_400, NOT_FOUND_STREAM}


class Waits:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def gemini(
    interactions: list[Recorded], *, stream_format: str = "sse", **config: Any
) -> tuple[GeminiLLM, CorpusTransport]:
    transport = CorpusTransport(interactions)
    settings: dict[str, Any] = {"api_type": "gemini", "api_key": KEY, "max_retries": 0}
    settings.update(config)
    llm = create_llm_instance(
        LLMConfig(**settings), transport=transport, sleep=Waits(), stream_format=stream_format
    )
    assert isinstance(llm, GeminiLLM)
    return llm, transport


@dataclass
class Outcome:
    text: str
    usage: Usage | None
    reasoning: str | None
    finish_reason: str | None
    model: str | None
    tool_calls: list[ToolCall]
    chunks: list[StreamChunk] = field(default_factory=list)


async def call(llm: GeminiLLM, mode: str, prompt: Any = "hello", **kwargs: Any) -> Outcome:
    if mode == "astream":
        chunks = [chunk async for chunk in llm.astream(prompt, **kwargs)]
        usages = [c.usage for c in chunks if c.usage is not None]
        finishes = [c.finish_reason for c in chunks if c.finish_reason]
        models = [c.model for c in chunks if c.model]
        return Outcome(
            text="".join(c.text for c in chunks),
            usage=usages[-1] if usages else None,
            reasoning="".join(c.reasoning for c in chunks) or None,
            finish_reason=finishes[-1] if finishes else None,
            model=models[-1] if models else None,
            tool_calls=[t for c in chunks for t in c.tool_calls],
            chunks=chunks,
        )
    reply = await llm.aask(prompt, stream=(mode == "aask_stream"), **kwargs)
    return Outcome(
        text=str(reply),
        usage=reply.usage,
        reasoning=reply.reasoning_content,
        finish_reason=reply.finish_reason,
        model=reply.model,
        tool_calls=reply.response.tool_calls,
    )


STREAM_MODES = ["aask_stream", "astream"]


def sent(transport: CorpusTransport, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(transport.requests[index].content)
    return body


def assert_key_in_header_only(transport: CorpusTransport) -> None:
    for request in transport.requests:
        assert request.headers["x-goog-api-key"] == KEY
        assert KEY not in str(request.url)
        assert "key" not in request.url.params
        assert "authorization" not in request.headers


def test_every_gemini_corpus_file_has_a_replay_test() -> None:
    assert {f"gemini/{p.name}" for p in (CORPUS / "gemini").glob("*.yaml")} == ALL_FILES


# -- generateContent ------------------------------------------------------------------------------


async def test_generate_content_parses_text_usage_with_thoughts_and_stop() -> None:
    llm, transport = gemini(load(SIMPLE), model="gemini-2.5-flash", stream=False)
    out = await call(llm, "aask", "Hello!", system_msgs=["You are a chatbot."])
    assert out.text == "Hello! How can I help you today?"
    assert out.finish_reason == "STOP"
    # completion counts the 34 hidden thought tokens: 9 + 34
    assert out.usage == Usage(prompt_tokens=9, completion_tokens=43, reasoning_tokens=34)
    assert out.usage.total_tokens == 52
    assert out.reasoning is None
    assert out.model == "gemini-2.5-flash"

    request = transport.requests[0]
    assert str(request.url) == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert_key_in_header_only(transport)
    body = sent(transport)
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hello!"}]}]
    assert body["systemInstruction"] == {"parts": [{"text": "You are a chatbot."}]}
    assert body["generationConfig"] == {"temperature": 0.0, "maxOutputTokens": 4096}


# -- streamGenerateContent?alt=sse ----------------------------------------------------------------


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_sse_stream_joins_text_and_takes_the_final_usage(mode: str) -> None:
    llm, transport = gemini(load(SSE_STREAM), model="gemini-2.0-flash-exp")
    out = await call(llm, mode, "What is the capital of France?")
    assert out.text == "The capital of France is Paris.\n"
    assert out.finish_reason == "STOP"
    # intermediate chunks said promptTokenCount 15; the last one, 13, counts
    assert out.usage == Usage(prompt_tokens=13, completion_tokens=8)
    assert out.model == "gemini-2.0-flash-exp"
    request = transport.requests[0]
    assert request.url.path == "/v1beta/models/gemini-2.0-flash-exp:streamGenerateContent"
    assert dict(request.url.params) == {"alt": "sse"}
    assert_key_in_header_only(transport)
    if mode == "astream":
        assert [c.text for c in out.chunks] == ["The", " capital of France", " is Paris.\n"]
        assert [c.usage.prompt_tokens for c in out.chunks if c.usage] == [15, 15, 13]


# -- streamGenerateContent without alt: one JSON array --------------------------------------------


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_json_array_stream_keeps_thought_parts_out_of_the_answer(mode: str) -> None:
    llm, transport = gemini(
        load(ARRAY_THOUGHTS), stream_format="json", model="gemini-flash-latest", reasoning=True
    )
    out = await call(llm, mode, "Name for a pet pelican, just the name")
    assert out.text == "Scoop"
    assert out.reasoning is not None
    assert len(out.reasoning) == 275
    assert out.reasoning.startswith("**Considering the Constraint**")
    assert out.finish_reason == "STOP"
    assert out.usage == Usage(prompt_tokens=11, completion_tokens=293, reasoning_tokens=291)
    assert out.usage.total_tokens == 304
    assert out.model == "gemini-3.6-flash"

    request = transport.requests[0]
    assert str(request.url) == (
        "https://generativelanguage.googleapis.com/v1beta/models/"
        "gemini-flash-latest:streamGenerateContent"
    )
    assert_key_in_header_only(transport)
    body = sent(transport)
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Name for a pet pelican, just the name"}]}
    ]
    assert body["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 4000,
        "includeThoughts": True,
    }


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_json_array_stream_function_call_becomes_a_tool_call(mode: str) -> None:
    llm, _ = gemini(load(ARRAY_TOOLS)[0:1], stream_format="json", model="gemini-3-flash-preview")
    out = await call(llm, mode, "What is 5 times 3?")
    assert out.text == ""
    assert len(out.tool_calls) == 1
    assert out.tool_calls[0].name == "multiply"
    assert json.loads(out.tool_calls[0].arguments) == {"y": 3, "x": 5}
    assert out.tool_calls[0].signature == SIGNATURE  # the thoughtSignature on the call's part
    assert out.finish_reason == "STOP"
    assert out.usage == Usage(prompt_tokens=60, completion_tokens=48, reasoning_tokens=32)
    assert out.usage.total_tokens == 108


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_json_array_stream_after_a_tool_result_sends_the_whole_conversation(
    mode: str,
) -> None:
    llm, transport = gemini(
        load(ARRAY_TOOLS)[1:2], stream_format="json", model="gemini-3-flash-preview"
    )
    multiply = ToolCall(
        id="call-1", name="multiply", arguments='{"y": 3, "x": 5}', signature=SIGNATURE
    )
    conversation = [
        {"role": "user", "content": "What is 5 times 3?"},
        {"role": "assistant", "content": "", "tool_calls": [multiply.to_message()]},
        {"role": "tool", "tool_call_id": "call-1", "content": "15"},
    ]
    llm.use_system_prompt = False
    out = await call(llm, mode, conversation)
    assert out.text == "5 times 3 is 15."
    assert out.finish_reason == "STOP"
    # earlier chunks said prompt 89; the final one, 121, counts
    assert out.usage == Usage(prompt_tokens=121, completion_tokens=9)
    assert out.usage.total_tokens == 130
    body = sent(transport)
    assert "systemInstruction" not in body
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "What is 5 times 3?"}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "multiply", "args": {"y": 3, "x": 5}, "id": "call-1"},
                    "thoughtSignature": SIGNATURE,  # sent back, as the recording did
                }
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "multiply",
                        "response": {"content": "15"},
                        "id": "call-1",
                    }
                }
            ],
        },
    ]


# -- errors ---------------------------------------------------------------------------------------


async def test_invalid_key_400_is_an_authentication_error_with_googles_message() -> None:
    llm, transport = gemini(load(AUTH_400), model="gemini-2.5-flash", stream=False, max_retries=2)
    with pytest.raises(AuthenticationError) as info:
        await llm.aask("This should fail with AuthenticationError")
    error = info.value
    assert isinstance(error, AuthenticationError) and not isinstance(error, BadRequestError)
    assert error.status_code == 400
    assert error.message.startswith("API key not valid. Please pass a valid API key.")
    assert "API_KEY_INVALID" in error.message
    assert error.error_type == "INVALID_ARGUMENT"
    assert error.error_code == "400"
    assert len(transport.requests) == 1  # not retried
    assert_key_in_header_only(transport)


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_404_on_a_stream_with_an_sse_content_type_is_read_as_json(mode: str) -> None:
    llm, transport = gemini(
        load(NOT_FOUND_STREAM), model="this-model-does-not-exist-12345", max_retries=3
    )
    with pytest.raises(NotFoundError) as info:
        await call(llm, mode, "This should fail with NotFoundError")
    assert info.value.status_code == 404
    assert info.value.error_type == "NOT_FOUND"
    assert info.value.message.startswith(
        "models/this-model-does-not-exist-12345 is not found for API version v1beta"
    )
    assert len(transport.requests) == 1  # a 404 is not retried
    assert dict(transport.requests[0].url.params) == {"alt": "sse"}
