"""stream_end: whether a recorded SSE stream reached its wire format's end (issue #9, item 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.replay import Interaction, load_interactions
from harness.replay.bodies import split_events
from harness.replay.stream_ends import stream_end

ROOT = Path(__file__).parent.parent.parent
STREAMS = [
    (path, n, interaction)
    for path in sorted(
        [*ROOT.glob("tests/wire_corpus/*/*.yaml"), *ROOT.glob("cassettes/**/*.yaml")]
    )
    for n, interaction in enumerate(load_interactions(path))
    if stream_end(interaction.response.headers, interaction.response.body).shape is not None
]
_ENDS = (b"[DONE]", b"message_stop", b'"finish_reason": "', b'"finish_reason":"', b"error")


def test_the_recorded_streams_cover_both_shapes() -> None:
    shapes = {stream_end(i.response.headers, i.response.body).shape for _, _, i in STREAMS}
    assert shapes == {"openai-chat", "anthropic"}


@pytest.mark.parametrize(
    "interaction", [s[2] for s in STREAMS], ids=[f"{p.name}[{n}]" for p, n, _ in STREAMS]
)
def test_every_real_stream_is_whole_and_every_cut_before_its_end_is_not(
    interaction: Interaction,
) -> None:
    headers, body = interaction.response.headers, interaction.response.body
    assert stream_end(headers, body).missing is None
    events = split_events(headers, body)
    first_end = next(i for i, event in enumerate(events) if any(m in event for m in _ENDS))
    for cut in range(1, first_end + 1):
        end = stream_end(headers, b"".join(events[:cut]))
        assert end.shape is None or end.missing is not None, cut  # not judged, or cut short


def test_other_bodies_are_not_judged() -> None:
    assert stream_end([("content-type", "application/json")], b'{"choices": []}').shape is None
    sse = [("content-type", "text/event-stream")]
    assert stream_end(sse, b"data: tick\n\n").missing is None
    assert stream_end(sse, b": keep-alive\n\n").shape is None


def test_an_error_event_ends_a_stream() -> None:
    sse = [("content-type", "text/event-stream")]
    chunk = b'data: {"object": "chat.completion.chunk", "choices": []}\n\n'
    assert stream_end(sse, chunk).missing == "neither a finish_reason nor data: [DONE]"
    error = b'data: {"error": {"code": 502, "message": "upstream"}}\n\n'
    assert stream_end(sse, chunk + error).missing is None
    assert stream_end(sse, chunk + b'data: {"error": null}\n\n').missing is not None
