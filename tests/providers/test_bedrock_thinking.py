"""Extended thinking with tool use on Bedrock: the signed reasoning of the first turn goes back,
unchanged, in the assistant message of the next request, over InvokeModel (Anthropic
``thinking`` / ``redacted_thinking`` blocks) and over Converse (``reasoningContent`` blocks),
streamed or not. No test touches the network.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx2
import pytest

from harness import Tool
from harness.errors import ResponseFormatError, ServerError
from harness.messages import tool_result
from harness.providers.base import ChatResponse, ToolCall
from harness.providers.bedrock import BedrockLLM
from tests.providers.test_bedrock_wire import (
    CLAUDE_3,
    CLAUDE_4,
    Recorder,
    frames,
    make_llm,
    stream_answer,
)

WEATHER = Tool(
    "get_weather",
    "The weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
QUESTION = {"role": "user", "content": "Weather in Oslo?"}
THINKING = "The user wants the weather: call the tool."
SIGNATURE = "EqQBCkYIBxgCKkDsig=="
REDACTED = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"
CALL = ToolCall(id="toolu_01", name="get_weather", arguments='{"city": "Oslo"}')


# -- InvokeModel (Anthropic Messages bodies) ---------------------------------------------------


def invoke_first_answer() -> httpx2.Response:
    return httpx2.Response(
        200,
        json={
            "type": "message",
            "model": "claude-3-7-sonnet-20250219",
            "content": [
                {"type": "thinking", "thinking": THINKING, "signature": SIGNATURE},
                {"type": "redacted_thinking", "data": REDACTED},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
                 "input": {"city": "Oslo"}},
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 20, "output_tokens": 40},
        },
    )  # fmt: skip


def invoke_events(*events: dict[str, Any]) -> httpx2.Response:
    """An InvokeModelWithResponseStream answer: each Anthropic event base64 in a chunk frame."""
    payloads = [base64.b64encode(json.dumps(event).encode()).decode() for event in events]
    return stream_answer(frames(*[("chunk", {"bytes": p}) for p in payloads]))


def invoke_first_stream() -> httpx2.Response:
    return invoke_events(
        {"type": "message_start", "message": {"model": "claude-3-7-sonnet-20250219",
                                              "usage": {"input_tokens": 20, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "thinking_delta", "thinking": THINKING[:10]}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "thinking_delta", "thinking": THINKING[10:]}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "signature_delta", "signature": SIGNATURE}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "redacted_thinking", "data": REDACTED}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 2,
         "delta": {"type": "text_delta", "text": "Checking."}},
        {"type": "content_block_stop", "index": 2},
        {"type": "content_block_start", "index": 3,
         "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
                           "input": {}}},
        {"type": "content_block_delta", "index": 3,
         "delta": {"type": "input_json_delta", "partial_json": '{"city": "Oslo"}'}},
        {"type": "content_block_stop", "index": 3},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
         "usage": {"output_tokens": 40}},
        {"type": "message_stop"},
    )  # fmt: skip


def invoke_second_answer() -> httpx2.Response:
    return httpx2.Response(
        200,
        json={
            "type": "message",
            "model": "claude-3-7-sonnet-20250219",
            "content": [{"type": "text", "text": "Sunny in Oslo."}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 80, "output_tokens": 6},
        },
    )


def thinking_llm(recorder: Recorder, model: str, **config: Any) -> BedrockLLM:
    return make_llm(
        httpx2.MockTransport(recorder),
        model,
        reasoning=True,
        reasoning_max_token=1024,
        max_token=2048,
        **config,
    )


async def two_turns(llm: BedrockLLM, *, stream: bool) -> tuple[ChatResponse, ChatResponse]:
    """Turn 1 asks and gets a tool call; turn 2 sends the history with the tool's result."""
    first = await llm.acompletion([QUESTION], tools=[WEATHER], stream=stream)
    assert first.tool_calls == [CALL]
    history = [QUESTION, first.message(), tool_result(CALL.id or "", "sunny, 21 C")]
    second = await llm.acompletion(history, tools=[WEATHER])
    return first, second


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "invoke-stream"])
async def test_invoke_model_sends_the_signed_thinking_back_with_the_tool_result(
    stream: bool,
) -> None:
    first_answer = invoke_first_stream() if stream else invoke_first_answer()
    recorder = Recorder(first_answer, invoke_second_answer())
    llm = thinking_llm(recorder, CLAUDE_3)

    first, second = await two_turns(llm, stream=stream)

    assert first.reasoning_content == THINKING
    assert second.text == "Sunny in Oslo."
    sent = recorder.json(1)
    assert recorder.requests[1].url.path.endswith("/invoke")
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert sent["messages"] == [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": THINKING, "signature": SIGNATURE},
                {"type": "redacted_thinking", "data": REDACTED},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
                 "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_01",
                         "content": "sunny, 21 C"}],
        },
    ]  # fmt: skip


async def test_invoke_model_answer_without_thinking_has_nothing_to_send_back() -> None:
    plain = httpx2.Response(
        200,
        json={
            "type": "message",
            "content": [
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
                 "input": {"city": "Oslo"}},
            ],
            "stop_reason": "tool_use",
        },
    )  # fmt: skip
    llm = make_llm(httpx2.MockTransport(Recorder(plain)), CLAUDE_3)

    first = await llm.acompletion([QUESTION], tools=[WEATHER])

    assert first.replay_content is None
    assert first.message() == {"role": "assistant", "content": "",
                               "tool_calls": [CALL.to_message()]}  # fmt: skip


# -- Converse ----------------------------------------------------------------------------------


def converse_first_answer() -> httpx2.Response:
    return httpx2.Response(
        200,
        json={
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [
                        {"reasoningContent": {"reasoningText": {"text": THINKING,
                                                                "signature": SIGNATURE}}},
                        {"reasoningContent": {"redactedContent": REDACTED}},
                        {"text": "Checking."},
                        {"toolUse": {"toolUseId": "toolu_01", "name": "get_weather",
                                     "input": {"city": "Oslo"}}},
                    ],
                }
            },
            "stopReason": "tool_use",
            "usage": {"inputTokens": 20, "outputTokens": 40},
        },
    )  # fmt: skip


def converse_first_stream() -> httpx2.Response:
    return stream_answer(
        frames(
            ("messageStart", {"role": "assistant"}),
            ("contentBlockDelta", {"contentBlockIndex": 0,
                                   "delta": {"reasoningContent": {"text": THINKING[:10]}}}),
            ("contentBlockDelta", {"contentBlockIndex": 0,
                                   "delta": {"reasoningContent": {"text": THINKING[10:]}}}),
            ("contentBlockDelta", {"contentBlockIndex": 0,
                                   "delta": {"reasoningContent": {"signature": SIGNATURE}}}),
            ("contentBlockStop", {"contentBlockIndex": 0}),
            ("contentBlockDelta", {"contentBlockIndex": 1,
                                   "delta": {"reasoningContent": {"redactedContent": REDACTED}}}),
            ("contentBlockStop", {"contentBlockIndex": 1}),
            ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"text": "Checking."}}),
            ("contentBlockStop", {"contentBlockIndex": 2}),
            ("contentBlockStart", {"contentBlockIndex": 3,
                                   "start": {"toolUse": {"toolUseId": "toolu_01",
                                                         "name": "get_weather"}}}),
            ("contentBlockDelta", {"contentBlockIndex": 3,
                                   "delta": {"toolUse": {"input": '{"city": "Oslo"}'}}}),
            ("contentBlockStop", {"contentBlockIndex": 3}),
            ("messageStop", {"stopReason": "tool_use"}),
            ("metadata", {"usage": {"inputTokens": 20, "outputTokens": 40}}),
        )
    )  # fmt: skip


def converse_second_answer() -> httpx2.Response:
    return httpx2.Response(
        200,
        json={
            "output": {"message": {"role": "assistant", "content": [{"text": "Sunny in Oslo."}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 80, "outputTokens": 6},
        },
    )


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "converse-stream"])
async def test_converse_sends_the_signed_reasoning_back_with_the_tool_result(
    stream: bool,
) -> None:
    first_answer = converse_first_stream() if stream else converse_first_answer()
    recorder = Recorder(first_answer, converse_second_answer())
    llm = thinking_llm(recorder, CLAUDE_4)

    first, second = await two_turns(llm, stream=stream)

    assert first.reasoning_content == THINKING
    assert second.text == "Sunny in Oslo."
    sent = recorder.json(1)
    assert recorder.requests[1].url.path.endswith("/converse")
    assert sent["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 1024}
    }
    assert sent["messages"] == [
        {"role": "user", "content": [{"text": "Weather in Oslo?"}]},
        {
            "role": "assistant",
            "content": [
                {"reasoningContent": {"reasoningText": {"text": THINKING,
                                                        "signature": SIGNATURE}}},
                {"reasoningContent": {"redactedContent": REDACTED}},
                {"text": "Checking."},
                {"toolUse": {"toolUseId": "toolu_01", "name": "get_weather",
                             "input": {"city": "Oslo"}}},
            ],
        },
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "toolu_01",
                                        "content": [{"text": "sunny, 21 C"}]}}],
        },
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        ({"type": "message", "role": "assistant"}, ResponseFormatError, "no 'content' list"),
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
            ServerError,
            "HTTP 529: busy",
        ),
    ],
)
async def test_an_invoke_model_answer_is_read_as_an_anthropic_message_or_refused(
    answer: dict[str, Any], error: type[Exception], message: str
) -> None:
    llm = make_llm(
        httpx2.MockTransport(Recorder(httpx2.Response(200, json=answer))),
        CLAUDE_3,
        max_retries=0,
    )
    with pytest.raises(error, match=message):
        await llm.acompletion([QUESTION], stream=False)
