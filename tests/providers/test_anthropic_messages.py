"""Unit tests of the Anthropic message conversion and usage parsing (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.costs import Usage
from harness.messages import user_msg
from harness.providers.anthropic import parse_anthropic_usage, to_anthropic_messages

PNG_DATA = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_system_messages_are_joined_into_system_text() -> None:
    system, messages = to_anthropic_messages(
        [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": "Answer in French."},
        ]
    )
    assert system == "You are terse.\n\nAnswer in French."
    assert messages == [{"role": "user", "content": "Hi"}]


def test_no_system_message_gives_none_and_keeps_turn_order() -> None:
    system, messages = to_anthropic_messages(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ]
    )
    assert system is None
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "a"),
        ("assistant", "b"),
        ("user", "c"),
    ]


def test_system_message_with_text_parts_is_flattened_to_text() -> None:
    system, _ = to_anthropic_messages(
        [
            {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
            {"role": "user", "content": "x"},
        ]
    )
    assert system == "Be kind."


def test_none_content_becomes_empty_string() -> None:
    _, messages = to_anthropic_messages([{"role": "user", "content": None}])
    assert messages == [{"role": "user", "content": ""}]


def test_base64_data_url_image_becomes_base64_image_block_with_media_type() -> None:
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_DATA}"}},
        ],
    }
    _, messages = to_anthropic_messages([message])
    assert messages == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG_DATA},
                },
            ],
        }
    ]


def test_bare_base64_image_from_user_msg_is_sent_as_jpeg() -> None:
    _, messages = to_anthropic_messages([user_msg("look", images=PNG_DATA)])
    image = messages[0]["content"][1]
    assert image == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG_DATA},
    }


def test_http_image_url_becomes_url_source() -> None:
    _, messages = to_anthropic_messages(
        [user_msg("look", images=["https://example.test/cat.webp", "http://example.test/d.gif"])]
    )
    content = messages[0]["content"]
    assert content[0] == {"type": "text", "text": "look"}
    assert content[1:] == [
        {"type": "image", "source": {"type": "url", "url": "https://example.test/cat.webp"}},
        {"type": "image", "source": {"type": "url", "url": "http://example.test/d.gif"}},
    ]


def test_native_anthropic_blocks_pass_through_unchanged() -> None:
    tool_result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Mexico"}
    _, messages = to_anthropic_messages([{"role": "user", "content": [tool_result]}])
    assert messages == [{"role": "user", "content": [tool_result]}]
    assert messages[0]["content"][0] is not tool_result  # a copy, the caller's dict is not shared


def test_conversion_does_not_mutate_the_input() -> None:
    original = [
        {"role": "system", "content": "s"},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}],
        },
    ]
    snapshot = repr(original)
    to_anthropic_messages(original)
    assert repr(original) == snapshot


# -- usage -----------------------------------------------------------------------------------


def test_usage_without_cache_maps_input_and_output_tokens() -> None:
    usage = parse_anthropic_usage(
        {"input_tokens": 20, "output_tokens": 10, "cache_creation_input_tokens": 0}
    )
    assert usage == Usage(prompt_tokens=20, completion_tokens=10)
    assert usage is not None and usage.total_tokens == 30


def test_usage_prompt_tokens_add_cache_reads_and_writes() -> None:
    usage = parse_anthropic_usage(
        {
            "input_tokens": 5,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 200,
            "output_tokens": 42,
        }
    )
    assert usage == Usage(
        prompt_tokens=1205, completion_tokens=42, cached_tokens=1000, cache_write_tokens=200
    )


def test_usage_later_parts_override_earlier_ones_field_by_field() -> None:
    start = {
        "input_tokens": 506,
        "cache_read_input_tokens": 30,
        "cache_creation_input_tokens": 0,
        "output_tokens": 5,
    }
    delta = {"output_tokens": 153}  # legacy message_delta: only the final output count
    usage = parse_anthropic_usage(start, delta)
    assert usage == Usage(prompt_tokens=536, completion_tokens=153, cached_tokens=30)


def test_usage_none_values_in_later_parts_do_not_erase_earlier_ones() -> None:
    start = {"input_tokens": 46, "output_tokens": 3, "cache_read_input_tokens": 4}
    delta = {"input_tokens": None, "cache_read_input_tokens": None, "output_tokens": 133}
    usage = parse_anthropic_usage(start, delta)
    assert usage == Usage(prompt_tokens=50, completion_tokens=133, cached_tokens=4)


def test_usage_later_cache_counts_replace_earlier_ones() -> None:
    start = {"input_tokens": 10, "cache_read_input_tokens": 0, "output_tokens": 1}
    delta = {"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 8}
    usage = parse_anthropic_usage(start, delta)
    assert usage == Usage(prompt_tokens=100, completion_tokens=8, cached_tokens=90)


def test_usage_absent_everywhere_is_none() -> None:
    assert parse_anthropic_usage() is None
    assert parse_anthropic_usage(None, None) is None
    assert parse_anthropic_usage({}) is None


# -- OpenAI tool conversations ---------------------------------------------------------------


def call(call_id: str, name: str, arguments: str | None) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_assistant_tool_calls_become_tool_use_blocks_after_the_text() -> None:
    _, messages = to_anthropic_messages(
        [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    call("call_1", "get_weather", '{"city": "Paris"}'),
                    call("call_2", "get_weather", '{"city": "Rome", "units": ["c"]}'),
                ],
            },
        ]
    )
    assert messages[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {
                "type": "tool_use",
                "id": "call_2",
                "name": "get_weather",
                "input": {"city": "Rome", "units": ["c"]},
            },
        ],
    }


@pytest.mark.parametrize("content", [None, "", [{"type": "text", "text": ""}]])
def test_empty_assistant_text_is_left_out_next_to_tool_use(content: Any) -> None:
    _, messages = to_anthropic_messages(
        [{"role": "assistant", "content": content, "tool_calls": [call("c", "now", None)]}]
    )
    assert messages == [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "c", "name": "now", "input": {}}],
        }
    ]


@pytest.mark.parametrize("arguments", [None, ""])
def test_missing_tool_arguments_are_an_empty_input(arguments: str | None) -> None:
    _, messages = to_anthropic_messages(
        [{"role": "assistant", "content": "x", "tool_calls": [call("c", "now", arguments)]}]
    )
    assert messages[0]["content"][1]["input"] == {}


def test_tool_messages_become_one_user_message_of_tool_results() -> None:
    _, messages = to_anthropic_messages(
        [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call("call_1", "f", "{}"), call("call_2", "f", "{}")],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "system", "content": "between results"},
            {"role": "tool", "tool_call_id": "call_2", "content": "22C"},
            {"role": "assistant", "content": "Paris 18C, Rome 22C."},
        ]
    )
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "22C"},
        ],
    }
    assert messages[3] == {"role": "assistant", "content": "Paris 18C, Rome 22C."}


def test_tool_results_of_separate_turns_are_not_merged() -> None:
    _, messages = to_anthropic_messages(
        [
            {"role": "assistant", "content": None, "tool_calls": [call("a", "f", "{}")]},
            {"role": "tool", "tool_call_id": "a", "content": "1"},
            {"role": "assistant", "content": None, "tool_calls": [call("b", "f", "{}")]},
            {"role": "tool", "tool_call_id": "b", "content": "2"},
        ]
    )
    assert [m["role"] for m in messages] == ["assistant", "user", "assistant", "user"]
    assert [len(m["content"]) for m in messages] == [1, 1, 1, 1]


def test_tool_result_parts_and_empty_content() -> None:
    _, messages = to_anthropic_messages(
        [
            {"role": "tool", "tool_call_id": "a", "content": [{"type": "text", "text": "ok"}]},
            {"role": "tool", "tool_call_id": "b", "content": ""},
            {"role": "tool", "tool_call_id": "c", "content": None},
        ]
    )
    assert messages == [
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "a",
                    "content": [{"type": "text", "text": "ok"}],
                },
                {"type": "tool_result", "tool_use_id": "b"},  # never an empty string
                {"type": "tool_result", "tool_use_id": "c"},
            ],
        }
    ]


@pytest.mark.parametrize("arguments", ['{"city": "Par', "[1, 2]", "42"])
def test_tool_arguments_that_are_not_a_json_object_raise_naming_the_message(
    arguments: str,
) -> None:
    conversation: list[dict[str, Any]] = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "tool_calls": [call("c", "f", arguments)]},
    ]
    with pytest.raises(ValueError, match="message 1") as info:
        to_anthropic_messages(conversation)
    assert repr(arguments) in str(info.value)


def test_tool_conversation_conversion_does_not_mutate_the_input() -> None:
    original: list[dict[str, Any]] = [
        {"role": "assistant", "content": "t", "tool_calls": [call("c", "f", '{"a": {"b": 1}}')]},
        {"role": "tool", "tool_call_id": "c", "content": [{"type": "text", "text": "r"}]},
    ]
    snapshot = repr(original)
    _, messages = to_anthropic_messages(original)
    messages[1]["content"][0]["content"][0]["text"] = "changed"
    assert repr(original) == snapshot
