"""Whether a recorded SSE stream reached its wire format's end, read off the events themselves.

Two shapes are recognised (without knowing any provider):

- OpenAI-compatible chat completion chunks (``"object": "chat.completion.chunk"`` or a
  ``choices`` list): the answer is finished once a choice carries a ``finish_reason``; the
  stream is closed by ``data: [DONE]``.
- Anthropic Messages events (``message_start``, ``content_block_*``, ``message_delta``,
  ``ping``): finished and closed by ``message_stop``.

An error event (``event: error``, ``"type": "error"``, or a top-level ``error`` object) also
ends a stream: the server said how it ended. Any other body is not judged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.replay.bodies import content_type, split_events

__all__ = ["StreamEnd", "stream_end"]

_ANTHROPIC_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
    }
)


@dataclass(frozen=True)
class StreamEnd:
    """What a stream's events say about its end."""

    shape: str | None
    """``"openai-chat"``, ``"anthropic"``, or None when the events are not recognised."""
    finished: bool
    """The answer says it is whole (a finish_reason, message_stop, [DONE] or an error)."""
    closed: bool
    """A closing event was seen (``[DONE]``, ``message_stop`` or an error event)."""

    @property
    def missing(self) -> str | None:
        """The end marker a recognised stream lacks (None: it is whole or not recognised)."""
        if self.shape is None or self.finished:
            return None
        if self.shape == "anthropic":
            return "no message_stop event"
        return "neither a finish_reason nor data: [DONE]"


def _events(chunks: Iterable[bytes]) -> Iterator[tuple[str, str]]:
    """(event name, data) of each SSE event; comments and events without data are skipped."""
    for chunk in chunks:
        name, data = "", []
        for line in chunk.decode("utf-8", errors="replace").splitlines():
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value.strip()
            elif field == "data":
                data.append(value)
        if data:
            yield name, "\n".join(data)


def _is_error(name: str, event: dict[str, Any]) -> bool:
    return name == "error" or event.get("type") == "error" or bool(event.get("error"))


def stream_end(headers: Iterable[tuple[str, str]], body: bytes) -> StreamEnd:
    """How the (decoded) ``body`` of a ``text/event-stream`` response ended."""
    headers = list(headers)
    if content_type(headers) != "text/event-stream":
        return StreamEnd(None, finished=False, closed=False)
    shape: str | None = None
    finished = False
    for name, data in _events(split_events(headers, body)):
        if data.strip() == "[DONE]":
            return StreamEnd(shape or "openai-chat", finished=True, closed=True)
        try:
            event = json.loads(data)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        if _is_error(name, event):
            return StreamEnd(shape, finished=True, closed=True)
        kind = event.get("type")
        if name in _ANTHROPIC_EVENTS or kind in _ANTHROPIC_EVENTS:
            shape = "anthropic"
            if "message_stop" in (name, kind):
                return StreamEnd(shape, finished=True, closed=True)
        elif event.get("object") == "chat.completion.chunk" or isinstance(
            event.get("choices"), list
        ):
            shape = "openai-chat"
            choices = event.get("choices") or []
            finished = finished or any(
                isinstance(choice, dict) and choice.get("finish_reason") for choice in choices
            )
    return StreamEnd(shape, finished=finished, closed=False)
