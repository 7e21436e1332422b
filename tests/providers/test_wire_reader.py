"""The SSE reader providers use for streamed answers (harness.providers._wire)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.providers._wire import SSEEvent, SSEParser


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
