from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from harness import (
    BadRequestError,
    BatchError,
    FakeLLM,
    HarnessError,
    LLMConfig,
    MissingAPIKeyError,
    RateLimitError,
    Reply,
    ServerError,
    Usage,
    create_llm_instance,
)
from harness.errors import APIConnectionError
from harness.providers.base import BaseLLM, ChatResponse, StreamChunk


class Waits:
    """An injected sleep that records what the retry policy asked for."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


class EchoLLM(BaseLLM):
    """Answers with the last user message; its reasoning names the prompt; sleeps a bit."""

    provider_name = "echo"

    def __init__(self, config: LLMConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config or LLMConfig(api_type="fake", model="echo", stream=False), **kwargs)
        self.active = 0
        self.peak = 0

    async def _achat_completion(
        self, messages: list[dict[str, Any]], timeout: float
    ) -> ChatResponse:
        self.active += 1
        self.peak = max(self.peak, self.active)
        prompt = messages[-1]["content"]
        try:
            # Later prompts finish first, so results come back out of order.
            await asyncio.sleep(0.01 / (1 + len(prompt)))
            if prompt.startswith("fail"):
                raise BadRequestError("bad prompt", provider="echo", model="echo", status_code=400)
            return ChatResponse(
                text=f"echo:{prompt}",
                reasoning_content=f"thinking about {prompt}",
                usage=Usage(prompt_tokens=10, completion_tokens=2),
                model="echo",
            )
        finally:
            self.active -= 1

    async def _achat_completion_stream(
        self, messages: list[dict[str, Any]], timeout: float
    ) -> AsyncIterator[StreamChunk]:
        raise NotImplementedError
        yield StreamChunk()


class FlakyLLM(BaseLLM):
    """Fails with the given errors first, then answers."""

    provider_name = "flaky"

    def __init__(
        self, errors: list[Exception], config: LLMConfig | None = None, **kwargs: Any
    ) -> None:
        super().__init__(config or LLMConfig(api_type="fake", model="flaky"), **kwargs)
        self.errors = errors
        self.attempts = 0

    async def _achat_completion(
        self, messages: list[dict[str, Any]], timeout: float
    ) -> ChatResponse:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        return ChatResponse(text="ok", usage=Usage(prompt_tokens=1, completion_tokens=1))

    async def _achat_completion_stream(
        self, messages: list[dict[str, Any]], timeout: float
    ) -> AsyncIterator[StreamChunk]:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        yield StreamChunk(text="o")
        yield StreamChunk(text="k", finish_reason="stop")


def rate_limited(retry_after: float | None = None) -> RateLimitError:
    return RateLimitError(
        "slow down", provider="p", model="m", status_code=429, retry_after=retry_after
    )


# -- message building ---------------------------------------------------------------------


async def test_aask_sends_default_system_prompt_then_user_message() -> None:
    llm = FakeLLM(["hi"])
    assert await llm.aask("hello", stream=False) == "hi"
    assert llm.calls[0].messages == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "hello"},
    ]


async def test_aask_system_msgs_and_format_msgs_come_before_the_prompt() -> None:
    llm = FakeLLM(["hi"])
    history = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    await llm.aask("c", system_msgs=["be brief", "be kind"], format_msgs=history, stream=False)
    assert [m["content"] for m in llm.calls[0].messages] == ["be brief", "be kind", "a", "b", "c"]


async def test_use_system_prompt_false_sends_no_system_message() -> None:
    llm = create_llm_instance(LLMConfig(api_type="fake", model="o1-mini", use_system_prompt=False))
    assert isinstance(llm, FakeLLM)
    assert llm.use_system_prompt is False
    await llm.aask("hello", system_msgs=["ignored"], stream=False)
    assert all(m["role"] != "system" for m in llm.calls[0].messages)


async def test_aask_with_images_sends_multipart_content() -> None:
    llm = FakeLLM(["a cat"])
    await llm.aask("what is this?", images=["https://x/cat.png", "iVBORw0KGgo="], stream=False)
    content = llm.calls[0].messages[-1]["content"]
    assert content[0] == {"type": "text", "text": "what is this?"}
    assert content[1]["image_url"]["url"] == "https://x/cat.png"
    assert content[2]["image_url"]["url"] == "data:image/jpeg;base64,iVBORw0KGgo="


def test_mask_base64_data_hides_image_bytes_only() -> None:
    llm = FakeLLM()
    message = llm._user_msg("look", images=["iVBORw0KGgo=", "https://x/a.png"])
    masked = llm.mask_base64_data(message)
    assert "iVBORw0KGgo" not in str(masked)
    assert "https://x/a.png" in str(masked)
    assert "iVBORw0KGgo" in str(message)  # the original is untouched


def test_format_msg_normalises_strings_dicts_and_objects() -> None:
    class Msg:
        role = "assistant"
        content = "prev"

    llm = FakeLLM()
    assert llm.format_msg(["hi", {"role": "system", "content": "s"}, Msg()]) == [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "s"},
        {"role": "assistant", "content": "prev"},
    ]
    with pytest.raises(ValueError, match="lacks content"):
        llm.format_msg({"role": "user"})


# -- replies, reasoning, usage ------------------------------------------------------------


async def test_reply_is_a_str_carrying_the_calls_facts() -> None:
    llm = FakeLLM(
        ["answer"], reasoning="because", usage=Usage(prompt_tokens=5, completion_tokens=1)
    )
    reply = await llm.aask("q", stream=False)
    assert isinstance(reply, Reply) and isinstance(reply, str)
    assert reply == "answer"
    assert reply.reasoning_content == "because"
    assert reply.usage == Usage(prompt_tokens=5, completion_tokens=1)
    assert reply.finish_reason == "stop"


async def test_reasoning_content_is_per_call_under_concurrency() -> None:
    llm = EchoLLM()
    replies = await asyncio.gather(*(llm.aask(f"p{i}" * (i + 1), stream=False) for i in range(8)))
    for i, reply in enumerate(replies):
        prompt = f"p{i}" * (i + 1)
        assert reply == f"echo:{prompt}"
        assert reply.reasoning_content == f"thinking about {prompt}"


async def test_streamed_aask_joins_chunks_and_keeps_reasoning() -> None:
    llm = FakeLLM(["a longer streamed answer"], reasoning="hmm", chunk_size=3)
    reply = await llm.aask("q", stream=True)
    assert reply == "a longer streamed answer"
    assert reply.reasoning_content == "hmm"
    assert llm.calls[0].stream is True


async def test_astream_yields_increments_and_counts_cost_once() -> None:
    llm = FakeLLM(["abcdefgh"], chunk_size=3, usage=Usage(prompt_tokens=4, completion_tokens=3))
    pieces = [chunk.text async for chunk in llm.astream("q")]
    assert pieces[:3] == ["abc", "def", "gh"]
    costs = llm.get_costs()
    assert costs.requests_count == 1
    assert (costs.prompt_tokens, costs.completion_tokens) == (4, 3)


async def test_usage_is_estimated_and_flagged_when_the_provider_gives_none() -> None:
    llm = FakeLLM(["four score and seven"])
    reply = await llm.aask("how old?", stream=False)
    assert reply.usage is not None
    assert reply.usage.estimated is True
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0


async def test_costs_accumulate_across_calls() -> None:
    llm = FakeLLM(["a", "b"], usage=Usage(prompt_tokens=10, completion_tokens=3))
    await llm.aask("1", stream=False)
    await llm.aask("2", stream=True)
    costs = llm.get_costs()
    assert costs.requests_count == 2
    assert (costs.prompt_tokens, costs.completion_tokens) == (20, 6)


# -- batches -------------------------------------------------------------------------------


async def test_aask_batch_is_a_conversation_and_joins_replies() -> None:
    llm = FakeLLM(["one", "two"])
    assert await llm.aask_batch(["first", "second"]) == "one\ntwo"
    assert llm.calls[1].messages == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "second"},
    ]


async def test_aask_batch_parallel_keeps_input_order_and_bounds_concurrency() -> None:
    llm = EchoLLM()
    prompts = [f"q{i}" + "x" * i for i in range(12)]
    replies = await llm.aask_batch_parallel(prompts, max_concurrency=3)
    assert replies == [f"echo:{p}" for p in prompts]
    assert llm.peak == 3


async def test_aask_batch_parallel_failure_keeps_the_other_results() -> None:
    llm = EchoLLM()
    with pytest.raises(BatchError) as info:
        await llm.aask_batch_parallel(["a", "fail-b", "c"], max_concurrency=2)
    assert info.value.results == ["echo:a", None, "echo:c"]
    assert list(info.value.errors) == [1]
    assert isinstance(info.value.errors[1], BadRequestError)


async def test_aask_batch_parallel_can_return_exceptions_in_place() -> None:
    llm = EchoLLM()
    results = await llm.aask_batch_parallel(["a", "fail"], return_exceptions=True)
    assert results[0] == "echo:a"
    assert isinstance(results[1], BadRequestError)


async def test_aask_batch_parallel_rejects_zero_concurrency() -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        await EchoLLM().aask_batch_parallel(["a"], max_concurrency=0)


# -- retries -------------------------------------------------------------------------------


async def test_rate_limit_is_retried_honouring_retry_after() -> None:
    waits = Waits()
    llm = FlakyLLM([rate_limited(7.0), rate_limited(2.5)], sleep=waits)
    assert await llm.aask("q", stream=False) == "ok"
    assert llm.attempts == 3
    assert waits.seconds == [7.0, 2.5]


async def test_retry_after_is_capped_by_retry_max_wait() -> None:
    waits = Waits()
    config = LLMConfig(api_type="fake", retry_max_wait=5)
    llm = FlakyLLM([rate_limited(600.0)], config=config, sleep=waits)
    await llm.aask("q", stream=False)
    assert waits.seconds == [5.0]


async def test_server_and_connection_errors_back_off_exponentially() -> None:
    waits = Waits()
    config = LLMConfig(api_type="fake", retry_min_wait=0.5, max_retries=3)
    errors: list[Exception] = [
        ServerError("down", provider="p", model="m", status_code=503),
        APIConnectionError("reset", provider="p", model="m"),
        ServerError("overloaded", provider="p", model="m", status_code=529),
    ]
    llm = FlakyLLM(errors, config=config, sleep=waits)
    assert await llm.aask("q", stream=False) == "ok"
    assert waits.seconds == [0.5, 1.0, 2.0]


async def test_retries_stop_after_max_retries_and_reraise_the_error() -> None:
    waits = Waits()
    config = LLMConfig(api_type="fake", max_retries=2)
    llm = FlakyLLM([rate_limited() for _ in range(5)], config=config, sleep=waits)
    with pytest.raises(RateLimitError):
        await llm.aask("q", stream=False)
    assert llm.attempts == 3


async def test_client_errors_are_not_retried() -> None:
    waits = Waits()
    bad = BadRequestError("no", provider="p", model="m", status_code=400)
    llm = FlakyLLM([bad], sleep=waits)
    with pytest.raises(BadRequestError):
        await llm.aask("q", stream=False)
    assert llm.attempts == 1
    assert waits.seconds == []


async def test_streamed_call_is_retried_before_any_output() -> None:
    waits = Waits()
    llm = FlakyLLM([rate_limited(1.0)], sleep=waits)
    assert await llm.aask("q", stream=True) == "ok"
    assert [c.text async for c in FlakyLLM([rate_limited(1.0)], sleep=waits).astream("q")] == [
        "o",
        "k",
    ]
    assert waits.seconds == [1.0, 1.0]


async def test_fake_llm_raises_scripted_errors_at_the_given_call() -> None:
    llm = FakeLLM(["first", BadRequestError("boom", provider="fake", model="m", status_code=400)])
    assert await llm.aask("1", stream=False) == "first"
    with pytest.raises(BadRequestError):
        await llm.aask("2", stream=False)


async def test_fake_llm_mapping_script_matches_prompt_patterns() -> None:
    llm = FakeLLM({r"capital of France": "Paris", r"\d\+\d": "4"})
    assert await llm.aask("What is the capital of France?", stream=False) == "Paris"
    assert await llm.aask("2+2?", stream=False) == "4"
    with pytest.raises(LookupError, match="no scripted reply"):
        await llm.aask("unknown", stream=False)


# -- keys ----------------------------------------------------------------------------------


async def test_missing_key_fails_only_when_a_live_request_is_made() -> None:
    config = LLMConfig(api_type="openai", model="gpt-4o-mini")
    llm = create_llm_instance(config, environ={})  # constructing needs no key
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        await llm.aask("hello", stream=False)


class _TransportRefusal(HarnessError):
    """Stands for an error a record/replay transport raises (a cassette miss)."""


@pytest.mark.parametrize("api_type", ["openai", "anthropic", "azure"])
@pytest.mark.parametrize("stream", [False, True])
async def test_harness_error_from_the_transport_surfaces_unwrapped_and_unretried(
    api_type: str, stream: bool
) -> None:
    calls = []

    def refuse(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        raise _TransportRefusal("no recorded interaction")

    config = LLMConfig(api_type=api_type, model="m", base_url="https://example.test", max_retries=3)
    waits = Waits()
    llm = create_llm_instance(config, transport=httpx2.MockTransport(refuse), sleep=waits)
    with pytest.raises(_TransportRefusal):
        await llm.aask("q", stream=stream)
    assert len(calls) == 1
    assert waits.seconds == []


@pytest.mark.parametrize("api_type", ["openai", "anthropic"])
async def test_aclose_closes_the_connections_it_opened_and_stays_usable(api_type: str) -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        if api_type == "openai":
            body = {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}
        else:
            body = {"content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn"}
        return httpx2.Response(200, json=body)

    config = LLMConfig(api_type=api_type, model="m", base_url="https://example.test", stream=False)
    async with create_llm_instance(config, transport=httpx2.MockTransport(answer)) as llm:
        assert await llm.aask("q") == "ok"
        opened = list(llm._owned_clients)
        assert len(opened) == 1
    assert opened[0].is_closed
    assert await llm.aask("again") == "ok"  # a new connection pool after aclose
    await llm.aclose()


async def test_aclose_leaves_an_injected_client_open() -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        body = {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}
        return httpx2.Response(200, json=body)

    client = httpx2.AsyncClient(transport=httpx2.MockTransport(answer))
    config = LLMConfig(model="m", api_key="sk-test", base_url="https://example.test", stream=False)
    llm = create_llm_instance(config, http_client=client)
    assert await llm.aask("q") == "ok"
    await llm.aclose()
    assert not client.is_closed
    await client.aclose()


async def test_a_stream_left_early_is_billed_and_closed() -> None:
    llm = FakeLLM(["abcdefgh"], chunk_size=2, usage=Usage(prompt_tokens=1000, completion_tokens=9))
    async with contextlib.aclosing(llm.astream("q")) as stream:
        async for chunk in stream:
            assert chunk.text == "ab"
            break
    costs = llm.get_costs()
    assert costs.requests_count == 1
    assert costs.prompt_tokens > 0  # estimated: the provider never sent its usage


async def test_a_stream_that_breaks_midway_is_billed_for_what_arrived() -> None:
    class Breaking(FlakyLLM):
        async def _achat_completion_stream(
            self, messages: list[dict[str, Any]], timeout: float
        ) -> AsyncIterator[StreamChunk]:
            yield StreamChunk(text="partial ")
            raise ServerError("cut", provider="p", model="m", status_code=502)

    llm = Breaking([])
    seen = []
    with pytest.raises(ServerError):
        async for chunk in llm.astream("q"):
            seen.append(chunk.text)
    assert seen == ["partial "]
    assert llm.get_costs().requests_count == 1


async def test_aclose_leaves_an_injected_transport_open() -> None:
    class Tracking(httpx2.MockTransport):
        closed = False

        async def aclose(self) -> None:
            self.closed = True

    def answer(request: httpx2.Request) -> httpx2.Response:
        body = {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}
        return httpx2.Response(200, json=body)

    transport = Tracking(answer)
    config = LLMConfig(model="m", base_url="https://example.test", stream=False)
    async with create_llm_instance(config, transport=transport) as llm:
        assert await llm.aask("q") == "ok"
    assert transport.closed is False
