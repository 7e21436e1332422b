"""The stream readers providers use for streamed answers (harness.providers._wire): the SSE
parser, and the one reader base under SSE, NDJSON and Gemini's JSON array."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import APIConnectionError, ResponseFormatError, StreamError
from harness.providers._aws_wire import FrameStream
from harness.providers._eventstream import encode_message
from harness.providers._wire import (
    NDJSONStream,
    SSEEvent,
    SSEParser,
    SSEStream,
    StreamReader,
    error_body,
)
from harness.providers.gemini import _JSONArrayStream


def parse(chunks: list[str]) -> list[SSEEvent]:
    parser = SSEParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.end()


def test_events_fields_comments_and_multiline_data() -> None:
    body = ': comment\nevent: message_start\ndata: {"a":\ndata: 1}\nid: 7\nretry: 10\n\ndata:x\n\n'
    assert parse([body]) == [SSEEvent("message_start", '{"a":\n1}'), SSEEvent(None, "x")]


def test_crlf_and_cr_line_ends_are_lines_too() -> None:
    assert parse(["data: a\r\n\r\ndata: b\r\rdata: c\n\n"]) == [
        SSEEvent(None, "a"),
        SSEEvent(None, "b"),
        SSEEvent(None, "c"),
    ]


def test_an_event_without_its_blank_line_is_read_but_marked_unterminated() -> None:
    assert parse(['data: [DONE]\n\ndata: {"cut']) == [
        SSEEvent(None, "[DONE]"),
        SSEEvent(None, '{"cut', terminated=False),
    ]


def test_a_blank_line_without_data_dispatches_nothing() -> None:
    assert parse(["event: ping\n\n\n\n"]) == []


_line_ends = st.sampled_from(["\n", "\r\n", "\r"])
_values = st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=12)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, list[SSEEvent]]:
    """An event-stream body (one line end, as a server sends) and the events it holds."""
    event = st.tuples(st.none() | _values, st.lists(_values, min_size=1, max_size=3))
    end = draw(_line_ends)
    text = ""
    expected = []
    for name, data in draw(st.lists(event, max_size=6)):
        if name is not None:
            text += f"event: {name}{end}"
        text += "".join(f"data: {line}{end}" for line in data) + end
        expected.append(SSEEvent(name, "\n".join(data)))
    return text, expected


@settings(max_examples=200, deadline=None)
@given(body=bodies(), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_the_events_do_not_depend_on_how_the_body_is_split_into_chunks(
    body: tuple[str, list[SSEEvent]], cuts: list[int]
) -> None:
    text, expected = body
    points = sorted({min(c, len(text)) for c in cuts})
    chunks = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    assert parse(chunks) == expected


# -- the one stream reader under SSE, NDJSON and Gemini's JSON array -------------------------


class Answer:
    """A streamed answer as the readers see it: headers, bytes in chunks, maybe a failure."""

    def __init__(
        self,
        chunks: list[bytes],
        content_type: str,
        fail: Exception | None = None,
        status_code: int = 200,
    ) -> None:
        self.chunks = chunks
        self.headers = {"content-type": content_type}
        self.fail = fail
        self.status_code = status_code
        self.closed = False

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.fail is not None:
            raise self.fail

    async def aread(self) -> bytes:
        if self.fail is not None:
            raise self.fail
        return b"".join(self.chunks)

    async def aclose(self) -> None:
        self.closed = True


OBJECTS = [{"text": "caf\u00e9 \U0001f642"}, {"text": "done", "end": True}]
FORMATS: dict[str, tuple[str, bytes]] = {
    "sse": (
        "text/event-stream",
        b"".join(b"data: " + json.dumps(o, ensure_ascii=False).encode() + b"\n\n" for o in OBJECTS),
    ),
    "ndjson": (
        "application/x-ndjson",
        b"".join(json.dumps(o, ensure_ascii=False).encode() + b"\n" for o in OBJECTS),
    ),
    "json-array": ("application/json", json.dumps(OBJECTS, ensure_ascii=False).encode()),
    "aws-event-stream": (
        "application/vnd.amazon.eventstream",
        b"".join(
            encode_message(
                {":event-type": "chunk", ":message-type": "event"},
                json.dumps(o, ensure_ascii=False).encode(),
            )
            for o in OBJECTS
        ),
    ),
}
TEXT_FORMATS = ["sse", "ndjson", "json-array"]


def reader(kind: str, answer: Answer) -> StreamReader:
    if kind == "sse":
        return SSEStream(answer, provider="p", model="m")
    if kind == "ndjson":
        return NDJSONStream(answer, provider="p", model="m")
    if kind == "aws-event-stream":
        return FrameStream(answer, provider="p", model="m")
    return _JSONArrayStream(answer, provider="p", model="m")


async def read(stream: StreamReader) -> list[dict[str, Any]]:
    if isinstance(stream, SSEStream):
        return [stream.json(event) async for event in stream.events()]
    if isinstance(stream, FrameStream):
        return [payload async for _, payload in stream.events()]
    assert isinstance(stream, NDJSONStream | _JSONArrayStream)
    return [item async for item in stream.objects()]


def split(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
@pytest.mark.parametrize("kind", list(FORMATS))
async def test_every_stream_reader_reads_its_items_however_the_bytes_are_split(
    kind: str, size: int
) -> None:
    content_type, body = FORMATS[kind]
    stream = reader(kind, Answer(split(body, size), content_type))
    assert await read(stream) == OBJECTS
    assert stream.count == len(OBJECTS)


@pytest.mark.parametrize("kind", TEXT_FORMATS)
async def test_every_stream_reader_refuses_bytes_that_are_not_utf8(kind: str) -> None:
    content_type, body = FORMATS[kind]
    broken = body.replace("\u00e9".encode(), b"\xe9 ")
    with pytest.raises(ResponseFormatError, match=r"not valid UTF-8 after \w+ 0 .*byte 0xe9"):
        await read(reader(kind, Answer([broken], content_type)))


@pytest.mark.parametrize("kind", TEXT_FORMATS)
async def test_every_stream_reader_calls_a_body_ending_inside_a_character_cut(kind: str) -> None:
    content_type, body = FORMATS[kind]
    cut = body[: body.index("\u00e9".encode()) + 1]
    with pytest.raises(StreamError, match="inside a UTF-8 character"):
        await read(reader(kind, Answer([cut], content_type)))


@pytest.mark.parametrize("kind", list(FORMATS))
async def test_every_stream_reader_maps_a_transport_failure_mid_stream(kind: str) -> None:
    content_type, body = FORMATS[kind]
    fail = httpx2.ReadError("connection reset")
    with pytest.raises(APIConnectionError) as info:
        await read(reader(kind, Answer(split(body, 4)[:3], content_type, fail=fail)))
    assert info.value.__cause__ is fail


@pytest.mark.parametrize("kind", ["sse", "ndjson", "aws-event-stream"])
async def test_a_stream_reader_refuses_another_media_type_quoting_the_body(kind: str) -> None:
    answer = Answer([b"<html>bad gateway</html>"], "text/html", status_code=200)
    with pytest.raises(ResponseFormatError, match="got a text/html answer") as info:
        await read(reader(kind, answer))
    assert info.value.body_excerpt == "<html>bad gateway</html>"


@pytest.mark.parametrize("kind", ["sse", "ndjson"])
async def test_a_text_stream_without_a_content_type_is_read_as_its_format(kind: str) -> None:
    _, body = FORMATS[kind]
    assert await read(reader(kind, Answer([body], ""))) == OBJECTS


async def test_an_event_stream_reader_refuses_an_untyped_answer() -> None:
    _, body = FORMATS["aws-event-stream"]
    with pytest.raises(ResponseFormatError, match="untyped answer, not an AWS event stream"):
        await read(reader("aws-event-stream", Answer([body], "")))


@pytest.mark.parametrize("kind", list(FORMATS))
async def test_a_stream_reader_cut_says_how_many_items_it_read(kind: str) -> None:
    stream = reader(kind, Answer([], ""))
    expected = f"ended early; the answer may be cut short (after 0 {stream.item}s)"
    assert str(stream.cut("ended early")).endswith(expected)


async def test_error_body_ignores_a_read_failure_unless_asked_to_raise_it() -> None:
    fail = httpx2.ReadError("connection reset")
    answer = Answer([], "application/json", fail=fail, status_code=500)
    assert await error_body(answer) == ""
    assert answer.closed
    answer = Answer([], "application/json", fail=fail, status_code=500)
    with pytest.raises(APIConnectionError):
        await error_body(answer, read_errors="raise", provider="p", model="m")
    assert answer.closed
    ok = Answer([b'{"error": {"code": 500}}'], "text/event-stream", status_code=500)
    assert await error_body(ok, read_errors="raise", provider="p") == {"error": {"code": 500}}
