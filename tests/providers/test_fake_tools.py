"""FakeLLM scripts tool calls and structured answers; function_model; the tool-call log."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest

from harness import FakeLLM, StructuredOutputError, Tool, ToolCall
from harness.messages import assistant_msg, tool_result
from harness.providers.fake import ModelInfo, function_model, tool_call


class Weather(pydantic.BaseModel):
    city: str
    celsius: float


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


async def test_a_tool_call_reply_comes_back_as_tool_calls_with_ids() -> None:
    fake = FakeLLM([tool_call("get_weather", {"city": "Paris"}), "It is sunny."])
    reply = await fake.aask("weather?", tools=[get_weather])
    assert str(reply) == ""
    assert reply.finish_reason == "tool_calls"
    (call,) = reply.tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == (
        "call_1_0",
        "get_weather",
        {"city": "Paris"},
    )
    final = await fake.aask("and now?", tools=[get_weather])
    assert (str(final), final.tool_calls, final.finish_reason) == ("It is sunny.", [], "stop")


async def test_text_and_several_calls_in_one_reply_keep_their_order_and_given_ids() -> None:
    calls = [ToolCall("a1", "get_weather", '{"city": "Oslo"}'), tool_call("get_weather")]
    fake = FakeLLM([["Checking two cities. ", *calls]])
    response = await fake.acompletion([{"role": "user", "content": "x"}], tools=[get_weather])
    assert response.text == "Checking two cities. "
    assert [(c.id, c.arguments) for c in response.tool_calls] == [
        ("a1", '{"city": "Oslo"}'),
        ("call_1_1", "{}"),
    ]


async def test_a_pydantic_instance_or_dict_is_a_structured_answer_parsed_when_asked() -> None:
    fake = FakeLLM([Weather(city="Rome", celsius=21.5), {"city": "Oslo", "celsius": -3}])
    first = await fake.aask("x", response_format=Weather)
    assert json.loads(first) == {"city": "Rome", "celsius": 21.5}
    assert first.parsed == Weather(city="Rome", celsius=21.5)
    schema = Weather.model_json_schema()
    second = await fake.aask("y", response_format=schema)
    assert second.parsed == {"city": "Oslo", "celsius": -3}
    # without a response_format a dict is still its JSON text
    plain = await FakeLLM([{"a": 1}]).aask("z")
    assert (json.loads(plain), plain.parsed) == ({"a": 1}, None)


async def test_an_invalid_structured_answer_raises_with_the_raw_text() -> None:
    fake = FakeLLM([{"city": "Rome"}])  # no celsius
    with pytest.raises(StructuredOutputError) as caught:
        await fake.aask("x", response_format=Weather)
    assert json.loads(caught.value.raw) == {"city": "Rome"}


async def test_a_callable_of_messages_and_tools_sees_the_offered_tools() -> None:
    seen: list[list[str]] = []

    def script(messages: list[dict[str, Any]], tools: list[Tool]) -> Any:
        seen.append([t.name for t in tools])
        if messages[-1]["role"] == "tool":
            return f"result was {messages[-1]['content']}"
        return tool_call(tools[0].name, {"city": "Lima"})

    fake = FakeLLM(script)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "weather in Lima?"}]
    first = await fake.acompletion(messages, tools=[get_weather])
    messages += [assistant_msg(None, first.tool_calls), tool_result("call_1_0", "sunny")]
    final = await fake.acompletion(messages, tools=[get_weather])
    assert final.text == "result was sunny"
    assert seen == [["get_weather"], ["get_weather"]]


async def test_an_async_callable_and_a_pattern_mapping_may_answer_with_calls() -> None:
    async def script(messages: list[dict[str, Any]]) -> ToolCall:
        return tool_call("get_weather", {"city": messages[-1]["content"]})

    fake = FakeLLM(script)
    assert (await fake.aask("Quito", tools=[get_weather])).tool_calls[0].arguments == (
        '{"city": "Quito"}'
    )
    mapped = FakeLLM({"weather": tool_call("get_weather", {"city": "Kyiv"}), ".": "hello"})
    assert (await mapped.aask("weather?", tools=[get_weather])).tool_calls[0].name == "get_weather"
    assert await mapped.aask("hi") == "hello"


async def test_the_tool_call_log_records_offers_and_calls() -> None:
    fake = FakeLLM([tool_call("get_weather", {"city": "Bern"}), "no tools here", "done"])
    await fake.aask("a", tools=[get_weather, Weather])
    await fake.aask("b")
    await fake.aask("c", tools=[get_weather], tool_choice="none")
    log = fake.tool_calls
    assert len(log) == 1 and log.names == ["get_weather"]
    assert log.offered == [("get_weather", "Weather"), ("get_weather",)]
    assert log.was_offered("Weather") and not log.was_offered("book")
    assert log.arguments("get_weather") == [{"city": "Bern"}]
    log.assert_called("get_weather", {"city": "Bern"})
    with pytest.raises(AssertionError, match="no call of 'get_weather' had arguments"):
        log.assert_called("get_weather", {"city": "Paris"})
    with pytest.raises(AssertionError, match="never called"):
        log.assert_called("book")
    assert fake.calls[0].tool_names == ["get_weather", "Weather"]
    assert fake.calls[2].tool_choice == "none"


async def test_streaming_sends_text_then_openai_style_fragments_then_the_complete_calls() -> None:
    call = tool_call("get_weather", {"city": "Paris"})
    fake = FakeLLM([["Let me look.", call]], chunk_size=5)
    chunks = [c async for c in fake.astream("weather?", tools=[get_weather])]
    assert "".join(c.text for c in chunks) == "Let me look."
    fragments = [c.raw["choices"][0]["delta"]["tool_calls"][0] for c in chunks if c.raw]
    assert fragments[0] == {
        "index": 0,
        "id": "call_1_0",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    pieces = [f["function"]["arguments"] for f in fragments[1:]]
    assert all(len(p) <= 5 for p in pieces) and "".join(pieces) == call.arguments
    finish = [c.finish_reason for c in chunks if c.finish_reason]
    assert finish == ["tool_calls"]
    assert chunks[-1].tool_calls == [ToolCall("call_1_0", "get_weather", call.arguments)]
    # aask(stream=True) assembles the same answer as the non-streamed one
    streamed = await FakeLLM([["Let me look.", call]]).aask("w", tools=[get_weather], stream=True)
    assert (str(streamed), streamed.tool_calls) == ("Let me look.", chunks[-1].tool_calls)


async def test_usage_counts_the_tool_calls_as_output() -> None:
    text_only = await FakeLLM(["x"]).aask("q")
    with_call = await FakeLLM([tool_call("get_weather", {"city": "Paris" * 20})]).aask("q")
    assert text_only.usage is not None and with_call.usage is not None
    assert with_call.usage.completion_tokens > text_only.usage.completion_tokens + 10


async def test_function_model_gets_the_tools_choice_format_and_request_number() -> None:
    infos: list[ModelInfo] = []

    def answer(messages: list[dict[str, Any]], info: ModelInfo) -> Any:
        infos.append(info)
        if info.response_format is not None:
            return Weather(city="Lima", celsius=18)
        return tool_call(info.tools[0].name, {"city": "Lima"})

    model = function_model(answer)
    await model.aask("a", tools=[get_weather], tool_choice="required", stream=False)
    reply = await model.aask("b", response_format=Weather, stream=True)
    assert reply.parsed == Weather(city="Lima", celsius=18)
    assert [(i.number, i.tool_names, i.tool_choice, i.stream) for i in infos] == [
        (1, ["get_weather"], "required", False),
        (2, [], None, True),
    ]
    assert infos[1].response_format is not None and infos[1].response_format.model is Weather
    assert infos[0].tool("get_weather").description == "The weather in a city."
    with pytest.raises(KeyError, match="offered"):
        infos[0].tool("nope")


async def test_function_model_may_be_async_and_takes_fake_options() -> None:
    async def answer(messages: list[dict[str, Any]], info: ModelInfo) -> str:
        return "async answer"

    model = function_model(answer, errors={1: "rate_limit"}, sleep=_no_sleep)
    assert await model.aask("x") == "async answer"
    assert model.call_count == 2  # the injected 429 was retried
    with pytest.raises(TypeError, match="function of"):
        function_model("not callable")  # type: ignore[arg-type]


async def _no_sleep(seconds: float) -> None:
    return None


async def test_a_reply_of_an_unknown_type_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="a FakeLLM reply is a str, a ToolCall"):
        await FakeLLM([3.5]).aask("x")  # type: ignore[list-item]


async def test_usage_counts_the_offered_tool_definitions_in_the_prompt() -> None:
    plain = await FakeLLM(["x"]).aask("q", stream=False)
    offered = await FakeLLM(["x"]).aask("q", tools=[get_weather, Weather], stream=False)
    assert plain.usage is not None and offered.usage is not None
    assert offered.usage.prompt_tokens > plain.usage.prompt_tokens + 20
