"""The "Testing an agent" examples of the README, run as written.

The blocks between the ``# -- example`` markers are the README's code, verbatim; the rest
records the cassette the last example replays (from a loopback stand-in for the OpenAI API).
The examples keep their own imports, hence the module-level imports below the top.
"""

# ruff: noqa: E402, I001

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx2
import pytest

# -- example: the agent ---------------------------------------------------------------------------
import json

from harness import BaseLLM
from harness.messages import assistant_msg, tool_result


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return {"Paris": "18 C and sunny"}.get(city, "no data")


async def run_agent(llm: BaseLLM, question: str, max_steps: int = 5) -> str:
    messages = [{"role": "user", "content": question}]
    for _ in range(max_steps):
        reply = await llm.aask(messages, tools=[get_weather], stream=False)
        if not reply.tool_calls:
            return str(reply)
        messages.append(assistant_msg(str(reply) or None, reply.tool_calls))
        for call in reply.tool_calls:
            messages.append(tool_result(call.id, get_weather(**json.loads(call.arguments))))
    raise RuntimeError(f"no answer after {max_steps} steps")


# -- example: under fake_llm ----------------------------------------------------------------------
from harness.providers.fake import tool_call


async def test_agent_calls_the_tool_and_uses_its_result(fake_llm):
    fake_llm.replies = [tool_call("get_weather", {"city": "Paris"}), "It is 18 C and sunny."]
    assert await run_agent(fake_llm, "Weather in Paris?") == "It is 18 C and sunny."
    fake_llm.tool_calls.assert_called("get_weather", {"city": "Paris"})
    assert fake_llm.calls[1].messages[-1]["content"] == "18 C and sunny"  # the result went back
    assert fake_llm.calls[0].tool_names == ["get_weather"]  # offered on every request


# -- example: function_model and schema_model -----------------------------------------------------
from harness import function_model, schema_model


def weather_agent_model(messages, info):
    if messages[-1]["role"] == "tool":  # the result is back: answer with it
        return f"Forecast: {messages[-1]['content']}"
    return tool_call(info.tools[0].name, {"city": "Paris"})


async def test_agent_with_a_function_model():
    assert await run_agent(function_model(weather_agent_model), "Paris?") == (
        "Forecast: 18 C and sunny"
    )


async def test_agent_takes_any_schema_valid_arguments():
    for seed in range(5):  # generated cities: the agent must not crash on any of them
        model = schema_model(seed=seed)  # calls the first tool once, then answers
        assert json.loads(await run_agent(model, "Weather?")) == {"get_weather": "no data"}


# -- example: under a cassette --------------------------------------------------------------------
from harness import LLMConfig, create_llm_instance
from harness.replay import ReplayTransport

GPT = LLMConfig(api_type="openai", model="gpt-4o-mini")


async def test_agent_replays_its_recorded_run():
    # recorded once with mode="record" (and OPENAI_API_KEY set); replayed offline since
    async with ReplayTransport("cassettes/agent/weather.yaml", mode="replay") as transport:
        llm = create_llm_instance(GPT, transport=transport)
        answer = await run_agent(llm, "What is the weather in Paris?")
        transport.assert_all_played()  # both steps: the tool call, then the final answer
    assert answer == "It is 18 C and sunny."


# -- recording the cassette the last example replays ----------------------------------------------

test_agent_replays_its_recorded_run.__test__ = False  # run below, once its cassette exists


def _openai_stand_in(request: httpx2.Request) -> httpx2.Response:
    """Answers like OpenAI's Chat Completions: a get_weather call, then the final text."""
    body = json.loads(request.content)
    results = [m["content"] for m in body["messages"] if m["role"] == "tool"]
    if results:
        message: dict[str, Any] = {"role": "assistant", "content": f"It is {results[0]}."}
        finish = "stop"
    else:
        arguments = json.dumps({"city": "Paris"})
        function = {"name": body["tools"][0]["function"]["name"], "arguments": arguments}
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_w1", "type": "function", "function": function}],
        }
        finish = "tool_calls"
    return httpx2.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
        },
    )


@pytest.fixture
def _recorded_weather_cassette(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-recording-key")

    async def record() -> None:
        upstream = httpx2.MockTransport(_openai_stand_in)
        path = "cassettes/agent/weather.yaml"
        async with ReplayTransport(path, mode="record", upstream=upstream) as transport:
            llm = create_llm_instance(GPT, transport=transport)
            await run_agent(llm, "What is the weather in Paris?")

    asyncio.run(record())
    monkeypatch.delenv("OPENAI_API_KEY")  # the replay needs no key


@pytest.mark.usefixtures("_recorded_weather_cassette")
async def test_the_cassette_example_replays_without_network_or_key() -> None:
    await test_agent_replays_its_recorded_run()
