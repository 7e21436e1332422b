"""FakeLLM: scripted replies, streaming, errors at call k, latency, usage and call assertions."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from harness import (
    APITimeoutError,
    BatchError,
    CostManager,
    FakeLLM,
    LLMConfig,
    RateLimitError,
    ServerError,
    Usage,
    create_llm_instance,
)
from harness.errors import AuthenticationError


class Clock:
    """An injected sleep that only records what it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_a_list_is_served_in_order_and_a_callable_sees_the_messages() -> None:
    listed = FakeLLM(["one", "two"])
    assert [await listed.aask("a", stream=False), await listed.aask("b", stream=False)] == [
        "one",
        "two",
    ]
    echo = FakeLLM(lambda messages: messages[-1]["content"].upper())
    assert await echo.aask("shout", stream=False) == "SHOUT"


async def test_a_pattern_mapping_answers_by_the_prompt() -> None:
    llm = FakeLLM({r"capital of \w+": "Paris", r"\d\+\d": "4"})
    assert await llm.aask("what is 2+2?", stream=False) == "4"
    with pytest.raises(LookupError, match="no scripted reply"):
        await llm.aask("nothing matches", stream=False)


async def test_streaming_comes_in_chunks_with_reasoning_first() -> None:
    llm = FakeLLM(["abcdefg"], reasoning="think", chunk_size=3)
    chunks = [chunk async for chunk in llm.astream("q")]
    assert chunks[0].reasoning == "think"
    assert [c.text for c in chunks if c.text] == ["abc", "def", "g"]
    assert chunks[-1].usage is not None and chunks[-1].finish_reason == "stop"
    assert llm.last_call.stream is True


async def test_usage_is_counted_when_not_given() -> None:
    llm = FakeLLM(["hello there"], config=LLMConfig(api_type="fake", model="gpt-4o"))
    llm.use_system_prompt = False
    reply = await llm.aask("hello", stream=False)
    assert reply.usage == Usage(prompt_tokens=8, completion_tokens=2)  # exact for gpt-4o


async def test_given_usage_is_billed_by_the_cost_manager() -> None:
    costs = CostManager()
    config = LLMConfig(api_type="fake", model="gpt-4o")
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=0)
    llm = FakeLLM(["ok"], config=config, usage=usage, cost_manager=costs)
    await llm.aask("q", stream=False)
    assert costs.get_costs().total_cost == Decimal("2.5")


async def test_the_default_fake_costs_nothing_rather_than_no_price() -> None:
    costs = CostManager()
    await FakeLLM(cost_manager=costs).aask("q", stream=False)
    assert costs.get_costs().total_cost == 0 and costs.get_costs().unpriced_requests == 0


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("rate_limit", RateLimitError),
        ("timeout", APITimeoutError),
        ("api_error", ServerError),
        ("auth", AuthenticationError),
    ],
)
async def test_errors_are_injected_at_call_k_with_harness_types(
    kind: str, error: type[Exception]
) -> None:
    config = LLMConfig(api_type="fake", max_retries=0)
    llm = FakeLLM(["first", "second"], config=config, errors={2: kind})
    assert await llm.aask("a", stream=False) == "first"
    with pytest.raises(error):
        await llm.aask("b", stream=False)
    assert await llm.aask("c", stream=False) == "second"  # a failed call uses no reply
    assert isinstance(llm.calls[1].error, error)


async def test_an_injected_rate_limit_is_retried_by_the_one_retry_policy() -> None:
    clock = Clock()
    config = LLMConfig(api_type="fake", max_retries=2, retry_min_wait=1)
    llm = FakeLLM(["ok"], config=config, errors={1: "rate_limit", 2: 503}, sleep=clock)
    assert await llm.aask("q", stream=False) == "ok"
    assert llm.call_count == 3 and clock.waits == [1.0, 2.0]


async def test_an_exception_instance_can_be_injected() -> None:
    boom = ValueError("boom")
    llm = FakeLLM(["ok"], errors={1: boom})
    with pytest.raises(ValueError, match="boom"):
        await llm.aask("q", stream=False)


def test_an_unknown_error_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown error kind 'teapot'"):
        FakeLLM(errors={1: "teapot"})


async def test_latency_waits_through_the_injected_sleep() -> None:
    clock = Clock()
    llm = FakeLLM(["a", "b", "c"], latency=[0.5, 0.1], sleep=clock)
    for prompt in "xyz":
        await llm.aask(prompt, stream=False)
    assert clock.waits == [0.5, 0.1, 0.1]


async def test_calls_are_recorded_with_assertion_helpers() -> None:
    llm = FakeLLM(["a", "b"])
    await llm.aask("first question", system_msgs=["be brief"], stream=False)
    await llm.aask("second question", stream=False)
    assert llm.call_count == 2
    assert llm.last_call.prompt == "second question"
    assert llm.calls[0].system == ["be brief"]
    llm.assert_called_with_prompt("first")
    llm.assert_called_with_prompt(re.compile(r"^second"), call=-1)
    with pytest.raises(AssertionError, match="no prompt of call 1 contains 'second'"):
        llm.assert_called_with_prompt("second", call=1)
    with pytest.raises(AssertionError, match="never called"):
        _ = FakeLLM().last_call


async def test_batch_and_parallel_batch_work() -> None:
    llm = FakeLLM(lambda messages: f"re {messages[-1]['content']}")
    assert await llm.aask_batch(["a", "b"]) == "re a\nre b"
    assert len(llm.calls[1].messages) == 3  # the second turn saw the first
    assert await llm.aask_batch_parallel(["x", "y", "z"], max_concurrency=2) == [
        "re x",
        "re y",
        "re z",
    ]


async def test_a_parallel_batch_keeps_the_replies_around_an_injected_failure() -> None:
    config = LLMConfig(api_type="fake", max_retries=0)
    llm = FakeLLM(lambda m: "ok", config=config, errors={2: "bad_request"})
    with pytest.raises(BatchError) as info:
        await llm.aask_batch_parallel(["a", "b", "c"], max_concurrency=1)
    assert info.value.results == ["ok", None, "ok"]


async def test_compression_cuts_what_the_fake_receives() -> None:
    config = LLMConfig(
        api_type="fake", model="gpt-4o", compress_type="post_cut_by_msg", context_length=40
    )
    llm = FakeLLM(["ok"], config=config)
    history = [{"role": "user", "content": f"message number {i} " * 3} for i in range(10)]
    await llm.aask(history, stream=False)
    assert 0 < len(llm.last_call.messages) < 11


def test_fake_is_selectable_as_a_config_type() -> None:
    llm = create_llm_instance(LLMConfig(api_type="fake", model="scripted"))
    assert isinstance(llm, FakeLLM) and llm.model == "scripted"
