"""AnthropicLLM against recorded Messages API traffic and scripted HTTP failures.

Part 1 replays every file of ``tests/wire_corpus/anthropic`` (facts from INDEX.md); part 2
checks what harness sends; part 3 drives the retry policy with ``httpx2.MockTransport``.
No test touches the network.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest

from harness import LLMConfig, create_llm_instance
from harness.costs import Usage
from harness.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    RateLimitError,
    ServerError,
)
from harness.providers.anthropic import AnthropicLLM
from harness.providers.base import StreamChunk, ToolCall
from tests.wirecorpus import CORPUS, CorpusTransport, load

MODEL = "claude-test"

TEXT_STREAM = "anthropic/llm-anthropic__test_stream_events_text.yaml"
THINKING_STREAM = "anthropic/llm-anthropic__test_stream_events_thinking.yaml"
TOOLS_STREAM = "anthropic/openllmetry__test_anthropic_tools_streaming_legacy.yaml"
INSTRUCTIONS = "anthropic/pydantic-ai__test_anthropic_model_instructions.yaml"
TOOL_WITH_THINKING = "anthropic/pydantic-ai__test_anthropic_tool_with_thinking.yaml"
ERROR_400 = (
    "anthropic/pydantic-ai__test_anthropic_explicit_effort_xhigh_unsupported_model_errors.yaml"
)

ALL_FILES = {
    TEXT_STREAM,
    THINKING_STREAM,
    TOOLS_STREAM,
    INSTRUCTIONS,
    TOOL_WITH_THINKING,
    ERROR_400,
}


class Waits:
    """An injectable ``sleep`` that records the retry waits instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_llm(
    transport: httpx2.AsyncBaseTransport, *, sleep: Waits | None = None, **config: Any
) -> AnthropicLLM:
    settings: dict[str, Any] = {"api_type": "anthropic", "model": MODEL, "max_retries": 0}
    settings.update(config)
    llm = create_llm_instance(LLMConfig(**settings), transport=transport, sleep=sleep or Waits())
    assert isinstance(llm, AnthropicLLM)
    return llm


@dataclass
class Outcome:
    """The parsed facts of one call, however it was made."""

    text: str
    usage: Usage | None
    reasoning: str | None
    finish_reason: str | None
    model: str | None
    tool_calls: list[ToolCall]
    chunks: list[StreamChunk] = field(default_factory=list)


async def call(llm: AnthropicLLM, mode: str) -> Outcome:
    """One question through ``aask`` (non-stream or stream) or ``astream``."""
    if mode == "astream":
        chunks = [chunk async for chunk in llm.astream("hello")]
        usages = [c.usage for c in chunks if c.usage is not None]
        finishes = [c.finish_reason for c in chunks if c.finish_reason]
        models = [c.model for c in chunks if c.model]
        reasoning = "".join(c.reasoning for c in chunks)
        return Outcome(
            text="".join(c.text for c in chunks),
            usage=usages[-1] if usages else None,
            reasoning=reasoning or None,
            finish_reason=finishes[-1] if finishes else None,
            model=models[-1] if models else None,
            tool_calls=[t for c in chunks for t in c.tool_calls],
            chunks=chunks,
        )
    reply = await llm.aask("hello", stream=(mode == "aask_stream"))
    assert isinstance(reply, str)
    return Outcome(
        text=str(reply),
        usage=reply.usage,
        reasoning=reply.reasoning_content,
        finish_reason=reply.finish_reason,
        model=reply.model,
        tool_calls=reply.response.tool_calls,
    )


STREAM_MODES = ["aask_stream", "astream"]


def test_every_anthropic_corpus_file_has_a_replay_test() -> None:
    on_disk = {f"anthropic/{p.name}" for p in (CORPUS / "anthropic").glob("*.yaml")}
    assert on_disk == ALL_FILES


# -- 1. recorded responses ------------------------------------------------------------------


async def test_non_stream_text_answer_parses_text_usage_stop_reason_and_model() -> None:
    transport = CorpusTransport.from_file(INSTRUCTIONS)
    out = await call(make_llm(transport, stream=False), "aask")
    assert out.text == "The capital of France is Paris."
    assert out.usage == Usage(prompt_tokens=20, completion_tokens=10)
    assert out.finish_reason == "end_turn"
    assert out.model == "claude-3-opus-20240229"
    assert out.reasoning is None
    assert out.tool_calls == []
    assert len(transport.requests) == 1


async def test_non_stream_thinking_block_becomes_reasoning_content_and_tool_use_a_tool_call() -> (
    None
):
    transport = CorpusTransport(load(TOOL_WITH_THINKING)[0:1])
    llm = make_llm(transport, stream=False, reasoning=True, max_token=8000)
    out = await call(llm, "aask")
    assert out.reasoning is not None
    assert len(out.reasoning) == 376
    assert out.reasoning.startswith(
        'The user is asking about the largest city in "the user country".'
    )
    assert out.text == (
        "I'll help you find the largest city in your country. "
        "First, let me determine which country you're from."
    )
    assert out.tool_calls == [
        ToolCall(id="toolu_01YGzqpRE16Vricda3Aqcejo", name="get_user_country", arguments="{}")
    ]
    assert json.loads(out.tool_calls[0].arguments) == {}
    assert out.finish_reason == "tool_use"
    assert out.usage == Usage(prompt_tokens=398, completion_tokens=155)
    assert out.model == "claude-sonnet-4-20250514"


async def test_non_stream_answer_after_tool_result_is_plain_text() -> None:
    transport = CorpusTransport(load(TOOL_WITH_THINKING)[1:2])
    llm = make_llm(transport, stream=False, reasoning=True, max_token=8000)
    out = await call(llm, "aask")
    assert len(out.text) == 604
    assert out.text.startswith(
        "Based on the information that you're from Mexico, the largest city in your country "
        "is **Mexico City**"
    )
    assert out.reasoning is None
    assert out.tool_calls == []
    assert out.finish_reason == "end_turn"
    assert out.usage == Usage(prompt_tokens=566, completion_tokens=126)
    assert out.model == "claude-sonnet-4-20250514"


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_stream_text_answer_is_reassembled(mode: str) -> None:
    transport = CorpusTransport.from_file(TEXT_STREAM)
    out = await call(make_llm(transport), mode)
    assert out.text == "Hello"
    assert out.finish_reason == "end_turn"
    assert out.model == "claude-haiku-4-5-20251001"
    assert out.reasoning is None
    assert out.tool_calls == []
    assert transport.sent_json(0)["stream"] is True


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_stream_usage_takes_final_output_tokens_from_message_delta(mode: str) -> None:
    # message_start says output_tokens=2 (provisional), message_delta says 4 (final).
    out = await call(make_llm(CorpusTransport.from_file(TEXT_STREAM)), mode)
    assert out.usage == Usage(prompt_tokens=10, completion_tokens=4)


async def test_astream_reports_provisional_then_final_usage() -> None:
    out = await call(make_llm(CorpusTransport.from_file(TEXT_STREAM)), "astream")
    completions = [c.usage.completion_tokens for c in out.chunks if c.usage is not None]
    assert completions[0] == 2
    assert completions[-1] == 4


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_stream_thinking_deltas_become_reasoning_content(mode: str) -> None:
    # The body is gzip-compressed SSE (Content-Encoding: gzip).
    out = await call(make_llm(CorpusTransport.from_file(THINKING_STREAM)), mode)
    assert out.reasoning is not None
    assert len(out.reasoning) == 289
    assert out.reasoning.startswith(
        "The user wants two names for a pet pelican, and they want me to be brief."
    )
    assert out.text == (
        '1. **Pouch** - references their iconic bill pouch\n2. **Pelé** - playful take on "pelican"'
    )
    assert out.finish_reason == "end_turn"
    assert out.usage == Usage(prompt_tokens=46, completion_tokens=133)
    assert out.tool_calls == []


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_stream_tool_use_arguments_are_assembled_from_input_json_deltas(mode: str) -> None:
    out = await call(make_llm(CorpusTransport.from_file(TOOLS_STREAM)), mode)
    assert len(out.text) == 175
    assert out.text.startswith("Certainly! I can help you with that information.")
    assert out.text.endswith("Let me fetch that data for you.")
    assert [(c.id, c.name) for c in out.tool_calls] == [
        ("toolu_014x5X91kx3fvdhpLvwXZWE2", "get_weather"),
        ("toolu_0121kXsENLvoDZ72LCuAnCCz", "get_time"),
    ]
    assert json.loads(out.tool_calls[0].arguments) == {
        "location": "San Francisco, CA",
        "unit": "celsius",
    }
    assert json.loads(out.tool_calls[1].arguments) == {"timezone": "America/Los_Angeles"}
    assert out.finish_reason == "tool_use"
    assert out.model == "claude-3-5-sonnet-20240620"


async def test_stream_tool_arguments_arrive_in_several_fragments() -> None:
    out = await call(make_llm(CorpusTransport.from_file(TOOLS_STREAM)), "astream")
    fragments = [
        c.raw["delta"]["partial_json"]
        for c in out.chunks
        if isinstance(c.raw, dict) and (c.raw.get("delta") or {}).get("type") == "input_json_delta"
    ]
    assert len(fragments) > 2  # so the test above really exercises the reassembly
    assert fragments[0] == ""
    # The calls come once, complete, after the stream; no chunk carries a partial call.
    with_calls = [c for c in out.chunks if c.tool_calls]
    assert len(with_calls) == 1
    assert with_calls[0] is out.chunks[-1]


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_legacy_message_delta_with_only_output_tokens_keeps_start_input_tokens(
    mode: str,
) -> None:
    out = await call(make_llm(CorpusTransport.from_file(TOOLS_STREAM)), mode)
    assert out.usage == Usage(prompt_tokens=506, completion_tokens=153)


async def test_http_400_error_envelope_raises_bad_request_with_provider_details() -> None:
    transport = CorpusTransport.from_file(ERROR_400)
    waits = Waits()
    llm = make_llm(transport, stream=False, max_retries=3, sleep=waits)
    with pytest.raises(BadRequestError) as info:
        await llm.aask("hello")
    error = info.value
    assert error.status_code == 400
    assert error.error_type == "invalid_request_error"
    assert error.request_id == "req_011Ca7jT9AHpgXgdv8igm4z9"
    assert error.message == (
        "This model does not support effort level 'xhigh'. "
        "Supported levels: high, low, max, medium."
    )
    assert error.provider == "anthropic"
    assert error.model == MODEL
    assert len(transport.requests) == 1  # a 400 is not retried
    assert waits.calls == []


# -- 2. what harness sends --------------------------------------------------------------------


def _sent_headers(transport: CorpusTransport) -> httpx2.Headers:
    return transport.requests[0].headers


async def test_system_messages_are_sent_as_top_level_system() -> None:
    transport = CorpusTransport.from_file(INSTRUCTIONS)
    llm = make_llm(transport, stream=False)
    await llm.aask(
        "What is the capital of France?", system_msgs=["Be brief.", "Answer in English."]
    )
    body = transport.sent_json(0)
    assert body["system"] == "Be brief.\n\nAnswer in English."
    assert body["messages"] == [{"role": "user", "content": "What is the capital of France?"}]
    assert all(m["role"] != "system" for m in body["messages"])


async def test_system_messages_inside_a_message_list_are_lifted_out() -> None:
    transport = CorpusTransport.from_file(INSTRUCTIONS)
    llm = make_llm(transport, stream=False)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "system", "content": "Use French."},
        {"role": "user", "content": "Capital of France?"},
    ]
    await llm.acompletion(messages)
    body = transport.sent_json(0)
    assert body["system"] == "Be brief.\n\nUse French."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


async def test_api_key_goes_in_x_api_key_header_not_authorization() -> None:
    transport = CorpusTransport.from_file(INSTRUCTIONS)
    llm = make_llm(transport, stream=False, api_key="sk-ant-test-123")
    await llm.aask("hello")
    headers = _sent_headers(transport)
    assert headers.get("x-api-key") == "sk-ant-test-123"
    assert "authorization" not in headers


async def test_anthropic_version_header_is_sent() -> None:
    transport = CorpusTransport.from_file(INSTRUCTIONS)
    await make_llm(transport, stream=False).aask("hello")
    version = _sent_headers(transport).get("anthropic-version")
    assert version
    assert len(version.split("-")) == 3  # a YYYY-MM-DD API version


async def test_max_tokens_comes_from_config_and_thinking_is_off_by_default() -> None:
    transport = CorpusTransport.from_file(INSTRUCTIONS)
    await make_llm(transport, stream=False, max_token=1234).aask("hello")
    body = transport.sent_json(0)
    assert body["max_tokens"] == 1234
    assert body["model"] == MODEL
    assert "thinking" not in body
    assert "stream" not in body or body["stream"] is False


async def test_reasoning_config_sends_enabled_thinking_with_budget() -> None:
    transport = CorpusTransport(load(TOOL_WITH_THINKING)[0:1])
    llm = make_llm(
        transport, stream=False, reasoning=True, max_token=8000, reasoning_max_token=3000
    )
    await llm.aask("hello")
    body = transport.sent_json(0)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 3000}
    assert body["max_tokens"] == 8000


@pytest.mark.parametrize("max_token", [3000, 2000])
async def test_max_token_not_above_reasoning_budget_is_a_config_error_before_any_request(
    max_token: int,
) -> None:
    transport = CorpusTransport.from_file(INSTRUCTIONS)
    llm = make_llm(
        transport, stream=False, reasoning=True, max_token=max_token, reasoning_max_token=3000
    )
    with pytest.raises(ConfigError) as info:
        await llm.aask("hello")
    assert info.value.key == "max_token"
    assert transport.requests == []


async def test_sampling_parameters_are_not_sent_unless_configured() -> None:
    transport = CorpusTransport.from_file(INSTRUCTIONS)
    await make_llm(transport, stream=False).aask("hello")
    body = transport.sent_json(0)
    assert not {"temperature", "top_p", "top_k"} & body.keys()


async def test_explicit_temperature_is_sent() -> None:
    transport = CorpusTransport.from_file(INSTRUCTIONS)
    await make_llm(transport, stream=False, temperature=0.3, top_k=5).aask("hello")
    body = transport.sent_json(0)
    assert body["temperature"] == 0.3
    assert body["top_k"] == 5
    assert "top_p" not in body


async def test_sampling_parameters_are_not_sent_with_extended_thinking() -> None:
    transport = CorpusTransport(load(TOOL_WITH_THINKING)[0:1])
    llm = make_llm(transport, stream=False, reasoning=True, max_token=8000, temperature=0.5)
    await llm.aask("hello")
    body = transport.sent_json(0)
    assert "thinking" in body
    assert "temperature" not in body


async def test_explicit_zero_temperature_is_sent() -> None:
    transport = CorpusTransport.from_file(INSTRUCTIONS)
    await make_llm(transport, stream=False, temperature=0.0).aask("hello")
    assert transport.sent_json(0)["temperature"] == 0.0


async def test_stop_config_becomes_stop_sequences() -> None:
    transport = CorpusTransport.from_file(INSTRUCTIONS)
    await make_llm(transport, stream=False, stop="END").aask("hello")
    assert transport.sent_json(0)["stop_sequences"] == ["END"]


async def test_requests_go_to_the_configured_base_url() -> None:
    transport = CorpusTransport.from_file(INSTRUCTIONS)
    llm = make_llm(transport, stream=False, base_url="https://proxy.example.test")
    await llm.aask("hello")
    url = transport.requests[0].url
    assert url.host == "proxy.example.test"
    assert url.path == "/v1/messages"


# -- 3. scripted answers: usage with cache, retries and error mapping ----------------------------


def message_json(text: str = "ok", usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": "claude-scripted",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 3, "output_tokens": 1},
    }


def error_json(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def sse(*events: tuple[str, dict[str, Any]]) -> bytes:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


def message_start(usage: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    message = message_json(usage=usage or {"input_tokens": 3, "output_tokens": 1})
    message.update(content=[], stop_reason=None)
    return ("message_start", {"type": "message_start", "message": message})


def text_events(text: str, usage: dict[str, Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
    return [
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
                "usage": usage or {"output_tokens": 2},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


OVERLOADED = ("error", error_json("overloaded_error", "Overloaded"))


def sse_response(body: bytes) -> httpx2.Response:
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)


Answer = Callable[[httpx2.Request], httpx2.Response]


class Scripted:
    """A MockTransport handler answering with the given responses (or raising), in order."""

    def __init__(self, answers: Iterable[httpx2.Response | Exception | Answer]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        self.requests.append(request)
        answer = self.answers[len(self.requests) - 1]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx2.Response):
            return answer
        return answer(request)

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self)


async def test_usage_prompt_tokens_include_cache_reads_and_writes() -> None:
    usage = {
        "input_tokens": 10,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 50,
        "output_tokens": 7,
    }
    script = Scripted([httpx2.Response(200, json=message_json(usage=usage))])
    reply = await make_llm(script.transport(), stream=False).aask("hello")
    assert reply.usage == Usage(
        prompt_tokens=160, completion_tokens=7, cached_tokens=100, cache_write_tokens=50
    )


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_stream_usage_keeps_cache_tokens_from_message_start(mode: str) -> None:
    start_usage = {
        "input_tokens": 10,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 50,
        "output_tokens": 1,
    }
    body = sse(message_start(start_usage), *text_events("hi", usage={"output_tokens": 9}))
    script = Scripted([sse_response(body)])
    out = await call(make_llm(script.transport()), mode)
    assert out.text == "hi"
    assert out.usage == Usage(
        prompt_tokens=160, completion_tokens=9, cached_tokens=100, cache_write_tokens=50
    )


@pytest.mark.parametrize(("status", "error_type"), [(529, "overloaded_error"), (500, "api_error")])
async def test_overloaded_or_server_error_is_retried_then_succeeds(
    status: int, error_type: str
) -> None:
    script = Scripted(
        [
            httpx2.Response(status, json=error_json(error_type, "Overloaded")),
            httpx2.Response(200, json=message_json("recovered")),
        ]
    )
    waits = Waits()
    llm = make_llm(script.transport(), stream=False, max_retries=2, sleep=waits, retry_min_wait=1.5)
    reply = await llm.aask("hello")
    assert reply == "recovered"
    assert len(script.requests) == 2
    assert waits.calls == [1.5]


async def test_server_error_mapping_keeps_status_and_type() -> None:
    script = Scripted([httpx2.Response(529, json=error_json("overloaded_error", "Overloaded"))])
    with pytest.raises(ServerError) as info:
        await make_llm(script.transport(), stream=False).aask("hello")
    assert info.value.status_code == 529
    assert info.value.error_type == "overloaded_error"
    assert info.value.message == "Overloaded"


async def test_retries_stop_after_max_retries() -> None:
    script = Scripted(
        [httpx2.Response(529, json=error_json("overloaded_error", "Overloaded")) for _ in range(3)]
    )
    waits = Waits()
    llm = make_llm(script.transport(), stream=False, max_retries=2, sleep=waits)
    with pytest.raises(ServerError):
        await llm.aask("hello")
    assert len(script.requests) == 3
    assert waits.calls == [1.0, 2.0]  # exponential backoff from retry_min_wait


async def test_rate_limit_waits_for_retry_after_header() -> None:
    script = Scripted(
        [
            httpx2.Response(
                429,
                headers={"retry-after": "7"},
                json=error_json("rate_limit_error", "Number of requests has exceeded your limit"),
            ),
            httpx2.Response(200, json=message_json("after the wait")),
        ]
    )
    waits = Waits()
    llm = make_llm(script.transport(), stream=False, max_retries=3, sleep=waits)
    reply = await llm.aask("hello")
    assert reply == "after the wait"
    assert waits.calls == [7.0]
    assert len(script.requests) == 2


async def test_rate_limit_error_carries_retry_after() -> None:
    script = Scripted(
        [
            httpx2.Response(
                429, headers={"retry-after": "7"}, json=error_json("rate_limit_error", "Slow down")
            )
        ]
    )
    with pytest.raises(RateLimitError) as info:
        await make_llm(script.transport(), stream=False).aask("hello")
    assert info.value.retry_after == 7.0
    assert info.value.status_code == 429
    assert info.value.error_type == "rate_limit_error"


async def test_authentication_error_fails_at_once() -> None:
    script = Scripted(
        [
            httpx2.Response(
                401,
                headers={"request-id": "req_auth_1"},
                json=error_json("authentication_error", "invalid x-api-key"),
            ),
            httpx2.Response(200, json=message_json()),
        ]
    )
    waits = Waits()
    llm = make_llm(script.transport(), stream=False, max_retries=3, sleep=waits)
    with pytest.raises(AuthenticationError) as info:
        await llm.aask("hello")
    assert len(script.requests) == 1
    assert waits.calls == []
    assert info.value.status_code == 401
    assert info.value.error_type == "authentication_error"
    assert info.value.request_id == "req_auth_1"
    assert info.value.message == "invalid x-api-key"


async def test_in_stream_overloaded_error_maps_to_server_error() -> None:
    script = Scripted([sse_response(sse(message_start(), OVERLOADED))])
    with pytest.raises(ServerError) as info:
        await make_llm(script.transport()).aask("hello", stream=True)
    assert info.value.status_code == 529
    assert info.value.error_type == "overloaded_error"
    assert info.value.message == "Overloaded"


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_in_stream_overloaded_error_before_content_is_retried(mode: str) -> None:
    script = Scripted(
        [
            sse_response(sse(message_start(), OVERLOADED)),
            sse_response(sse(message_start(), *text_events("second time lucky"))),
        ]
    )
    waits = Waits()
    out = await call(make_llm(script.transport(), max_retries=2, sleep=waits), mode)
    assert out.text == "second time lucky"
    assert len(script.requests) == 2
    assert waits.calls == [1.0]


async def test_in_stream_error_after_content_reaches_astream_caller() -> None:
    events = [message_start(), *text_events("partial")[:2], OVERLOADED]
    script = Scripted([sse_response(sse(*events)), sse_response(sse(message_start()))])
    llm = make_llm(script.transport(), max_retries=2)
    seen: list[str] = []
    with pytest.raises(ServerError):
        async for chunk in llm.astream("hello"):
            seen.append(chunk.text)
    assert "".join(seen) == "partial"
    assert len(script.requests) == 1  # the caller has seen content: no silent restart


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx2.ConnectError("connection refused"), APIConnectionError),
        (httpx2.ReadTimeout("timed out"), APITimeoutError),
        (httpx2.ConnectTimeout("timed out"), APITimeoutError),
    ],
)
async def test_transport_failures_map_to_connection_errors(
    exc: Exception, expected: type[Exception]
) -> None:
    script = Scripted([exc])
    with pytest.raises(expected) as info:
        await make_llm(script.transport(), stream=False).aask("hello")
    assert info.value.provider == "anthropic"
    if expected is APIConnectionError:
        assert not isinstance(info.value, APITimeoutError)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "exc", [httpx2.ConnectError("connection refused"), httpx2.ReadTimeout("timed out")]
)
async def test_transport_failures_are_retried(exc: Exception, stream: bool) -> None:
    ok = (
        sse_response(sse(message_start(), *text_events("back online")))
        if stream
        else httpx2.Response(200, json=message_json("back online"))
    )
    script = Scripted([exc, ok])
    waits = Waits()
    llm = make_llm(script.transport(), max_retries=1, sleep=waits)
    reply = await llm.aask("hello", stream=stream)
    assert reply == "back online"
    assert len(script.requests) == 2
    assert waits.calls == [1.0]
