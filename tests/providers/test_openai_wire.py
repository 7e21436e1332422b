"""OpenAILLM against real recorded OpenAI and OpenAI-compatible HTTP traffic.

Every file of ``tests/wire_corpus/openai`` and ``tests/wire_corpus/openai_compatible`` is
replayed through the provider (non-stream, ``aask(stream=True)`` and ``astream()``); the
expected facts are the ones ``tests/wire_corpus/INDEX.md`` lists for each file.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from harness import (
    BadRequestError,
    LLMConfig,
    RateLimitError,
    ServerError,
    StreamError,
    create_llm_instance,
)
from harness.costs import Usage
from harness.providers.base import BaseLLM, ChatResponse, StreamChunk, ToolCall
from harness.tokens import count_message_tokens
from tests.wirecorpus import CorpusTransport, Recorded, load

OPENAI = "https://api.openai.com/v1"
GPT4O_MINI = "openai/pydantic-ai__test_max_completion_tokens[gpt-4o-mini].yaml"
O3_MINI = "openai/pydantic-ai__test_max_completion_tokens[o3-mini].yaml"
WEB_SEARCH_400 = "openai/pydantic-ai__test_openai_web_search_tool_model_not_supported.yaml"
STREAM_TOOL_THEN_TEXT = "openai/pydantic-ai__test_run_stream_sync_streams_real_model.yaml"
CHAT_TOOLS = "openai/openllmetry__test_chat_tools.yaml"
CHAT_TOOLS_STREAM = "openai/openllmetry__test_chat_tools_streaming.yaml"
DEEPSEEK_STREAM = "openai_compatible/pydantic-ai__test_deepseek_model_thinking_stream.yaml"
ZAI = "openai_compatible/pydantic-ai__test_zai_model_simple.yaml"
GROQ_STREAM = "openai_compatible/openllmetry__test_chat_streaming_legacy.yaml"
MISTRAL_STREAM = (
    "openai_compatible/openllmetry__test_mistralai_streaming_chat_with_events_with_content.yaml"
)
OPENROUTER_STREAM_ERROR = "openai_compatible/pydantic-ai__test_openrouter_stream_error.yaml"
OPENROUTER_429 = "openai_compatible/pydantic-ai__test_openrouter_errors_raised.yaml"

OPENROUTER_RAW_429 = (
    "google/gemini-2.0-flash-exp:free is temporarily rate-limited upstream. Please retry "
    "shortly, or add your own key to accumulate your rate limits: "
    "https://openrouter.ai/settings/integrations"
)


class Sleeps:
    """An async no-op ``sleep`` that records the retry waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def replay(
    source: str | list[Recorded], *, sleeps: Sleeps | None = None, **config: Any
) -> tuple[BaseLLM, CorpusTransport]:
    interactions = load(source) if isinstance(source, str) else source
    transport = CorpusTransport(interactions)
    config.setdefault("max_retries", 0)
    llm = create_llm_instance(LLMConfig(**config), transport=transport, sleep=sleeps or Sleeps())
    return llm, transport


async def collect(llm: BaseLLM, prompt: str = "hello") -> list[StreamChunk]:
    return [chunk async for chunk in llm.astream(prompt)]


def sent_messages_end_with_user(body: dict[str, Any], text: str) -> bool:
    return body["messages"][-1] == {"role": "user", "content": text}


# -- OpenAI: non-streaming ------------------------------------------------------------------


async def test_gpt4o_mini_non_stream_text_usage_finish_reason_and_model() -> None:
    llm, transport = replay(GPT4O_MINI, model="gpt-4o-mini", base_url=OPENAI, api_key="sk-test")

    reply = await llm.aask("hello", stream=False)

    assert isinstance(reply, str)
    assert reply == "Hello! How can I assist you today?"
    assert reply.finish_reason == "stop"
    assert reply.model == "gpt-4o-mini-2024-07-18"
    assert reply.reasoning_content is None
    assert reply.usage == Usage(prompt_tokens=8, completion_tokens=9)
    assert reply.usage is not None and reply.usage.total_tokens == 17
    assert reply.response.tool_calls == []
    assert reply.response.raw["id"] == "chatcmpl-Dr3KONlJHqM2OKkn7IPxwgC3ZIEZw"
    assert len(transport.requests) == 1


async def test_gpt4o_mini_request_is_a_chat_completion_with_max_tokens_and_bearer_key() -> None:
    llm, transport = replay(GPT4O_MINI, model="gpt-4o-mini", base_url=OPENAI, api_key="sk-test")

    await llm.aask("hello", stream=False)

    assert len(transport.requests) == 1
    request = transport.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://api.openai.com/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    body = transport.sent_json()
    assert body["model"] == "gpt-4o-mini"
    assert body["max_tokens"] == 4096
    assert body["temperature"] == 0.0
    assert "max_completion_tokens" not in body
    assert "stream" not in body
    assert "stream_options" not in body
    assert body["messages"][0]["role"] == "system"
    assert sent_messages_end_with_user(body, "hello")


async def test_acompletion_non_stream_returns_the_parsed_chat_response() -> None:
    llm, transport = replay(GPT4O_MINI, model="gpt-4o-mini", base_url=OPENAI)

    response = await llm.acompletion([{"role": "user", "content": "hello"}], stream=False)

    assert isinstance(response, ChatResponse)
    assert response.text == "Hello! How can I assist you today?"
    assert response.usage == Usage(prompt_tokens=8, completion_tokens=9)
    assert transport.sent_json()["messages"] == [{"role": "user", "content": "hello"}]


async def test_o3_mini_sends_max_completion_tokens_and_no_temperature() -> None:
    llm, transport = replay(O3_MINI, model="o3-mini", base_url=OPENAI, max_token=100)

    reply = await llm.aask("hello", stream=False)

    body = transport.sent_json()
    assert body["model"] == "o3-mini"
    assert body["max_completion_tokens"] == 100
    assert "max_tokens" not in body
    assert "temperature" not in body
    assert reply == "Hello there! How can I help you today?"
    assert reply.finish_reason == "stop"
    assert reply.model == "o3-mini-2025-01-31"


async def test_o3_mini_usage_counts_hidden_reasoning_tokens() -> None:
    llm, _ = replay(O3_MINI, model="o3-mini", base_url=OPENAI)

    reply = await llm.aask("hello", stream=False)

    assert reply.usage == Usage(prompt_tokens=7, completion_tokens=87, reasoning_tokens=64)
    assert reply.usage is not None and reply.usage.total_tokens == 94
    assert reply.reasoning_content is None  # hidden: only counted, never returned


async def test_gzip_non_stream_tool_call_has_null_content_and_usage() -> None:
    llm, transport = replay(CHAT_TOOLS, model="gpt-3.5-turbo", base_url=OPENAI)

    response = await llm.acompletion([{"role": "user", "content": "weather?"}], stream=False)

    assert response.text is None
    assert response.tool_calls == [
        ToolCall(
            id="call_NnblzAO7oa78mQTzjUYLcouN",
            name="get_current_weather",
            arguments='{"location":"San Francisco"}',
        )
    ]
    assert json.loads(response.tool_calls[0].arguments) == {"location": "San Francisco"}
    assert response.finish_reason == "tool_calls"
    assert response.usage == Usage(prompt_tokens=68, completion_tokens=16)
    assert response.model == "gpt-3.5-turbo-0125"
    assert len(transport.requests) == 1


async def test_gzip_non_stream_tool_call_reply_is_an_empty_string() -> None:
    llm, _ = replay(CHAT_TOOLS, model="gpt-3.5-turbo", base_url=OPENAI)

    reply = await llm.aask("weather?", stream=False)

    assert reply == ""
    assert reply.finish_reason == "tool_calls"
    assert [call.name for call in reply.response.tool_calls] == ["get_current_weather"]


# -- OpenAI: errors and retries ---------------------------------------------------------------


async def test_openai_400_raises_bad_request_with_the_providers_message_at_once() -> None:
    sleeps = Sleeps()
    llm, transport = replay(
        WEB_SEARCH_400, sleeps=sleeps, model="gpt-4o", base_url=OPENAI, max_retries=3
    )

    with pytest.raises(BadRequestError) as info:
        await llm.aask("hello", stream=False)

    error = info.value
    assert error.status_code == 400
    assert error.provider == "openai"
    assert error.model == "gpt-4o"
    assert error.error_type == "invalid_request_error"
    assert error.error_code is None
    assert error.message == "Web search options not supported with this model."
    assert "Web search options not supported with this model." in str(error)
    assert error.body["param"] == "web_search_options"
    assert len(transport.requests) == 1
    assert sleeps.waits == []


async def test_openai_400_on_a_streaming_request_is_not_retried() -> None:
    sleeps = Sleeps()
    llm, transport = replay(
        WEB_SEARCH_400, sleeps=sleeps, model="gpt-4o", base_url=OPENAI, max_retries=3
    )

    with pytest.raises(BadRequestError) as info:
        await collect(llm)

    assert info.value.status_code == 400
    assert info.value.error_type == "invalid_request_error"
    assert len(transport.requests) == 1
    assert transport.sent_json()["stream"] is True
    assert sleeps.waits == []


def _ok() -> Recorded:
    return load(GPT4O_MINI)[0]


def _status(code: int, headers: list[tuple[str, str]] | None = None) -> Recorded:
    # Synthetic error answer on the recorded endpoint (the corpus has no OpenAI 5xx).
    body = {"error": {"message": f"synthetic {code}", "type": "server_error", "code": None}}
    return Recorded(
        method="POST",
        uri=f"{OPENAI}/chat/completions",
        request_body=None,
        status=code,
        headers=[("content-type", "application/json"), *(headers or [])],
        body=json.dumps(body).encode(),
    )


async def test_server_error_is_retried_honouring_retry_after_then_succeeds() -> None:
    sleeps = Sleeps()
    llm, transport = replay(
        [_status(503, [("retry-after", "7")]), _ok()],
        sleeps=sleeps,
        model="gpt-4o-mini",
        base_url=OPENAI,
        max_retries=2,
    )

    reply = await llm.aask("hello", stream=False)

    assert reply == "Hello! How can I assist you today?"
    assert len(transport.requests) == 2
    assert sleeps.waits == [7.0]


async def test_rate_limit_retry_after_ms_is_honoured() -> None:
    sleeps = Sleeps()
    llm, transport = replay(
        [_status(429, [("retry-after-ms", "1500")]), _ok()],
        sleeps=sleeps,
        model="gpt-4o-mini",
        base_url=OPENAI,
        max_retries=1,
    )

    reply = await llm.aask("hello", stream=False)

    assert reply.usage == Usage(prompt_tokens=8, completion_tokens=9)
    assert len(transport.requests) == 2
    assert sleeps.waits == [1.5]


@pytest.mark.parametrize("max_retries", [0, 1, 3])
async def test_server_error_is_retried_max_retries_times_then_raised(max_retries: int) -> None:
    sleeps = Sleeps()
    llm, transport = replay(
        [_status(500)] * (max_retries + 1),
        sleeps=sleeps,
        model="gpt-4o-mini",
        base_url=OPENAI,
        max_retries=max_retries,
    )

    with pytest.raises(ServerError) as info:
        await llm.aask("hello", stream=False)

    assert info.value.status_code == 500
    assert info.value.message == "synthetic 500"
    assert info.value.retry_after is None
    assert len(transport.requests) == max_retries + 1
    assert sleeps.waits == [2.0**i for i in range(max_retries)]  # exponential from 1s


# -- OpenAI: streaming -------------------------------------------------------------------------


async def test_openai_stream_requests_include_usage() -> None:
    llm, transport = replay(STREAM_TOOL_THEN_TEXT, model="gpt-4o-mini", base_url=OPENAI)

    await llm.aask("capital of the UK?", stream=True)

    body = transport.sent_json()
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 4096
    assert transport.requests[0].url.path == "/v1/chat/completions"


async def test_openai_stream_tool_call_fragments_assembled_with_usage_chunk() -> None:
    llm, transport = replay(STREAM_TOOL_THEN_TEXT, model="gpt-4o-mini", base_url=OPENAI)

    response = await llm.acompletion([{"role": "user", "content": "capital?"}], stream=True)

    assert response.tool_calls == [
        ToolCall(
            id="call_ZR5UUuTt3pf61kjwAJIYdVMj", name="get_capital", arguments='{"country":"UK"}'
        )
    ]
    assert response.text == ""
    assert response.finish_reason == "tool_calls"
    assert response.usage == Usage(prompt_tokens=53, completion_tokens=15)
    assert response.model == "gpt-4o-mini-2024-07-18"
    assert len(response.raw) == 8  # every data chunk was read, [DONE] is not one
    fragments = [
        call["function"]["arguments"]
        for chunk in response.raw
        for choice in chunk["choices"]
        for call in (choice["delta"].get("tool_calls") or [])
        if call["function"].get("arguments")
    ]
    assert len(fragments) == 5
    assert len(transport.requests) == 1


async def test_openai_stream_tool_call_then_follow_up_text_in_one_conversation() -> None:
    llm, transport = replay(STREAM_TOOL_THEN_TEXT, model="gpt-4o-mini", base_url=OPENAI)

    first = await llm.aask("capital of the UK?", stream=True)
    second = await llm.aask("and now?", stream=True)

    assert first == ""
    assert first.response.tool_calls[0].name == "get_capital"
    assert second == "The capital of the UK is London."
    assert second.finish_reason == "stop"
    assert second.usage == Usage(prompt_tokens=78, completion_tokens=9)
    assert second.response.tool_calls == []
    assert len(transport.requests) == 2


async def test_openai_astream_yields_text_then_a_usage_only_chunk() -> None:
    llm, _ = replay(load(STREAM_TOOL_THEN_TEXT)[1:], model="gpt-4o-mini", base_url=OPENAI)

    chunks = await collect(llm)

    assert len(chunks) == 11
    assert "".join(c.text for c in chunks) == "The capital of the UK is London."
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    with_usage = [c for c in chunks if c.usage is not None]
    assert with_usage == [chunks[-1]]
    assert chunks[-1].usage == Usage(prompt_tokens=78, completion_tokens=9)
    assert chunks[-1].raw["choices"] == []
    assert chunks[-1].text == ""
    assert all(c.tool_calls == [] for c in chunks)


async def test_openai_astream_emits_assembled_tool_call_last() -> None:
    llm, _ = replay(load(STREAM_TOOL_THEN_TEXT)[:1], model="gpt-4o-mini", base_url=OPENAI)

    chunks = await collect(llm)

    assert chunks[-1].tool_calls == [
        ToolCall(
            id="call_ZR5UUuTt3pf61kjwAJIYdVMj", name="get_capital", arguments='{"country":"UK"}'
        )
    ]
    assert all(c.tool_calls == [] for c in chunks[:-1])
    assert "tool_calls" in [c.finish_reason for c in chunks]


async def test_openai_astream_counts_costs_with_the_streamed_usage() -> None:
    llm, _ = replay(load(STREAM_TOOL_THEN_TEXT)[1:], model="gpt-4o-mini", base_url=OPENAI)

    await collect(llm)

    costs = llm.get_costs()
    assert costs.total_prompt_tokens == 78
    assert costs.total_completion_tokens == 9


async def test_stream_without_usage_chunk_falls_back_to_an_estimate() -> None:
    llm, transport = replay(CHAT_TOOLS_STREAM, model="gpt-3.5-turbo", base_url=OPENAI)

    reply = await llm.aask("weather?", stream=True)

    assert reply == ""
    assert reply.finish_reason == "tool_calls"
    assert reply.model == "gpt-3.5-turbo-0125"
    assert reply.response.tool_calls == [
        ToolCall(
            id="call_P9Ayqu3UQNYuTBVAg2sLimh9",
            name="get_current_weather",
            arguments='{"location":"San Francisco"}',
        )
    ]
    assert len(reply.response.raw) == 8
    assert reply.usage is not None
    assert reply.usage.estimated is True  # the recording has no usage at all
    sent = transport.sent_json()["messages"]
    assert reply.usage.prompt_tokens == count_message_tokens(sent, "gpt-3.5-turbo")
    assert reply.usage.prompt_tokens > 10  # the system prompt and the question, counted exactly
    assert len(transport.requests) == 1


async def test_stream_without_usage_chunk_astream_has_no_provider_usage() -> None:
    llm, _ = replay(CHAT_TOOLS_STREAM, model="gpt-3.5-turbo", base_url=OPENAI)

    chunks = await collect(llm)

    assert all(c.usage is None for c in chunks)
    assert chunks[-1].tool_calls[0].id == "call_P9Ayqu3UQNYuTBVAg2sLimh9"
    assert "".join(c.text for c in chunks) == ""


# -- DeepSeek -----------------------------------------------------------------------------------


DEEPSEEK_TEXT = "Hello there! 😊 How can I help you today?"


async def test_deepseek_stream_reasoning_content_and_usage_on_finish_chunk() -> None:
    llm, transport = replay(DEEPSEEK_STREAM, api_type="deepseek", model="deepseek-reasoner")

    reply = await llm.aask("Hello", stream=True)

    assert reply == DEEPSEEK_TEXT
    assert reply.reasoning_content is not None
    assert len(reply.reasoning_content) == 882
    assert reply.reasoning_content.startswith('Hmm, the user just said "Hello".')
    assert reply.reasoning_content.endswith("not reply further - and that's okay too.")
    assert reply.finish_reason == "stop"
    assert reply.model == "deepseek-reasoner"
    assert reply.usage == Usage(
        prompt_tokens=6, completion_tokens=212, cached_tokens=0, reasoning_tokens=198
    )
    assert len(reply.response.raw) == 211
    assert str(transport.requests[0].url) == "https://api.deepseek.com/chat/completions"


async def test_deepseek_stream_requests_include_usage() -> None:
    llm, transport = replay(DEEPSEEK_STREAM, api_type="deepseek", model="deepseek-reasoner")

    await llm.aask("Hello", stream=True)

    body = transport.sent_json()
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["model"] == "deepseek-reasoner"


async def test_deepseek_astream_reasoning_chunks_come_before_text_chunks() -> None:
    llm, _ = replay(DEEPSEEK_STREAM, api_type="deepseek", model="deepseek-reasoner")

    chunks = await collect(llm)

    reasoning_at = [i for i, c in enumerate(chunks) if c.reasoning]
    text_at = [i for i, c in enumerate(chunks) if c.text]
    assert reasoning_at and text_at
    assert max(reasoning_at) < min(text_at)
    assert not any(c.text and c.reasoning for c in chunks)
    assert "".join(c.text for c in chunks) == DEEPSEEK_TEXT
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1
    assert usage_chunks[0].finish_reason == "stop"
    assert usage_chunks[0].usage == Usage(
        prompt_tokens=6, completion_tokens=212, reasoning_tokens=198
    )


# -- Z.ai (Zhipu) -------------------------------------------------------------------------------


async def test_zai_non_stream_reasoning_content_and_reasoning_tokens() -> None:
    llm, transport = replay(
        ZAI, api_type="zhipuai", model="glm-4.7", base_url="https://api.z.ai/api/paas/v4"
    )

    reply = await llm.aask("What is 2 + 2?", stream=False)

    assert reply == "2 + 2 is 4."
    assert reply.reasoning_content is not None
    assert len(reply.reasoning_content) == 1463
    assert reply.reasoning_content.startswith("\n1.  **Analyze the user's input**")
    assert reply.finish_reason == "stop"
    assert reply.model == "glm-4.7"
    assert reply.usage == Usage(prompt_tokens=13, completion_tokens=437, reasoning_tokens=427)
    assert str(transport.requests[0].url) == "https://api.z.ai/api/paas/v4/chat/completions"
    assert transport.sent_json()["model"] == "glm-4.7"


# -- Groq (through an OpenAI-compatible base_url) ----------------------------------------------


async def test_groq_stream_usage_from_x_groq_on_the_last_chunk() -> None:
    llm, transport = replay(
        GROQ_STREAM,
        api_type="open_llm",
        model="llama3-8b-8192",
        base_url="https://api.groq.com/openai/v1",
    )

    reply = await llm.aask("Tell me a joke about opentelemetry", stream=True)

    assert len(reply) == 277
    assert reply.startswith(
        "A joke about OpenTelemetry!\n\nWhy did the OpenTelemetry Span go to therapy?"
    )
    assert reply.endswith('"exposes" a smile on your face!)')
    assert reply.finish_reason == "stop"
    assert reply.model == "llama3-8b-8192"
    assert reply.usage == Usage(prompt_tokens=18, completion_tokens=73)
    assert reply.usage is not None and reply.usage.estimated is False
    assert len(reply.response.raw) == 74
    assert transport.requests[0].url.path == "/openai/v1/chat/completions"


async def test_groq_astream_usage_only_on_the_final_chunk() -> None:
    llm, _ = replay(
        GROQ_STREAM,
        api_type="open_llm",
        model="llama3-8b-8192",
        base_url="https://api.groq.com/openai/v1",
    )

    chunks = await collect(llm)

    assert [c.usage for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].usage == Usage(prompt_tokens=18, completion_tokens=73)
    assert chunks[-1].finish_reason == "stop"


# -- Mistral ------------------------------------------------------------------------------------


MISTRAL_TEXT = (
    "Why did OpenTelemetry bring a map to the party?\n\nBecause it wanted to trace all the "
    "connections!\n\n(This joke is for those who appreciate a dash of tech humor in their day.)"
)


async def test_mistral_stream_text_and_usage_on_the_finish_chunk() -> None:
    llm, transport = replay(MISTRAL_STREAM, api_type="mistral", model="mistral-tiny")

    reply = await llm.aask("Tell me a joke about OpenTelemetry", stream=True)

    assert reply == MISTRAL_TEXT
    assert reply.finish_reason == "stop"
    assert reply.model == "mistral-tiny"
    assert reply.usage == Usage(prompt_tokens=11, completion_tokens=43)
    assert len(reply.response.raw) == 44
    assert str(transport.requests[0].url) == "https://api.mistral.ai/v1/chat/completions"


async def test_mistral_stream_request_has_no_stream_options() -> None:
    llm, transport = replay(MISTRAL_STREAM, api_type="mistral", model="mistral-tiny")

    chunks = await collect(llm)

    body = transport.sent_json()
    assert body["stream"] is True
    assert "stream_options" not in body
    finish = [c for c in chunks if c.finish_reason]
    assert len(finish) == 1
    assert finish[0].usage == Usage(prompt_tokens=11, completion_tokens=43)


# -- OpenRouter ---------------------------------------------------------------------------------


async def test_openrouter_in_stream_error_raises_stream_error_without_retry() -> None:
    sleeps = Sleeps()
    llm, transport = replay(
        OPENROUTER_STREAM_ERROR,
        sleeps=sleeps,
        api_type="openrouter",
        model="minimax/minimax-m2:free",
        max_retries=3,
    )

    with pytest.raises(StreamError) as info:
        await llm.aask("Hello", stream=True)

    error = info.value
    assert error.message == "Token limit reached"
    assert error.code == "400"
    assert error.provider == "openrouter"
    assert error.model == "minimax/minimax-m2:free"
    assert error.body["message"] == "Token limit reached"
    assert len(transport.requests) == 1
    assert sleeps.waits == []
    assert str(transport.requests[0].url) == "https://openrouter.ai/api/v1/chat/completions"
    assert transport.sent_json()["stream_options"] == {"include_usage": True}


async def test_openrouter_astream_yields_reasoning_before_the_in_stream_error() -> None:
    llm, transport = replay(
        OPENROUTER_STREAM_ERROR, api_type="openrouter", model="minimax/minimax-m2:free"
    )
    chunks: list[StreamChunk] = []

    with pytest.raises(StreamError, match="Token limit reached"):
        async for chunk in llm.astream("Hello"):
            chunks.append(chunk)

    assert "".join(c.reasoning for c in chunks) == "We need to respond to a greeting. The user"
    assert "".join(c.text for c in chunks) == ""
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["length", "length"]
    assert len(transport.requests) == 1


async def test_openrouter_429_is_retried_max_retries_times_then_raises_rate_limit() -> None:
    sleeps = Sleeps()
    llm, transport = replay(
        OPENROUTER_429,
        sleeps=sleeps,
        api_type="openrouter",
        model="google/gemini-2.0-flash-exp:free",
        max_retries=2,
    )

    with pytest.raises(RateLimitError) as info:
        await llm.aask("Hello", stream=False)

    error = info.value
    assert error.status_code == 429
    assert error.provider == "openrouter"
    assert error.model == "google/gemini-2.0-flash-exp:free"
    assert error.error_code == "429"
    assert error.retry_after is None
    assert error.message.startswith("Provider returned error")
    assert OPENROUTER_RAW_429 in error.message
    assert len(transport.requests) == 3
    assert sleeps.waits == [1.0, 2.0]


@pytest.mark.parametrize("max_retries", [0, 1])
async def test_openrouter_429_attempts_equal_max_retries_plus_one(max_retries: int) -> None:
    sleeps = Sleeps()
    llm, transport = replay(
        OPENROUTER_429,
        sleeps=sleeps,
        api_type="openrouter",
        model="google/gemini-2.0-flash-exp:free",
        max_retries=max_retries,
    )

    with pytest.raises(RateLimitError):
        await llm.aask("Hello", stream=False)

    assert len(transport.requests) == max_retries + 1
    assert len(sleeps.waits) == max_retries


async def test_openrouter_429_retry_waits_follow_retry_min_wait() -> None:
    sleeps = Sleeps()
    llm, _ = replay(
        OPENROUTER_429,
        sleeps=sleeps,
        api_type="openrouter",
        model="google/gemini-2.0-flash-exp:free",
        max_retries=2,
        retry_min_wait=0.25,
    )

    with pytest.raises(RateLimitError):
        await llm.aask("Hello", stream=False)

    assert sleeps.waits == [0.25, 0.5]


async def test_openrouter_429_on_a_streaming_request_is_retried_too() -> None:
    sleeps = Sleeps()
    llm, transport = replay(
        OPENROUTER_429,
        sleeps=sleeps,
        api_type="openrouter",
        model="google/gemini-2.0-flash-exp:free",
        max_retries=2,
    )

    with pytest.raises(RateLimitError):
        await llm.aask("Hello", stream=True)

    assert len(transport.requests) == 3
    assert all(json.loads(r.content)["stream"] is True for r in transport.requests)
    assert sleeps.waits == [1.0, 2.0]


async def test_openrouter_429_before_the_first_astream_chunk_is_retried() -> None:
    sleeps = Sleeps()
    llm, transport = replay(
        OPENROUTER_429,
        sleeps=sleeps,
        api_type="openrouter",
        model="google/gemini-2.0-flash-exp:free",
        max_retries=2,
    )

    with pytest.raises(RateLimitError) as info:
        await collect(llm)

    assert info.value.status_code == 429
    assert len(transport.requests) == 3
    assert sleeps.waits == [1.0, 2.0]


def _openrouter_stream(bodies: list[bytes], max_retries: int) -> tuple[BaseLLM, list[Any], Sleeps]:
    sent: list[Any] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        headers = {"content-type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, content=bodies[len(sent) - 1])

    sleeps = Sleeps()
    config = LLMConfig(
        api_type="openrouter",
        model="m",
        base_url="https://openrouter.ai/api/v1",
        max_retries=max_retries,
    )
    llm = create_llm_instance(config, transport=httpx2.MockTransport(answer), sleep=sleeps)
    return llm, sent, sleeps


@pytest.mark.parametrize(("code", "error"), [(429, RateLimitError), (502, ServerError)])
async def test_a_transient_in_stream_error_is_retried_like_its_http_status(
    code: int, error: type[Exception]
) -> None:
    failing = f"data: {json.dumps({'error': {'code': code, 'message': 'busy'}})}\n\n".encode()
    delta = {"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}
    chunk = {"id": "x", "object": "chat.completion.chunk", "model": "m", "choices": [delta]}
    good = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()

    llm, sent, sleeps = _openrouter_stream([failing], max_retries=0)
    with pytest.raises(error, match="busy"):
        await llm.aask("hi", stream=True)

    llm, sent, sleeps = _openrouter_stream([failing, good], max_retries=1)
    assert await llm.aask("hi", stream=True) == "ok"
    assert len(sent) == 2 and len(sleeps.waits) == 1
