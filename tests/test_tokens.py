from __future__ import annotations

import base64
import gzip
import hashlib
import json
import lzma
import socket
import struct
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import tokens
from harness.errors import ConfigError, TokenizerDataError
from harness.tokens import (
    ENCODING_SHA256,
    TokenCount,
    context_window,
    count_message_tokens,
    count_output_tokens,
    count_text_tokens,
    count_tool_tokens,
    encoding_for_model,
    get_encoding,
    tokenizer_for_model,
)
from tests.wirecorpus import load

CORPUS = Path(__file__).parent / "wire_corpus"


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket at all (loopback included) is an error while the test runs."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("token counting tried to open a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# -- the shipped data -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ENCODING_SHA256))
def test_shipped_rank_files_have_tiktokens_pinned_hash(name: str) -> None:
    data = resources.files("harness.data").joinpath(f"{name}.tiktoken.xz").read_bytes()
    assert hashlib.sha256(lzma.decompress(data)).hexdigest() == ENCODING_SHA256[name]


def test_counting_works_with_sockets_patched_to_raise(no_sockets: None) -> None:
    tokens._encodings.clear()  # force a fresh load from the package data, offline
    tokenizer_for_model.cache_clear()
    assert get_encoding("o200k_base").encode("tiktoken is great!") == [83, 8251, 2488, 382, 2212, 0]
    assert count_message_tokens([{"role": "user", "content": "hello"}], "gpt-4o-mini") == 8
    assert count_text_tokens("hello world", "gpt-4") == 2


def test_o200k_and_cl100k_encode_the_reference_sentence() -> None:
    sentence = "tiktoken is great!"
    assert get_encoding("o200k_base").encode(sentence) == [83, 8251, 2488, 382, 2212, 0]
    assert get_encoding("cl100k_base").encode(sentence) == [83, 1609, 5963, 374, 2294, 0]


def test_corrupt_data_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(tokens.ENCODING_SHA256, "o200k_base", "0" * 64)
    with pytest.raises(TokenizerDataError, match="corrupt"):
        tokens._load_encoding("o200k_base")


def test_unknown_encoding_names_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="cl100k_base, o200k_base"):
        get_encoding("p50k_base")


# -- models ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("gpt-4.1-nano-2025-04-14", "o200k_base"),
        ("o1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini-2025-04-16", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-5-nano-2025-08-07", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("azure/gpt-35-turbo", "cl100k_base"),
        ("claude-3-5-sonnet", None),
        ("deepseek-chat", None),
        ("", None),
        (None, None),
    ],
)
def test_models_map_to_their_encoding(model: str | None, encoding: str | None) -> None:
    assert encoding_for_model(model) == encoding


def test_non_openai_models_get_a_flagged_estimate_not_an_error() -> None:
    count = count_message_tokens([{"role": "user", "content": "hello"}], "claude-sonnet-4-5")
    assert isinstance(count, TokenCount) and count.estimated and count > 0
    exact = count_message_tokens([{"role": "user", "content": "hello"}], "gpt-4o")
    assert not exact.estimated
    assert "estimated" in repr(count) and "exact" in repr(exact)


# -- the chat rule, against what OpenAI billed ------------------------------------------------


def _billed(name: str, index: int = 0) -> tuple[dict[str, Any], int]:
    recorded = load(CORPUS / name)[index]
    body = recorded.body
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    text = body.decode()
    if text.startswith("data:"):
        chunks = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data: {")]
        usage = next(c["usage"] for c in reversed(chunks) if c.get("usage"))
    else:
        usage = json.loads(text)["usage"]
    return recorded.request_body, usage["prompt_tokens"]


@pytest.mark.parametrize(
    ("name", "index", "model"),
    [
        ("openai/pydantic-ai__test_max_completion_tokens[gpt-4o-mini].yaml", 0, None),
        ("openai/pydantic-ai__test_max_completion_tokens[o3-mini].yaml", 0, None),
        ("azure/pydantic-ai__test_azure_provider_call.yaml", 0, "gpt-4o"),
        ("azure/openllmetry__test_chat_reasoning.yaml", 0, "gpt-5-nano"),
        ("azure/openllmetry__test_chat_content_filtering.yaml", 0, "gpt-35-turbo"),
        ("azure/openllmetry__test_chat_content_filtering.yaml", 1, "gpt-4.1-mini"),
    ],
)
def test_message_count_equals_what_openai_billed(name: str, index: int, model: str | None) -> None:
    request, billed = _billed(name, index)
    count = count_message_tokens(request["messages"], model or request["model"])
    assert (count, count.estimated) == (billed, False)


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("openai/openllmetry__test_chat_tools.yaml", 0),
        ("openai/pydantic-ai__test_run_stream_sync_streams_real_model.yaml", 0),
        ("openai/pydantic-ai__test_run_stream_sync_streams_real_model.yaml", 1),
    ],
)
def test_count_with_tools_and_tool_calls_equals_what_openai_billed(name: str, index: int) -> None:
    request, billed = _billed(name, index)
    assert count_message_tokens(request["messages"], request["model"], tools=request["tools"]) == (
        billed
    )


def test_names_add_their_tokens_and_one_more() -> None:
    plain = count_message_tokens([{"role": "user", "content": "hi"}], "gpt-4o")
    named = count_message_tokens([{"role": "user", "content": "hi", "name": "bob"}], "gpt-4o")
    assert named - plain == count_text_tokens("bob", "gpt-4o") + 1


def _png(width: int, height: int) -> str:
    header = (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", width, height)
    )
    return "data:image/png;base64," + base64.b64encode(header + b"\x08\x02\x00\x00\x00").decode()


@pytest.mark.parametrize(
    ("image", "detail", "expected"),
    [
        (_png(512, 512), "high", 85 + 170),
        (_png(1024, 1024), "auto", 85 + 170 * 4),  # scaled to 768x768: 2x2 tiles
        (_png(2048, 4096), "high", 85 + 170 * 6),  # 1024x2048 -> 768x1536: 2x3 tiles
        (_png(4096, 4096), "low", 85),
        ("https://example.com/cat.jpg", "auto", 85 + 170 * 4),  # unknown size: 1024x1024
    ],
)
def test_images_follow_the_tile_rule(image: str, detail: str, expected: int) -> None:
    part = {"type": "image_url", "image_url": {"url": image, "detail": detail}}
    text_only = [{"role": "user", "content": [{"type": "text", "text": "what is it?"}]}]
    with_image = [{"role": "user", "content": [*text_only[0]["content"], part]}]
    diff = count_message_tokens(with_image, "gpt-4o") - count_message_tokens(text_only, "gpt-4o")
    assert diff == expected


def test_output_tokens_are_the_text_tokens() -> None:
    assert count_output_tokens("Hello! How can I assist you today?", "gpt-4o-mini") == 9


# -- context windows ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "window"),
    [
        ("gpt-4o-mini-2024-07-18", 128_000),
        ("gpt-4.1", 1_047_576),
        ("gpt-4-0613", 8192),
        ("gpt-3.5-turbo-0613", 4096),
        ("claude-sonnet-4-5-20250929", 200_000),
        ("us.amazon.nova-pro-v1:0", 300_000),
        ("models/gemini-2.5-flash", 1_048_576),
        ("no-such-model", tokens.DEFAULT_CONTEXT_WINDOW),
    ],
)
def test_context_windows_come_from_the_table(model: str, window: int) -> None:
    assert context_window(model) == window


def test_config_context_length_overrides_the_table() -> None:
    assert context_window("gpt-4o", override=4096) == 4096


# -- properties -----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(text=st.text(), encoding=st.sampled_from(sorted(ENCODING_SHA256)))
def test_decode_of_encode_is_the_text_for_any_unicode(text: str, encoding: str) -> None:
    model = "gpt-4o" if encoding == "o200k_base" else "gpt-4"
    tokenizer = tokenizer_for_model(model)
    assert tokenizer.decode(tokenizer.encode(text)) == text


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(min_size=1),
    k=st.integers(min_value=0, max_value=40),
    keep=st.sampled_from(["head", "tail"]),
)
def test_truncating_to_k_tokens_yields_at_most_k_tokens(text: str, k: int, keep: str) -> None:
    tokenizer = tokenizer_for_model("gpt-4o")
    piece = tokenizer.truncate(text, k, keep="head" if keep == "head" else "tail")
    assert tokenizer.count(piece) <= k
    assert text.startswith(piece) if keep == "head" else text.endswith(piece)
    if tokenizer.count(text) <= k:
        assert piece == text


@settings(max_examples=100, deadline=None)
@given(text=st.text())
def test_counting_never_touches_the_network(text: str) -> None:
    real_socket = socket.socket

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("token counting tried to open a socket")

    socket.socket = refuse  # type: ignore[misc,assignment]
    try:
        count_message_tokens([{"role": "user", "content": text}], "gpt-4o")
        count_message_tokens([{"role": "user", "content": text}], "mistral-large-latest")
        count_output_tokens(text, "gpt-3.5-turbo")
    finally:
        socket.socket = real_socket  # type: ignore[misc]


# -- tool definitions (issue #12) ----------------------------------------------------------------

_WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def test_a_count_with_tools_says_it_is_an_estimate() -> None:
    messages = [{"role": "user", "content": "weather?"}]
    plain = count_message_tokens(messages, "gpt-4o")
    with_tools = count_message_tokens(messages, "gpt-4o", tools=[_WEATHER_TOOL])
    assert plain.estimated is False
    assert with_tools.estimated is True  # OpenAI publishes no rule for tool definitions
    assert with_tools - plain == count_tool_tokens([_WEATHER_TOOL], "gpt-4o")


def test_claude_tool_counts_add_anthropics_documented_tool_prompt() -> None:
    messages = [{"role": "user", "content": "weather?"}]
    plain = count_message_tokens(messages, "claude-3-haiku-20240307")
    auto = count_message_tokens(messages, "claude-3-haiku-20240307", tools=[_WEATHER_TOOL])
    forced = count_message_tokens(
        messages, "claude-3-haiku-20240307", tools=[_WEATHER_TOOL], tool_choice="get_weather"
    )
    definition = count_tool_tokens([_WEATHER_TOOL], "claude-3-haiku-20240307")
    # Anthropic's table: Claude 3 Haiku adds 264 tokens (auto) or 340 (any or a named tool).
    assert auto - plain == definition
    assert forced - auto == 340 - 264
    assert definition > 264 and definition.estimated is True
    bedrock = count_tool_tokens([_WEATHER_TOOL], "anthropic.claude-3-haiku-20240307-v1:0")
    assert bedrock == definition


def test_claude_models_outside_the_table_add_only_the_definitions() -> None:
    tokens = count_tool_tokens([_WEATHER_TOOL], "claude-sonnet-4-0")
    assert 0 < tokens < 100
