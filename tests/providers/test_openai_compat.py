"""Unit tests of the OpenAI wire-format helpers (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from harness import LLMConfig
from harness.costs import Usage
from harness.providers.base import ToolCall
from harness.providers.openai_compat import (
    ToolCallAssembler,
    build_chat_params,
    is_reasoning_model,
    parse_chat_chunk,
    parse_chat_response,
    parse_openai_usage,
)

MESSAGES = [{"role": "user", "content": "hello"}]


def _params(model: str, *, stream: bool = False, include_usage: bool = False, **config: Any):
    cfg = LLMConfig(model=model, **config)
    return build_chat_params(cfg, MESSAGES, model=model, stream=stream, include_usage=include_usage)


# -- reasoning models ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        "o1",
        "o1-mini",
        "o1-preview-2024-09-12",
        "o3-mini",
        "o3-mini-2025-01-31",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-5.1",
        "openai/o3-mini",  # a router's vendor prefix
        "ft:o3-mini:my-org:custom:abc123",  # a fine-tune
        "O3-MINI",
    ],
)
def test_reasoning_models_are_recognised(model: str) -> None:
    assert is_reasoning_model(model)


@pytest.mark.parametrize(
    "model",
    [
        None,
        "",
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1-mini",
        "gpt-3.5-turbo",
        "gpt-5-chat-latest",
        "omni-moderation-latest",
        "deepseek-reasoner",
        "ft:gpt-4o-mini:org::id",
    ],
)
def test_non_reasoning_models_are_not_reasoning(model: str | None) -> None:
    assert not is_reasoning_model(model)


@pytest.mark.parametrize("model", ["o1", "o3-mini", "gpt-5", "gpt-5-nano"])
def test_reasoning_model_params_use_max_completion_tokens_and_no_sampling(model: str) -> None:
    params = _params(
        model,
        max_token=321,
        temperature=0.7,
        top_p=0.5,
        presence_penalty=0.3,
        frequency_penalty=0.2,
    )
    assert params["model"] == model
    assert params["messages"] == MESSAGES
    assert params["max_completion_tokens"] == 321
    for absent in ("max_tokens", "temperature", "top_p", "presence_penalty", "frequency_penalty"):
        assert absent not in params


def test_chat_model_params_use_max_tokens_and_temperature() -> None:
    params = _params("gpt-4o-mini", max_token=100, temperature=0.4)
    assert params == {
        "model": "gpt-4o-mini",
        "messages": MESSAGES,
        "max_tokens": 100,
        "temperature": 0.4,
    }


def test_chat_model_params_send_sampling_options_only_when_changed() -> None:
    params = _params("gpt-4o", top_p=0.9, presence_penalty=0.5, frequency_penalty=-0.5)
    assert params["top_p"] == 0.9
    assert params["presence_penalty"] == 0.5
    assert params["frequency_penalty"] == -0.5
    defaults = _params("gpt-4o")
    assert "top_p" not in defaults
    assert "presence_penalty" not in defaults
    assert "frequency_penalty" not in defaults


def test_optional_params_are_sent_only_when_set() -> None:
    params = _params("gpt-4o", stop=["END"], n=2, seed=7, logprobs=True, top_logprobs=3)
    assert params["stop"] == ["END"]
    assert params["n"] == 2
    assert params["seed"] == 7
    assert params["logprobs"] is True
    assert params["top_logprobs"] == 3
    bare = _params("gpt-4o")
    for key in ("stop", "n", "seed", "logprobs", "top_logprobs", "stream", "stream_options"):
        assert key not in bare


def test_stream_params_ask_for_the_usage_chunk_when_include_usage() -> None:
    params = _params("gpt-4o-mini", stream=True, include_usage=True)
    assert params["stream"] is True
    assert params["stream_options"] == {"include_usage": True}


def test_stream_params_without_include_usage_send_no_stream_options() -> None:
    params = _params("mistral-tiny", stream=True, include_usage=False)
    assert params["stream"] is True
    assert "stream_options" not in params


def test_non_stream_params_never_send_stream_options() -> None:
    params = _params("gpt-4o-mini", stream=False, include_usage=True)
    assert "stream" not in params
    assert "stream_options" not in params


def test_reasoning_model_stream_params_keep_include_usage() -> None:
    params = _params("o3-mini", stream=True, include_usage=True, max_token=50)
    assert params["max_completion_tokens"] == 50
    assert params["stream_options"] == {"include_usage": True}


# -- usage ---------------------------------------------------------------------------------


@pytest.mark.parametrize("usage", [None, {}, "17", [1, 2]])
def test_usage_missing_or_malformed_is_none_or_zero(usage: Any) -> None:
    parsed = parse_openai_usage(usage)
    if isinstance(usage, dict):
        assert parsed == Usage()
    else:
        assert parsed is None


def test_usage_openai_with_details() -> None:
    usage = parse_openai_usage(
        {
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 256, "audio_tokens": 0},
        }
    )
    assert usage == Usage(
        prompt_tokens=2006, completion_tokens=300, cached_tokens=1920, reasoning_tokens=256
    )
    assert usage is not None and usage.total_tokens == 2306
    assert usage.estimated is False


def test_usage_without_details_2024_shape() -> None:
    usage = parse_openai_usage({"prompt_tokens": 68, "completion_tokens": 16, "total_tokens": 84})
    assert usage == Usage(prompt_tokens=68, completion_tokens=16)


def test_usage_with_null_details() -> None:
    usage = parse_openai_usage(
        {
            "prompt_tokens": 5,
            "completion_tokens": 6,
            "prompt_tokens_details": None,
            "completion_tokens_details": None,
        }
    )
    assert usage == Usage(prompt_tokens=5, completion_tokens=6)


def test_usage_deepseek_cache_hit_tokens_count_as_cached() -> None:
    usage = parse_openai_usage(
        {
            "prompt_tokens": 100,
            "completion_tokens": 212,
            "total_tokens": 312,
            "completion_tokens_details": {"reasoning_tokens": 198},
            "prompt_cache_hit_tokens": 64,
            "prompt_cache_miss_tokens": 36,
        }
    )
    assert usage == Usage(
        prompt_tokens=100, completion_tokens=212, cached_tokens=64, reasoning_tokens=198
    )


def test_usage_cache_write_tokens_are_read() -> None:
    usage = parse_openai_usage(
        {
            "prompt_tokens": 40,
            "completion_tokens": 1,
            "prompt_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 20},
        }
    )
    assert usage is not None
    assert usage.cached_tokens == 10
    assert usage.cache_write_tokens == 20


def test_usage_tolerates_null_and_string_counts() -> None:
    usage = parse_openai_usage({"prompt_tokens": None, "completion_tokens": "12"})
    assert usage == Usage(prompt_tokens=0, completion_tokens=12)


# -- whole responses and chunks ------------------------------------------------------------


def test_response_without_message_is_content_filtered_not_an_error() -> None:
    data = {
        "choices": [{"finish_reason": "content_filter", "index": 0, "logprobs": None}],
        "model": "gpt-35-turbo",
        "usage": {"prompt_tokens": 15, "completion_tokens": 19, "total_tokens": 34},
    }
    response = parse_chat_response(data)
    assert response.text is None
    assert response.finish_reason == "content_filter"
    assert response.usage == Usage(prompt_tokens=15, completion_tokens=19)
    assert response.model == "gpt-35-turbo"
    assert response.tool_calls == []


def test_response_reasoning_content_and_reasoning_fields() -> None:
    deepseek = parse_chat_response(
        {"choices": [{"message": {"content": "4", "reasoning_content": "2+2"}}]}
    )
    assert deepseek.reasoning_content == "2+2"
    openrouter = parse_chat_response({"choices": [{"message": {"content": "4", "reasoning": "r"}}]})
    assert openrouter.reasoning_content == "r"
    plain = parse_chat_response({"choices": [{"message": {"content": "4"}}]})
    assert plain.reasoning_content is None


def test_response_tool_calls_are_parsed() -> None:
    response = parse_chat_response(
        {
            "choices": [
                {
                    "finish_reason": "tool_calls",
                    "message": {
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "f", "arguments": '{"a":1}'},
                            },
                            {"id": "call_2", "type": "function", "function": {"name": "g"}},
                        ],
                    },
                }
            ]
        }
    )
    assert response.tool_calls == [
        ToolCall(id="call_1", name="f", arguments='{"a":1}'),
        ToolCall(id="call_2", name="g", arguments=""),
    ]


def test_response_empty_model_is_none() -> None:
    assert parse_chat_response({"choices": [], "model": ""}).model is None


def test_chunk_groq_usage_under_x_groq() -> None:
    chunk = parse_chat_chunk(
        {
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "x_groq": {"id": "req_1", "usage": {"prompt_tokens": 18, "completion_tokens": 73}},
        },
        ToolCallAssembler(),
    )
    assert chunk.usage == Usage(prompt_tokens=18, completion_tokens=73)
    assert chunk.finish_reason == "stop"


def test_chunk_usage_inside_the_choice() -> None:
    chunk = parse_chat_chunk(
        {"choices": [{"delta": {"content": "x"}, "usage": {"prompt_tokens": 3}}]},
        ToolCallAssembler(),
    )
    assert chunk.usage == Usage(prompt_tokens=3)
    assert chunk.text == "x"


def test_chunk_null_usage_is_none() -> None:
    chunk = parse_chat_chunk(
        {"choices": [{"delta": {"content": "hi"}}], "usage": None, "model": "m"},
        ToolCallAssembler(),
    )
    assert chunk.usage is None
    assert chunk.text == "hi"
    assert chunk.model == "m"


def test_chunk_usage_only_chunk_has_no_choices() -> None:
    chunk = parse_chat_chunk(
        {"choices": [], "usage": {"prompt_tokens": 53, "completion_tokens": 15}},
        ToolCallAssembler(),
    )
    assert chunk.text == ""
    assert chunk.finish_reason is None
    assert chunk.usage == Usage(prompt_tokens=53, completion_tokens=15)


def test_chunk_content_null_and_reasoning_delta() -> None:
    chunk = parse_chat_chunk(
        {"choices": [{"delta": {"content": None, "reasoning_content": "Hmm"}}]},
        ToolCallAssembler(),
    )
    assert chunk.text == ""
    assert chunk.reasoning == "Hmm"
    openrouter = parse_chat_chunk(
        {"choices": [{"delta": {"content": "", "reasoning": "We need"}}]}, ToolCallAssembler()
    )
    assert openrouter.reasoning == "We need"


def test_chunk_tool_call_fragments_go_to_the_assembler() -> None:
    tools = ToolCallAssembler()
    fragment = {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}
    chunk = parse_chat_chunk({"choices": [{"delta": {"tool_calls": [fragment]}}]}, tools)
    assert chunk.tool_calls == []  # complete calls are emitted at the end
    assert tools.calls() == [ToolCall(id="call_1", name="f", arguments="")]


# -- ToolCallAssembler -----------------------------------------------------------------------


def test_assembler_joins_argument_fragments_id_and_name_from_the_first() -> None:
    tools = ToolCallAssembler()
    tools.add(
        [
            {
                "index": 0,
                "id": "call_ZR5",
                "type": "function",
                "function": {"name": "get_capital", "arguments": ""},
            }
        ]
    )
    for piece in ['{"', "country", '":"', "UK", '"}']:
        tools.add([{"index": 0, "function": {"arguments": piece}}])
    assert tools.calls() == [
        ToolCall(id="call_ZR5", name="get_capital", arguments='{"country":"UK"}')
    ]


def test_assembler_keeps_parallel_calls_apart_in_index_order() -> None:
    tools = ToolCallAssembler()
    tools.add([{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{"}}])
    tools.add([{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}])
    tools.add([{"index": 1, "function": {"arguments": "}"}}])
    assert tools.calls() == [
        ToolCall(id="a", name="f", arguments="{}"),
        ToolCall(id="b", name="g", arguments="{}"),
    ]


def test_assembler_with_several_fragments_in_one_chunk() -> None:
    tools = ToolCallAssembler()
    tools.add(
        [
            {"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x":'}},
            {"index": 0, "function": {"arguments": "1}"}},
        ]
    )
    assert tools.calls() == [ToolCall(id="a", name="f", arguments='{"x":1}')]


def test_assembler_null_id_and_arguments_do_not_clobber() -> None:
    tools = ToolCallAssembler()
    tools.add([{"index": 0, "id": "a", "function": {"name": "f", "arguments": None}}])
    tools.add([{"index": 0, "id": None, "function": {"name": None, "arguments": "{}"}}])
    assert tools.calls() == [ToolCall(id="a", name="f", arguments="{}")]


def test_assembler_without_fragments_has_no_calls() -> None:
    assert ToolCallAssembler().calls() == []


def test_reasoning_model_flag_overrides_a_deployment_name() -> None:
    params = _params("my-gpt5-deployment", reasoning_model=True, max_token=50)
    assert params["max_completion_tokens"] == 50
    assert "temperature" not in params and "max_tokens" not in params
    params = _params("o3-mini", reasoning_model=False, max_token=50)
    assert params["max_tokens"] == 50 and "max_completion_tokens" not in params
