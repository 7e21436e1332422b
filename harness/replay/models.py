"""The in-memory form of recorded HTTP traffic: requests, responses, interactions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Interaction", "RecordedRequest", "RecordedResponse"]


@dataclass
class RecordedRequest:
    """A request as recorded: bodies are bytes with any content-encoding already undone."""

    method: str
    uri: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass
class RecordedResponse:
    """A response as recorded: ``body`` is decoded (no content-encoding left to undo)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass
class Interaction:
    """One request and its response, with when it was recorded and how long it took (s)."""

    request: RecordedRequest
    response: RecordedResponse
    recorded_at: datetime | None = None
    duration: float | None = None
