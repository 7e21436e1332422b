"""The AWS event-stream frame decoder, on recorded Bedrock streams and crafted frames."""

from __future__ import annotations

import itertools
import json
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.providers._eventstream import (
    EventStreamDecoder,
    EventStreamError,
    EventStreamMessage,
    encode_message,
)
from tests.wirecorpus import load

THINKING = load("bedrock/pydantic-ai__test_bedrock_model_thinking_part_stream.yaml")[0].body
INVOKE = load("bedrock/openllmetry__test_anthropic_3_completion_streaming.yaml")[0].body


def decode_whole(body: bytes) -> list[EventStreamMessage]:
    decoder = EventStreamDecoder()
    messages = decoder.feed(body)
    assert decoder.pending == 0
    return messages


def test_recorded_converse_stream_decodes_to_its_25_events() -> None:
    messages = decode_whole(THINKING)
    assert len(messages) == 25
    assert [m.event_type for m in messages[:2]] == ["messageStart", "contentBlockDelta"]
    assert [m.event_type for m in messages[-2:]] == ["messageStop", "metadata"]
    assert all(m.message_type == "event" for m in messages)
    assert json.loads(messages[-1].payload)["usage"]["totalTokens"] == 109


def test_recorded_invoke_stream_decodes_to_23_chunks() -> None:
    messages = decode_whole(INVOKE)
    assert len(messages) == 23
    assert {m.event_type for m in messages} == {"chunk"}
    assert set(json.loads(messages[0].payload)) == {"bytes"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(THINKING)), max_size=30))
def test_any_split_of_a_stream_gives_the_same_messages(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(THINKING)]
    decoder = EventStreamDecoder()
    messages = []
    for start, end in itertools.pairwise(points):
        messages += decoder.feed(THINKING[start:end])
    assert messages == decode_whole(THINKING)
    assert decoder.pending == 0


def test_encoded_message_round_trips() -> None:
    frame = encode_message({":event-type": "chunk", ":message-type": "event"}, b'{"a":1}')
    (message,) = decode_whole(frame)
    assert message.headers == {":event-type": "chunk", ":message-type": "event"}
    assert message.payload == b'{"a":1}'


def test_exception_frame_names_its_exception_type() -> None:
    frame = encode_message(
        {":exception-type": "throttlingException", ":message-type": "exception"}, b"{}"
    )
    (message,) = decode_whole(frame)
    assert message.message_type == "exception"
    assert message.event_type == "throttlingException"


def test_typed_header_values_are_decoded() -> None:
    headers = (
        b"\x01a\x00"  # true
        + b"\x01b\x04"
        + struct.pack(">i", -5)  # int32
        + b"\x01c\x06"
        + struct.pack(">H", 2)
        + b"\x00\xff"  # bytes
        + b"\x01d\x08"
        + struct.pack(">q", 1700000000000)  # timestamp (ms)
    )
    total = 12 + len(headers) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + headers
    frame = body + struct.pack(">I", zlib.crc32(body))
    (message,) = decode_whole(frame)
    assert message.headers == {"a": True, "b": -5, "c": b"\x00\xff", "d": 1700000000000}
    assert message.payload == b""


def test_a_corrupt_payload_fails_the_message_crc() -> None:
    frame = bytearray(encode_message({":event-type": "chunk"}, b'{"a":1}'))
    frame[-6] ^= 0x01
    with pytest.raises(EventStreamError, match="message CRC"):
        EventStreamDecoder().feed(bytes(frame))


def test_bytes_that_are_not_a_frame_fail_the_prelude_crc() -> None:
    with pytest.raises(EventStreamError, match="prelude CRC"):
        EventStreamDecoder().feed(b'{"message": "not an event stream at all"}')


def test_a_partial_frame_waits_for_the_rest() -> None:
    frame = encode_message({":event-type": "chunk"}, b"{}")
    decoder = EventStreamDecoder()
    assert decoder.feed(frame[:10]) == []
    assert decoder.pending == 10
    assert len(decoder.feed(frame[10:])) == 1
    assert decoder.pending == 0
