"""Issue #12 acceptance: the wire-corpus tool recordings replay through ReplayTransport with the
tools and messages sent as recorded (the recorded request body is the cassette's key), and
their tool calls are parsed exactly.

The matcher ignores only the sampling fields harness always sends from its config
(``max_tokens``, ``temperature``, ``stream_options``) and the recordings' clients did not;
everything else (messages, tools, tool_choice, stream) must be equal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import LLMConfig, Tool, ToolCall, create_llm_instance
from harness.messages import tool_result
from harness.providers._aws_wire import to_converse_messages
from harness.providers.base import BaseLLM
from harness.replay import CassetteMiss, ReplayTransport
from harness.replay.matching import SECRET_QUERY_PARAMS, Matcher
from tests.wirecorpus import CorpusTransport

CORPUS = Path(__file__).parent.parent / "wire_corpus"
OPENAI = "https://api.openai.com/v1"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {
                    "type": "string",
                    "description": "The city and state, e.g. San Francisco, CA",
                }
            },
            "required": ["location"],
        },
    },
}
QUESTION = "What's the weather like in San Francisco?"


def replaying(
    corpus: str,
    ignore: tuple[str, ...],
    *,
    ignore_query: frozenset[str] = frozenset(),
    **config: Any,
) -> BaseLLM:
    matcher = Matcher(ignore_query=SECRET_QUERY_PARAMS | ignore_query, ignore_body_paths=ignore)
    transport = ReplayTransport(CORPUS / corpus, "replay", matcher=matcher)
    config.setdefault("max_retries", 0)
    return create_llm_instance(LLMConfig(**config), transport=transport)


OPENAI_CONFIG_FIELDS = ("max_tokens", "temperature", "stream_options")


async def test_openai_chat_tools_replays_with_the_recorded_tools_and_parses_the_call() -> None:
    llm = replaying(
        "openai/openllmetry__test_chat_tools.yaml",
        OPENAI_CONFIG_FIELDS,
        model="gpt-3.5-turbo",
        base_url=OPENAI,
    )

    response = await llm.acompletion([{"role": "user", "content": QUESTION}], tools=[WEATHER_TOOL])

    assert response.tool_calls == [
        ToolCall(
            id="call_NnblzAO7oa78mQTzjUYLcouN",
            name="get_current_weather",
            arguments='{"location":"San Francisco"}',
        )
    ]
    assert response.finish_reason == "tool_calls"


async def test_openai_chat_tools_streaming_replays_and_assembles_the_call() -> None:
    llm = replaying(
        "openai/openllmetry__test_chat_tools_streaming.yaml",
        OPENAI_CONFIG_FIELDS,
        model="gpt-3.5-turbo",
        base_url=OPENAI,
    )
    tool = Tool.of(WEATHER_TOOL)

    response = await llm.acompletion(
        [{"role": "user", "content": QUESTION}], tools=[tool], stream=True
    )

    assert response.tool_calls == [
        ToolCall(
            id="call_P9Ayqu3UQNYuTBVAg2sLimh9",
            name="get_current_weather",
            arguments='{"location":"San Francisco"}',
        )
    ]
    assert json.loads(response.tool_calls[0].arguments) == {"location": "San Francisco"}


ANTHROPIC = "https://api.anthropic.com"


async def test_anthropic_tools_streaming_legacy_replays_and_assembles_both_calls() -> None:
    llm = replaying(
        "anthropic/openllmetry__test_anthropic_tools_streaming_legacy.yaml",
        (),
        api_type="anthropic",
        model="claude-3-5-sonnet-20240620",
        base_url=ANTHROPIC,
        max_token=1024,
    )
    tools = [
        Tool(
            "get_weather",
            "Get the current weather in a given location",
            {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA",
                    },
                    "unit": {
                        "type": "string",
                        "enum": ["celsius", "fahrenheit"],
                        "description": "The unit of temperature, either 'celsius' or 'fahrenheit'",
                    },
                },
                "required": ["location"],
            },
        ),
        Tool(
            "get_time",
            "Get the current time in a given time zone",
            {
                "type": "object",
                "properties": {
                    "timezone": {
                        "type": "string",
                        "description": "The IANA time zone name, e.g. America/Los_Angeles",
                    }
                },
                "required": ["timezone"],
            },
        ),
    ]

    response = await llm.acompletion(
        [{"role": "user", "content": "What is the weather and current time in San Francisco?"}],
        tools=tools,
        stream=True,
    )

    assert response.tool_calls == [
        ToolCall(
            id="toolu_014x5X91kx3fvdhpLvwXZWE2",
            name="get_weather",
            arguments='{"location": "San Francisco, CA", "unit": "celsius"}',
        ),
        ToolCall(
            id="toolu_0121kXsENLvoDZ72LCuAnCCz",
            name="get_time",
            arguments='{"timezone": "America/Los_Angeles"}',
        ),
    ]
    assert response.text.startswith("Certainly! I can help you with that information.")
    assert response.finish_reason == "tool_use"


THINKING_ASSISTANT_TEXT = (
    "I'll help you find the largest city in your country. First, let me determine which "
    "country you're from."
)


async def test_anthropic_tool_with_thinking_runs_the_loop_as_recorded() -> None:
    llm = replaying(
        "anthropic/pydantic-ai__test_anthropic_tool_with_thinking.yaml",
        # pydantic-ai's client used the beta endpoint (?beta=true) and sent stream=false
        # explicitly; neither is part of the conversation or its tools.
        ("stream",),
        ignore_query=frozenset({"beta"}),
        api_type="anthropic",
        model="claude-sonnet-4-0",
        base_url=ANTHROPIC,
        max_token=4096,
        reasoning=True,
        reasoning_max_token=3000,
    )
    tool = Tool(
        "get_user_country",
        "",
        {"additionalProperties": False, "properties": {}, "type": "object"},
    )
    question = {
        "role": "user",
        "content": [{"type": "text", "text": "What is the largest city in the user country?"}],
    }

    first = await llm.acompletion([question], tools=[tool], tool_choice="auto")

    assert first.tool_calls == [
        ToolCall(id="toolu_01YGzqpRE16Vricda3Aqcejo", name="get_user_country", arguments="{}")
    ]
    assert first.text == THINKING_ASSISTANT_TEXT
    assert first.reasoning_content is not None
    call = first.tool_calls[0]
    # first.message() carries the signed thinking block back, as Anthropic requires.
    history = [question, first.message(), tool_result(call.id or "", "Mexico", is_error=False)]

    second = await llm.acompletion(history, tools=[tool], tool_choice="auto")

    assert second.tool_calls == []
    assert "Mexico City" in (second.text or "")


async def test_bedrock_converse_stream_with_tool_use_replays_and_assembles_the_call() -> None:
    matcher = Matcher(ignore_body_paths=())
    transport = ReplayTransport(
        CORPUS / "bedrock/openllmetry__test_anthropic_converse_stream_with_tool_use.yaml",
        "replay",
        matcher=matcher,
    )
    config = LLMConfig(
        api_type="bedrock",
        model="anthropic.claude-3-sonnet-20240229-v1:0",
        region_name="us-east-1",
        max_retries=0,
        max_token=300,
        temperature=0.5,
    )
    llm = create_llm_instance(config, transport=transport, environ={}, api="converse")
    tool = Tool(
        "get_weather",
        "Get the current weather for a location",
        {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "The city name"}},
            "required": ["location"],
        },
    )

    response = await llm.acompletion(
        [{"role": "user", "content": "What is the weather in Barcelona?"}],
        tools=[tool],
        stream=True,
    )

    assert response.tool_calls == [
        ToolCall(
            id="tooluse_yypYDr71TwCwByoyao4-Vg",
            name="get_weather",
            arguments='{"location": "Barcelona"}',
        )
    ]
    assert response.text == "Okay, let me check the weather for Barcelona using the available tool:"
    assert response.finish_reason == "tool_use"


async def test_a_request_without_the_recorded_tools_misses_the_recording() -> None:
    # The matcher compares the tools: the same question without them is another request.
    llm = replaying(
        "openai/openllmetry__test_chat_tools.yaml",
        OPENAI_CONFIG_FIELDS,
        model="gpt-3.5-turbo",
        base_url=OPENAI,
    )
    renamed = Tool.of(WEATHER_TOOL)
    renamed = Tool("get_weather", renamed.description, renamed.parameters)

    with pytest.raises(CassetteMiss):
        await llm.acompletion([{"role": "user", "content": QUESTION}], tools=[renamed])


async def test_a_streamed_thinking_block_comes_back_whole_with_its_signature() -> None:
    transport = CorpusTransport.from_file(
        "anthropic/llm-anthropic__test_stream_events_thinking.yaml"
    )
    config = LLMConfig(api_type="anthropic", model="claude-sonnet-4-0", base_url=ANTHROPIC)
    llm = create_llm_instance(config, transport=transport, allow_missing_key=True)

    response = await llm.acompletion(
        [{"role": "user", "content": "Two names for a pelican"}], stream=True
    )

    message = response.message()
    thinking, text = message["content"]
    assert thinking["type"] == "thinking"
    assert thinking["thinking"] == response.reasoning_content
    assert thinking["signature"]  # the signature_delta events, joined
    assert text == {"type": "text", "text": response.text}


async def test_a_streamed_converse_reasoning_block_comes_back_with_its_signature() -> None:
    transport = CorpusTransport.from_file(
        "bedrock/pydantic-ai__test_bedrock_model_thinking_part_stream.yaml"
    )
    config = LLMConfig(
        api_type="bedrock",
        model="us.anthropic.claude-sonnet-4-20250514-v1:0",
        region_name="us-east-1",
        access_key="AKIDEXAMPLE",
        secret_key="secret",
        reasoning=True,
        reasoning_max_token=1024,
    )
    llm = create_llm_instance(config, transport=transport, environ={})

    response = await llm.acompletion([{"role": "user", "content": "Hello"}], stream=True)

    reasoning, text = response.message()["content"]
    assert reasoning["reasoningContent"]["reasoningText"]["text"] == response.reasoning_content
    assert reasoning["reasoningContent"]["reasoningText"]["signature"]
    assert text == {"type": "text", "text": response.text}
    _, chat = to_converse_messages([{"role": "user", "content": "Hello"}, response.message()])
    assert chat[1] == {
        "role": "assistant",
        "content": [reasoning, {"text": response.text}],
    }
